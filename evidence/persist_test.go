package evidence

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
	_ "modernc.org/sqlite"
)

// oneEach records one envelope request for acme.
func oneEach(r *Recorder) {
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 200, LegacyStatus: 200, Action: transform.Wrap})
}

func TestRestartAfterTheMinutesRolled(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Date(2026, 11, 23, 10, 0, 5, 0, time.UTC)}
	r := testConfig(dir).recorder(c)
	for range 60 { // one request a minute, 10:00 to 10:59
		oneEach(r)
		c.advance(time.Minute)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	c.set(time.Date(2026, 11, 23, 11, 30, 5, 0, time.UTC)) // the recorder's loop reads the clock
	oneEach(r)
	r.roll(c.now()) // 10:00 to 10:29 roll into their hour
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, restart := range []string{"first", "second"} {
		t.Run(restart+" restart", func(t *testing.T) {
			r2 := testConfig(dir).recorder(c)
			if got := summary(t, r2, "acme").Requests; got != 61 {
				t.Errorf("requests: got %d; want 61", got)
			}
			c.advance(20 * time.Minute)
			r2.roll(c.now()) // the rest of 10:xx rolls too
			if err := r2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFailedWriteIsRetried(t *testing.T) {
	dir, c, r := onDisk(t)
	for range 7 {
		oneEach(r)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, store.FileName)+"?_pragma=busy_timeout(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(`INSERT INTO envelope_proxy_samples (replica, client, kind, key, time, seq, data) VALUES ('lock', 'lock', 'k', 'k', 0, 0, x'')`); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(); err == nil {
		t.Fatalf("flush with the file locked: got nil; want an error")
	}
	if ov := r.Overview(); ov.State.Error == "" {
		t.Errorf("state after the failed write: got no error; want it said")
	}
	tx.Rollback()
	c.advance(time.Minute) // a new minute: the failed one is not touched again
	oneEach(r)
	if err := r.Flush(); err != nil {
		t.Fatalf("flush once unlocked: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	r2 := newTestRecorder(t, testConfig(dir), c)
	if got := summary(t, r2, "acme").Requests; got != 8 {
		t.Errorf("requests after restart: got %d; want 8", got)
	}
}

func TestMemoryOnlyStaysBounded(t *testing.T) {
	c := start()
	r := newTestRecorder(t, testConfig(""), c)
	for range 3 * 24 * 60 {
		oneEach(r)
		c.advance(time.Minute)
		if c.now().Minute() == 0 {
			r.Flush()
			r.roll(c.now())
		}
	}
	r.Flush()
	r.roll(c.now())
	cs := r.client("acme")
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if len(cs.pending) > 1 || len(cs.minutes) > 61 || len(cs.hours) > 26 {
		t.Errorf("after 3 days in memory: %d pending, %d minutes, %d hours; want ≤ 1, ≤ 61, ≤ 26", len(cs.pending), len(cs.minutes), len(cs.hours))
	}
}

func TestLongerWindowDoesNotCountTwice(t *testing.T) {
	dir := t.TempDir()
	c := start()
	r := newTestRecorder(t, testConfig(dir), c)
	envelopeTraffic(r, 5)
	c.advance(3 * time.Hour)
	r.roll(c.now())
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	short := testConfig(dir)
	short.Thresholds.Window = time.Hour
	r.Swap(short.Settings)
	if got := summary(t, r, "acme").Requests; got != 0 {
		t.Errorf("requests over 1h: got %d; want 0", got)
	}
	r.Swap(testConfig(dir).Settings) // back to 24h before memory dropped the hours
	if got := summary(t, r, "acme").Requests; got != 5 {
		t.Errorf("requests over 24h again: got %d; want 5", got)
	}
	r.roll(c.now()) // now the old hours leave memory
	r.Swap(short.Settings)
	r.roll(c.now())
	r.Swap(testConfig(dir).Settings) // and come back from the store at the next sync
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := summary(t, r, "acme").Requests; got != 5 {
		t.Errorf("requests over 24h, reloaded from the store: got %d; want 5", got)
	}
}

func TestSamplesTurnedOff(t *testing.T) {
	dir, c, r := onDisk(t)
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 418, LegacyStatus: 418, Action: transform.Rewrite, Unmapped: true, UnmappedCode: "teapot", UnmappedBody: []byte(`{"code":"teapot","note":"kept"}`)})
	r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMismatch, Route: "GET /", Sample: &event.Sample{Time: c.now(), Request: "GET /"}})
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	off := testConfig(dir)
	off.Samples = false
	r.Swap(off.Settings)
	check := func(t *testing.T, r *Recorder) {
		t.Helper()
		d, _ := r.Client("acme")
		if len(d.UnmappedCodes) != 1 || d.UnmappedCodes[0].Code != "teapot" || d.UnmappedCodes[0].Sample != "" {
			t.Errorf("unmapped: got %+v; want the code, counted, without its sample", d.UnmappedCodes)
		}
		if w, _ := r.Client("watcher"); len(w.Samples) != 0 {
			t.Errorf("mismatch samples: got %d; want none", len(w.Samples))
		}
	}
	t.Run("after the reload", func(t *testing.T) { check(t, r) })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenSQLite(dir, store.SQLiteOptions{Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	snap, err := st.Load(context.Background(), 0)
	st.Close()
	if err != nil || len(snap.Samples) != 0 {
		t.Errorf("stored samples: got %v (%v); want none", snap, err)
	}
	t.Run("after a restart", func(t *testing.T) { check(t, newTestRecorder(t, off, c)) })
}

func TestFlippedClientIsJudgedOnItsEnvelopeTraffic(t *testing.T) {
	r := newTestRecorder(t, testConfig(""), start())
	for range 50 { // acme's traffic before the flip, in legacy mode
		r.RecordRequest(&event.Request{Client: "acme", Status: 200, LegacyStatus: 200})
	}
	envelopeTraffic(r, 4)
	s := summary(t, r, "acme")
	if s.Requests != 54 || s.Verdict.State != verdict.InsufficientEvidence || s.Verdict.Reasons[0] != "4 requests < 10 needed over 24h" {
		t.Errorf("got %d requests, %s %q; want 54 requests, insufficient evidence on the 4 served as envelopes", s.Requests, s.Verdict.State, s.Verdict.Reasons)
	}
}

// loadFailsFirst is a store whose first Load fails, and which counts the
// writes made before a Load has succeeded.
type loadFailsFirst struct {
	store.Store
	loads, applies, appliesBeforeLoad int
}

func (s *loadFailsFirst) Load(ctx context.Context, since int64) (*store.Snapshot, error) {
	s.loads++
	if s.loads == 1 {
		return nil, context.DeadlineExceeded
	}
	return s.Store.Load(ctx, since)
}

func (s *loadFailsFirst) Apply(ctx context.Context, w store.Write) error {
	s.applies++
	if s.loads < 2 {
		s.appliesBeforeLoad++
	}
	return s.Store.Apply(ctx, w)
}

// TestNoWriteBeforeALoad restarts a replica whose earlier run's batches
// were folded, on a store whose first Load fails: the replica must not
// write until it knows where its numbering stands, else its batches,
// numbered from 1 again, would be taken for ones already folded and lost.
func TestNoWriteBeforeALoad(t *testing.T) {
	dir, c, r := onDisk(t)
	for range 3 {
		oneEach(r)
		if err := r.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	c.advance(10 * time.Minute)
	r.maintainStore(c.now())
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	var failing *loadFailsFirst
	o := testConfig(dir).options(c)
	o.Open = func(context.Context) (store.Store, error) {
		st, err := store.OpenSQLite(dir, store.SQLiteOptions{Replica: "r1"})
		if err != nil {
			return nil, err
		}
		failing = &loadFailsFirst{Store: st}
		return failing, nil
	}
	r2 := New(testConfig(dir).Settings, o)
	t.Cleanup(func() { r2.Close() })
	for range 2 {
		oneEach(r2)
	}
	if err := r2.Flush(); err != nil {
		t.Fatalf("flush after the failed load: %v", err)
	}
	if failing.appliesBeforeLoad != 0 {
		t.Errorf("writes before a load: got %d; want 0", failing.appliesBeforeLoad)
	}
	if failing.applies == 0 {
		t.Errorf("the pending evidence was never written")
	}
	r3 := testConfig(dir).recorder(c)
	t.Cleanup(func() { r3.Close() })
	if got := summary(t, r3, "acme").Requests; got != 5 {
		t.Errorf("requests in the store: got %d; want 5", got)
	}
}
