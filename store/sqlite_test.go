package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// writeFile writes data to path or fails the test.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("WriteFile: got error %q; want nil", err)
	}
}

// rawOpen opens path with the driver directly, as another program would.
func rawOpen(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: got error %q; want nil", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// execAll runs statements on db or fails the test.
func execAll(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: got error %q; want nil", q, err)
		}
	}
}

// queryString returns the single value query returns, as text.
func queryString(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(query).Scan(&v); err != nil {
		t.Fatalf("%s: got error %q; want nil", query, err)
	}
	return v
}

// random returns n bytes of rng.
func random(rng interface{ Uint32() uint32 }, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSQLiteOpenConfiguresDatabase(t *testing.T) {
	s := openSQLite(t, t.TempDir(), SQLiteOptions{})
	cases := []struct {
		pragma string
		want   string
	}{
		{pragma: "journal_mode", want: "wal"},
		{pragma: "auto_vacuum", want: "2"},
		{pragma: "user_version", want: fmt.Sprint(SchemaVersion)},
		{pragma: "busy_timeout", want: fmt.Sprint(busyTimeoutMillis)},
		{pragma: "synchronous", want: "1"},
	}
	for _, tc := range cases {
		t.Run(tc.pragma, func(t *testing.T) {
			if got := queryString(t, s.db, "PRAGMA "+tc.pragma); got != tc.want {
				t.Errorf("PRAGMA %s: got %q; want %q", tc.pragma, got, tc.want)
			}
		})
	}
}

func TestSQLiteOpenOddDirectory(t *testing.T) {
	cases := []struct {
		name string
		dir  string
		// relative opens dir relative to a temporary working directory.
		relative bool
	}{
		{name: "nested directories are created", dir: "a/b/c"},
		{name: "URI characters in the path", dir: "q?x=1#frag%20 dir"},
		{name: "relative path", dir: "state", relative: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), tc.dir)
			if tc.relative {
				t.Chdir(filepath.Dir(dir))
				dir = tc.dir
			}
			s := openSQLite(t, dir, SQLiteOptions{})
			runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1})})
			if got, want := s.Location(), filepath.Join(dir, FileName); got != want {
				t.Errorf("Location: got %q; want %q", got, want)
			}
			if _, err := os.Stat(filepath.Join(dir, FileName)); err != nil {
				t.Errorf("database file: got error %q; want it at %q", err, filepath.Join(dir, FileName))
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatalf("Stat: got error %q; want nil", err)
			}
			if got, want := info.Mode().Perm(), os.FileMode(0o750); got&^want != 0 {
				t.Errorf("directory mode: got %q; want at most %q", got, want)
			}
		})
	}
}

func TestSQLiteReopenKeepsData(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{
			name: "registrations rolled rows deltas and samples",
			steps: []step{
				Write{
					Replica: Replica{Name: "a", Started: 1, LastSeen: 2, LastSeq: 1, Stopped: true},
					Deltas:  []Row{{Client: "x", Start: at(0), Seq: 1, Data: []byte("1")}, {Client: "x", Start: at(5), Seq: 1, Data: []byte("2")}},
					Samples: []SampleRow{{Client: "x", Kind: "mismatch", Key: "0", Time: 60e9, Seq: 1, Data: []byte("s")}},
				},
				Maintenance{MinutesBefore: at(1)},
			},
		},
		{name: "nothing saved"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := OpenSQLite(dir, SQLiteOptions{Replica: "r1"})
			if err != nil {
				t.Fatalf("OpenSQLite: got error %q; want nil", err)
			}
			runSteps(t, s, tc.steps)
			before := load(t, s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: got error %q; want nil", err)
			}
			s = openSQLite(t, dir, SQLiteOptions{Replica: "r2"})
			if got, want := s.Location(), filepath.Join(dir, FileName); got != want {
				t.Errorf("Location: got %q; want %q", got, want)
			}
			checkSnapshot(t, "Load after reopening", load(t, s), want{
				replicas: replicasString(before.Replicas),
				rolled:   rowsString(before.Rolled),
				deltas:   rowsString(before.Deltas),
				samples:  samplesString(before.Samples),
			})
		})
	}
}

