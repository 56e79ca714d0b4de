package shadow

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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
			rep := runOne(t, testConfig(srv.URL, tt.mod), newExchange(t, "GET", "/v1/items", tt.legacyStatus, tt.legacyBody))
			if got := outcomeOf(t, rep); got != tt.want {
				t.Fatalf("got %q; want %q", got, tt.want)
			}
			g := onlyGroup(t, rep)
			var paths []string
			for p := range g.Paths {
				paths = append(paths, p)
			}
			slices.Sort(paths)
			want := slices.Clone(tt.wantPaths)
			slices.Sort(want)
			if !slices.Equal(paths, want) {
				t.Errorf("paths: got %q; want %q", paths, want)
			}
			if tt.want != event.OutcomeMismatch {
				if len(g.Samples) != 0 {
					t.Errorf("got %d samples; want none", len(g.Samples))
				}
				return
			}
			if len(g.Samples) != 1 {
				t.Fatalf("got %d samples; want 1", len(g.Samples))
			}
			var ops []string
			for _, op := range g.Samples[0].Diff {
				ops = append(ops, op.Path)
			}
			slices.Sort(ops)
			wantOps := slices.Clone(tt.wantOps)
			slices.Sort(wantOps)
			if !slices.Equal(ops, wantOps) && !(len(ops) == 0 && len(wantOps) == 0) {
				t.Errorf("diff ops: got %q; want %q", ops, wantOps)
			}
		})
	}
}

