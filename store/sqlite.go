package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	// The driver registers itself as "sqlite" with database/sql.
	_ "modernc.org/sqlite"
)

// FileName is the name of the SQLite database inside its directory,
// exported so that operators and tests can find it.
const FileName = "evidence.db"

// busyTimeoutMillis bounds how long a statement waits for a lock held by
// another connection, so that opening fails instead of hanging on a file
// that another process holds.
const busyTimeoutMillis = 1000

// sqliteSchema is the version 2 layout, created in one transaction.
var sqliteSchema = []string{
	`CREATE TABLE IF NOT EXISTS envelope_proxy_rows (
		replica TEXT NOT NULL, client TEXT NOT NULL, start INTEGER NOT NULL, span INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (replica, client, start, span))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_rows_start ON envelope_proxy_rows (start)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_deltas (
		replica TEXT NOT NULL, seq INTEGER NOT NULL, client TEXT NOT NULL, start INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (replica, seq, client, start))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_deltas_start ON envelope_proxy_deltas (start)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_samples (
		replica TEXT NOT NULL, client TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, time INTEGER NOT NULL,
		seq INTEGER NOT NULL, data BLOB NOT NULL,
		PRIMARY KEY (replica, client, kind, key))`,
	`CREATE INDEX IF NOT EXISTS envelope_proxy_samples_time ON envelope_proxy_samples (time)`,
	`CREATE TABLE IF NOT EXISTS envelope_proxy_replicas (
		name TEXT PRIMARY KEY, started INTEGER NOT NULL, last_seen INTEGER NOT NULL, last_seq INTEGER NOT NULL,
		rolled_seq INTEGER NOT NULL DEFAULT 0, stopped INTEGER NOT NULL DEFAULT 0)`,
}

// SQLiteOptions configure an SQLite store.
type SQLiteOptions struct {
	// MaxBytes caps the file; Maintain deletes the oldest evidence until
	// it fits. 0 means no cap.
	MaxBytes int64
	// Replica names the opener: rows of a version 1 file, which had no
	// replicas, become its own.
	Replica string
}

// SQLite is an evidence store in an embedded SQLite file
// (modernc.org/sqlite, pure Go, so the binary stays static), for one
// replica. Every operation goes through one connection: the caller writes
// from one goroutine every few seconds and reads rarely.
type SQLite struct {
	db   *sql.DB
	path string
	opts SQLiteOptions
	// file is the database file as opened, so that writes notice it being
	// deleted or replaced underneath the store, which SQLite does not
	// report: it goes on writing to the unlinked file, and the data is lost
	// at Close.
	file os.FileInfo

	closeOnce sync.Once
	closeErr  error
}