func TestSQLiteOpenRejectsBadFile(t *testing.T) {
	rng := newRand(3)
	cases := []struct {
		name    string
		prepare func(t *testing.T, dir string)
		// wantIs is an error the open's must wrap, if any.
		wantIs error
	}{
		{
			name: "random bytes",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, FileName), random(rng, 8<<10))
			},
		},
		{
			name: "SQLite header then garbage",
			prepare: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, FileName), append([]byte("SQLite format 3\x00"), random(rng, 8<<10)...))
			},
		},
		{
			name: "valid header with 4 KiB pages then garbage",
			prepare: func(t *testing.T, dir string) {
				header := make([]byte, 100)
				copy(header, "SQLite format 3\x00")
				header[16], header[17] = 0x10, 0x00 // page size 4096
				header[18], header[19] = 1, 1       // legacy journal
				header[21], header[22], header[23] = 64, 32, 32
				header[31] = 4 // 4 pages
				writeFile(t, filepath.Join(dir, FileName), append(header, random(rng, 4*4096-100)...))
			},
		},
		{
			name: "valid database with corrupted pages",
			prepare: func(t *testing.T, dir string) {
				s, err := OpenSQLite(dir, SQLiteOptions{})
				if err != nil {
					t.Fatalf("OpenSQLite: got error %q; want nil", err)
				}
				w := batch("a", 1)
				for m := range 100 {
					w.Deltas = append(w.Deltas, Row{Client: "x", Start: at(m), Seq: 1, Data: random(rng, 1000)})
				}
				if err := s.Apply(context.Background(), w); err != nil {
					t.Fatalf("Apply: got error %q; want nil", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
				path := filepath.Join(dir, FileName)
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("ReadFile: got error %q; want nil", err)
				}
				// Keep page 1 (the header and schema), trash the rest.
				copy(data[4096:], random(rng, len(data)-4096))
				writeFile(t, path, data)
			},
		},
		{
			name: "newer schema version",
			prepare: func(t *testing.T, dir string) {
				execAll(t, rawOpen(t, filepath.Join(dir, FileName)), fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+1))
			},
			wantIs: ErrNewerSchema,
		},
		{
			name: "newer schema version over a store of this one",
			prepare: func(t *testing.T, dir string) {
				s, err := OpenSQLite(dir, SQLiteOptions{})
				if err != nil {
					t.Fatalf("OpenSQLite: got error %q; want nil", err)
				}
				_ = s.Close()
				execAll(t, rawOpen(t, filepath.Join(dir, FileName)), fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+10))
			},
			wantIs: ErrNewerSchema,
		},
		{
			name: "database path is a directory",
			prepare: func(t *testing.T, dir string) {
				if err := os.Mkdir(filepath.Join(dir, FileName), 0o750); err != nil {
					t.Fatalf("Mkdir: got error %q; want nil", err)
				}
			},
		},
		{
			name: "store directory is a file",
			prepare: func(t *testing.T, dir string) {
				if err := os.Remove(dir); err != nil {
					t.Fatalf("Remove: got error %q; want nil", err)
				}
				writeFile(t, dir, []byte("not a directory"))
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.prepare(t, dir)
			s, err := OpenSQLite(dir, SQLiteOptions{})
			if err == nil {
				_ = s.Close()
				t.Fatalf("OpenSQLite: got nil error; want one")
			}
			if want := "opening evidence store " + filepath.Join(dir, FileName) + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("OpenSQLite error: got %q; want prefix %q", err, want)
			}
			if errors.Unwrap(err) == nil {
				t.Errorf("OpenSQLite error: got %q, which wraps nothing; want it to wrap the cause", err)
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("OpenSQLite error: got %q; want it to wrap %q", err, tc.wantIs)
			}
			t.Logf("OpenSQLite: %v", err)
		})
	}
}

// TestSQLiteNewerSchemaLeftAlone checks that a refused file is not
// changed: the newer binary can still use it.
func TestSQLiteNewerSchemaLeftAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	execAll(t, rawOpen(t, path), "CREATE TABLE newer (v TEXT)", "INSERT INTO newer VALUES ('kept')", "PRAGMA user_version = 3")
	if _, err := OpenSQLite(dir, SQLiteOptions{Replica: "r1"}); !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("OpenSQLite: got %v; want an error wrapping %q", err, ErrNewerSchema)
	}
	db := rawOpen(t, path)
	if got := queryString(t, db, "PRAGMA user_version"); got != "3" {
		t.Errorf("user_version: got %q; want %q", got, "3")
	}
	if got := queryString(t, db, "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master ORDER BY name)"); got != "newer" {
		t.Errorf("tables: got %q; want %q", got, "newer")
	}
}

