package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"

	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The advisory locks the fleet shares: one serialises schema migrations at
// start, so that replicas starting together on an empty database do not
// race to create it; one elects the replica that runs the maintenance.
var (
	migrateLock  = advisoryKey("envelope-proxy/evidence/migrate")
	maintainLock = advisoryKey("envelope-proxy/evidence/maintain")
)

func advisoryKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// postgresSchema is the version 2 layout, created under migrateLock.
var postgresSchema = []string{
	`CREATE TABLE IF NOT EXISTS envelope_proxy_rows (
		replica text NOT NULL, client text NOT NULL, start bigint NOT NULL, span bigint NOT NULL, data bytea NOT NULL,
		PRIMARY KEY (replica, client, start, span))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_rows_start ON envelope_proxy_rows (start)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_deltas (
		replica text NOT NULL, seq bigint NOT NULL, client text NOT NULL, start bigint NOT NULL, data bytea NOT NULL,
		PRIMARY KEY (replica, seq, client, start))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_deltas_start ON envelope_proxy_deltas (start)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_samples (
		replica text NOT NULL, client text NOT NULL, kind text NOT NULL, key text NOT NULL, time bigint NOT NULL,
		seq bigint NOT NULL, data bytea NOT NULL,
		PRIMARY KEY (replica, client, kind, key))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_samples_seq ON envelope_proxy_samples (replica, seq)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_replicas (
		name text PRIMARY KEY, started bigint NOT NULL, last_seen bigint NOT NULL, last_seq bigint NOT NULL,
		rolled_seq bigint NOT NULL DEFAULT 0, stopped boolean NOT NULL DEFAULT false)`,
}

// Postgres is an evidence store in a PostgreSQL database that every replica
// of a fleet shares, through a pgx connection pool.
type Postgres struct {
	pool      *pgxpool.Pool
	location  string
	closeOnce sync.Once
}

// OpenPostgres connects to the database at rawURL (a postgres:// URL or a
// key=value connection string; PG* environment variables such as
// PGPASSWORD fill in what it leaves out, as libpq does) and creates or
// checks its schema under an advisory lock. It fails with ErrNewerSchema
// for a database written by a newer binary that this one cannot safely
// use. The error never holds the password.
func OpenPostgres(ctx context.Context, rawURL string) (*Postgres, error) {
	location := redact.URLPassword(rawURL)
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("opening evidence store %s: the connection string does not parse", location)
	}
	cfg.MaxConns = 4
	cfg.MinConns = 0
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening evidence store %s: %w", location, err)
	}
	p := &Postgres{pool: pool, location: location}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("opening evidence store %s: %w", location, err)
	}
	return p, nil
}

// migrate creates the schema, or checks that the one there is usable, while
// holding migrateLock: replicas that start together wait for the first.
func (p *Postgres) migrate(ctx context.Context) error {
	conn, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return err
	}
	defer func() {
		// A fresh context: the caller's may have run out, and the lock
		// must not outlive this migration on a pooled connection.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrateLock)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS envelope_proxy_schema (
		id int PRIMARY KEY CHECK (id = 1), version int NOT NULL, compatible_from int NOT NULL)`); err != nil {
		return err
	}
	var version, compatible int
	err = conn.QueryRow(ctx, `SELECT version, compatible_from FROM envelope_proxy_schema WHERE id = 1`).Scan(&version, &compatible)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return err
	case version > SchemaVersion && compatible > SchemaVersion:
		return fmt.Errorf("%w: schema version %d needs version %d or later, this binary's is %d", ErrNewerSchema, version, compatible, SchemaVersion)
	case version >= SchemaVersion:
		return nil
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	for _, stmt := range postgresSchema {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO envelope_proxy_schema (id, version, compatible_from) VALUES (1, $1, $2)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, compatible_from = excluded.compatible_from`,
		SchemaVersion, CompatibleFrom); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Location returns the database URL without its password.
func (p *Postgres) Location() string { return p.location }

