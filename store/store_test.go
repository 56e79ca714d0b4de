package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/pgserver"
)

// The tests of both stores share one PostgreSQL server for the whole run of
// the test binary, started by the first test that needs it, each test with a
// database of its own. No *testing.T lives that long (a server started with
// a test's T is stopped when that test ends), so the server is started with
// suiteTB and stopped by TestMain once every test has run.
var shared struct {
	once   sync.Once
	tb     *suiteTB
	server *pgserver.Server
	// skip or fail holds why there is no server: PostgreSQL is not
	// installed (a skip), or it would not start (a failure; under CI=true
	// a missing PostgreSQL is one too).
	skip, fail string
	dbs        atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.tb != nil {
		shared.tb.finish()
		if shared.tb.failed && code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// suiteTB is the testing.TB the shared server is started and cleaned up
// with: Fatal and Skip end the start (by a panic that startServer
// recovers) instead of a test, and the cleanups run at the end of the run.
// The embedded testing.TB is nil: it only supplies the interface's
// unexported method; pgserver and await call no method but those below.
type suiteTB struct {
	testing.TB
	mu       sync.Mutex
	cleanups []func()
	failed   bool
	log      []string
}

// suiteStop is what suiteTB panics with on Fatal and Skip.
type suiteStop struct{ skip bool }

func (s *suiteTB) Helper()      {}
func (s *suiteTB) Name() string { return "TestMain" }
func (s *suiteTB) Failed() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.failed }
func (s *suiteTB) Logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, fmt.Sprintf(format, args...))
}
func (s *suiteTB) Log(args ...any) { s.Logf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) Errorf(format string, args ...any) {
	s.Logf(format, args...)
	s.mu.Lock()
	s.failed = true
	s.mu.Unlock()
}
func (s *suiteTB) Error(args ...any) { s.Errorf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) Fatalf(format string, args ...any) {
	s.Errorf(format, args...)
	panic(suiteStop{})
}
func (s *suiteTB) Fatal(args ...any) { s.Fatalf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) FailNow()          { s.Fatalf("FailNow") }
func (s *suiteTB) Skipf(format string, args ...any) {
	s.Logf(format, args...)
	panic(suiteStop{skip: true})
}
func (s *suiteTB) Skip(args ...any) { s.Skipf("%s", fmt.Sprint(args...)) }
func (s *suiteTB) SkipNow()         { s.Skipf("SkipNow") }
func (s *suiteTB) Cleanup(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cleanups = append(s.cleanups, f)
}

// finish runs the cleanups, last registered first, and prints the log of a
// failed server.
func (s *suiteTB) finish() {
	s.mu.Lock()
	cleanups := s.cleanups
	s.cleanups = nil
	s.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if r := recover(); r != nil {
					if _, ok := r.(suiteStop); !ok {
						panic(r)
					}
				}
			}()
			cleanups[i]()
		}()
	}
	if s.Failed() {
		fmt.Fprintf(os.Stderr, "shared PostgreSQL server:\n%s\n", strings.Join(s.log, "\n"))
	}
}

// server returns the shared PostgreSQL server, starting it on the first
// call; it skips the test when PostgreSQL is not installed (never under
// CI=true: pgserver fails then) and fails it when the server would not
// start.
func server(t *testing.T) *pgserver.Server {
	t.Helper()
	shared.once.Do(func() {
		shared.tb = &suiteTB{}
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			stop, ok := r.(suiteStop)
			if !ok {
				panic(r)
			}
			why := strings.Join(shared.tb.log, "\n")
			if stop.skip {
				shared.skip = why
				// A skip is no failure of the run.
				shared.tb.mu.Lock()
				shared.tb.failed = false
				shared.tb.mu.Unlock()
			} else {
				shared.fail = why
			}
			shared.tb.finish()
		}()
		shared.server = pgserver.Start(shared.tb)
	})
	switch {
	case shared.fail != "":
		t.Fatalf("starting PostgreSQL: %s", shared.fail)
	case shared.skip != "":
		t.Skip(shared.skip)
	}
	return shared.server
}

// newDatabase creates an empty database for the test on the shared server
// and returns its URL.
func newDatabase(t *testing.T) (*pgserver.Server, string, string) {
	t.Helper()
	srv := server(t)
	name := fmt.Sprintf("db%d_%s", shared.dbs.Add(1), strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "_")))
	if len(name) > 63 {
		name = name[:63]
	}
	return srv, name, srv.CreateDatabase(t, name)
}

// testContext bounds a test's calls to the store: a hang fails the call
// instead of the whole run.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), await.Patience)
	t.Cleanup(cancel)
	return ctx
}

// backend is one implementation of Store the conformance tests run on.
type backend struct {
	name string
	// open opens a store on an empty database of the test's own, closed
	// when the test ends.
	open func(t *testing.T) Store
	// openPair opens two stores on one empty database, as two replicas of
	// a fleet would. SQLite's single-replica file is shared through one
	// store.
	openPair func(t *testing.T) (Store, Store)
	// breakCommit makes the commit of a batch with deltas fail until the
	// function it returns is called.
	breakCommit func(t *testing.T, s Store) (restore func())
}