func TestStatusDifferenceIsReported(t *testing.T) {
	srv := jsonServer(t, 403, creditsEnvelope)
	reg := prometheus.NewRegistry()
	c := New(testConfig(srv.URL, nil), Options{Registerer: reg})
	c.Submit(newExchange(t, "GET", "/v1/jobs/7", 403, creditsLegacy))
	c.Close()
	g := onlyGroup(t, c.Report(""))
	want := []StatusChange{
		{Stage: stageCandidate, From: 402, To: 403, Count: 1},
		{Stage: stageEnvelope, From: 403, To: 402, Count: 1},
	}
	if !slices.Equal(g.StatusChanges, want) {
		t.Errorf("status changes: got %+v; want %+v", g.StatusChanges, want)
	}
	s := g.Samples[0]
	if got := fmt.Sprint(s.LegacyStatus, s.EnvelopeStatus, s.CandidateStatus); got != "403 402 403" {
		t.Errorf("sample statuses: got %q; want %q", got, "403 402 403")
	}
	if got := testutil.ToFloat64(c.metrics.candidateStatus.WithLabelValues("402", "403")); got != 1 {
		t.Errorf("candidate status mismatches: got %v; want 1", got)
	}
	if got := testutil.ToFloat64(c.metrics.total.WithLabelValues("acme", "mismatch")); got != 1 {
		t.Errorf("envelope_proxy_shadow_total{acme,mismatch}: got %v; want 1", got)
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
			rep := runOne(t, testConfig(tt.url, tt.mod), ex)
			if got := outcomeOf(t, rep); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	srv := jsonServer(t, 200, `{"data":{"a":1},"success":true,"message":"OK"}`)
	tests := []struct {
		name    string
		methods []string
		method  string
		admit   bool
		want    event.Outcome
	}{
		{name: "GET by default", method: "GET", admit: true, want: event.OutcomeMatch},
		{name: "POST not by default", method: "POST", admit: false, want: event.OutcomeSkippedMethod},
		{name: "POST when listed", methods: []string{"get", "post"}, method: "POST", admit: true, want: event.OutcomeMatch},
		{name: "CONNECT never", methods: []string{"GET", "CONNECT"}, method: "CONNECT", admit: false, want: event.OutcomeSkippedMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(srv.URL, func(c *Settings) {
				if tt.methods != nil {
					c.Shadow.Methods = tt.methods
				}
			})
			t.Run("Admit", func(t *testing.T) {
				c := New(cfg, Options{})
				if got := c.Admit("acme", tt.method, keyHash("k")); got != tt.admit {
					t.Errorf("Admit: got %v; want %v", got, tt.admit)
				}
				c.Close()
				if !tt.admit {
					if got := outcomeOf(t, c.Report("")); got != event.OutcomeSkippedMethod {
						t.Errorf("got %q; want %q", got, event.OutcomeSkippedMethod)
					}
				}
			})
			t.Run("Submit", func(t *testing.T) {
				if got := outcomeOf(t, runOne(t, cfg, newExchange(t, tt.method, "/v1/a", 200, `{"a":1}`))); got != tt.want {
					t.Errorf("got %q; want %q", got, tt.want)
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
	c := New(testConfig(srv.URL, func(c *Settings) {
		c.Shadow.MaxInFlight = maxInFlight
		c.Candidate.Timeout = 10 * time.Minute
	}), Options{})
	for range submitted {
		// Each Submit returns while the candidate is still blocked on
		// release: it never waits for a comparison.
		c.Submit(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	}
	for i := range maxInFlight {
		await.Receive(t, fmt.Sprintf("comparison %d of %d at the candidate", i+1, maxInFlight), arrived)
	}
	if got := c.Report("acme").Clients[0].Outcomes[event.OutcomeDropped]; got != submitted-maxInFlight {
		t.Errorf("dropped while blocked: got %d; want %d", got, submitted-maxInFlight)
	}
	releaseOnce()
	c.Close()
	rep := c.Report("acme")
	want := map[event.Outcome]uint64{event.OutcomeDropped: submitted - maxInFlight, event.OutcomeMatch: maxInFlight}
	if got := rep.Clients[0].Outcomes; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v; want %v", got, want)
	}
	c.Submit(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	if got := c.Report("acme").Clients[0].Outcomes[event.OutcomeDropped]; got != submitted-maxInFlight+1 {
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
		first := c.Admit("acme", "GET", h)
		if again := c.Admit("acme", "GET", h); again != first {
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
			if got := c.Admit("acme", "GET", tt.hash); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestAdmitDoesNotAllocate(t *testing.T) {
	c := New(testConfig("", func(c *Settings) { c.Shadow.Sample = 0.5 }), Options{})
	defer c.Close()
	in, out := uint64(1), ^uint64(0)
	c.Admit("acme", "POST", in) // the client's first count creates its stats
	allocs := testing.AllocsPerRun(1000, func() {
		c.Admit("acme", "GET", in)
		c.Admit("acme", "GET", out)
		c.Admit("acme", "POST", in)
	})
	if allocs != 0 {
		t.Errorf("got %v allocations per run; want 0", allocs)
	}
}

func TestSwap(t *testing.T) {
	srv := jsonServer(t, 200, `{"data":{"a":1},"success":true,"message":"OK"}`)
	c := New(testConfig("", nil), Options{})
	c.compareNow(newExchange(t, "GET", "/v1/a", 200, `{"a":1}`))
	c.Swap(testConfig(srv.URL, func(c *Settings) {
		c.Shadow.Methods = []string{"POST"}
		c.Shadow.Routes = []string{"/v1/{name}"}
	}))
	if c.Admit("acme", "GET", 1) {
		t.Errorf("Admit GET after Swap: got true; want false")
	}
	c.Submit(newExchange(t, "POST", "/v1/a", 200, `{"a":1}`))
	c.Close()
	rep := c.Report("acme")
	want := map[event.Outcome]uint64{event.OutcomeDryRun: 1, event.OutcomeMatch: 1, event.OutcomeSkippedMethod: 1}
	if got := rep.Clients[0].Outcomes; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v; want %v", got, want)
	}
	var routes []string
	for _, g := range rep.Groups {
		routes = append(routes, g.Method+" "+g.Route)
	}
	slices.Sort(routes)
	if want := []string{"GET /v1/a", "POST /v1/{name}"}; !slices.Equal(routes, want) {
		t.Errorf("groups: got %q; want %q", routes, want)
	}
}