// Apply writes w in one transaction, whole or not at all.
func (p *Postgres) Apply(ctx context.Context, w Write) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	err = func() error {
		r := w.Replica
		// The registration's row lock is held from here to the commit, and
		// the maintenance takes it before deleting the deltas it folded:
		// rolled_seq as returned covers every fold committed.
		var rolledSeq int64
		if err := tx.QueryRow(ctx, `INSERT INTO envelope_proxy_replicas AS r (name, started, last_seen, last_seq, stopped)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (name) DO UPDATE SET started = excluded.started, last_seen = excluded.last_seen,
				last_seq = greatest(r.last_seq, excluded.last_seq), stopped = excluded.stopped
			RETURNING r.rolled_seq`,
			r.Name, r.Started, r.LastSeen, r.LastSeq, r.Stopped).Scan(&rolledSeq); err != nil {
			return fmt.Errorf("registering replica: %w", err)
		}
		if deltas := notFolded(w.Deltas, rolledSeq); len(deltas) > 0 {
			n := len(deltas)
			seqs, clients, starts, datas := make([]int64, n), make([]string, n), make([]int64, n), make([][]byte, n)
			for i, d := range deltas {
				seqs[i], clients[i], starts[i], datas[i] = d.Seq, d.Client, d.Start, nonNil(d.Data)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO envelope_proxy_deltas (replica, seq, client, start, data)
				SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bytea[])
				ON CONFLICT DO NOTHING`, r.Name, seqs, clients, starts, datas); err != nil {
				return fmt.Errorf("saving %d deltas: %w", n, err)
			}
		}
		if w.ClearSamples {
			if _, err := tx.Exec(ctx, `DELETE FROM envelope_proxy_samples WHERE replica = $1`, r.Name); err != nil {
				return fmt.Errorf("clearing samples: %w", err)
			}
		}
		if samples := lastSamples(w.Samples); len(samples) > 0 {
			n := len(samples)
			clients, kinds, keys := make([]string, n), make([]string, n), make([]string, n)
			times, seqs, datas := make([]int64, n), make([]int64, n), make([][]byte, n)
			for i, sm := range samples {
				clients[i], kinds[i], keys[i], times[i], seqs[i], datas[i] = sm.Client, sm.Kind, sm.Key, sm.Time, sm.Seq, nonNil(sm.Data)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO envelope_proxy_samples (replica, client, kind, key, time, seq, data)
				SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[])
				ON CONFLICT (replica, client, kind, key) DO UPDATE SET time = excluded.time, seq = excluded.seq, data = excluded.data`,
				r.Name, clients, kinds, keys, times, seqs, datas); err != nil {
				return fmt.Errorf("saving %d samples: %w", n, err)
			}
		}
		return nil
	}()
	if err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("writing evidence store: %w: %v", ErrUncertain, err)
	}
	return nil
}

// lastSamples returns samples with each key (client, kind, key) once, at
// its last: one INSERT ... ON CONFLICT DO UPDATE cannot update a row twice
// and would fail the whole batch, where SQLite, upserting one by one, keeps
// the last.
func lastSamples(samples []SampleRow) []SampleRow {
	type key struct{ client, kind, key string }
	last := make(map[key]int, len(samples))
	for i, sm := range samples {
		last[key{sm.Client, sm.Kind, sm.Key}] = i
	}
	if len(last) == len(samples) {
		return samples
	}
	out := make([]SampleRow, 0, len(last))
	for i, sm := range samples {
		if last[key{sm.Client, sm.Kind, sm.Key}] == i {
			out = append(out, sm)
		}
	}
	return out
}

// readOnly runs f in a repeatable-read, read-only transaction: one
// snapshot of the database.
func (p *Postgres) readOnly(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, f)
}

// Load reads everything since since in one snapshot.
func (p *Postgres) Load(ctx context.Context, since int64) (*Snapshot, error) {
	snap := &Snapshot{}
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if snap.Replicas, err = pgReplicas(ctx, tx); err != nil {
			return err
		}
		if snap.Rolled, err = pgRows(ctx, tx, `SELECT replica, client, start, span, 0::bigint, data FROM envelope_proxy_rows
			WHERE start + span > $1 ORDER BY start, replica, client`, since); err != nil {
			return err
		}
		if snap.Deltas, err = pgRows(ctx, tx, `SELECT replica, client, start, 60::bigint, seq, data FROM envelope_proxy_deltas
			WHERE start + 60 > $1 ORDER BY replica, seq, client, start`, since); err != nil {
			return err
		}
		snap.Samples, err = pgSamples(ctx, tx, `SELECT replica, client, kind, key, time, seq, data FROM envelope_proxy_samples
			WHERE time >= $1 ORDER BY time, replica, client, kind, key`, secondsToNanos(since))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading evidence: %w", err)
	}
	return snap, nil
}