func openSQLite(t testing.TB, dir string, opts SQLiteOptions) *SQLite {
	t.Helper()
	s, err := OpenSQLite(dir, opts)
	if err != nil {
		t.Fatalf("OpenSQLite: got error %q; want nil", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPostgres(t *testing.T, url string) *Postgres {
	t.Helper()
	s, err := OpenPostgres(testContext(t), url)
	if err != nil {
		t.Fatalf("OpenPostgres: got error %q; want nil", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var backends = []backend{
	{
		name: "sqlite",
		open: func(t *testing.T) Store { return openSQLite(t, t.TempDir(), SQLiteOptions{Replica: "r1"}) },
		openPair: func(t *testing.T) (Store, Store) {
			s := openSQLite(t, t.TempDir(), SQLiteOptions{Replica: "r1"})
			return s, s
		},
		breakCommit: func(t *testing.T, st Store) func() {
			// A deferred foreign key is checked at COMMIT: a trigger
			// inserting a dangling reference with every delta makes the
			// commit, and only the commit, fail. The store runs on one
			// connection, so the pragma holds for its transactions.
			s := st.(*SQLite)
			for _, q := range []string{
				`PRAGMA foreign_keys = ON`,
				`CREATE TABLE test_parent (id INTEGER PRIMARY KEY)`,
				`CREATE TABLE test_child (parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED)`,
				`CREATE TRIGGER test_break AFTER INSERT ON envelope_proxy_deltas BEGIN INSERT INTO test_child VALUES (42); END`,
			} {
				if _, err := s.db.Exec(q); err != nil {
					t.Fatalf("%s: got error %q; want nil", q, err)
				}
			}
			return func() {
				if _, err := s.db.Exec(`DROP TRIGGER test_break`); err != nil {
					t.Fatalf("DROP TRIGGER: got error %q; want nil", err)
				}
			}
		},
	},
	{
		name: "postgres",
		open: func(t *testing.T) Store {
			_, _, url := newDatabase(t)
			return openPostgres(t, url)
		},
		openPair: func(t *testing.T) (Store, Store) {
			_, _, url := newDatabase(t)
			return openPostgres(t, url), openPostgres(t, url)
		},
		breakCommit: func(t *testing.T, st Store) func() {
			// A deferred constraint trigger runs at COMMIT.
			s := st.(*Postgres)
			ctx := testContext(t)
			for _, q := range []string{
				`CREATE FUNCTION test_break() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`,
				`CREATE CONSTRAINT TRIGGER test_break AFTER INSERT ON envelope_proxy_deltas
					DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_break()`,
			} {
				if _, err := s.pool.Exec(ctx, q); err != nil {
					t.Fatalf("%s: got error %q; want nil", q, err)
				}
			}
			return func() {
				if _, err := s.pool.Exec(ctx, `DROP TRIGGER test_break ON envelope_proxy_deltas`); err != nil {
					t.Fatalf("DROP TRIGGER: got error %q; want nil", err)
				}
			}
		},
	},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

// t0 is the start of an hour: the tests' times are minutes around it.
const t0 = int64(1_699_999_200)

// at returns the start of the i-th minute after t0.
func at(i int) int64 { return t0 + int64(i)*Minute }

// d describes a delta: n counted for client in the minute starting at start.
type d struct {
	client string
	start  int64
	n      int
}

// batch returns replica's batch seq of deltas ds, its registration seen at
// t0.
func batch(replica string, seq int64, ds ...d) Write {
	w := Write{Replica: Replica{Name: replica, Started: 1_000, LastSeen: t0 * 1000, LastSeq: seq}}
	for _, x := range ds {
		w.Deltas = append(w.Deltas, Row{Replica: replica, Client: x.client, Start: x.start, Span: Minute, Seq: seq, Data: []byte(strconv.Itoa(x.n))})
	}
	return w
}

// newRand returns the tests' seeded source of randomness.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// sumMerge is the tests' Merge: blobs are decimal integers, summed.
func sumMerge(span int64, blobs [][]byte) ([]byte, error) {
	if span != Minute && span != Hour {
		return nil, fmt.Errorf("merge of span %d", span)
	}
	var sum int64
	for _, b := range blobs {
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return nil, err
		}
		sum += n
	}
	return []byte(strconv.FormatInt(sum, 10)), nil
}

// withMerge returns m with sumMerge as its Merge when it has none.
func withMerge(m Maintenance) Maintenance {
	if m.Merge == nil {
		m.Merge = sumMerge
	}
	return m
}

// step is one thing a test does to a store before it looks: a Write to
// apply or a Maintenance to run, each of which must succeed (and the
// maintenance run).
type step any

func runSteps(t *testing.T, s Store, steps []step) {
	t.Helper()
	ctx := testContext(t)
	for i, st := range steps {
		switch v := st.(type) {
		case Write:
			if err := s.Apply(ctx, v); err != nil {
				t.Fatalf("step %d: Apply: got error %q; want nil", i, err)
			}
		case Maintenance:
			ran, err := s.Maintain(ctx, withMerge(v))
			if err != nil || !ran {
				t.Fatalf("step %d: Maintain: got %t, %v; want true, nil", i, ran, err)
			}
		default:
			t.Fatalf("step %d: %T is no step", i, st)
		}
	}
}

// load returns everything stored.
func load(t *testing.T, s Store) *Snapshot {
	t.Helper()
	snap, err := s.Load(testContext(t), -1<<62)
	if err != nil {
		t.Fatalf("Load: got error %q; want nil", err)
	}
	return snap
}

// dataString renders a blob: as it is when printable, else in hex.
func dataString(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return fmt.Sprintf("0x%x", b)
		}
	}
	return string(b)
}

// rowsString renders rows in key order, their starts relative to t0, so
// that failures read as "got %q; want %q": replica/client@start+span#seq=data.
func rowsString(rows []Row) string {
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = fmt.Sprintf("%s/%s@%d+%d#%d=%s", r.Replica, r.Client, r.Start-t0, r.Span, r.Seq, dataString(r.Data))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// samplesString renders samples in key order:
// replica/client/kind/key@time#seq=data.
func samplesString(ss []SampleRow) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = fmt.Sprintf("%s/%s/%s/%s@%d#%d=%s", s.Replica, s.Client, s.Kind, s.Key, s.Time, s.Seq, dataString(s.Data))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// replicasString renders registrations in name order.
func replicasString(rs []Replica) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%s(started=%d seen=%d seq=%d rolled=%d stopped=%t)", r.Name, r.Started, r.LastSeen, r.LastSeq, r.RolledSeq, r.Stopped)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// reg renders the registration batch writes, with its rolled_seq.
func reg(name string, seq, rolled int64) string {
	return replicasString([]Replica{{Name: name, Started: 1_000, LastSeen: t0 * 1000, LastSeq: seq, RolledSeq: rolled}})
}

// want is what a snapshot should hold, rendered; an empty field wants
// nothing.
type want struct {
	replicas, rolled, deltas, samples string
}

func checkSnapshot(t *testing.T, what string, snap *Snapshot, w want) {
	t.Helper()
	for _, c := range []struct{ field, got, want string }{
		{"replicas", replicasString(snap.Replicas), w.replicas},
		{"rolled", rowsString(snap.Rolled), w.rolled},
		{"deltas", rowsString(snap.Deltas), w.deltas},
		{"samples", samplesString(snap.Samples), w.samples},
	} {
		if c.got != c.want {
			t.Errorf("%s: %s: got %q; want %q", what, c.field, c.got, c.want)
		}
	}
}

// sums adds up the counts of rows by replica, client and hour.
func sums(t *testing.T, rows ...[]Row) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, rs := range rows {
		for _, r := range rs {
			n, err := strconv.ParseInt(string(r.Data), 10, 64)
			if err != nil {
				t.Fatalf("row %s holds %q, not a count", rowsString([]Row{r}), r.Data)
			}
			out[fmt.Sprintf("%s/%s@%d", r.Replica, r.Client, r.Start-r.Start%Hour-t0)] += n
		}
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

// sumsString renders sums in key order.
func sumsString(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

func TestApplyLoad(t *testing.T) {
	sample := func(replica, client, kind, key string, time, seq int64, data string) SampleRow {
		return SampleRow{Replica: replica, Client: client, Kind: kind, Key: key, Time: time, Seq: seq, Data: []byte(data)}
	}
	withSamples := func(w Write, ss ...SampleRow) Write { w.Samples = append(w.Samples, ss...); return w }
	cases := []struct {
		name  string
		steps []step
		since int64
		want  want
	}{
		{
			name: "registrations deltas and samples round trip",
			steps: []step{
				withSamples(batch("a", 1, d{"x", at(0), 1}, d{"y", at(0), 2}, d{"x", at(1), 3}),
					sample("a", "x", "unmapped", "404 E_GONE", 5, 1, `{"body":"gone"}`)),
				Write{
					Replica: Replica{Name: "b", Started: 1_500, LastSeen: 2_500, LastSeq: 7, Stopped: true},
					Deltas:  []Row{{Client: "x", Start: at(0), Span: Minute, Seq: 7, Data: []byte("4")}},
				},
			},
			want: want{
				replicas: reg("a", 1, 0) + " b(started=1500 seen=2500 seq=7 rolled=0 stopped=true)",
				deltas:   "a/x@0+60#1=1 a/x@60+60#1=3 a/y@0+60#1=2 b/x@0+60#7=4",
				samples:  `a/x/unmapped/404 E_GONE@5#1={"body":"gone"}`,
			},
		},
		{
			name: "rolled rows round trip",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}, d{"x", at(1), 2}, d{"x", at(2), 3}, d{"y", at(-60), 4}),
				Maintenance{MinutesBefore: at(2), HoursBefore: t0},
			},
			want: want{
				replicas: reg("a", 1, 1),
				rolled:   "a/x@0+60#0=1 a/x@60+60#0=2 a/y@-3600+3600#0=4",
				deltas:   "a/x@120+60#1=3",
			},
		},
		{
			name: "since keeps what overlaps it",
			steps: []step{
				batch("a", 1, d{"x", at(-60), 1}, d{"x", at(0), 2}),
				Maintenance{MinutesBefore: at(1), HoursBefore: at(1)},
				withSamples(batch("a", 2, d{"x", at(5), 3}, d{"x", at(6), 4}, d{"y", at(4), 5}),
					sample("a", "x", "k", "before", (at(5)+30)*1e9-1, 2, "s1"),
					sample("a", "x", "k", "at", (at(5)+30)*1e9, 2, "s2")),
			},
			since: at(5) + 30,
			want: want{
				replicas: reg("a", 2, 1),
				rolled:   "a/x@0+3600#0=2",
				deltas:   "a/x@300+60#2=3 a/x@360+60#2=4",
				samples:  fmt.Sprintf("a/x/k/at@%d#2=s2", (at(5)+30)*1e9),
			},
		},
		{
			name:  "since after everything keeps the registrations",
			steps: []step{batch("a", 1, d{"x", at(0), 1})},
			since: at(1),
			want:  want{replicas: reg("a", 1, 0)},
		},
		{
			name: "a registration keeps the highest last_seq and takes the rest",
			steps: []step{
				Write{Replica: Replica{Name: "a", Started: 1, LastSeen: 10, LastSeq: 5}},
				Write{Replica: Replica{Name: "a", Started: 2, LastSeen: 20, LastSeq: 3, Stopped: true}},
			},
			want: want{replicas: "a(started=2 seen=20 seq=5 rolled=0 stopped=true)"},
		},
		{
			name:  "a write of nothing registers the replica",
			steps: []step{Write{Replica: Replica{Name: "a", Started: 1, LastSeen: 2}}},
			want:  want{replicas: "a(started=1 seen=2 seq=0 rolled=0 stopped=false)"},
		},
		{
			name: "binary and empty data",
			steps: []step{Write{
				Replica: Replica{Name: "a", Started: 1_000, LastSeen: t0 * 1000, LastSeq: 1},
				Deltas: []Row{
					{Client: "x", Start: at(0), Span: Minute, Seq: 1, Data: []byte{0, 1, 0xff, 0}},
					{Client: "y", Start: at(0), Span: Minute, Seq: 1, Data: nil},
				},
				Samples: []SampleRow{{Client: "x", Kind: "k", Key: "1", Time: 1, Seq: 1, Data: nil}},
			}},
			want: want{
				replicas: reg("a", 1, 0),
				deltas:   "a/x@0+60#1=0x0001ff00 a/y@0+60#1=",
				samples:  "a/x/k/1@1#1=",
			},
		},
		{
			name: "samples are upserted on replica client kind and key",
			steps: []step{
				withSamples(batch("a", 1),
					sample("", "x", "k", "1", 100, 1, "old"),
					sample("", "x", "k", "2", 200, 1, "keep"),
					sample("", "x", "other", "1", 100, 1, "other kind"),
					sample("", "y", "k", "1", 100, 1, "other client")),
				withSamples(batch("b", 1), sample("", "x", "k", "1", 100, 1, "other replica")),
				withSamples(batch("a", 2), sample("", "x", "k", "1", 300, 2, "new")),
			},
			want: want{
				replicas: reg("a", 2, 0) + " " + reg("b", 1, 0),
				samples:  "a/x/k/1@300#2=new a/x/k/2@200#1=keep a/x/other/1@100#1=other kind a/y/k/1@100#1=other client b/x/k/1@100#1=other replica",
			},
		},
		{
			name: "a sample twice in one batch keeps the last",
			steps: []step{
				withSamples(batch("a", 1),
					sample("", "x", "k", "1", 100, 1, "first"),
					sample("", "x", "k", "1", 200, 1, "second")),
			},
			want: want{replicas: reg("a", 1, 0), samples: "a/x/k/1@200#1=second"},
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				runSteps(t, s, tc.steps)
				snap, err := s.Load(testContext(t), tc.since)
				if err != nil {
					t.Fatalf("Load: got error %q; want nil", err)
				}
				checkSnapshot(t, fmt.Sprintf("Load(t0%+d)", tc.since-t0), snap, tc.want)
			})
		}
	})
}

func TestRetriedBatch(t *testing.T) {
	b1 := batch("a", 1, d{"x", at(0), 5}, d{"x", at(3), 7})
	cases := []struct {
		name  string
		steps []step
		want  want
	}{
		{
			name:  "applied twice",
			steps: []step{b1, b1},
			want:  want{replicas: reg("a", 1, 0), deltas: "a/x@0+60#1=5 a/x@180+60#1=7"},
		},
		{
			name:  "applied twice after a later batch",
			steps: []step{b1, batch("a", 2, d{"x", at(0), 1}), b1},
			want:  want{replicas: reg("a", 2, 0), deltas: "a/x@0+60#1=5 a/x@0+60#2=1 a/x@180+60#1=7"},
		},
		{
			name:  "retried after the maintenance folded it",
			steps: []step{b1, Maintenance{MinutesBefore: at(4)}, b1},
			want:  want{replicas: reg("a", 1, 1), rolled: "a/x@0+60#0=5 a/x@180+60#0=7"},
		},
		{
			name:  "retried after the maintenance folded part of it",
			steps: []step{b1, Maintenance{MinutesBefore: at(1)}, b1},
			want:  want{replicas: reg("a", 1, 1), rolled: "a/x@0+60#0=5", deltas: "a/x@180+60#1=7"},
		},
		{
			name:  "retried after the maintenance folded it into an hour",
			steps: []step{b1, Maintenance{MinutesBefore: at(4), HoursBefore: at(60)}, b1},
			want:  want{replicas: reg("a", 1, 1), rolled: "a/x@0+3600#0=12"},
		},
		{
			name:  "retried twice around two maintenances",
			steps: []step{b1, Maintenance{MinutesBefore: at(1)}, b1, Maintenance{MinutesBefore: at(4)}, b1},
			want:  want{replicas: reg("a", 1, 1), rolled: "a/x@0+60#0=5 a/x@180+60#0=7"},
		},
		{
			name:  "two batches of one minute are both counted",
			steps: []step{b1, batch("a", 2, d{"x", at(0), 1}), Maintenance{MinutesBefore: at(4)}},
			want:  want{replicas: reg("a", 2, 2), rolled: "a/x@0+60#0=6 a/x@180+60#0=7"},
		},
		{
			name:  "another replica's batch of the same number is its own",
			steps: []step{b1, Maintenance{MinutesBefore: at(4)}, batch("b", 1, d{"x", at(0), 5})},
			want:  want{replicas: reg("a", 1, 1) + " " + reg("b", 1, 0), rolled: "a/x@0+60#0=5 a/x@180+60#0=7", deltas: "b/x@0+60#1=5"},
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				runSteps(t, s, tc.steps)
				checkSnapshot(t, "Load", load(t, s), tc.want)
			})
		}
	})
}