func TestSQLiteOpenLockedFile(t *testing.T) {
	cases := []struct {
		name string
		// existing creates the store before locking, so the file is
		// already in WAL mode.
		existing bool
	}{
		{name: "new file locked", existing: false},
		{name: "existing store locked", existing: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if tc.existing {
				s, err := OpenSQLite(dir, SQLiteOptions{})
				if err != nil {
					t.Fatalf("OpenSQLite: got error %q; want nil", err)
				}
				if err := s.Apply(context.Background(), batch("a", 1, d{"x", at(0), 1})); err != nil {
					t.Fatalf("Apply: got error %q; want nil", err)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
			}
			db := rawOpen(t, path)
			ctx := context.Background()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatalf("Conn: got error %q; want nil", err)
			}
			defer func() { _ = conn.Close() }()
			if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
				t.Fatalf("BEGIN EXCLUSIVE: got error %q; want nil", err)
			}
			defer func() { _, _ = conn.ExecContext(ctx, "ROLLBACK") }()

			// The open (or, failing that, the first write) must give up
			// on its own; the wait's bound only keeps a regression from
			// hanging the test run.
			result := make(chan error, 1)
			go func() {
				s, err := OpenSQLite(dir, SQLiteOptions{})
				if err != nil {
					result <- err
					return
				}
				defer func() { _ = s.Close() }()
				result <- s.Apply(context.Background(), batch("b", 1, d{"x", at(0), 1}))
			}()
			err = await.Receive(t, "OpenSQLite and Apply on a locked file to give up", result)
			if err == nil {
				t.Fatalf("OpenSQLite and Apply on a locked file: got nil error; want one")
			}
			t.Logf("locked: %v", err)
		})
	}
}

func TestSQLiteWriteErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, s *SQLite)
		// wantIs is an error the failed writes must wrap, if any.
		wantIs error
		// recovers is set when the maintenance can go on, and frees room
		// for the refused write; else it fails too.
		recovers bool
	}{
		{
			name: "database full",
			setup: func(t *testing.T, s *SQLite) {
				// max_page_count stands in for a full disk: SQLite
				// reports SQLITE_FULL either way.
				pages := queryString(t, s.db, "PRAGMA page_count")
				execAll(t, s.db, "PRAGMA max_page_count = "+pages)
			},
			recovers: true,
		},
		{
			name: "file deleted",
			setup: func(t *testing.T, s *SQLite) {
				if err := os.Remove(s.Location()); err != nil {
					t.Fatalf("Remove: got error %q; want nil", err)
				}
			},
			wantIs: fs.ErrNotExist,
		},
		{
			name: "file replaced",
			setup: func(t *testing.T, s *SQLite) {
				other := s.Location() + ".other"
				writeFile(t, other, nil)
				if err := os.Rename(other, s.Location()); err != nil {
					t.Fatalf("Rename: got error %q; want nil", err)
				}
			},
			wantIs: errReplaced,
		},
		{
			name: "closed store",
			setup: func(t *testing.T, s *SQLite) {
				if err := s.Close(); err != nil {
					t.Fatalf("Close: got error %q; want nil", err)
				}
			},
		},
	}
	keep := Write{
		Replica: Replica{Name: "a", Started: 1, LastSeen: t0 * 1000, LastSeq: 1},
		Deltas: []Row{
			{Client: "keep", Start: at(0), Seq: 1, Data: []byte("kept")},
			{Client: "old", Start: at(-600), Seq: 1, Data: make([]byte, 256<<10)},
		},
		Samples: []SampleRow{{Client: "keep", Kind: "k", Key: "1", Time: at(0) * 1e9, Seq: 1, Data: []byte("kept")}},
	}
	big := make([]byte, 64<<10)
	refused := Write{
		Replica:      Replica{Name: "a", Started: 1, LastSeen: t0*1000 + 1, LastSeq: 2},
		Deltas:       []Row{{Client: "a", Start: at(1), Seq: 2, Data: big}},
		Samples:      []SampleRow{{Client: "a", Kind: "k", Key: "1", Time: at(1) * 1e9, Seq: 2, Data: big}},
		ClearSamples: true,
	}
	// The retention deletes the old delta, and nothing else: the
	// maintenance folds nothing.
	m := Maintenance{MinutesBefore: at(-1000), HoursBefore: at(-1000), RetainAfter: at(-100), Merge: sumMerge}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t, t.TempDir(), SQLiteOptions{})
			ctx := testContext(t)
			if err := s.Apply(ctx, keep); err != nil {
				t.Fatalf("Apply: got error %q; want nil", err)
			}
			tc.setup(t, s)
			err := s.Apply(ctx, refused)
			if err == nil {
				t.Fatalf("Apply: got nil error; want one")
			}
			t.Logf("Apply: %v", err)
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("Apply: got %q; want an error wrapping %q", err, tc.wantIs)
			}
			if errors.Is(err, ErrUncertain) {
				t.Errorf("Apply: got %q; want no %q: the write was refused before its commit", err, ErrUncertain)
			}
			ran, err := s.Maintain(ctx, m)
			if !tc.recovers {
				if err == nil {
					t.Errorf("Maintain: got %t, nil; want an error", ran)
				}
				return
			}
			// Deleting needs no room, so the maintenance works on a full
			// database.
			if err != nil || !ran {
				t.Fatalf("Maintain: got %t, %v; want true, nil", ran, err)
			}
			// What was refused is not half there: the clear of the
			// samples is undone too, the registration is as it was.
			checkSnapshot(t, "Load after the refused write", load(t, s), want{
				replicas: fmt.Sprintf("a(started=1 seen=%d seq=1 rolled=0 stopped=false)", t0*1000),
				deltas:   "a/keep@0+60#1=kept",
				samples:  fmt.Sprintf("a/keep/k/1@%d#1=kept", at(0)*1e9),
			})
			// The room the maintenance freed takes the refused write.
			if err := s.Apply(ctx, refused); err != nil {
				t.Errorf("Apply after the maintenance: got error %q; want nil", err)
			}
		})
	}
}

