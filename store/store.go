// Package store keeps the dashboard's evidence where it outlives the
// process: in an embedded SQLite file for one replica, or in PostgreSQL,
// where every replica of a fleet writes its own rows and reads everyone's,
// so that each one's dashboard and verdict are computed on all the traffic.
//
// The store is deliberately dumb about the evidence: rows hold blobs the
// caller encodes, keyed by replica, client and time. A replica writes only
// its own rows, in one transaction per batch: deltas (what it counted since
// its last batch, one row per client and minute, numbered by the replica's
// batch sequence) and samples. Nothing is ever counted twice: a reader
// takes each replica's deltas once, by sequence number, and the fleet's
// maintenance (one replica at a time) folds deltas into rolled rows by
// minute and rolled minutes into hours in the same transaction that
// deletes what it folded.
package store

import (
	"context"
	"errors"
)

// The spans of a row.
const (
	Minute = 60
	Hour   = 3600
)

// Row is a blob of evidence for one replica, client and span of time.
type Row struct {
	Replica string
	Client  string
	// Start is the Unix time in seconds of the span's start; Span is
	// Minute or Hour.
	Start int64
	Span  int64
	// Seq is the writing replica's batch number for a delta, 0 for a
	// rolled row.
	Seq  int64
	Data []byte
}

// SampleRow is one kept sample, keyed by replica, client, kind and key.
type SampleRow struct {
	Replica string
	Client  string
	// Kind groups samples ("unmapped", "mismatch"), and Key names one
	// within its client and kind (a code, a ring slot).
	Kind string
	Key  string
	// Time is when the sample was taken, in Unix nanoseconds.
	Time int64
	// Seq is the batch that wrote it.
	Seq  int64
	Data []byte
}

// Replica is one replica's registration: who has written, and when.
type Replica struct {
	Name string
	// Started and LastSeen are Unix milliseconds: when the replica
	// started, and its last batch (every batch, even one with nothing
	// but the heartbeat, moves it).
	Started  int64
	LastSeen int64
	// LastSeq is the replica's last batch written: a reader that has
	// read its deltas up to LastSeq has read all of them.
	LastSeq int64
	// RolledSeq is the highest of its batches the maintenance has folded
	// into rolled rows: a reader that had not read that far has missed
	// deltas and must load again.
	RolledSeq int64
	// Stopped reports a replica that shut down cleanly.
	Stopped bool
}

// Write is one replica's batch, applied in one transaction.
type Write struct {
	// Replica is the writer's registration, updated by every write.
	Replica Replica
	// Deltas are inserted once: a retried batch keeps its sequence
	// numbers and is not counted again.
	Deltas []Row
	// Samples are upserted on (replica, client, kind, key).
	Samples []SampleRow
	// ClearSamples deletes the replica's samples first: they were taken
	// under other settings.
	ClearSamples bool
}

// Snapshot is everything stored since a time, read in one transaction so
// that no delta is both a delta and part of a rolled row.
type Snapshot struct {
	Replicas []Replica
	Rolled   []Row
	Deltas   []Row
	Samples  []SampleRow
}

// Changes are what other replicas wrote after the marks a reader holds:
// their deltas and samples with a greater sequence number, and every
// replica's registration.
type Changes struct {
	Replicas []Replica
	Deltas   []Row
	Samples  []SampleRow
}

// Maintenance is the fleet's housekeeping, run by one replica at a time.
type Maintenance struct {
	// MinutesBefore folds the deltas of minutes starting before it into
	// one rolled row per replica, client and minute; HoursBefore folds
	// the rolled minutes starting before it into hours.
	MinutesBefore int64
	HoursBefore   int64
	// RetainAfter deletes every row, sample and registration older
	// than it (Unix seconds).
	RetainAfter int64
	// Merge adds blobs of the same span into one.
	Merge func(span int64, blobs [][]byte) ([]byte, error)
}

// Store is an open evidence store. Its methods are safe for concurrent use
// and honour their context's deadline: the caller keeps every call off the
// request path and bounded.
type Store interface {
	// Apply writes one replica's batch in one transaction, whole or not
	// at all.
	Apply(ctx context.Context, w Write) error
	// Load reads every row, delta and sample since since (Unix seconds),
	// and every registration.
	Load(ctx context.Context, since int64) (*Snapshot, error)
	// Changes reads what replicas other than self wrote after marks (the
	// last batch read of each; a replica absent from marks is read from
	// the start).
	Changes(ctx context.Context, self string, marks map[string]int64) (*Changes, error)
	// Rows reads one replica's rolled rows and deltas of one client since
	// since, for a view of that replica alone.
	Rows(ctx context.Context, replica, client string, since int64) ([]Row, error)
	// Maintain runs the fleet's housekeeping if no other replica is
	// running it, and reports whether it ran.
	Maintain(ctx context.Context, m Maintenance) (bool, error)
	// Close releases the store. It is idempotent.
	Close() error
	// Location names the store for logs and the dashboard: a file path,
	// or a PostgreSQL URL without its password.
	Location() string
}

// SchemaVersion is the layout of the evidence tables this binary writes.
// Version 1 was the single-replica layout (one row per client and minute);
// version 2 is the fleet's: replicas, deltas and rolled rows.
const SchemaVersion = 2

// CompatibleFrom is the oldest binary schema version that can keep writing
// a database at SchemaVersion: a change that only adds is readable by the
// binary before it, so a rolling update can run both side by side.
const CompatibleFrom = 2

// ErrNewerSchema is returned by Open for a database written by a newer
// binary that this one cannot safely use.
var ErrNewerSchema = errors.New("the evidence database was written by a newer envelope-proxy")

// ErrUncertain wraps a failure to commit: the batch may or may not be
// stored. The caller sends it again as it was; its numbered deltas are
// counted once either way.
var ErrUncertain = errors.New("the commit's outcome is unknown")

var (
	_ Store = (*SQLite)(nil)
	_ Store = (*Postgres)(nil)
)

// scanner is a result row of either driver: database/sql's *sql.Rows and
// pgx's CollectableRow both scan this way.
type scanner interface {
	Scan(dest ...any) error
}

// The scans below are the one place that pairs the columns the stores
// select with the fields they fill, so that the two stores cannot read the
// same query's columns into different fields.

// scanReplica reads a row of (name, started, last_seen, last_seq,
// rolled_seq, stopped).
func scanReplica(s scanner) (Replica, error) {
	var r Replica
	err := s.Scan(&r.Name, &r.Started, &r.LastSeen, &r.LastSeq, &r.RolledSeq, &r.Stopped)
	return r, err
}

// scanRow reads a row of (replica, client, start, span, seq, data).
func scanRow(s scanner) (Row, error) {
	var r Row
	err := s.Scan(&r.Replica, &r.Client, &r.Start, &r.Span, &r.Seq, &r.Data)
	return r, err
}

// scanSample reads a row of (replica, client, kind, key, time, seq, data).
func scanSample(s scanner) (SampleRow, error) {
	var sm SampleRow
	err := s.Scan(&sm.Replica, &sm.Client, &sm.Kind, &sm.Key, &sm.Time, &sm.Seq, &sm.Data)
	return sm, err
}