func TestChanges(t *testing.T) {
	sample := func(client, key string, time, seq int64) SampleRow {
		return SampleRow{Client: client, Kind: "k", Key: key, Time: time, Seq: seq, Data: []byte(fmt.Sprint(time))}
	}
	with := func(w Write, ss ...SampleRow) Write { w.Samples = ss; return w }
	setup := []step{
		with(batch("a", 1, d{"x", at(0), 1}), sample("x", "1", 10, 1)),
		batch("a", 2, d{"x", at(1), 2}),
		with(batch("b", 1, d{"x", at(0), 10}, d{"y", at(0), 11}), sample("y", "1", 10, 1)),
		batch("b", 2, d{"x", at(1), 12}),
		with(batch("b", 3), sample("y", "1", 30, 3), sample("y", "2", 30, 3)),
		batch("c", 4, d{"x", at(0), 100}),
	}
	all := reg("a", 2, 0) + " " + reg("b", 3, 0) + " " + reg("c", 4, 0)
	cases := []struct {
		name                    string
		self                    string
		marks                   map[string]int64
		wantDeltas, wantSamples string
	}{
		{
			name:        "without marks everything of the others",
			self:        "a",
			wantDeltas:  "b/x@0+60#1=10 b/x@60+60#2=12 b/y@0+60#1=11 c/x@0+60#4=100",
			wantSamples: "b/y/k/1@30#3=30 b/y/k/2@30#3=30",
		},
		{
			name:        "a mark skips what it covers",
			self:        "a",
			marks:       map[string]int64{"b": 1},
			wantDeltas:  "b/x@60+60#2=12 c/x@0+60#4=100",
			wantSamples: "b/y/k/1@30#3=30 b/y/k/2@30#3=30",
		},
		{
			name:        "a sample rewritten after the mark is read again",
			self:        "a",
			marks:       map[string]int64{"b": 2, "c": 4},
			wantSamples: "b/y/k/1@30#3=30 b/y/k/2@30#3=30",
		},
		{
			name:  "marks at the last batches read nothing",
			self:  "a",
			marks: map[string]int64{"b": 3, "c": 4},
		},
		{
			name:  "marks past the last batches read nothing",
			self:  "a",
			marks: map[string]int64{"b": 30, "c": 40},
		},
		{
			name:       "self is excluded whatever its mark",
			self:       "b",
			marks:      map[string]int64{"a": 1, "b": 0},
			wantDeltas: "a/x@60+60#2=2 c/x@0+60#4=100",
		},
		{
			name:        "a mark of a replica unknown to the store is harmless",
			self:        "c",
			marks:       map[string]int64{"zz": 7},
			wantDeltas:  "a/x@0+60#1=1 a/x@60+60#2=2 b/x@0+60#1=10 b/x@60+60#2=12 b/y@0+60#1=11",
			wantSamples: "a/x/k/1@10#1=10 b/y/k/1@30#3=30 b/y/k/2@30#3=30",
		},
		{
			name:        "a reader that has written nothing reads everyone",
			self:        "new",
			wantDeltas:  "a/x@0+60#1=1 a/x@60+60#2=2 b/x@0+60#1=10 b/x@60+60#2=12 b/y@0+60#1=11 c/x@0+60#4=100",
			wantSamples: "a/x/k/1@10#1=10 b/y/k/1@30#3=30 b/y/k/2@30#3=30",
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		runSteps(t, s, setup)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ch, err := s.Changes(testContext(t), tc.self, tc.marks)
				if err != nil {
					t.Fatalf("Changes: got error %q; want nil", err)
				}
				if got := replicasString(ch.Replicas); got != all {
					t.Errorf("replicas: got %q; want %q", got, all)
				}
				if got := rowsString(ch.Deltas); got != tc.wantDeltas {
					t.Errorf("deltas: got %q; want %q", got, tc.wantDeltas)
				}
				if got := samplesString(ch.Samples); got != tc.wantSamples {
					t.Errorf("samples: got %q; want %q", got, tc.wantSamples)
				}
			})
		}
	})
}