// concatMerge merges opaque blobs by concatenation.
func concatMerge(_ int64, blobs [][]byte) ([]byte, error) { return slices.Concat(blobs...), nil }

func TestSQLiteMaxBytes(t *testing.T) {
	const (
		nMinutes  = 200
		clients   = 2
		dataBytes = 5 << 10 // 200 minutes * 2 clients * 5 KiB = 2 MB
	)
	first := at(0)
	cases := []struct {
		name     string
		maxBytes int64
		// wantSome is whether the newest minute must survive.
		wantSome bool
	}{
		{name: "512 KiB cap keeps the newest minutes", maxBytes: 512 << 10, wantSome: true},
		{name: "1 MiB cap keeps the newest minutes", maxBytes: 1 << 20, wantSome: true},
		{name: "cap smaller than an empty database terminates", maxBytes: 1, wantSome: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t, t.TempDir(), SQLiteOptions{MaxBytes: tc.maxBytes})
			ctx := testContext(t)
			rng := newRand(1)
			w := batch("a", 1)
			for m := range nMinutes {
				for c := range clients {
					w.Deltas = append(w.Deltas, Row{Client: fmt.Sprintf("client-%d", c), Start: at(m), Seq: 1, Data: random(rng, dataBytes)})
				}
				// One sample in the middle of each minute.
				w.Samples = append(w.Samples, SampleRow{Client: "client-0", Kind: "mismatch", Key: fmt.Sprint(m), Time: (at(m) + 30) * 1e9, Seq: 1, Data: []byte("sample")})
			}
			if err := s.Apply(ctx, w); err != nil {
				t.Fatalf("Apply: got error %q; want nil", err)
			}
			before, err := s.size()
			if err != nil {
				t.Fatalf("size: got error %q; want nil", err)
			}
			if before <= 2*tc.maxBytes && tc.maxBytes > 1 {
				t.Fatalf("size before Maintain: got %d; want well over the cap %d", before, tc.maxBytes)
			}

			// The first half is folded into rolled minutes, the rest
			// stays deltas: the cap weighs both.
			ran, err := s.Maintain(ctx, Maintenance{MinutesBefore: at(nMinutes / 2), Merge: concatMerge})
			if err != nil || !ran {
				t.Fatalf("Maintain: got %t, %v; want true, nil", ran, err)
			}

			after, err := s.size()
			if err != nil {
				t.Fatalf("size: got error %q; want nil", err)
			}
			if tc.wantSome && after > tc.maxBytes {
				t.Errorf("page_count*page_size after Maintain: got %d; want at most %d", after, tc.maxBytes)
			}
			info, err := os.Stat(s.Location())
			if err != nil {
				t.Fatalf("Stat: got error %q; want nil", err)
			}
			if tc.wantSome && info.Size() > tc.maxBytes {
				t.Errorf("file size after Maintain: got %d; want at most %d", info.Size(), tc.maxBytes)
			}

			snap := load(t, s)
			kept := map[int64]int{}
			for _, r := range slices.Concat(snap.Rolled, snap.Deltas) {
				kept[r.Start]++
				if len(r.Data) != dataBytes {
					t.Errorf("row %s: got %d bytes; want %d", rowsString([]Row{{Replica: r.Replica, Client: r.Client, Start: r.Start, Span: r.Span, Seq: r.Seq}}), len(r.Data), dataBytes)
				}
			}
			var ms []int64
			for m := range kept {
				ms = append(ms, m)
			}
			slices.Sort(ms)
			if got := replicasString(snap.Replicas); got != reg("a", 1, 1) {
				t.Errorf("registrations: got %q; want %q", got, reg("a", 1, 1))
			}
			if !tc.wantSome {
				if len(ms) != 0 || len(snap.Samples) != 0 {
					t.Errorf("kept: got %d minutes and %d samples; want none", len(ms), len(snap.Samples))
				}
				return
			}
			newest := at(nMinutes - 1)
			if len(ms) == 0 || ms[len(ms)-1] != newest {
				t.Fatalf("newest minute kept: got %q; want %d", fmt.Sprint(ms), newest)
			}
			if ms[0] == first {
				t.Errorf("oldest minute kept: got %d; want it deleted", ms[0])
			}
			// The survivors are a contiguous run of the newest minutes,
			// each with all its clients.
			for i, m := range ms {
				if want := newest - int64(len(ms)-1-i)*60; m != want {
					t.Fatalf("minutes kept: got %q; want a contiguous run ending at %d", fmt.Sprint(ms), newest)
				}
				if kept[m] != clients {
					t.Errorf("rows of minute %d: got %d; want %d", m, kept[m], clients)
				}
			}
			// Samples older than the oldest kept minute are gone, the
			// newer ones are all there.
			if got, want := len(snap.Samples), len(ms); got != want {
				t.Errorf("samples kept: got %d; want %d, one per minute kept", got, want)
			}
			for _, sm := range snap.Samples {
				if sm.Time < ms[0]*1e9 {
					t.Errorf("sample kept: got time %d; want none before %d", sm.Time, ms[0]*1e9)
				}
			}
			t.Logf("size %d -> %d (cap %d), kept %d of %d minutes, %d samples", before, after, tc.maxBytes, len(ms), nMinutes, len(snap.Samples))
		})
	}
}

