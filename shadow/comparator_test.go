package shadow

import (
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestCompareWithCandidate(t *testing.T) {
	const (
		items        = `{"items":[{"id":1,"price":10,"updated_at":"2024-01-01"},{"id":2,"price":20,"updated_at":"2024-01-02"}]}`
		itemsEnv     = `{"data":{"items":[{"id":1,"price":10,"updated_at":"2024-01-01"},{"id":2,"price":20,"updated_at":"2024-01-02"}]},"success":true,"message":"OK"}`
		itemsPrice   = `{"data":{"items":[{"id":1,"price":11,"updated_at":"2024-01-01"},{"id":2,"price":20,"updated_at":"2024-01-02"}]},"success":true,"message":"OK"}`
		itemsNewTime = `{"data":{"items":[{"id":1,"price":10,"updated_at":"2025-06-01"},{"id":2,"price":20,"updated_at":"2025-06-02"}]},"success":true,"message":"OK"}`
		otherMessage = `{"data":null,"success":false,"message":"Not enough credits.","errors":[{"insufficient_credits":["Not enough credits."]}]}`
		otherCode    = `{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50","errors":[{"payment_required":["Insufficient credits. Required: 120, available: 50"]}]}`
	)
	ignoreTimes := func(c *Settings) { c.Shadow.Ignore = []string{"/data/items/*/updated_at"} }
	tests := []struct {
		name         string
		mod          func(*Settings)
		legacyStatus int
		legacyBody   string
		candStatus   int
		candBody     string
		want         event.Outcome
		wantPaths    []string // the report's collapsed paths
		wantOps      []string // the sample's operation paths
	}{
		{name: "success envelope matches", legacyStatus: 200, legacyBody: items, candStatus: 200, candBody: itemsEnv, want: event.OutcomeMatch},
		{name: "error envelope matches", legacyStatus: 403, legacyBody: creditsLegacy, candStatus: 402, candBody: creditsEnvelope, want: event.OutcomeMatch},
		{name: "key order and spacing do not matter", legacyStatus: 200, legacyBody: `{"a":1,"b":2}`, candStatus: 200,
			candBody: `{ "message": "OK", "success": true, "data": {"b": 2, "a": 1} }`, want: event.OutcomeMatch},
		{name: "one field differs", legacyStatus: 200, legacyBody: items, candStatus: 200, candBody: itemsPrice,
			want: event.OutcomeMismatch, wantPaths: []string{"/data/items/*/price"}, wantOps: []string{"/data/items/0/price"}},
		{name: "wildcard ignore hides the only difference", mod: ignoreTimes, legacyStatus: 200, legacyBody: items, candStatus: 200,
			candBody: itemsNewTime, want: event.OutcomeIgnored},
		{name: "wildcard ignore with equal values", mod: ignoreTimes, legacyStatus: 200, legacyBody: items, candStatus: 200,
			candBody: itemsEnv, want: event.OutcomeMatch},
		{name: "wildcard ignore leaves other differences", mod: ignoreTimes, legacyStatus: 200, legacyBody: items, candStatus: 200,
			candBody: itemsPrice, want: event.OutcomeMismatch, wantPaths: []string{"/data/items/*/price"}, wantOps: []string{"/data/items/0/price"}},
		{name: "status differs", legacyStatus: 403, legacyBody: creditsLegacy, candStatus: 403, candBody: creditsEnvelope,
			want: event.OutcomeMismatch, wantOps: []string{}},
		{name: "messages differ, not compared by default", legacyStatus: 403, legacyBody: creditsLegacy, candStatus: 402,
			candBody: otherMessage, want: event.OutcomeMatch},
		{name: "messages differ, compared", mod: func(c *Settings) { c.Shadow.CompareMessages = true }, legacyStatus: 403,
			legacyBody: creditsLegacy, candStatus: 402, candBody: otherMessage, want: event.OutcomeMismatch,
			wantPaths: []string{"/errors/*/insufficient_credits/*", "/message"}, wantOps: []string{"/message", "/errors/0/insufficient_credits/0"}},
		{name: "codes differ", legacyStatus: 403, legacyBody: creditsLegacy, candStatus: 402, candBody: otherCode, want: event.OutcomeMismatch,
			wantPaths: []string{"/errors/*/insufficient_credits", "/errors/*/payment_required"}, wantOps: []string{"/errors/0/insufficient_credits", "/errors/0/payment_required"}},
		{name: "big integers compared digit for digit", legacyStatus: 200, legacyBody: `{"id":12345678901234567890}`, candStatus: 200,
			candBody: `{"data":{"id":12345678901234567891},"success":true,"message":"OK"}`, want: event.OutcomeMismatch,
			wantPaths: []string{"/data/id"}, wantOps: []string{"/data/id"}},
		{name: "candidate body not JSON", legacyStatus: 200, legacyBody: items, candStatus: 200, candBody: `<html>oops`,
			want: event.OutcomeMismatch, wantPaths: []string{""}, wantOps: []string{""}},
		{name: "candidate JSON truncated", legacyStatus: 200, legacyBody: items, candStatus: 200, candBody: `{"data":{"items":[`,
			want: event.OutcomeMismatch, wantPaths: []string{""}, wantOps: []string{""}},
		{name: "legacy body not JSON either", legacyStatus: 200, legacyBody: `{"a":`, candStatus: 200, candBody: `{"data":{}}`,
			want: event.OutcomeMismatch, wantPaths: []string{""}, wantOps: []string{""}},
		{name: "candidate body too large", mod: func(c *Settings) { c.Shadow.MaxBodyBytes = 64 }, legacyStatus: 200,
			legacyBody: `{"a":1}`, candStatus: 200, candBody: `{"data":"` + strings.Repeat("x", 100) + `"}`, want: event.OutcomeSkippedTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jsonServer(t, tt.candStatus, tt.candBody)
			ev := onlyComparison(t, runOne(t, testConfig(srv.URL, tt.mod), newExchange(t, "GET", "/v1/items", tt.legacyStatus, tt.legacyBody)))
			if ev.Outcome != tt.want {
				t.Fatalf("got %q; want %q", ev.Outcome, tt.want)
			}
			if want := "GET /v1/items"; ev.Route != want {
				t.Errorf("route: got %q; want %q", ev.Route, want)
			}
			if ev.LegacyStatus != tt.legacyStatus {
				t.Errorf("legacy status: got %d; want %d", ev.LegacyStatus, tt.legacyStatus)
			}
			if ev.LegacyLatency != 12*time.Millisecond {
				t.Errorf("legacy latency: got %v; want %v", ev.LegacyLatency, 12*time.Millisecond)
			}
			// The candidate's status and latency are there when it
			// answered, and only then.
			wantCand := 0
			if tt.want.Compared() {
				wantCand = tt.candStatus
			}
			if ev.CandidateStatus != wantCand {
				t.Errorf("candidate status: got %d; want %d", ev.CandidateStatus, wantCand)
			}
			if got := ev.CandidateLatency > 0; got != tt.want.Compared() {
				t.Errorf("candidate latency: got %v; want one only when the candidate answered", ev.CandidateLatency)
			}
			paths := slices.Sorted(slices.Values(ev.Paths))
			want := slices.Sorted(slices.Values(tt.wantPaths))
			if !slices.Equal(paths, want) {
				t.Errorf("paths: got %q; want %q", paths, want)
			}
			if tt.want != event.OutcomeMismatch {
				if ev.Sample != nil {
					t.Errorf("got a sample %+v; want none", ev.Sample)
				}
				return
			}
			if ev.Sample == nil {
				t.Fatalf("got no sample; want one")
			}
			s := ev.Sample
			if s.Route != ev.Route || s.LegacyCode != ev.LegacyCode || s.LegacyStatus != ev.LegacyStatus {
				t.Errorf("sample's group: got %q %d %q; want the comparison's %q %d %q",
					s.Route, s.LegacyStatus, s.LegacyCode, ev.Route, ev.LegacyStatus, ev.LegacyCode)
			}
			if s.EnvelopeStatus != ev.EnvelopeStatus || s.CandidateStatus != ev.CandidateStatus {
				t.Errorf("sample statuses: got %d %d; want %d %d", s.EnvelopeStatus, s.CandidateStatus, ev.EnvelopeStatus, ev.CandidateStatus)
			}
			var ops []string
			for _, op := range s.Diff {
				ops = append(ops, op.Path)
			}
			slices.Sort(ops)
			wantOps := slices.Sorted(slices.Values(tt.wantOps))
			if !slices.Equal(ops, wantOps) {
				t.Errorf("diff ops: got %q; want %q", ops, wantOps)
			}
		})
	}
}