// OpenSQLite opens dir/evidence.db, creating dir (0o750) and the database
// if they do not exist, and migrates a version 1 file. It fails, rather
// than hanging or panicking, when the file is corrupt, was written by a
// newer binary (ErrNewerSchema), or is locked by another process.
func OpenSQLite(dir string, opts SQLiteOptions) (*SQLite, error) {
	path := filepath.Join(dir, FileName)
	wrap := func(err error) error { return fmt.Errorf("opening evidence store %s: %w", path, err) }
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, wrap(err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, wrap(err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	s := &SQLite{db: db, path: path, opts: opts}
	for _, step := range []func() error{s.check, s.migrate} {
		if err := step(); err != nil {
			_ = db.Close()
			return nil, wrap(err)
		}
	}
	if s.file, err = os.Stat(path); err != nil {
		_ = db.Close()
		return nil, wrap(err)
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

// check runs PRAGMA quick_check so that a corrupt file is reported at open
// instead of failing on some later write.
func (s *SQLite) check() error {
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

// migrate creates the schema, or brings a version 1 file to version 2, in
// one write transaction. Taking the write lock here is also what makes
// opening notice a file that another process holds locked: in WAL mode
// reads (and so quick_check) still succeed. The version is kept in PRAGMA
// user_version.
func (s *SQLite) migrate() error {
	return s.inTx(context.Background(), func(tx *sql.Tx) error {
		var version int
		if err := tx.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
			return err
		}
		if version > SchemaVersion {
			return fmt.Errorf("%w: schema version %d, this binary's is %d", ErrNewerSchema, version, SchemaVersion)
		}
		if version == 1 {
			if _, err := tx.Exec(`ALTER TABLE samples RENAME TO samples_v1`); err != nil {
				return fmt.Errorf("migrating from version 1: %w", err)
			}
		}
		for _, stmt := range sqliteSchema {
			if _, err := tx.Exec(stmt); err != nil {
				return err
			}
		}
		if version == 1 {
			// Version 1 kept one row per client and minute or hour, its
			// span in the blob, and had no replicas: they become the
			// opener's, rolled rows as they are.
			for _, stmt := range []string{
				`INSERT INTO envelope_proxy_rows (replica, client, start, span, data)
					SELECT ?, client, minute, json_extract(data, '$.span'), data FROM buckets
					WHERE json_extract(data, '$.span') IN (60, 3600)`,
				`INSERT INTO envelope_proxy_samples (replica, client, kind, key, time, seq, data)
					SELECT ?, client, kind, key, time, 0, data FROM samples_v1`,
				`DROP TABLE buckets`,
				`DROP TABLE samples_v1`,
			} {
				args := []any{}
				if strings.Contains(stmt, "?") {
					args = append(args, s.opts.Replica)
				}
				if _, err := tx.Exec(stmt, args...); err != nil {
					return fmt.Errorf("migrating from version 1: %w", err)
				}
			}
		}
		if version != SchemaVersion {
			// PRAGMA takes no parameters; the value is a constant.
			if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, SchemaVersion)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Location returns the database file's path.
func (s *SQLite) Location() string { return s.path }

// Apply writes w in one transaction, whole or not at all. It refuses to
// write, with an error, once the database file has been deleted or replaced
// since it was opened, because SQLite would go on writing to the unlinked
// file and lose the data at Close.
func (s *SQLite) Apply(ctx context.Context, w Write) error {
	if err := s.checkFile(); err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		r := w.Replica
		var rolledSeq int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO envelope_proxy_replicas (name, started, last_seen, last_seq, stopped)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET started = excluded.started, last_seen = excluded.last_seen,
				last_seq = max(last_seq, excluded.last_seq), stopped = excluded.stopped
			RETURNING rolled_seq`,
			r.Name, r.Started, r.LastSeen, r.LastSeq, r.Stopped).Scan(&rolledSeq); err != nil {
			return fmt.Errorf("registering replica: %w", err)
		}
		deltas := notFolded(w.Deltas, rolledSeq)
		if err := execEach(ctx, tx, `INSERT INTO envelope_proxy_deltas (replica, seq, client, start, data) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`, len(deltas), func(i int) []any {
			d := deltas[i]
			return []any{r.Name, d.Seq, d.Client, d.Start, nonNil(d.Data)}
		}); err != nil {
			return fmt.Errorf("saving %d deltas: %w", len(deltas), err)
		}
		if w.ClearSamples {
			if _, err := tx.ExecContext(ctx, `DELETE FROM envelope_proxy_samples WHERE replica = ?`, r.Name); err != nil {
				return fmt.Errorf("clearing samples: %w", err)
			}
		}
		if err := execEach(ctx, tx, `INSERT INTO envelope_proxy_samples (replica, client, kind, key, time, seq, data) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (replica, client, kind, key) DO UPDATE SET time = excluded.time, seq = excluded.seq, data = excluded.data`,
			len(w.Samples), func(i int) []any {
				sm := w.Samples[i]
				return []any{r.Name, sm.Client, sm.Kind, sm.Key, sm.Time, sm.Seq, nonNil(sm.Data)}
			}); err != nil {
			return fmt.Errorf("saving %d samples: %w", len(w.Samples), err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing evidence store: %w", err)
	}
	return nil
}

// execEach runs one prepared statement n times, with args(i) the i-th
// time.
func execEach(ctx context.Context, tx *sql.Tx, query string, n int, args func(int) []any) error {
	if n == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	for i := range n {
		if _, err := stmt.ExecContext(ctx, args(i)...); err != nil {
			return err
		}
	}
	return nil
}

// Load reads everything since since in one transaction.
func (s *SQLite) Load(ctx context.Context, since int64) (*Snapshot, error) {
	snap := &Snapshot{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if snap.Replicas, err = sqliteReplicas(ctx, tx); err != nil {
			return err
		}
		if snap.Rolled, err = sqliteRows(ctx, tx, `SELECT replica, client, start, span, 0, data FROM envelope_proxy_rows
			WHERE start + span > ? ORDER BY start, replica, client`, since); err != nil {
			return err
		}
		if snap.Deltas, err = sqliteRows(ctx, tx, `SELECT replica, client, start, 60, seq, data FROM envelope_proxy_deltas
			WHERE start + 60 > ? ORDER BY replica, seq, client, start`, since); err != nil {
			return err
		}
		snap.Samples, err = sqliteSamples(ctx, tx, `SELECT replica, client, kind, key, time, seq, data FROM envelope_proxy_samples
			WHERE time >= ? ORDER BY time, replica, client, kind, key`, secondsToNanos(since))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading evidence: %w", err)
	}
	return snap, nil
}

// Changes reads what replicas other than self wrote after marks. One
// replica writes an SQLite file, so these are only the rows of the same
// file under other names (earlier runs under another replica name).
func (s *SQLite) Changes(ctx context.Context, self string, marks map[string]int64) (*Changes, error) {
	ch := &Changes{}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		if ch.Replicas, err = sqliteReplicas(ctx, tx); err != nil {
			return err
		}
		deltas, err := sqliteRows(ctx, tx, `SELECT replica, client, start, 60, seq, data FROM envelope_proxy_deltas
			WHERE replica != ? ORDER BY replica, seq, client, start`, self)
		if err != nil {
			return err
		}
		for _, d := range deltas {
			if d.Seq > marks[d.Replica] {
				ch.Deltas = append(ch.Deltas, d)
			}
		}
		samples, err := sqliteSamples(ctx, tx, `SELECT replica, client, kind, key, time, seq, data FROM envelope_proxy_samples
			WHERE replica != ? ORDER BY time, replica, client, kind, key`, self)
		for _, sm := range samples {
			if sm.Seq > marks[sm.Replica] {
				ch.Samples = append(ch.Samples, sm)
			}
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes: %w", err)
	}
	return ch, nil
}

// Rows reads one replica's rows and deltas of one client since since.
func (s *SQLite) Rows(ctx context.Context, replica, client string, since int64) ([]Row, error) {
	var out []Row
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rolled, err := sqliteRows(ctx, tx, `SELECT replica, client, start, span, 0, data FROM envelope_proxy_rows
			WHERE replica = ? AND client = ? AND start + span > ? ORDER BY start`, replica, client, since)
		if err != nil {
			return err
		}
		deltas, err := sqliteRows(ctx, tx, `SELECT replica, client, start, 60, seq, data FROM envelope_proxy_deltas
			WHERE replica = ? AND client = ? AND start + 60 > ? ORDER BY start, seq`, replica, client, since)
		out = append(rolled, deltas...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading replica %s: %w", replica, err)
	}
	return out, nil
}

// Maintain folds deltas into minutes and minutes into hours, enforces the
// retention and then the size cap. One replica uses an SQLite file, so it
// always runs.
func (s *SQLite) Maintain(ctx context.Context, m Maintenance) (bool, error) {
	if err := s.checkFile(); err != nil {
		return false, fmt.Errorf("maintaining evidence store: %w", err)
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		deltas, err := sqliteRows(ctx, tx, `SELECT replica, client, start, 60, seq, data FROM envelope_proxy_deltas
			WHERE start < ?`, m.MinutesBefore)
		if err != nil {
			return err
		}
		if err := s.foldInto(ctx, tx, Minute, deltas, m.Merge); err != nil {
			return err
		}
		for replica, seq := range maxSeqs(deltas) {
			if _, err := tx.ExecContext(ctx, `UPDATE envelope_proxy_replicas SET rolled_seq = max(rolled_seq, ?) WHERE name = ?`, seq, replica); err != nil {
				return err
			}
		}
		if err := execEach(ctx, tx, `DELETE FROM envelope_proxy_deltas WHERE replica = ? AND seq = ? AND client = ? AND start = ?`,
			len(deltas), func(i int) []any { d := deltas[i]; return []any{d.Replica, d.Seq, d.Client, d.Start} }); err != nil {
			return err
		}
		minutes, err := sqliteRows(ctx, tx, `SELECT replica, client, start, span, 0, data FROM envelope_proxy_rows
			WHERE span = 60 AND start < ?`, m.HoursBefore)
		if err != nil {
			return err
		}
		if err := s.foldInto(ctx, tx, Hour, minutes, m.Merge); err != nil {
			return err
		}
		if err := execEach(ctx, tx, `DELETE FROM envelope_proxy_rows WHERE replica = ? AND client = ? AND start = ? AND span = 60`,
			len(minutes), func(i int) []any { r := minutes[i]; return []any{r.Replica, r.Client, r.Start} }); err != nil {
			return err
		}
		return retain(ctx, tx, m.RetainAfter)
	})
	if err != nil {
		return false, fmt.Errorf("maintaining evidence store: %w", err)
	}
	if err := s.vacuum(); err != nil {
		return true, fmt.Errorf("maintaining evidence store: %w", err)
	}
	if s.opts.MaxBytes > 0 {
		if err := s.fit(ctx, s.opts.MaxBytes); err != nil {
			return true, fmt.Errorf("fitting evidence store in %d bytes: %w", s.opts.MaxBytes, err)
		}
	}
	if _, err := s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return true, fmt.Errorf("maintaining evidence store: %w", err)
	}
	return true, nil
}

// foldInto merges rows into the rolled rows of span stored under their
// keys, and writes the result.
func (s *SQLite) foldInto(ctx context.Context, tx *sql.Tx, span int64, rows []Row, merge func(int64, [][]byte) ([]byte, error)) error {
	if len(rows) == 0 {
		return nil
	}
	existing := map[rowKey][]byte{}
	for _, r := range rows {
		k := rowKey{r.Replica, r.Client, r.Start - r.Start%span}
		if _, seen := existing[k]; seen {
			continue
		}
		var data []byte
		err := tx.QueryRowContext(ctx, `SELECT data FROM envelope_proxy_rows WHERE replica = ? AND client = ? AND start = ? AND span = ?`,
			k.replica, k.client, k.start, span).Scan(&data)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			existing[k] = nil
		case err != nil:
			return err
		default:
			existing[k] = data
		}
	}
	for k, v := range existing {
		if v == nil {
			delete(existing, k)
		}
	}
	folded, err := fold(span, rows, existing, merge)
	if err != nil {
		return err
	}
	return execEach(ctx, tx, `INSERT INTO envelope_proxy_rows (replica, client, start, span, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (replica, client, start, span) DO UPDATE SET data = excluded.data`, len(folded), func(i int) []any {
		r := folded[i]
		return []any{r.Replica, r.Client, r.Start, r.Span, nonNil(r.Data)}
	})
}

// retain deletes what is older than retainAfter (Unix seconds): rows and
// deltas, samples, and the registrations of replicas that have written
// nothing since.
func retain(ctx context.Context, tx *sql.Tx, retainAfter int64) error {
	for _, q := range []struct {
		query string
		arg   int64
	}{
		{`DELETE FROM envelope_proxy_rows WHERE start + span <= ?`, retainAfter},
		{`DELETE FROM envelope_proxy_deltas WHERE start + 60 <= ?`, retainAfter},
		{`DELETE FROM envelope_proxy_samples WHERE time < ?`, secondsToNanos(retainAfter)},
		{`DELETE FROM envelope_proxy_replicas WHERE last_seen < ?`, secondsToMillis(retainAfter)},
	} {
		if _, err := tx.ExecContext(ctx, q.query, q.arg); err != nil {
			return err
		}
	}
	return nil
}

// fit deletes the oldest evidence, a start time at a time, and reclaims the
// freed pages until the file is at most maxBytes. Every round deletes at
// least one start time, or everything that is left, so the loop ends even
// when the cap is smaller than an empty database.
func (s *SQLite) fit(ctx context.Context, maxBytes int64) error {
	for {
		size, err := s.size()
		if err != nil {
			return err
		}
		if size <= maxBytes {
			return nil
		}
		var done bool
		err = s.inTx(ctx, func(tx *sql.Tx) error {
			var oldest sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(start) FROM (SELECT start FROM envelope_proxy_rows
				UNION ALL SELECT start FROM envelope_proxy_deltas)`).Scan(&oldest); err != nil {
				return err
			}
			if !oldest.Valid {
				// No rows left: only samples can go, and then there is
				// nothing more to delete.
				done = true
				_, err := tx.ExecContext(ctx, `DELETE FROM envelope_proxy_samples`)
				return err
			}
			// The samples go up to the next start kept, as in version 1:
			// going up to an hour past the oldest deleted the samples of
			// up to 59 minutes that were kept.
			var next sql.NullInt64
			if err := tx.QueryRowContext(ctx, `SELECT min(start) FROM (SELECT start FROM envelope_proxy_rows WHERE start > ?
				UNION ALL SELECT start FROM envelope_proxy_deltas WHERE start > ?)`, oldest.Int64, oldest.Int64).Scan(&next); err != nil {
				return err
			}
			for _, q := range []string{
				`DELETE FROM envelope_proxy_rows WHERE start = ?`,
				`DELETE FROM envelope_proxy_deltas WHERE start = ?`,
			} {
				if _, err := tx.ExecContext(ctx, q, oldest.Int64); err != nil {
					return err
				}
			}
			if !next.Valid {
				_, err := tx.ExecContext(ctx, `DELETE FROM envelope_proxy_samples`)
				return err
			}
			_, err := tx.ExecContext(ctx, `DELETE FROM envelope_proxy_samples WHERE time < ?`, secondsToNanos(next.Int64))
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
func (s *SQLite) size() (int64, error) {
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
func (s *SQLite) vacuum() error {
	_, err := s.db.Exec(`PRAGMA incremental_vacuum`)
	return err
}

// Close closes the database, so that the WAL is checkpointed and the file is
// left consistent. It is idempotent: later calls return the first call's
// result.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// errReplaced reports that the path no longer names the file the store has
// open.
var errReplaced = errors.New("database file was replaced since the store was opened")

// checkFile reports an error when the database file has been deleted or
// replaced since it was opened, so that the caller learns that its writes
// would be lost instead of being told they succeeded.
func (s *SQLite) checkFile() error {
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
func (s *SQLite) inTx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %v", ErrUncertain, err)
	}
	return nil
}

// sqliteReplicas reads every registration.
func sqliteReplicas(ctx context.Context, tx *sql.Tx) ([]Replica, error) {
	return sqliteQuery(ctx, tx, scanReplica, `SELECT name, started, last_seen, last_seq, rolled_seq, stopped FROM envelope_proxy_replicas ORDER BY name`)
}

// sqliteRows reads rows of (replica, client, start, span, seq, data).
func sqliteRows(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]Row, error) {
	return sqliteQuery(ctx, tx, scanRow, query, args...)
}

// sqliteSamples reads rows of (replica, client, kind, key, time, seq, data).
func sqliteSamples(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]SampleRow, error) {
	return sqliteQuery(ctx, tx, scanSample, query, args...)
}

// sqliteQuery runs query and reads every row of its result with scan.
func sqliteQuery[T any](ctx context.Context, tx *sql.Tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