func TestSQLiteWithoutCapKeepsEverything(t *testing.T) {
	cases := []struct {
		name string
		opts SQLiteOptions
	}{
		{name: "no cap", opts: SQLiteOptions{}},
		{name: "generous cap", opts: SQLiteOptions{MaxBytes: 1 << 30}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openSQLite(t, t.TempDir(), tc.opts)
			w := batch("a", 1, d{"x", at(1), 2})
			w.Deltas = append(w.Deltas, Row{Client: "x", Start: at(0), Seq: 1, Data: make([]byte, 100<<10)})
			runSteps(t, s, []step{w, Maintenance{MinutesBefore: at(1), Merge: concatMerge}})
			snap := load(t, s)
			if got, want := len(snap.Rolled), 1; got != want || len(snap.Rolled[0].Data) != 100<<10 {
				t.Errorf("rolled rows: got %d; want %d of 100 KiB", got, want)
			}
			if got, want := rowsString(snap.Deltas), "a/x@60+60#1=2"; got != want {
				t.Errorf("deltas: got %q; want %q", got, want)
			}
		})
	}
}

// v1Schema is the layout of a version 1 file, as the single-replica store
// made it.
var v1Schema = []string{
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
	`PRAGMA user_version = 1`,
}

func TestSQLiteMigrateV1(t *testing.T) {
	type bucket struct {
		client string
		minute int64
		data   string
	}
	type sample struct {
		client, kind, key string
		time              int64
		data              string
	}
	twoClients := []bucket{
		{"a", t0 - Hour, `{"span":3600,"n":7}`},
		{"a", at(0), `{"span":60,"n":1}`},
		{"a", at(1), `{"span":60,"n":2}`},
		{"b", at(0), `{"span":60,"n":3}`},
		{"b", t0 + Hour, `{"n":4,"span":3600}`},
	}
	twoSamples := []sample{
		{"a", "unmapped", "404 E_GONE", at(0) * 1e9, `{"body":"a"}`},
		{"b", "mismatch", "3", at(1)*1e9 + 5, `{"body":"b"}`},
	}
	cases := []struct {
		name string
		// dsn opens the version 1 file to make it: as the old store did
		// (WAL, incremental auto_vacuum) or plainly.
		dsn         func(path string) string
		buckets     []bucket
		samples     []sample
		wantRolled  string
		wantSamples string
	}{
		{
			name:        "two clients' minutes hours and samples",
			dsn:         dsn,
			buckets:     twoClients,
			samples:     twoSamples,
			wantRolled:  `r1/a@-3600+3600#0={"span":3600,"n":7} r1/a@0+60#0={"span":60,"n":1} r1/a@60+60#0={"span":60,"n":2} r1/b@0+60#0={"span":60,"n":3} r1/b@3600+3600#0={"n":4,"span":3600}`,
			wantSamples: fmt.Sprintf(`r1/a/unmapped/404 E_GONE@%d#0={"body":"a"} r1/b/mismatch/3@%d#0={"body":"b"}`, at(0)*1e9, at(1)*1e9+5),
		},
		{
			name:        "a file in the default journal mode",
			dsn:         func(path string) string { return path },
			buckets:     twoClients[1:2],
			samples:     twoSamples[:1],
			wantRolled:  `r1/a@0+60#0={"span":60,"n":1}`,
			wantSamples: fmt.Sprintf(`r1/a/unmapped/404 E_GONE@%d#0={"body":"a"}`, at(0)*1e9),
		},
		{
			name: "an empty file",
			dsn:  dsn,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			db, err := sql.Open("sqlite", tc.dsn(path))
			if err != nil {
				t.Fatalf("sql.Open: got error %q; want nil", err)
			}
			execAll(t, db, v1Schema...)
			for _, b := range tc.buckets {
				if _, err := db.Exec(`INSERT INTO buckets (client, minute, data) VALUES (?, ?, ?)`, b.client, b.minute, []byte(b.data)); err != nil {
					t.Fatalf("INSERT INTO buckets: got error %q; want nil", err)
				}
			}
			for _, s := range tc.samples {
				if _, err := db.Exec(`INSERT INTO samples (client, kind, key, time, data) VALUES (?, ?, ?, ?, ?)`, s.client, s.kind, s.key, s.time, []byte(s.data)); err != nil {
					t.Fatalf("INSERT INTO samples: got error %q; want nil", err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: got error %q; want nil", err)
			}

			for _, open := range []string{"first open", "reopen"} {
				s, err := OpenSQLite(dir, SQLiteOptions{Replica: "r1"})
				if err != nil {
					t.Fatalf("%s: OpenSQLite: got error %q; want nil", open, err)
				}
				checkSnapshot(t, open+": Load", load(t, s), want{rolled: tc.wantRolled, samples: tc.wantSamples})
				if got, want := queryString(t, s.db, "PRAGMA user_version"), fmt.Sprint(SchemaVersion); got != want {
					t.Errorf("%s: user_version: got %q; want %q", open, got, want)
				}
				var left []string
				rows, err := s.db.Query(`SELECT name FROM sqlite_master WHERE name NOT LIKE 'envelope_proxy_%' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
				if err != nil {
					t.Fatalf("sqlite_master: got error %q; want nil", err)
				}
				for rows.Next() {
					var name string
					if err := rows.Scan(&name); err != nil {
						t.Fatalf("sqlite_master: got error %q; want nil", err)
					}
					left = append(left, name)
				}
				_ = rows.Close()
				if got := strings.Join(left, " "); got != "" {
					t.Errorf("%s: tables and indexes of version 1 left: got %q; want none", open, got)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("%s: Close: got error %q; want nil", open, err)
				}
			}
		})
	}
}

func BenchmarkSQLiteApply(b *testing.B) {
	s := openSQLite(b, b.TempDir(), SQLiteOptions{})
	data := make([]byte, 512)
	for i := range data {
		data[i] = byte(i)
	}
	ctx := context.Background()
	seq := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		// 100 clients times 10 minutes, a new batch each time: the
		// writer's pattern when every client counts every minute.
		seq++
		w := batch("a", seq)
		for i := range 1000 {
			w.Deltas = append(w.Deltas, Row{Client: fmt.Sprintf("client-%03d", i%100), Start: at(i / 100), Seq: seq, Data: data})
		}
		if err := s.Apply(ctx, w); err != nil {
			b.Fatalf("Apply: got error %q; want nil", err)
		}
	}
}