func TestStatusDifferenceIsReported(t *testing.T) {
	tests := []struct {
		name         string
		path         string
		legacyStatus int
		legacyBody   string
		candStatus   int
		candBody     string
		want         event.Outcome
		wantRoute    string
		wantCode     string
		wantRule     string
		wantEnvelope int
		// wantDry and wantCand are the status change series expected
		// (legacy->envelope, envelope->candidate), "" for none.
		wantDry, wantCand string
	}{
		{name: "candidate keeps the legacy status", path: "/v1/jobs/7", legacyStatus: 403, legacyBody: creditsLegacy,
			candStatus: 403, candBody: creditsEnvelope, want: event.OutcomeMismatch, wantRoute: "GET /v1/jobs/{id}",
			wantCode: "insufficient_credits", wantRule: "insufficient_credits", wantEnvelope: 402, wantDry: "403->402", wantCand: "402->403"},
		{name: "candidate answers the envelope's status", path: "/v1/jobs/8", legacyStatus: 403, legacyBody: creditsLegacy,
			candStatus: 402, candBody: creditsEnvelope, want: event.OutcomeMatch, wantRoute: "GET /v1/jobs/{id}",
			wantCode: "insufficient_credits", wantRule: "insufficient_credits", wantEnvelope: 402, wantDry: "403->402"},
		{name: "success keeps its status, the candidate fails", path: "/v1/items", legacyStatus: 200, legacyBody: `{"a":1}`,
			candStatus: 500, candBody: `{"data":null,"success":false,"message":"boom","errors":[]}`, want: event.OutcomeMismatch,
			wantRoute: "GET /v1/items", wantEnvelope: 200, wantCand: "200->500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jsonServer(t, tt.candStatus, tt.candBody)
			rec := &recorder{}
			c := New(testConfig(srv.URL, nil), Options{Registerer: prometheus.NewRegistry(), Recorder: rec})
			c.Submit(newExchange(t, "GET", tt.path, tt.legacyStatus, tt.legacyBody))
			c.Close()
			ev := onlyComparison(t, rec.all())
			if ev.Outcome != tt.want {
				t.Fatalf("outcome: got %q; want %q", ev.Outcome, tt.want)
			}
			checks := []struct{ name, got, want string }{
				{"route", ev.Route, tt.wantRoute},
				{"legacy code", ev.LegacyCode, tt.wantCode},
				{"rule", ev.Rule, tt.wantRule},
				{"statuses", fmt.Sprint(ev.LegacyStatus, ev.EnvelopeStatus, ev.CandidateStatus), fmt.Sprint(tt.legacyStatus, tt.wantEnvelope, tt.candStatus)},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s: got %q; want %q", ck.name, ck.got, ck.want)
				}
			}
			if tt.want == event.OutcomeMismatch {
				if ev.Sample == nil {
					t.Fatalf("got no sample; want one")
				}
				s := ev.Sample
				if got, want := fmt.Sprint(s.LegacyStatus, s.EnvelopeStatus, s.CandidateStatus), fmt.Sprint(tt.legacyStatus, tt.wantEnvelope, tt.candStatus); got != want {
					t.Errorf("sample statuses: got %q; want %q", got, want)
				}
			}
			series := func(v *prometheus.CounterVec, want string) {
				t.Helper()
				n := 0
				if want != "" {
					n = 1
					from, to, _ := strings.Cut(want, "->")
					if got := testutil.ToFloat64(v.WithLabelValues(from, to)); got != 1 {
						t.Errorf("status change %s: got %v; want 1", want, got)
					}
				}
				if got := testutil.CollectAndCount(v); got != n {
					t.Errorf("status change series: got %d; want %d", got, n)
				}
			}
			series(c.metrics.statusChanges, tt.wantDry)
			series(c.metrics.candidateStatus, tt.wantCand)
			if got := testutil.ToFloat64(c.metrics.total.WithLabelValues("acme", string(tt.want))); got != 1 {
				t.Errorf("envelope_proxy_shadow_total{acme,%s}: got %v; want 1", tt.want, got)
			}
		})
	}
}