func TestRows(t *testing.T) {
	setup := []step{
		batch("a", 1, d{"x", at(-60), 9}, d{"x", at(0), 1}, d{"x", at(1), 2}, d{"y", at(0), 3}),
		batch("b", 1, d{"x", at(0), 4}),
		Maintenance{MinutesBefore: at(1), HoursBefore: t0},
		batch("a", 2, d{"x", at(1), 5}, d{"x", at(2), 6}),
	}
	cases := []struct {
		name            string
		replica, client string
		since           int64
		want            string
	}{
		{name: "one replica and client", replica: "a", client: "x", since: 0,
			want: "a/x@-3600+3600#0=9 a/x@0+60#0=1 a/x@120+60#2=6 a/x@60+60#1=2 a/x@60+60#2=5"},
		{name: "since inside an hour keeps it", replica: "a", client: "x", since: t0 - 1,
			want: "a/x@-3600+3600#0=9 a/x@0+60#0=1 a/x@120+60#2=6 a/x@60+60#1=2 a/x@60+60#2=5"},
		{name: "since at the hour's end drops it", replica: "a", client: "x", since: t0,
			want: "a/x@0+60#0=1 a/x@120+60#2=6 a/x@60+60#1=2 a/x@60+60#2=5"},
		{name: "since drops older minutes and deltas", replica: "a", client: "x", since: at(2),
			want: "a/x@120+60#2=6"},
		{name: "since inside a delta's minute keeps it", replica: "a", client: "x", since: at(2) + 59,
			want: "a/x@120+60#2=6"},
		{name: "since after everything", replica: "a", client: "x", since: at(3)},
		{name: "another client", replica: "a", client: "y", want: "a/y@0+60#0=3"},
		{name: "another replica", replica: "b", client: "x", want: "b/x@0+60#0=4"},
		{name: "a client the replica has not", replica: "b", client: "y"},
		{name: "an unknown replica", replica: "c", client: "x"},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		runSteps(t, s, setup)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				rows, err := s.Rows(testContext(t), tc.replica, tc.client, tc.since)
				if err != nil {
					t.Fatalf("Rows: got error %q; want nil", err)
				}
				if got := rowsString(rows); got != tc.want {
					t.Errorf("Rows(%s, %s, t0%+d): got %q; want %q", tc.replica, tc.client, tc.since-t0, got, tc.want)
				}
			})
		}
	})
}

