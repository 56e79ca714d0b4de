package evidence

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testSetup is a recorder's settings and its store's directory.
type testSetup struct {
	Settings
	dir string
}

// testConfig has acme in envelope mode, watcher in shadow mode and a
// cohort, with evidence kept in dir ("" for memory only).
func testConfig(dir string) testSetup {
	d := config.Default()
	paths, err := redact.Compile([]string{"/data/email"})
	if err != nil {
		panic(err)
	}
	rd := d.Readiness
	return testSetup{dir: dir, Settings: Settings{
		Thresholds: verdict.Thresholds{
			Window: rd.Window, MinRequests: 10, MaxMismatchRatio: rd.MaxMismatchRatio, MaxUnmapped: rd.MaxUnmapped,
			MaxCandidateErrorsRatio: rd.MaxCandidateErrorsRatio, MaxUpstreamErrorsRatio: rd.MaxUpstreamErrorsRatio,
		},
		Retention: rd.Retention,
		Samples:   true,
		Redact:    paths,
		Targets: []config.Target{
			{Name: "acme", Kind: config.KindClient, Mode: config.ModeEnvelope},
			{Name: "watcher", Kind: config.KindClient, Mode: config.ModeShadow},
			{Name: "early", Kind: config.KindCohort, Mode: config.ModeEnvelope},
			{Name: config.DefaultClientName, Kind: config.KindDefault, Mode: config.ModeLegacy},
		},
	}}
}

// options keep the evidence in an SQLite file in ts.dir, or in memory
// when it is "", for replica r1, on clock c, with a loop that never ticks
// within a test: the tests flush, roll and maintain themselves.
func (ts testSetup) options(c *clock) Options {
	o := Options{Replica: "r1", Now: c.now, FlushInterval: time.Hour, MaintainInterval: time.Hour, MemoryReason: "no state_dir in this test"}
	if dir := ts.dir; dir != "" {
		o.Kind = "sqlite"
		o.Open = func(context.Context) (store.Store, error) {
			return store.OpenSQLite(dir, store.SQLiteOptions{Replica: "r1"})
		}
	}
	return o
}

// recorder returns a recorder of the setup on c, which the test closes.
func (ts testSetup) recorder(c *clock) *Recorder {
	return New(ts.Settings, ts.options(c))
}

func newTestRecorder(t *testing.T, ts testSetup, c *clock) *Recorder {
	t.Helper()
	r := ts.recorder(c)
	t.Cleanup(func() { r.Close() })
	return r
}

// onDisk returns a fresh state directory, a clock at start and a recorder
// over a SQLite store in the directory, which the test closes itself: these
// tests look at what closing and opening again keep.
func onDisk(t *testing.T) (string, *clock, *Recorder) {
	dir, c := t.TempDir(), start()
	return dir, c, testConfig(dir).recorder(c)
}

func start() *clock {
	return &clock{t: time.Date(2026, 11, 23, 10, 30, 15, 0, time.UTC)}
}

