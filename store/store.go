// Package store persists the dashboard's evidence in an embedded SQLite
// database so that it survives a restart of the proxy.
//
// The store is deliberately dumb: it keeps opaque blobs that the caller
// encodes, keyed by client and minute (buckets) or by client, kind and key
// (samples). It uses modernc.org/sqlite, a pure Go SQLite, so that the proxy
// binary stays static, and a single connection, because the caller writes
// from one goroutine every few seconds and reads rarely.
package store

import (
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	// The driver registers itself as "sqlite" with database/sql.
	_ "modernc.org/sqlite"
)

// FileName is the name of the database file inside the store's directory,
// exported so that operators and tests can find it.
const FileName = "evidence.db"

// schemaVersion is stored in PRAGMA user_version so that an older binary
// refuses a database written by a newer one instead of misreading it.
const schemaVersion = 1

// busyTimeoutMillis bounds how long a statement waits for a lock held by
// another connection, so that Open fails instead of hanging on a file that
// another process holds.
const busyTimeoutMillis = 1000

// schema is created in one transaction when the store is opened; every
// statement is idempotent so that reopening an existing store is harmless.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS buckets (
		client TEXT NOT NULL,
		minute INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (minute, client)
	)`,
	`CREATE TABLE IF NOT EXISTS samples (
		client TEXT NOT NULL,
		kind TEXT NOT NULL,
		key TEXT NOT NULL,
		time INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (client, kind, key)
	)`,
	`CREATE INDEX IF NOT EXISTS samples_time ON samples (time)`,
}

// Options bound the store.
type Options struct {
	// MaxBytes caps the database file; Prune deletes the oldest buckets (and
	// samples older than them) until the file fits. 0 means no cap.
	MaxBytes int64
}

// Bucket is one client's evidence for one minute, encoded by the caller.
type Bucket struct {
	// Client identifies whose evidence this is.
	Client string
	// Minute is the Unix time in seconds of the minute's start.
	Minute int64
	// Data is the caller's encoding of the bucket; nil is stored as empty.
	Data []byte
}

// Sample is one kept sample, keyed by client, kind and key (the caller
// decides kinds, e.g. "unmapped"/"mismatch", and keys, e.g. the code or a
// ring slot).
type Sample struct {
	// Client identifies whose sample this is.
	Client string
	// Kind groups samples, e.g. "unmapped" or "mismatch".
	Kind string
	// Key identifies the sample within its client and kind.
	Key string
	// Time is the Unix time in nanoseconds at which the sample was taken.
	Time int64
	// Data is the caller's encoding of the sample; nil is stored as empty.
	Data []byte
}

// Range selects one client's buckets whose minute is in [From, To), so that
// the caller can delete the minute rows that an hour row has replaced.
type Range struct {
	// Client is whose buckets are deleted.
	Client string
	// From is the first minute deleted, in Unix seconds.
	From int64
	// To is the first minute kept after the range, in Unix seconds.
	To int64
}

// Write is a batch of changes that Apply makes in one transaction, so that
// the caller's flush is stored whole or not at all.
type Write struct {
	// Buckets are upserted on (client, minute).
	Buckets []Bucket
	// Deletes are applied before Buckets and Samples are written.
	Deletes []Range
	// Samples are upserted on (client, kind, key).
	Samples []Sample
	// ClearSamples deletes every stored sample before Samples are
	// written: samples were turned off, or taken under other redaction.
	ClearSamples bool
}

// Store is an open evidence database. It is safe for concurrent use, but
// every operation goes through one connection, so operations run one at a
// time.
type Store struct {
	db   *sql.DB
	path string
	opts Options
	// file is the database file as opened, so that writes notice it being
	// deleted or replaced underneath the store, which SQLite does not
	// report: it goes on writing to the unlinked file, and the data is lost
	// at Close.
	file os.FileInfo

	closeOnce sync.Once
	closeErr  error
}

// Open opens dir/evidence.db, creating dir (0o750) and the database if they
// do not exist, so that the caller gets a ready store or an error. It fails,
// rather than hanging or panicking, when the file is corrupt, was written by
// a newer schema, or is locked by another process.
func Open(dir string, opts Options) (*Store, error) {
	path := filepath.Join(dir, FileName)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("opening evidence store %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("opening evidence store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	s := &Store{db: db, path: path, opts: opts}
	if err := s.check(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening evidence store %s: %w", path, err)
	}
	if err := s.migrate(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening evidence store %s: %w", path, err)
	}
	if s.file, err = os.Stat(path); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("opening evidence store %s: %w", path, err)
	}
	return s, nil
}

// dsn builds the driver's data source name for path. The path is given as a
// file: URI, with the characters that URIs reserve escaped, so that a
// directory containing '?' or '#' is not mistaken for parameters. The
// parameters are applied to every connection the pool opens: auto_vacuum
// before anything else (it can only be set on a new database), WAL so that
// readers do not block the writer, a short busy timeout so that a lock held
// by another process fails fast, NORMAL synchronous (safe in WAL mode; a
// power cut loses at most the last commits), and BEGIN IMMEDIATE so that a
// transaction takes the write lock up front.
func dsn(path string) string {
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(filepath.ToSlash(path))
	return "file:" + escaped +
		fmt.Sprintf("?_busy_timeout=%d", busyTimeoutMillis) +
		"&_auto_vacuum=INCREMENTAL" +
		"&_journal_mode=WAL" +
		"&_synchronous=NORMAL" +
		"&_txlock=immediate"
}

// check runs PRAGMA quick_check so that a corrupt file is reported at Open
// instead of failing on some later write.
func (s *Store) check() error {
	rows, err := s.db.Query(`PRAGMA quick_check`)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return err
		}
		if line != "ok" && len(problems) < 5 {
			problems = append(problems, line)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("quick_check failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// migrate creates the schema in one write transaction. Taking the write lock
// here is also what makes Open notice a file that another process holds
// locked: in WAL mode reads (and so quick_check) still succeed.
func (s *Store) migrate() error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var version int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > schemaVersion {
		return fmt.Errorf("schema version %d is newer than this binary's %d", version, schemaVersion)
	}
	for _, stmt := range schema {
		if _, err := tx.Exec(stmt); err != nil {
			return err
		}
	}
	if version != schemaVersion {
		// PRAGMA takes no parameters; the value is a constant.
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Path returns the database file's path, so that the caller can log it or
// show it on the dashboard.
func (s *Store) Path() string {
	return s.path
}

// SaveBuckets writes bs in one transaction, replacing the Data of a bucket
// already stored for the same client and minute, so that the caller can
// save the current (still growing) minute again and again.
func (s *Store) SaveBuckets(bs []Bucket) error {
	return s.Apply(Write{Buckets: bs})
}

// LoadBuckets returns the buckets whose minute is at or after since (Unix
// seconds), ordered by minute then client, so that the caller can rebuild
// its windows in time order after a restart.
func (s *Store) LoadBuckets(since int64) ([]Bucket, error) {
	rows, err := s.db.Query(`SELECT client, minute, data FROM buckets
		WHERE minute >= ? ORDER BY minute, client`, since)
	if err != nil {
		return nil, fmt.Errorf("loading buckets: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var bs []Bucket
	for rows.Next() {
		var b Bucket
		if err := rows.Scan(&b.Client, &b.Minute, &b.Data); err != nil {
			return nil, fmt.Errorf("loading buckets: %w", err)
		}
		bs = append(bs, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading buckets: %w", err)
	}
	return bs, nil
}

// SaveSamples writes ss in one transaction, replacing the Time and Data of a
// sample already stored for the same client, kind and key, so that the
// caller can overwrite a ring slot or the latest sample for a code.
func (s *Store) SaveSamples(ss []Sample) error {
	return s.Apply(Write{Samples: ss})
}

// Apply writes w in one transaction, so that a flush is stored whole or not
// at all: first it deletes the buckets in w.Deletes, then it upserts
// w.Buckets and w.Samples as SaveBuckets and SaveSamples do (so a bucket in
// w.Buckets survives a delete of its range in the same Write). It refuses
// to write, with an error, once the database file has been deleted or
// replaced since Open, because SQLite would go on writing to the unlinked
// file and lose the data at Close.
func (s *Store) Apply(w Write) error {
	if len(w.Buckets) == 0 && len(w.Deletes) == 0 && len(w.Samples) == 0 && !w.ClearSamples {
		return nil
	}
	if err := s.checkFile(); err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	err := s.inTx(func(tx *sql.Tx) error {
		if err := deleteRanges(tx, w.Deletes); err != nil {
			return fmt.Errorf("deleting %d ranges: %w", len(w.Deletes), err)
		}
		if w.ClearSamples {
			if _, err := tx.Exec(`DELETE FROM samples`); err != nil {
				return fmt.Errorf("clearing samples: %w", err)
			}
		}
		if err := upsertBuckets(tx, w.Buckets); err != nil {
			return fmt.Errorf("saving %d buckets: %w", len(w.Buckets), err)
		}
		if err := upsertSamples(tx, w.Samples); err != nil {
			return fmt.Errorf("saving %d samples: %w", len(w.Samples), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	return nil
}

// deleteRanges deletes each range's buckets within tx.
func deleteRanges(tx *sql.Tx, rs []Range) error {
	if len(rs) == 0 {
		return nil
	}
	stmt, err := tx.Prepare(`DELETE FROM buckets WHERE client = ? AND minute >= ? AND minute < ?`)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	for _, r := range rs {
		if _, err := stmt.Exec(r.Client, r.From, r.To); err != nil {
			return err
		}
	}
	return nil
}

// upsertBuckets inserts or replaces bs within tx.
func upsertBuckets(tx *sql.Tx, bs []Bucket) error {
	if len(bs) == 0 {
		return nil
	}
	stmt, err := tx.Prepare(`INSERT INTO buckets (client, minute, data) VALUES (?, ?, ?)
		ON CONFLICT (minute, client) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	for _, b := range bs {
		if _, err := stmt.Exec(b.Client, b.Minute, nonNil(b.Data)); err != nil {
			return err
		}
	}
	return nil
}