func TestMaintain(t *testing.T) {
	const r = t0 + Hour // the retention cases' RetainAfter
	seen := func(w Write, ms int64) Write { w.Replica.LastSeen = ms; return w }
	with := func(w Write, ss ...SampleRow) Write { w.Samples = ss; return w }
	cases := []struct {
		name  string
		steps []step
		m     Maintenance
		want  want
	}{
		{
			name: "deltas of minutes before MinutesBefore fold into one row per replica client and minute",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}, d{"y", at(0), 2}, d{"x", at(2), 3}),
				batch("a", 2, d{"x", at(0), 4}, d{"x", at(1), 5}),
				batch("b", 1, d{"x", at(0), 10}, d{"x", at(2), 20}),
				batch("c", 3, d{"x", at(2), 30}),
			},
			m: Maintenance{MinutesBefore: at(2)},
			want: want{
				replicas: reg("a", 2, 2) + " " + reg("b", 1, 1) + " " + reg("c", 3, 0),
				rolled:   "a/x@0+60#0=5 a/x@60+60#0=5 a/y@0+60#0=2 b/x@0+60#0=10",
				deltas:   "a/x@120+60#1=3 b/x@120+60#1=20 c/x@120+60#3=30",
			},
		},
		{
			name: "a late delta merges with the minute already folded",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}),
				Maintenance{MinutesBefore: at(1)},
				batch("a", 2, d{"x", at(0), 2}),
			},
			m:    Maintenance{MinutesBefore: at(1)},
			want: want{replicas: reg("a", 2, 2), rolled: "a/x@0+60#0=3"},
		},
		{
			name: "rolled_seq never goes down",
			steps: []step{
				batch("a", 5, d{"x", at(10), 1}),
				// A late delta, of an earlier minute in a later batch,
				// folded first.
				batch("a", 6, d{"x", at(0), 2}),
				Maintenance{MinutesBefore: at(1)},
			},
			m:    Maintenance{MinutesBefore: at(11)},
			want: want{replicas: reg("a", 6, 6), rolled: "a/x@0+60#0=2 a/x@600+60#0=1"},
		},
		{
			name: "minutes before HoursBefore fold into hours",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}, d{"x", at(59), 2}, d{"x", at(60), 4}, d{"y", at(30), 3}),
				batch("b", 1, d{"x", at(-1), 5}),
			},
			m: Maintenance{MinutesBefore: at(61), HoursBefore: at(60)},
			want: want{
				replicas: reg("a", 1, 1) + " " + reg("b", 1, 1),
				rolled:   "a/x@0+3600#0=3 a/x@3600+60#0=4 a/y@0+3600#0=3 b/x@-3600+3600#0=5",
			},
		},
		{
			name: "a late minute merges with the hour already folded",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}),
				Maintenance{MinutesBefore: at(1), HoursBefore: at(1)},
				batch("a", 2, d{"x", at(5), 2}),
			},
			m:    Maintenance{MinutesBefore: at(6), HoursBefore: at(6)},
			want: want{replicas: reg("a", 2, 2), rolled: "a/x@0+3600#0=3"},
		},
		{
			name: "an hour partly folded takes its later minutes later",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}, d{"x", at(40), 2}),
				Maintenance{MinutesBefore: at(41), HoursBefore: at(30)},
			},
			m:    Maintenance{MinutesBefore: at(41), HoursBefore: at(60)},
			want: want{replicas: reg("a", 1, 1), rolled: "a/x@0+3600#0=3"},
		},
		{
			name: "minutes and hours of other replicas and clients stay apart",
			steps: []step{
				batch("a", 1, d{"x", at(0), 1}, d{"y", at(0), 2}),
				batch("b", 1, d{"x", at(0), 4}),
				Maintenance{MinutesBefore: at(1), HoursBefore: at(1)},
				batch("b", 2, d{"y", at(1), 8}),
			},
			m: Maintenance{MinutesBefore: at(2), HoursBefore: at(2)},
			want: want{
				replicas: reg("a", 1, 1) + " " + reg("b", 2, 2),
				rolled:   "a/x@0+3600#0=1 a/y@0+3600#0=2 b/x@0+3600#0=4 b/y@0+3600#0=8",
			},
		},
		{
			name: "retention deletes rows deltas samples and registrations older than RetainAfter",
			steps: []step{
				with(seen(batch("a", 1, d{"x", t0 - Hour, 1}, d{"x", t0, 2}, d{"y", r - Minute, 3}, d{"y", r, 4}, d{"z", r + Minute, 5}), r*1000-1),
					SampleRow{Client: "x", Kind: "k", Key: "old", Time: r*1e9 - 1, Seq: 1, Data: []byte("old")},
					SampleRow{Client: "x", Kind: "k", Key: "edge", Time: r * 1e9, Seq: 1, Data: []byte("edge")}),
				Maintenance{MinutesBefore: r + Minute, HoursBefore: t0 + Minute},
				seen(batch("b", 1, d{"x", r - Minute, 6}, d{"x", r, 7}), r*1000),
			},
			m: Maintenance{MinutesBefore: t0 - Hour, HoursBefore: t0 - Hour, RetainAfter: r},
			want: want{
				replicas: fmt.Sprintf("b(started=1000 seen=%d seq=1 rolled=0 stopped=false)", r*1000),
				rolled:   "a/y@3600+60#0=4",
				deltas:   "a/z@3660+60#1=5 b/x@3600+60#1=7",
				samples:  fmt.Sprintf("a/x/k/edge@%d#1=edge", r*1e9),
			},
		},
		{
			name: "retention far in the future deletes everything",
			steps: []step{
				with(batch("a", 1, d{"x", at(0), 1}, d{"x", at(100), 2}), SampleRow{Client: "x", Kind: "k", Key: "1", Time: 1 << 62, Data: []byte("s")}),
				Maintenance{MinutesBefore: at(1), HoursBefore: at(1)},
			},
			m: Maintenance{RetainAfter: 1 << 62},
		},
		{
			name: "retention far in the past keeps everything",
			steps: []step{
				with(batch("a", 1, d{"x", at(0), 1}, d{"x", at(100), 2}), SampleRow{Client: "x", Kind: "k", Key: "1", Time: -1 << 62, Data: []byte("s")}),
				Maintenance{MinutesBefore: at(1), HoursBefore: at(1), RetainAfter: -1 << 62},
			},
			m: Maintenance{MinutesBefore: at(1), HoursBefore: at(1), RetainAfter: -1 << 62},
			want: want{
				replicas: reg("a", 1, 1),
				rolled:   "a/x@0+3600#0=1",
				deltas:   "a/x@6000+60#1=2",
				samples:  fmt.Sprintf("a/x/k/1@%d#0=s", int64(-1<<62)),
			},
		},
		{
			name:  "an empty store",
			steps: nil,
			m:     Maintenance{MinutesBefore: at(100), HoursBefore: at(100), RetainAfter: at(-100)},
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				runSteps(t, s, append(tc.steps, tc.m))
				checkSnapshot(t, "Load after Maintain", load(t, s), tc.want)
			})
		}
	})
}