func summary(t *testing.T, r *Recorder, name string) ClientSummary {
	t.Helper()
	for _, c := range r.Overview().Clients {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no row for %q", name)
	return ClientSummary{}
}

// envelopeTraffic records n clean requests for acme: rewrites and wraps.
func envelopeTraffic(r *Recorder, n int) {
	for i := range n {
		ev := event.Request{Client: "acme", Envelope: true, Status: 200, LegacyStatus: 200, Action: transform.Wrap, Added: 300 * time.Microsecond}
		if i%2 == 1 {
			ev = event.Request{Client: "acme", Envelope: true, Status: 402, LegacyStatus: 403, Action: transform.Rewrite, LegacyCode: "insufficient_credits", Code: "insufficient_credits", Added: 500 * time.Microsecond}
		}
		r.RecordRequest(&ev)
	}
}

func TestOverviewRowsAndVerdicts(t *testing.T) {
	c := start()
	r := newTestRecorder(t, testConfig(""), c)
	envelopeTraffic(r, 20)
	for range 12 {
		r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMatch, Route: "GET /v1/jobs/{id}", LegacyStatus: 200})
	}
	r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMismatch, Route: "GET /v1/jobs/{id}", LegacyStatus: 200, Paths: []string{"/data/price"}})

	ov := r.Overview()
	if got, want := len(ov.Clients), 4; got != want {
		t.Fatalf("rows: got %d; want %d (acme, watcher, early, default)", got, want)
	}
	if !(ov.State.Error != "" && !ov.State.Persistent) {
		t.Errorf("state: got %+v; want memory only with the reason", ov.State)
	}
	tests := []struct {
		name, kind, mode string
		requests         uint64
		state            verdict.State
	}{
		{"acme", config.KindClient, "envelope", 20, verdict.Ready},
		{"watcher", config.KindClient, "shadow", 0, verdict.NotReady},
		{"early", config.KindCohort, "envelope", 0, verdict.InsufficientEvidence},
		{"default", config.KindDefault, "legacy", 0, verdict.InsufficientEvidence},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := summary(t, r, tc.name)
			if s.Kind != tc.kind || s.Mode != tc.mode || s.Requests != tc.requests || s.Verdict.State != tc.state {
				t.Errorf("got %s %s %d %s %q; want %s %s %d %s", s.Kind, s.Mode, s.Requests, s.Verdict.State, s.Verdict.Reasons, tc.kind, tc.mode, tc.requests, tc.state)
			}
		})
	}
	acme := summary(t, r, "acme")
	if acme.Rewritten != 10 || acme.Wrapped != 10 || acme.Classes["2xx"] != 10 || acme.Classes["4xx"] != 10 || acme.Share != 1 {
		t.Errorf("acme: got %+v", acme)
	}
	if acme.AddedLatency.Count != 20 || acme.AddedLatency.P50Ms < 0.27 || acme.AddedLatency.P50Ms > 0.33 || acme.AddedLatency.P99Ms < 0.45 || acme.AddedLatency.P99Ms > 0.55 {
		t.Errorf("acme latency: got %+v; want p50 ≈ 0.3 ms, p99 ≈ 0.5 ms", acme.AddedLatency)
	}
	w := summary(t, r, "watcher")
	if w.Shadow == nil || w.Shadow.Compared != 13 || w.Shadow.Outcomes["mismatch"] != 1 {
		t.Fatalf("watcher shadow: got %+v", w.Shadow)
	}
	if got, want := w.Verdict.Reasons[0], "mismatch 7.7% > 0.1% over 24h, 13 compared"; got != want {
		t.Errorf("watcher reason: got %q; want %q", got, want)
	}
	d, ok := r.Client("watcher")
	if !ok || len(d.Routes) != 1 || d.Routes[0] != (RouteCount{Route: "GET /v1/jobs/{id}", Compared: 13, Mismatches: 1}) {
		t.Errorf("watcher routes: got %+v", d.Routes)
	}
	if len(d.Paths) != 1 || d.Paths[0] != (PathCount{Path: "/data/price", Count: 1}) {
		t.Errorf("watcher paths: got %+v", d.Paths)
	}
	if _, ok := r.Client("nobody"); ok {
		t.Errorf("Client(nobody): got a detail; want none")
	}
}

func TestUnmappedSampleIsRedactedBeforeStorage(t *testing.T) {
	dir := t.TempDir()
	c := start()
	r := newTestRecorder(t, testConfig(dir), c)
	body := []byte(`{"error":"teapot","code":"teapot_error","data":{"email":"alice@example.com"},"email":"bob@example.com"}`)
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 418, LegacyStatus: 418, Action: transform.Rewrite, LegacyCode: "other", Code: "http_418", Unmapped: true, UnmappedCode: "teapot_error", UnmappedBody: body})
	body[0] = 'X' // the recorder must not keep the caller's buffer
	d, _ := r.Client("acme")
	if len(d.UnmappedCodes) != 1 {
		t.Fatalf("unmapped codes: got %+v; want one", d.UnmappedCodes)
	}
	u := d.UnmappedCodes[0]
	if u.Code != "teapot_error" || u.LegacyStatus != 418 || u.Count != 1 {
		t.Errorf("unmapped: got %+v", u)
	}
	want := `{"error":"teapot","code":"teapot_error","data":{"email":"[redacted]"},"email":"[redacted]"}`
	if u.Sample != want {
		t.Errorf("sample: got %q; want %q", u.Sample, want)
	}
	s := summary(t, r, "acme")
	if s.Verdict.State != verdict.NotReady || s.Verdict.Reasons[0] != "unmapped 1 > 0 (teapot_error) over 24h" {
		t.Errorf("verdict: got %s %q", s.Verdict.State, s.Verdict.Reasons)
	}
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	for _, name := range []string{store.FileName, store.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, secret := range []string{"alice@example.com", "bob@example.com"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds %q", name, secret)
			}
		}
	}
}