// recorded is what a candidate received.
type recorded struct {
	method, path, query, body string
	header                    http.Header
}

func TestCandidateReceivesTheRequest(t *testing.T) {
	var mu sync.Mutex
	var got []recorded
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Clone()})
		mu.Unlock()
		// Answer gzip-compressed: the transport must decode it.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		io.WriteString(zw, `{"data":{"ok":true},"success":true,"message":"OK"}`)
		zw.Close()
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL+"/base/", func(c *Settings) { c.Shadow.Methods = []string{"GET", "POST"} })
	ex := newExchange(t, "POST", "/v1/jobs", 200, `{"ok":true}`)
	ex.RawQuery = "a=1&b=two"
	ex.Body = []byte(`{"name":"job"}`)
	ex.Header.Set("Accept-Encoding", "br")
	ex.Header.Set("Connection", "X-Hop")
	ex.Header.Set("X-Hop", "secret-hop")
	ex.Header.Set("Content-Type", "application/json")
	rep := runOne(t, cfg, ex)
	if o := outcomeOf(t, rep); o != event.OutcomeMatch {
		t.Errorf("outcome: got %q; want %q", o, event.OutcomeMatch)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("candidate got %d requests; want 1", len(got))
	}
	r := got[0]
	checks := []struct{ name, got, want string }{
		{"method", r.method, "POST"},
		{"path", r.path, "/base/v1/jobs"},
		{"query", r.query, "a=1&b=two"},
		{"body", r.body, `{"name":"job"}`},
		{ShadowRequestHeader, r.header.Get(ShadowRequestHeader), "1"},
		{"X-Api-Key", r.header.Get("X-Api-Key"), "acme-key"},
		{"Content-Type", r.header.Get("Content-Type"), "application/json"},
		{"Accept-Encoding", r.header.Get("Accept-Encoding"), "gzip"},
		{"X-Hop", r.header.Get("X-Hop"), ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, c.got, c.want)
		}
	}
}