// Changes reads, in one snapshot, every registration and what replicas
// other than self wrote after marks.
func (p *Postgres) Changes(ctx context.Context, self string, marks map[string]int64) (*Changes, error) {
	names, seqs := make([]string, 0, len(marks)), make([]int64, 0, len(marks))
	for name, seq := range marks {
		names, seqs = append(names, name), append(seqs, seq)
	}
	ch := &Changes{}
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var err error
		if ch.Replicas, err = pgReplicas(ctx, tx); err != nil {
			return err
		}
		const marked = ` LEFT JOIN unnest($2::text[], $3::bigint[]) AS m(name, mark) ON t.replica = m.name
			WHERE t.replica <> $1 AND t.seq > coalesce(m.mark, 0)`
		if ch.Deltas, err = pgRows(ctx, tx, `SELECT t.replica, t.client, t.start, 60::bigint, t.seq, t.data FROM envelope_proxy_deltas t`+
			marked+` ORDER BY t.replica, t.seq, t.client, t.start`, self, names, seqs); err != nil {
			return err
		}
		ch.Samples, err = pgSamples(ctx, tx, `SELECT t.replica, t.client, t.kind, t.key, t.time, t.seq, t.data FROM envelope_proxy_samples t`+
			marked+` ORDER BY t.time, t.replica, t.client, t.kind, t.key`, self, names, seqs)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	return ch, nil
}

// Rows reads one replica's rows and deltas of one client since since.
func (p *Postgres) Rows(ctx context.Context, replica, client string, since int64) ([]Row, error) {
	var out []Row
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		rolled, err := pgRows(ctx, tx, `SELECT replica, client, start, span, 0::bigint, data FROM envelope_proxy_rows
			WHERE replica = $1 AND client = $2 AND start + span > $3 ORDER BY start`, replica, client, since)
		if err != nil {
			return err
		}
		deltas, err := pgRows(ctx, tx, `SELECT replica, client, start, 60::bigint, seq, data FROM envelope_proxy_deltas
			WHERE replica = $1 AND client = $2 AND start + 60 > $3 ORDER BY start, seq`, replica, client, since)
		out = append(rolled, deltas...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading replica %s: %w", replica, err)
	}
	return out, nil
}

// Maintain runs the fleet's housekeeping in one transaction if it can take
// maintainLock, and reports whether it did: while one replica runs it, the
// others skip their turn rather than wait.
func (p *Postgres) Maintain(ctx context.Context, m Maintenance) (bool, error) {
	ran := false
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, maintainLock).Scan(&ran); err != nil || !ran {
			return err
		}
		deltas, err := pgRows(ctx, tx, `SELECT replica, client, start, 60::bigint, seq, data FROM envelope_proxy_deltas
			WHERE start < $1 FOR UPDATE`, m.MinutesBefore)
		if err != nil {
			return err
		}
		if err := p.foldInto(ctx, tx, Minute, deltas, m.Merge); err != nil {
			return err
		}
		for replica, seq := range maxSeqs(deltas) {
			if _, err := tx.Exec(ctx, `UPDATE envelope_proxy_replicas SET rolled_seq = greatest(rolled_seq, $1) WHERE name = $2`, seq, replica); err != nil {
				return err
			}
		}
		if err := pgDelete(ctx, tx, `DELETE FROM envelope_proxy_deltas t USING unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[]) AS k(replica, seq, client, start)
			WHERE t.replica = k.replica AND t.seq = k.seq AND t.client = k.client AND t.start = k.start`, deltas, true); err != nil {
			return err
		}
		minutes, err := pgRows(ctx, tx, `SELECT replica, client, start, span, 0::bigint, data FROM envelope_proxy_rows
			WHERE span = 60 AND start < $1 FOR UPDATE`, m.HoursBefore)
		if err != nil {
			return err
		}
		if err := p.foldInto(ctx, tx, Hour, minutes, m.Merge); err != nil {
			return err
		}
		if err := pgDelete(ctx, tx, `DELETE FROM envelope_proxy_rows t USING unnest($1::text[], $2::text[], $3::bigint[]) AS k(replica, client, start)
			WHERE t.replica = k.replica AND t.client = k.client AND t.start = k.start AND t.span = 60`, minutes, false); err != nil {
			return err
		}
		for _, q := range []struct {
			query string
			arg   int64
		}{
			{`DELETE FROM envelope_proxy_rows WHERE start + span <= $1`, m.RetainAfter},
			{`DELETE FROM envelope_proxy_deltas WHERE start + 60 <= $1`, m.RetainAfter},
			{`DELETE FROM envelope_proxy_samples WHERE time < $1`, secondsToNanos(m.RetainAfter)},
			{`DELETE FROM envelope_proxy_replicas WHERE last_seen < $1`, secondsToMillis(m.RetainAfter)},
		} {
			if _, err := tx.Exec(ctx, q.query, q.arg); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("maintaining evidence store: %w", err)
	}
	return ran, nil
}