func TestSamplesOff(t *testing.T) {
	cfg := testConfig("")
	cfg.Samples = false
	r := newTestRecorder(t, cfg, start())
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 418, LegacyStatus: 418, Action: transform.Rewrite, Unmapped: true, UnmappedCode: "x"})
	r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMismatch, Sample: &event.Sample{Request: "GET /"}})
	d, _ := r.Client("acme")
	if len(d.UnmappedCodes) != 1 || d.UnmappedCodes[0].Sample != "" {
		t.Errorf("unmapped: got %+v; want the count without a sample", d.UnmappedCodes)
	}
	if w, _ := r.Client("watcher"); len(w.Samples) != 0 {
		t.Errorf("mismatch samples: got %d; want none", len(w.Samples))
	}
}

func TestRestartKeepsEvidence(t *testing.T) {
	dir, c, r := onDisk(t)
	envelopeTraffic(r, 10)
	c.advance(90 * time.Minute) // the first minutes roll into their hour
	envelopeTraffic(r, 6)
	r.RecordComparison(event.Comparison{Client: "watcher", Outcome: event.OutcomeMismatch, Route: "GET /x", Sample: &event.Sample{Time: c.now(), Request: "GET /x", Diff: []event.DiffOp{{Op: "replace", Path: "/data/price", Value: `"10"`}}}})
	r.roll(c.now())
	if err := r.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	before := r.Overview()

	c.advance(time.Minute)
	r2 := newTestRecorder(t, testConfig(dir), c)
	if !r2.Overview().State.Persistent {
		t.Fatalf("state: got %+v; want persistent", r2.Overview().State)
	}
	for _, name := range []string{"acme", "watcher"} {
		t.Run(name, func(t *testing.T) {
			var was ClientSummary
			for _, s := range before.Clients {
				if s.Name == name {
					was = s
				}
			}
			got := summary(t, r2, name)
			if got.Requests != was.Requests || got.Rewritten != was.Rewritten || got.AddedLatency != was.AddedLatency || got.Verdict.State != was.Verdict.State {
				t.Errorf("after restart: got %+v; want %+v", got, was)
			}
		})
	}
	if got := summary(t, r2, "acme").Requests; got != 16 {
		t.Errorf("acme requests after restart: got %d; want 16", got)
	}
	w, _ := r2.Client("watcher")
	if len(w.Samples) != 1 || w.Samples[0].Diff[0].Path != "/data/price" {
		t.Errorf("samples after restart: got %+v", w.Samples)
	}
	// A second restart must not count the rolled minutes twice.
	r2.roll(c.now())
	r2.Close()
	r3 := newTestRecorder(t, testConfig(dir), c)
	if got := summary(t, r3, "acme").Requests; got != 16 {
		t.Errorf("acme requests after a second restart: got %d; want 16", got)
	}
}

func TestWindowAndReload(t *testing.T) {
	c := start()
	cfg := testConfig("")
	cfg.Thresholds.Window = 2 * time.Hour
	r := newTestRecorder(t, cfg, c)
	envelopeTraffic(r, 10)
	c.advance(3 * time.Hour)
	r.roll(c.now())
	envelopeTraffic(r, 4)
	if got := summary(t, r, "acme").Requests; got != 4 {
		t.Errorf("requests in the window: got %d; want 4", got)
	}
	if s := summary(t, r, "acme"); s.Verdict.State != verdict.InsufficientEvidence {
		t.Errorf("verdict with 4 < 10 requests: got %s", s.Verdict.State)
	}
	next := testConfig("")
	next.Thresholds.Window = 2 * time.Hour
	next.Thresholds.MinRequests = 4
	r.Swap(next.Settings)
	if s := summary(t, r, "acme"); s.Verdict.State != verdict.Ready {
		t.Errorf("verdict after lowering min_requests: got %s %q", s.Verdict.State, s.Verdict.Reasons)
	}
}