// upsertSamples inserts or replaces ss within tx.
func upsertSamples(tx *sql.Tx, ss []Sample) error {
	if len(ss) == 0 {
		return nil
	}
	stmt, err := tx.Prepare(`INSERT INTO samples (client, kind, key, time, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (client, kind, key) DO UPDATE SET time = excluded.time, data = excluded.data`)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	for _, sm := range ss {
		if _, err := stmt.Exec(sm.Client, sm.Kind, sm.Key, sm.Time, nonNil(sm.Data)); err != nil {
			return err
		}
	}
	return nil
}

// LoadSamples returns the samples whose time is at or after since (Unix
// nanoseconds), ordered by time (then client, kind and key, so that the
// order is stable), so that the caller can restore them after a restart.
func (s *Store) LoadSamples(since int64) ([]Sample, error) {
	rows, err := s.db.Query(`SELECT client, kind, key, time, data FROM samples
		WHERE time >= ? ORDER BY time, client, kind, key`, since)
	if err != nil {
		return nil, fmt.Errorf("loading samples: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var ss []Sample
	for rows.Next() {
		var sm Sample
		if err := rows.Scan(&sm.Client, &sm.Kind, &sm.Key, &sm.Time, &sm.Data); err != nil {
			return nil, fmt.Errorf("loading samples: %w", err)
		}
		ss = append(ss, sm)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("loading samples: %w", err)
	}
	return ss, nil
}

// Prune deletes the buckets whose minute is before before (Unix seconds) and
// the samples taken before that minute, so that the store keeps only the
// retention window. Then, if Options.MaxBytes is set, it deletes the oldest
// minute's buckets, and the samples older than the next minute kept, one
// minute at a time until the file fits; if even the newest minute does not
// fit, everything is deleted and Prune returns without error, since an empty
// database is as small as the store can make it. Freed pages are returned to
// the file system (incremental vacuum, then a WAL checkpoint that truncates
// the write-ahead log). Like Apply, it fails once the file has been deleted
// or replaced since Open.
func (s *Store) Prune(before int64) error {
	if err := s.checkFile(); err != nil {
		return fmt.Errorf("pruning evidence store: %w", err)
	}
	err := s.inTx(func(tx *sql.Tx) error {
		if _, err := tx.Exec(`DELETE FROM buckets WHERE minute < ?`, before); err != nil {
			return err
		}
		_, err := tx.Exec(`DELETE FROM samples WHERE time < ?`, minuteToNanos(before))
		return err
	})
	if err != nil {
		return fmt.Errorf("pruning evidence store: %w", err)
	}
	if err := s.vacuum(); err != nil {
		return fmt.Errorf("pruning evidence store: %w", err)
	}
	if s.opts.MaxBytes > 0 {
		if err := s.fit(s.opts.MaxBytes); err != nil {
			return fmt.Errorf("pruning evidence store to %d bytes: %w", s.opts.MaxBytes, err)
		}
	}
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("pruning evidence store: %w", err)
	}
	return nil
}

// fit deletes the oldest minute (its buckets and the samples older than the
// next minute kept) and reclaims the freed pages until the file is at most
// maxBytes. Every round deletes at least one minute, or everything that is
// left, so the loop ends even when the cap is smaller than an empty database.
func (s *Store) fit(maxBytes int64) error {
	for {
		size, err := s.size()
		if err != nil {
			return err
		}
		if size <= maxBytes {
			return nil
		}
		var done bool
		err = s.inTx(func(tx *sql.Tx) error {
			var oldest sql.NullInt64
			if err := tx.QueryRow(`SELECT MIN(minute) FROM buckets`).Scan(&oldest); err != nil {
				return err
			}
			if !oldest.Valid {
				// No buckets left: only samples can go, and then there is
				// nothing more to delete.
				done = true
				_, err := tx.Exec(`DELETE FROM samples`)
				return err
			}
			var next sql.NullInt64
			if err := tx.QueryRow(`SELECT MIN(minute) FROM buckets WHERE minute > ?`, oldest.Int64).Scan(&next); err != nil {
				return err
			}
			if _, err := tx.Exec(`DELETE FROM buckets WHERE minute = ?`, oldest.Int64); err != nil {
				return err
			}
			if !next.Valid {
				_, err := tx.Exec(`DELETE FROM samples`)
				return err
			}
			_, err := tx.Exec(`DELETE FROM samples WHERE time < ?`, minuteToNanos(next.Int64))
			return err
		})
		if err != nil {
			return err
		}
		if err := s.vacuum(); err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// size reports the database's size as SQLite sees it (page_count times
// page_size), which is what the file shrinks to at the next checkpoint.
func (s *Store) size() (int64, error) {
	var pages, pageSize int64
	if err := s.db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		return 0, err
	}
	if err := s.db.QueryRow(`PRAGMA page_size`).Scan(&pageSize); err != nil {
		return 0, err
	}
	return pages * pageSize, nil
}

// vacuum moves free pages to the end of the file and truncates them, so that
// deleting rows actually shrinks the database (auto_vacuum is INCREMENTAL, so
// nothing is reclaimed until this runs).
func (s *Store) vacuum() error {
	_, err := s.db.Exec(`PRAGMA incremental_vacuum`)
	return err
}

// Close closes the database, so that the WAL is checkpointed and the file is
// left consistent. It is idempotent: later calls return the first call's
// result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// errReplaced reports that the path no longer names the file the store has
// open.
var errReplaced = errors.New("database file was replaced since the store was opened")

// checkFile reports an error when the database file has been deleted or
// replaced since Open, so that the caller learns that its writes would be
// lost instead of being told they succeeded.
func (s *Store) checkFile() error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	if !os.SameFile(fi, s.file) {
		return errReplaced
	}
	return nil
}

// inTx runs f in a write transaction and commits it, or rolls it back when f
// fails, so that a batch is stored whole or not at all. The rollback's own
// error is dropped: SQLite may already have rolled back (it does on
// SQLITE_FULL), and f's error is the one that explains what went wrong.
func (s *Store) inTx(f func(*sql.Tx) error) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// minuteToNanos converts a minute in Unix seconds to Unix nanoseconds,
// saturating instead of overflowing for times past the year 2262.
func minuteToNanos(minute int64) int64 {
	const nanos = 1_000_000_000
	switch {
	case minute > math.MaxInt64/nanos:
		return math.MaxInt64
	case minute < math.MinInt64/nanos:
		return math.MinInt64
	}
	return minute * nanos
}

// nonNil returns b, or an empty slice when b is nil, because the driver binds
// a nil slice as NULL and the data columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