func TestCandidateFailures(t *testing.T) {
	// The slow candidate holds each request until the client gives up:
	// the comparison's own timeout, not the test, decides.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()
	tests := []struct {
		name string
		url  string
		mod  func(*Settings)
		ex   func(*event.Capture)
		want event.Outcome
	}{
		{name: "timeout", url: slow.URL, mod: func(c *Settings) { c.Candidate.Timeout = 50 * time.Millisecond }, want: event.OutcomeCandidateTimeout},
		{name: "connection refused", url: loopback.RefusedURL(t), want: event.OutcomeCandidateError},
		{name: "legacy body truncated", url: slow.URL, ex: func(e *event.Capture) { e.LegacyTruncated, e.LegacyBody = true, nil }, want: event.OutcomeSkippedTooLarge},
		{name: "request body truncated", url: slow.URL, ex: func(e *event.Capture) { e.BodyTruncated = true }, want: event.OutcomeSkippedTooLarge},
		{name: "upstream failed", url: slow.URL, ex: func(e *event.Capture) { e.UpstreamError, e.LegacyStatus = "refused", 0 }, want: event.OutcomeUpstreamError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := newExchange(t, "GET", "/v1/items", 200, `{"a":1}`)
			if tt.ex != nil {
				tt.ex(ex)
			}
			ev := onlyComparison(t, runOne(t, testConfig(tt.url, tt.mod), ex))
			if ev.Outcome != tt.want {
				t.Errorf("got %q; want %q", ev.Outcome, tt.want)
			}
			// The exchange had a route and a legacy status; the candidate
			// gave no answer to count.
			if want := "GET /v1/items"; ev.Route != want {
				t.Errorf("route: got %q; want %q", ev.Route, want)
			}
			if ev.LegacyStatus != ex.LegacyStatus {
				t.Errorf("legacy status: got %d; want %d", ev.LegacyStatus, ex.LegacyStatus)
			}
			if ev.CandidateStatus != 0 || ev.CandidateLatency != 0 || ev.Sample != nil || len(ev.Paths) != 0 {
				t.Errorf("candidate: got status %d, latency %v, sample %v, paths %q; want none", ev.CandidateStatus, ev.CandidateLatency, ev.Sample, ev.Paths)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	srv := jsonServer(t, 200, `{"data":{"a":1},"success":true,"message":"OK"}`)
	tests := []struct {
		name       string
		candidate  string
		methods    []string
		replay     []config.ReplayRoute
		method     string
		path       string
		admit      bool
		replayable bool
		want       event.Outcome
	}{
		{name: "GET by default", candidate: srv.URL, method: "GET", admit: true, replayable: true, want: event.OutcomeMatch},
		{name: "POST dry-run, not replayed by default", candidate: srv.URL, method: "POST", admit: true, want: event.OutcomeSkippedMethod},
		{name: "POST replayed when listed", candidate: srv.URL, methods: []string{"get", "post"}, method: "POST", admit: true, replayable: true, want: event.OutcomeMatch},
		{name: "POST replayed on a shadow.replay route", candidate: srv.URL, replay: []config.ReplayRoute{{Method: "POST", Route: "/v1/{name}"}}, method: "POST", admit: true, replayable: true, want: event.OutcomeMatch},
		{name: "POST on another route", candidate: srv.URL, replay: []config.ReplayRoute{{Method: "POST", Route: "/v2/{name}"}}, method: "POST", admit: true, want: event.OutcomeSkippedMethod},
		{name: "PUT on a POST route", candidate: srv.URL, replay: []config.ReplayRoute{{Method: "POST", Route: "/v1/{name}"}}, method: "PUT", admit: true, want: event.OutcomeSkippedMethod},
		{name: "POST without a candidate", method: "POST", admit: true, want: event.OutcomeDryRun},
		{name: "CONNECT never", candidate: srv.URL, methods: []string{"GET", "CONNECT"}, method: "CONNECT", want: event.OutcomeSkippedMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(tt.candidate, func(c *Settings) {
				if tt.methods != nil {
					c.Shadow.Methods = tt.methods
				}
				c.Shadow.Replay = tt.replay
			})
			t.Run("Admit", func(t *testing.T) {
				rec := &recorder{}
				c := New(cfg, Options{Recorder: rec})
				admitted, replayable := c.Admit("acme", tt.method, "/v1/a", keyHash("k"))
				if admitted != tt.admit || replayable != tt.replayable {
					t.Errorf("Admit: got %v, %v; want %v, %v", admitted, replayable, tt.admit, tt.replayable)
				}
				c.Close()
				// An exchange is counted once compared, never when it is
				// admitted or refused.
				if evs := rec.all(); len(evs) != 0 {
					t.Errorf("got %+v; want nothing handed over", evs)
				}
			})
			t.Run("Submit", func(t *testing.T) {
				ev := onlyComparison(t, runOne(t, cfg, newExchange(t, tt.method, "/v1/a", 200, `{"a":1}`)))
				if ev.Outcome != tt.want {
					t.Errorf("got %q; want %q", ev.Outcome, tt.want)
				}
				wantRoute, wantStatus := "", 0
				if tt.admit {
					// Dry-run, replayed or not: the route and the
					// envelope's status are known.
					wantRoute, wantStatus = tt.method+" /v1/a", 200
				}
				if ev.Route != wantRoute || ev.EnvelopeStatus != wantStatus {
					t.Errorf("route and envelope status: got %q %d; want %q %d", ev.Route, ev.EnvelopeStatus, wantRoute, wantStatus)
				}
			})
		})
	}
}

func TestSaturationDropsWithoutBlocking(t *testing.T) {
	const maxInFlight, submitted = 2, 7
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	arrived := make(chan struct{}, submitted)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"a":1},"success":true,"message":"OK"}`)
	}))
	defer srv.Close()
	defer releaseOnce() // before srv.Close, if the test fails first
	// The candidate's timeout outlasts the test: the two comparisons must
	// stay blocked, whatever the machine's load, until release.
	rec := &recorder{}
	c := New(testConfig(srv.URL, func(c *Settings) {
		c.Shadow.MaxInFlight = maxInFlight
		c.Candidate.Timeout = 10 * time.Minute
	}), Options{Recorder: rec})
	for range submitted {
		// Each Submit returns while the candidate is still blocked on
		// release: it never waits for a comparison.
		c.Submit(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	}
	for i := range maxInFlight {
		await.Receive(t, fmt.Sprintf("comparison %d of %d at the candidate", i+1, maxInFlight), arrived)
	}
	// A drop is handed over by Submit itself, before it returns.
	if got := rec.outcomes("acme")[event.OutcomeDropped]; got != submitted-maxInFlight {
		t.Errorf("dropped while blocked: got %d; want %d", got, submitted-maxInFlight)
	}
	releaseOnce()
	c.Close()
	want := map[event.Outcome]uint64{event.OutcomeDropped: submitted - maxInFlight, event.OutcomeMatch: maxInFlight}
	if got := rec.outcomes("acme"); !maps.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	for _, ev := range rec.all() {
		if ev.Outcome == event.OutcomeDropped && (ev.Route != "" || ev.LegacyStatus != 0 || ev.Sample != nil) {
			t.Errorf("dropped: got route %q, status %d, sample %v; want none, decided before the exchange", ev.Route, ev.LegacyStatus, ev.Sample)
		}
	}
	c.Submit(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	if got := rec.outcomes("acme")[event.OutcomeDropped]; got != submitted-maxInFlight+1 {
		t.Errorf("dropped after Close: got %d; want %d", got, submitted-maxInFlight+1)
	}
}

func TestSamplingIsDeterministic(t *testing.T) {
	const sample, keys = 0.25, 20000
	c := New(testConfig("", func(c *Settings) { c.Shadow.Sample = sample }), Options{})
	defer c.Close()
	in := 0
	for i := range keys {
		h := keyHash(fmt.Sprintf("key-%d", i))
		first, _ := c.Admit("acme", "GET", "/", h)
		if again, _ := c.Admit("acme", "GET", "/", h); again != first {
			t.Fatalf("key %d: got %v then %v; want the same decision", i, first, again)
		}
		if first {
			in++
		}
	}
	if frac := float64(in) / keys; frac < sample-0.02 || frac > sample+0.02 {
		t.Errorf("sampled fraction: got %.3f; want %.2f ± 0.02", frac, sample)
	}
	tests := []struct {
		name   string
		sample float64
		hash   uint64
		want   bool
	}{
		{"no key, sample > 0", 0.01, 0, true},
		{"no key, sample 0", 0, 0, false},
		{"any key, sample 1", 1, ^uint64(0), true},
		{"any key, sample 0", 0, 1, false},
		{"low hash in", 0.5, 1 << 62, true},
		{"high hash out", 0.5, 3 << 62, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Swap(testConfig("", func(c *Settings) { c.Shadow.Sample = tt.sample }))
			if got, _ := c.Admit("acme", "GET", "/", tt.hash); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

// discard is an evidence that keeps nothing.
type discard struct{}

func (discard) RecordComparison(event.Comparison) {}

func TestAdmitDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name string
		rec  Recorder
	}{
		{"no recorder", nil},
		{"with a recorder", discard{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(testConfig("", func(c *Settings) { c.Shadow.Sample = 0.5 }), Options{Recorder: tt.rec})
			defer c.Close()
			in, out := uint64(1), ^uint64(0)
			allocs := testing.AllocsPerRun(1000, func() {
				c.Admit("acme", "GET", "/v1/a", in)
				c.Admit("acme", "GET", "/v1/a", out)
				c.Admit("acme", "POST", "/v1/detect", in)
			})
			if allocs != 0 {
				t.Errorf("got %v allocations per run; want 0", allocs)
			}
		})
	}
}

func TestSwap(t *testing.T) {
	srv := jsonServer(t, 200, `{"data":{"a":1},"success":true,"message":"OK"}`)
	rec := &recorder{}
	c := New(testConfig("", nil), Options{Recorder: rec})
	c.compareNow(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	c.Swap(testConfig(srv.URL, func(c *Settings) {
		c.Shadow.Methods = []string{"POST"}
		c.Shadow.Routes = []string{"/v1/{name}"}
	}))
	if _, replayable := c.Admit("acme", "GET", "/v1/a", 1); replayable {
		t.Errorf("Admit GET after Swap: got replayable; want not (only POST is replayed)")
	}
	c.Submit(newExchange(t, "POST", "/v1/a", 200, `{"a":1}`))
	c.Close()
	want := map[event.Outcome]uint64{event.OutcomeDryRun: 1, event.OutcomeMatch: 1}
	if got := rec.outcomes("acme"); !maps.Equal(got, want) {
		t.Errorf("got %v; want %v", got, want)
	}
	if got, want := rec.routes(), []string{"GET /v1/a", "POST /v1/{name}"}; !slices.Equal(got, want) {
		t.Errorf("routes: got %q; want %q", got, want)
	}
}