func TestMaintainMergeFails(t *testing.T) {
	cases := []struct {
		name string
		m    Maintenance
		// prior is folded before the failing maintenance, with sumMerge.
		prior *Maintenance
		want  want
	}{
		{
			name: "folding minutes",
			m:    Maintenance{MinutesBefore: at(2), RetainAfter: at(1)},
			want: want{replicas: reg("a", 2, 0), deltas: "a/x@0+60#1=1 a/x@0+60#2=2 a/x@60+60#2=3"},
		},
		{
			name:  "folding hours",
			prior: &Maintenance{MinutesBefore: at(2)},
			m:     Maintenance{MinutesBefore: at(2), HoursBefore: at(2), RetainAfter: at(1)},
			want:  want{replicas: reg("a", 2, 2), rolled: "a/x@0+60#0=3 a/x@60+60#0=3"},
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1}), batch("a", 2, d{"x", at(0), 2}, d{"x", at(1), 3})})
				if tc.prior != nil {
					runSteps(t, s, []step{*tc.prior})
				}
				failing := errors.New("merge refused")
				m := tc.m
				m.Merge = func(span int64, blobs [][]byte) ([]byte, error) {
					if span == Minute && tc.prior != nil {
						return sumMerge(span, blobs)
					}
					return nil, failing
				}
				ran, err := s.Maintain(testContext(t), m)
				if !errors.Is(err, failing) {
					t.Errorf("Maintain: got %t, %v; want the merge's error", ran, err)
				}
				// Nothing of the failed maintenance is kept: not the fold,
				// not the retention.
				checkSnapshot(t, "Load after the failed Maintain", load(t, s), tc.want)
			})
		}
	})
}