func TestCorruptStoreFallsBackToMemory(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, store.FileName), bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRecorder(t, testConfig(dir), start())
	envelopeTraffic(r, 3)
	ov := r.Overview()
	if ov.State.Persistent || ov.State.Error == "" {
		t.Errorf("state: got %+v; want memory only, with the reason", ov.State)
	}
	if got := summary(t, r, "acme").Requests; got != 3 {
		t.Errorf("requests: got %d; want 3", got)
	}
	if err := r.Flush(); err != nil {
		t.Errorf("flush without a store: got %v; want nil", err)
	}
}

func TestSeries(t *testing.T) {
	c := start()
	r := newTestRecorder(t, testConfig(""), c)
	envelopeTraffic(r, 4)
	c.advance(2 * time.Minute)
	r.RecordComparison(event.Comparison{Client: "acme", Outcome: event.OutcomeMismatch, Route: "GET /"})
	d, _ := r.Client("acme")
	if got := len(d.Recent.Points); got != 60 {
		t.Fatalf("recent points: got %d; want 60", got)
	}
	last := d.Recent.Points[59]
	if last.Mismatches != 1 || last.Compared != 1 {
		t.Errorf("last minute: got %+v; want the mismatch", last)
	}
	if p := d.Recent.Points[57]; p.Requests != 4 || p.Errors != 2 {
		t.Errorf("two minutes ago: got %+v; want 4 requests, 2 errors", p)
	}
	if got := len(d.Series.Points); got != 25 {
		t.Errorf("hourly points over 24h: got %d; want 25", got)
	}
	var total uint64
	for _, p := range d.Series.Points {
		total += p.Requests
	}
	if total != 4 {
		t.Errorf("hourly requests: got %d; want 4", total)
	}
}

func TestBoundsOnUntrustedCodes(t *testing.T) {
	r := newTestRecorder(t, testConfig(""), start())
	for i := range 200 {
		code := "code-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 418, LegacyStatus: 418, Action: transform.Rewrite, Unmapped: true, UnmappedCode: code, UnmappedBody: []byte(`{"code":"` + code + `"}`)})
	}
	d, _ := r.Client("acme")
	if len(d.UnmappedCodes) > maxUnmappedKeys+1 {
		t.Errorf("unmapped codes: got %d; want at most %d", len(d.UnmappedCodes), maxUnmappedKeys+1)
	}
	var total uint64
	for _, u := range d.UnmappedCodes {
		total += u.Count
	}
	if total != 200 {
		t.Errorf("unmapped total: got %d; want 200 (folded, not lost)", total)
	}
}

func BenchmarkRecord(b *testing.B) {
	r := New(testConfig("").Settings, Options{FlushInterval: time.Hour})
	defer r.Close()
	ev := event.Request{Client: "acme", Status: 402, LegacyStatus: 403, Action: transform.Rewrite, LegacyCode: "insufficient_credits", Code: "insufficient_credits", Added: 400 * time.Microsecond}
	r.RecordRequest(&ev)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r.RecordRequest(&ev)
	}
}

func BenchmarkRecordParallel(b *testing.B) {
	r := New(testConfig("").Settings, Options{FlushInterval: time.Hour})
	defer r.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ev := event.Request{Client: "acme", Status: 200, LegacyStatus: 200, Action: transform.Wrap, Added: 300 * time.Microsecond}
		r.RecordRequest(&ev)
		for pb.Next() {
			r.RecordRequest(&ev)
		}
	})
}

func TestUpstreamErrorsHaveNoAddedLatency(t *testing.T) {
	r := newTestRecorder(t, testConfig(""), start())
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 502, UpstreamError: true, Added: -1})
	r.RecordRequest(&event.Request{Client: "acme", Envelope: true, Status: 200, LegacyStatus: 200, Action: transform.Wrap, Added: 2 * time.Millisecond})
	s := summary(t, r, "acme")
	if s.UpstreamErrors != 1 || s.AddedLatency.Count != 1 || s.AddedLatency.P50Ms < 1.8 || s.AddedLatency.P50Ms > 2.2 {
		t.Errorf("got %d upstream errors, latency %+v; want 1, one 2 ms sample", s.UpstreamErrors, s.AddedLatency)
	}
}