// foldInto merges rows into the rolled rows of span stored under their
// keys, and writes the result.
func (p *Postgres) foldInto(ctx context.Context, tx pgx.Tx, span int64, rows []Row, merge func(int64, [][]byte) ([]byte, error)) error {
	if len(rows) == 0 {
		return nil
	}
	var replicas, clients []string
	var starts []int64
	seen := map[rowKey]bool{}
	for _, r := range rows {
		k := rowKey{r.Replica, r.Client, r.Start - r.Start%span}
		if !seen[k] {
			seen[k] = true
			replicas, clients, starts = append(replicas, k.replica), append(clients, k.client), append(starts, k.start)
		}
	}
	old, err := pgRows(ctx, tx, `SELECT t.replica, t.client, t.start, t.span, 0::bigint, t.data FROM envelope_proxy_rows t
		JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS k(replica, client, start)
		ON t.replica = k.replica AND t.client = k.client AND t.start = k.start
		WHERE t.span = $4 FOR UPDATE OF t`, replicas, clients, starts, span)
	if err != nil {
		return err
	}
	existing := make(map[rowKey][]byte, len(old))
	for _, r := range old {
		existing[rowKey{r.Replica, r.Client, r.Start}] = r.Data
	}
	folded, err := fold(span, rows, existing, merge)
	if err != nil {
		return err
	}
	n := len(folded)
	replicas, clients, starts = make([]string, n), make([]string, n), make([]int64, n)
	datas := make([][]byte, n)
	for i, r := range folded {
		replicas[i], clients[i], starts[i], datas[i] = r.Replica, r.Client, r.Start, nonNil(r.Data)
	}
	_, err = tx.Exec(ctx, `INSERT INTO envelope_proxy_rows (replica, client, start, span, data)
		SELECT k.replica, k.client, k.start, $5, k.data FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[]) AS k(replica, client, start, data)
		ON CONFLICT (replica, client, start, span) DO UPDATE SET data = excluded.data`, replicas, clients, starts, datas, span)
	return err
}

// pgDelete deletes rows by key: (replica, seq, client, start) for deltas
// when withSeq is set, else (replica, client, start).
func pgDelete(ctx context.Context, tx pgx.Tx, query string, rows []Row, withSeq bool) error {
	if len(rows) == 0 {
		return nil
	}
	n := len(rows)
	replicas, clients, starts, seqs := make([]string, n), make([]string, n), make([]int64, n), make([]int64, n)
	for i, r := range rows {
		replicas[i], clients[i], starts[i], seqs[i] = r.Replica, r.Client, r.Start, r.Seq
	}
	var err error
	if withSeq {
		_, err = tx.Exec(ctx, query, replicas, seqs, clients, starts)
	} else {
		_, err = tx.Exec(ctx, query, replicas, clients, starts)
	}
	return err
}

// Close closes the pool. It is idempotent.
func (p *Postgres) Close() error {
	p.closeOnce.Do(p.pool.Close)
	return nil
}

// pgReplicas reads every registration.
func pgReplicas(ctx context.Context, tx pgx.Tx) ([]Replica, error) {
	return pgQuery(ctx, tx, scanReplica, `SELECT name, started, last_seen, last_seq, rolled_seq, stopped FROM envelope_proxy_replicas ORDER BY name`)
}

// pgRows reads rows of (replica, client, start, span, seq, data).
func pgRows(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]Row, error) {
	return pgQuery(ctx, tx, scanRow, query, args...)
}

// pgSamples reads rows of (replica, client, kind, key, time, seq, data).
func pgSamples(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]SampleRow, error) {
	return pgQuery(ctx, tx, scanSample, query, args...)
}

// pgQuery runs query and reads every row of its result with scan.
func pgQuery[T any](ctx context.Context, tx pgx.Tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}