// TestMaintainProperty applies random batches of random minutes, late ones
// included, some of them retried, and runs the maintenance in between: the
// counts stored always add up to the counts applied (less what the
// retention deleted), and after every maintenance exactly the deltas not
// folded are left and rolled_seq is the highest batch folded.
func TestMaintainProperty(t *testing.T) {
	const (
		seed   = 20260501
		rounds = 150
	)
	replicas := []string{"a", "b", "c"}
	clients := []string{"x", "y", "z"}
	type key struct {
		replica string
		seq     int64
		client  string
		start   int64
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		t.Logf("seed %d", seed)
		rng := newRand(seed)
		s := b.open(t)
		ctx := testContext(t)
		now := t0 + 3*Hour
		// The model: every delta applied, whether it was folded, and
		// its count; the registrations' last and rolled seqs.
		applied := map[key]int64{}
		folded := map[key]bool{}
		present := map[key]bool{} // not yet deleted by retention
		type regModel struct{ lastSeq, rolledSeq, lastSeen int64 }
		regs := map[string]*regModel{}
		seqs := map[string]int64{}
		last := map[string]Write{}

		apply := func(w Write) {
			t.Helper()
			if err := s.Apply(ctx, w); err != nil {
				t.Fatalf("Apply: got error %q; want nil", err)
			}
			r := regs[w.Replica.Name]
			if r == nil {
				r = &regModel{}
				regs[w.Replica.Name] = r
			}
			r.lastSeq, r.lastSeen = max(r.lastSeq, w.Replica.LastSeq), w.Replica.LastSeen
			for _, dl := range w.Deltas {
				k := key{w.Replica.Name, dl.Seq, dl.Client, dl.Start}
				if _, ok := applied[k]; ok {
					continue // a retry: counted once
				}
				n, _ := strconv.ParseInt(string(dl.Data), 10, 64)
				applied[k] = n
				present[k] = true
			}
		}
		maintain := func() {
			t.Helper()
			m := Maintenance{
				MinutesBefore: now - now%Minute - 2*Minute,
				HoursBefore:   now - Hour,
				RetainAfter:   now - now%Hour - 3*Hour,
				Merge:         sumMerge,
			}
			ran, err := s.Maintain(ctx, m)
			if err != nil || !ran {
				t.Fatalf("Maintain: got %t, %v; want true, nil", ran, err)
			}
			for k := range present {
				if !folded[k] && k.start < m.MinutesBefore {
					folded[k] = true
					if r := regs[k.replica]; r != nil {
						r.rolledSeq = max(r.rolledSeq, k.seq)
					}
				}
				if k.start-k.start%Hour < m.RetainAfter {
					delete(present, k)
				}
			}
			for name, r := range regs {
				if r.lastSeen < m.RetainAfter*1000 {
					delete(regs, name)
				}
			}
			// Exactly the deltas not folded are left, and the rolled
			// rows are of their spans where they should be.
			snap := load(t, s)
			var wantDeltas []string
			for k := range present {
				if !folded[k] {
					wantDeltas = append(wantDeltas, rowsString([]Row{{Replica: k.replica, Client: k.client, Start: k.start, Span: Minute, Seq: k.seq, Data: []byte(strconv.FormatInt(applied[k], 10))}}))
				}
			}
			slices.Sort(wantDeltas)
			if got, want := rowsString(snap.Deltas), strings.Join(wantDeltas, " "); got != want {
				t.Fatalf("deltas after Maintain at now=t0%+d: got %q; want %q", now-t0, got, want)
			}
			for _, r := range snap.Rolled {
				if r.Span == Minute && r.Start < m.HoursBefore || r.Span == Hour && r.Start%Hour != 0 || r.Start+r.Span <= m.RetainAfter {
					t.Fatalf("rolled row after Maintain at now=t0%+d: got %q; want none", now-t0, rowsString([]Row{r}))
				}
			}
			var gotRegs, wantRegs []string
			for _, r := range snap.Replicas {
				gotRegs = append(gotRegs, fmt.Sprintf("%s:%d/%d", r.Name, r.LastSeq, r.RolledSeq))
			}
			for name, r := range regs {
				wantRegs = append(wantRegs, fmt.Sprintf("%s:%d/%d", name, r.lastSeq, r.rolledSeq))
			}
			slices.Sort(wantRegs)
			if got, want := strings.Join(gotRegs, " "), strings.Join(wantRegs, " "); got != want {
				t.Fatalf("registrations (last/rolled seq) after Maintain at now=t0%+d: got %q; want %q", now-t0, got, want)
			}
		}
		check := func(round int, what string) {
			t.Helper()
			snap := load(t, s)
			got := sums(t, snap.Rolled, snap.Deltas)
			var want []Row
			for k := range present {
				want = append(want, Row{Replica: k.replica, Client: k.client, Start: k.start, Data: []byte(strconv.FormatInt(applied[k], 10))})
			}
			if g, w := sumsString(got), sumsString(sums(t, want)); g != w {
				t.Fatalf("round %d, after %s: sums by replica, client and hour: got %q; want %q", round, what, g, w)
			}
		}

		for round := range rounds {
			now += int64(rng.IntN(4)) * Minute / 2
			switch op := rng.IntN(10); {
			case op < 6:
				name := replicas[rng.IntN(len(replicas))]
				seqs[name]++
				w := Write{Replica: Replica{Name: name, Started: 1, LastSeen: now * 1000, LastSeq: seqs[name]}}
				taken := map[[2]int64]bool{}
				for range 1 + rng.IntN(4) {
					c := rng.IntN(len(clients))
					// Mostly recent minutes, some late ones: folded into
					// minutes, into hours, or past the retention.
					back := int64(rng.IntN(4))
					if rng.IntN(3) == 0 {
						back = int64(rng.IntN(240))
					}
					start := now - now%Minute - back*Minute
					if taken[[2]int64{int64(c), start}] {
						continue
					}
					taken[[2]int64{int64(c), start}] = true
					w.Deltas = append(w.Deltas, Row{Client: clients[c], Start: start, Span: Minute, Seq: seqs[name], Data: []byte(strconv.Itoa(1 + rng.IntN(100)))})
				}
				apply(w)
				last[name] = w
				check(round, "a batch")
			case op < 8:
				// The last batch of a replica sent again, as after an
				// uncertain commit.
				name := replicas[rng.IntN(len(replicas))]
				// (Only while its registration, and with it rolled_seq,
				// is kept: a retry comes seconds after the first try.)
				if w, ok := last[name]; ok && regs[name] != nil {
					apply(w)
					check(round, "a retried batch")
				}
			default:
				maintain()
				check(round, "a maintenance")
			}
		}
		maintain()
		check(rounds, "the last maintenance")
		t.Logf("%d deltas applied, %d folded", len(applied), len(folded))
	})
}

func TestClearSamples(t *testing.T) {
	sample := func(client, key, data string) SampleRow {
		return SampleRow{Client: client, Kind: "k", Key: key, Time: 1, Seq: 1, Data: []byte(data)}
	}
	setup := []step{
		Write{Replica: Replica{Name: "a", LastSeq: 1}, Samples: []SampleRow{sample("x", "1", "a1"), sample("y", "2", "a2")},
			Deltas: []Row{{Client: "x", Start: at(0), Seq: 1, Data: []byte("1")}}},
		Write{Replica: Replica{Name: "b", LastSeq: 1}, Samples: []SampleRow{sample("x", "1", "b1")}},
	}
	cases := []struct {
		name  string
		write Write
		want  string
	}{
		{
			name:  "a clear with new samples keeps only them of the writer's",
			write: Write{Replica: Replica{Name: "a", LastSeq: 2}, ClearSamples: true, Samples: []SampleRow{sample("x", "3", "new")}},
			want:  "a/x/k/3@1#1=new b/x/k/1@1#1=b1",
		},
		{
			name:  "a clear alone",
			write: Write{Replica: Replica{Name: "a", LastSeq: 2}, ClearSamples: true},
			want:  "b/x/k/1@1#1=b1",
		},
		{
			name:  "a clear and a sample of a key cleared",
			write: Write{Replica: Replica{Name: "a", LastSeq: 2}, ClearSamples: true, Samples: []SampleRow{sample("x", "1", "again")}},
			want:  "a/x/k/1@1#1=again b/x/k/1@1#1=b1",
		},
		{
			name:  "a clear by a replica without samples",
			write: Write{Replica: Replica{Name: "c", LastSeq: 1}, ClearSamples: true},
			want:  "a/x/k/1@1#1=a1 a/y/k/2@1#1=a2 b/x/k/1@1#1=b1",
		},
		{
			name:  "no clear",
			write: Write{Replica: Replica{Name: "a", LastSeq: 2}, Samples: []SampleRow{sample("x", "3", "new")}},
			want:  "a/x/k/1@1#1=a1 a/x/k/3@1#1=new a/y/k/2@1#1=a2 b/x/k/1@1#1=b1",
		},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				runSteps(t, s, append(setup, tc.write))
				snap := load(t, s)
				if got := samplesString(snap.Samples); got != tc.want {
					t.Errorf("samples: got %q; want %q", got, tc.want)
				}
				if got, want := rowsString(snap.Deltas), "a/x@0+60#1=1"; got != want {
					t.Errorf("deltas: got %q; want %q", got, want)
				}
			})
		}
	})
}

func TestUncertainCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		ctx := testContext(t)
		b1 := batch("a", 1, d{"x", at(0), 5})
		restore := b.breakCommit(t, s)
		err := s.Apply(ctx, b1)
		if !errors.Is(err, ErrUncertain) {
			t.Fatalf("Apply with a failing commit: got %v; want an error wrapping %q", err, ErrUncertain)
		}
		t.Logf("Apply: %v", err)
		// The store still works, and the batch sent again as it was is
		// counted once.
		restore()
		for i := range 2 {
			if err := s.Apply(ctx, b1); err != nil {
				t.Fatalf("Apply #%d after the failed commit: got error %q; want nil", i+1, err)
			}
		}
		checkSnapshot(t, "Load", load(t, s), want{replicas: reg("a", 1, 0), deltas: "a/x@0+60#1=5"})
	})
}

// TestConcurrentUse has replicas write, read and maintain at once (two
// stores on one PostgreSQL database, as two replicas would): nothing is
// lost or counted twice, and the race detector watches.
func TestConcurrentUse(t *testing.T) {
	const (
		writers = 3
		batches = 25
	)
	forEachBackend(t, func(t *testing.T, b backend) {
		s1, s2 := b.openPair(t)
		ctx := testContext(t)
		stop := make(chan struct{})
		errs := make(chan error, writers+2)
		var wg sync.WaitGroup
		total := int64(0)
		for w := range writers {
			name := fmt.Sprintf("w%d", w)
			st := []Store{s1, s2}[w%2]
			for seq := int64(1); seq <= batches; seq++ {
				total += 2 * seq
			}
			wg.Go(func() {
				for seq := int64(1); seq <= batches; seq++ {
					// One delta of an old minute, one of a recent one,
					// each batch sent twice.
					wr := batch(name, seq, d{"x", at(int(seq % 3)), int(seq)}, d{"x", at(int(10 + seq)), int(seq)})
					for range 2 {
						if err := st.Apply(ctx, wr); err != nil {
							errs <- fmt.Errorf("%s: Apply %d: %w", name, seq, err)
							return
						}
					}
					if _, err := st.Changes(ctx, name, nil); err != nil {
						errs <- fmt.Errorf("%s: Changes: %w", name, err)
						return
					}
				}
			})
		}
		var maintainers sync.WaitGroup
		for i, st := range []Store{s1, s2} {
			maintainers.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					m := Maintenance{MinutesBefore: at(5 + n%20), HoursBefore: at(n % 10), Merge: sumMerge}
					if _, err := st.Maintain(ctx, m); err != nil {
						errs <- fmt.Errorf("maintainer %d: %w", i, err)
						return
					}
					if _, err := st.Load(ctx, 0); err != nil {
						errs <- fmt.Errorf("maintainer %d: Load: %w", i, err)
						return
					}
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(stop); maintainers.Wait(); close(done) }()
		await.Receive(t, "the writers and maintainers to finish", done)
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		runSteps(t, s1, []step{Maintenance{MinutesBefore: at(100), HoursBefore: at(60)}})
		snap := load(t, s1)
		var got int64
		for _, v := range sums(t, snap.Rolled, snap.Deltas) {
			got += v
		}
		if got != total {
			t.Errorf("sum of everything stored: got %d; want %d", got, total)
		}
		if got, want := rowsString(snap.Deltas), ""; got != want {
			t.Errorf("deltas after the last Maintain: got %q; want %q", got, want)
		}
	})
}

func TestCanceledContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		runSteps(t, s, []step{batch("a", 1, d{"x", at(0), 1})})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		calls := []struct {
			name string
			call func() error
		}{
			{"Apply", func() error { return s.Apply(ctx, batch("a", 2, d{"x", at(0), 2})) }},
			{"Load", func() error { _, err := s.Load(ctx, 0); return err }},
			{"Changes", func() error { _, err := s.Changes(ctx, "b", nil); return err }},
			{"Rows", func() error { _, err := s.Rows(ctx, "a", "x", 0); return err }},
			{"Maintain", func() error {
				_, err := s.Maintain(ctx, Maintenance{MinutesBefore: at(10), RetainAfter: at(10), Merge: sumMerge})
				return err
			}},
		}
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				if err := c.call(); err == nil {
					t.Errorf("%s with a canceled context: got nil error; want one", c.name)
				}
			})
		}
		checkSnapshot(t, "Load", load(t, s), want{replicas: reg("a", 1, 0), deltas: "a/x@0+60#1=1"})
	})
}

func TestCloseIsIdempotent(t *testing.T) {
	cases := []struct {
		name   string
		closes int
	}{
		{name: "once", closes: 1},
		{name: "twice", closes: 2},
		{name: "three times", closes: 3},
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := b.open(t)
				for i := range tc.closes {
					if err := s.Close(); err != nil {
						t.Errorf("Close #%d: got error %q; want nil", i+1, err)
					}
				}
				ctx := testContext(t)
				for _, c := range []struct {
					name string
					call func() error
				}{
					{"Apply", func() error { return s.Apply(ctx, batch("a", 1)) }},
					{"Load", func() error { _, err := s.Load(ctx, 0); return err }},
					{"Changes", func() error { _, err := s.Changes(ctx, "a", nil); return err }},
					{"Rows", func() error { _, err := s.Rows(ctx, "a", "x", 0); return err }},
					{"Maintain", func() error { _, err := s.Maintain(ctx, withMerge(Maintenance{})); return err }},
				} {
					if err := c.call(); err == nil {
						t.Errorf("%s after Close: got nil error; want one", c.name)
					}
				}
			})
		}
	})
}

// TestLocation checks that a store names where it is, for the logs.
func TestLocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := b.open(t)
		loc := s.Location()
		switch s.(type) {
		case *SQLite:
			if filepath.Base(loc) != FileName {
				t.Errorf("Location: got %q; want a path to %s", loc, FileName)
			}
			if _, err := os.Stat(loc); err != nil {
				t.Errorf("Location %q: got error %q; want the database file", loc, err)
			}
		case *Postgres:
			if !strings.HasPrefix(loc, "postgres://"+pgserver.Superuser+"@127.0.0.1:") {
				t.Errorf("Location: got %q; want the database URL", loc)
			}
		}
	})
}
