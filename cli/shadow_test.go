package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// shadowUpstreams starts a legacy backend and a candidate that answers the
// same routes in the envelope; block holds the candidate's /block answers
// until closed.
func shadowUpstreams(t *testing.T, block chan struct{}, candidateDone *atomic.Int32, seenMethods *sync.Map) (legacy, candidate *httptest.Server) {
	legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/credits", "/v1/credits-wrong-status":
			w.WriteHeader(403)
			io.WriteString(w, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`)
		case "/v1/items/17":
			io.WriteString(w, `{"items":[{"id":1,"price":10,"updated_at":"2026-01-01"}]}`)
		case "/v1/price/17":
			io.WriteString(w, `{"id":17,"price":10}`)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	}))
	candidate = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer candidateDone.Add(1)
		seenMethods.Store(r.Method+" "+r.URL.Path, r.Header.Get("X-Shadow-Request"))
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/credits":
			w.WriteHeader(402)
			io.WriteString(w, `{"data":null,"success":false,"message":"You need more credits","errors":[{"insufficient_credits":["You need more credits"]}]}`)
		case "/v1/credits-wrong-status":
			w.WriteHeader(403)
			io.WriteString(w, `{"data":null,"success":false,"message":"x","errors":[{"insufficient_credits":["x"]}]}`)
		case "/v1/items/17":
			io.WriteString(w, `{"data":{"items":[{"id":1,"price":10,"updated_at":"2026-11-23"}]},"success":true,"message":"OK"}`)
		case "/v1/price/17":
			io.WriteString(w, `{"data":{"id":17,"price":11},"success":true,"message":"OK"}`)
		case "/block":
			<-block
			io.WriteString(w, `{"data":{"ok":true},"success":true,"message":"OK"}`)
		default:
			io.WriteString(w, `{"data":{"ok":true},"success":true,"message":"OK"}`)
		}
	}))
	t.Cleanup(legacy.Close)
	t.Cleanup(candidate.Close)
	return legacy, candidate
}

// shadowReport fetches /shadow/report of client, as the evidence keeps it.
func (in *instance) shadowReport(client string) evidence.ShadowReport {
	in.t.Helper()
	resp, err := await.Client.Get(in.admin + "/shadow/report?client=" + client)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r evidence.ShadowReport
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		in.t.Fatal(err)
	}
	return r
}

// shadowOutcomes returns the report's count of outcome o for client, 0
// when the client has none yet.
func shadowOutcomes(r evidence.ShadowReport, client string, o event.Outcome) uint64 {
	for _, c := range r.Clients {
		if c.Client == client {
			return c.Outcomes[string(o)]
		}
	}
	return 0
}

// group returns the report's group of route ("GET /v1/credits"), nil when
// there is none.
func group(r evidence.ShadowReport, route string) *evidence.ShadowGroup {
	for i := range r.Groups {
		if r.Groups[i].Route == route {
			return &r.Groups[i]
		}
	}
	return nil
}

func TestShadowThroughTheProxy(t *testing.T) {
	block := make(chan struct{})
	var candidateDone atomic.Int32
	var seen sync.Map
	legacy, candidate := shadowUpstreams(t, block, &candidateDone, &seen)
	defer close(block)
	in := startServe(t, configYAML(legacy.URL, "shadow", `shadow:
  ignore: [/data/items/*/updated_at]
  max_in_flight: 2
candidate: {url: "`+candidate.URL+`", timeout: 10m}
`))

	// The candidate's timeout is far above the test's length: the
	// comparisons blocked on /block below must hold their places until the
	// end, whatever the machine's load.

	// The client gets the legacy bytes, exactly.
	cases := []struct{ method, path string }{
		{"GET", "/v1/credits"}, {"GET", "/v1/credits-wrong-status"}, {"GET", "/v1/items/17"}, {"GET", "/v1/price/17"}, {"GET", "/v1/ok"},
	}
	var total, dropped uint64
	for _, c := range cases {
		// One comparison at a time: with max_in_flight 2, a client faster
		// than the candidate would otherwise see later exchanges dropped,
		// which the saturation case below tests on purpose. A comparison is
		// counted a moment before it frees its place, so on a loaded
		// machine an exchange can still be dropped; it is then sent again,
		// after a pause that grows with each attempt (at most 2.2 s in all).
		for attempt := 1; ; attempt++ {
			status, body := in.get(c.path+"?api_key=should-not-leak", acmeKey)
			direct, want := await.Get(t, legacy.URL+c.path)
			if status != direct.StatusCode || body != string(want) {
				t.Errorf("%s: got %d %q; want the legacy %d %q", c.path, status, body, direct.StatusCode, want)
			}
			total++
			var r evidence.ShadowReport
			await.Until(t, c.path+" compared", func() bool {
				r = in.shadowReport("acme")
				return len(r.Clients) > 0 && r.Clients[0].Total >= total
			})
			if d := shadowOutcomes(r, "acme", event.OutcomeDropped); d == dropped {
				break
			} else if dropped = d; attempt == 10 {
				t.Fatalf("%s: dropped %d times in a row with one comparison at a time", c.path, attempt)
			}
			time.Sleep(time.Duration(attempt) * 40 * time.Millisecond)
		}
	}
	r := in.shadowReport("acme")
	tests := []struct {
		route   string
		outcome event.Outcome
		path    string // a differing JSON Pointer that must be reported
		status  int    // the legacy status
		code    string // the legacy code
	}{
		{"GET /v1/credits", event.OutcomeMatch, "", 403, "insufficient_credits"},
		{"GET /v1/credits-wrong-status", event.OutcomeMismatch, "", 403, "insufficient_credits"},
		{"GET /v1/items/{id}", event.OutcomeIgnored, "", 200, ""},
		{"GET /v1/price/{id}", event.OutcomeMismatch, "/data/price", 200, ""},
		{"GET /v1/ok", event.OutcomeMatch, "", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.route, func(t *testing.T) {
			g := group(r, tc.route)
			if g == nil {
				t.Fatalf("no group for %s in %+v", tc.route, r.Groups)
			}
			if g.Outcomes[string(tc.outcome)] != 1 || g.Total != 1 {
				t.Errorf("outcomes: got %v; want one %q", g.Outcomes, tc.outcome)
			}
			if g.LegacyStatus != tc.status || g.LegacyCode != tc.code {
				t.Errorf("legacy status and code: got %d %q; want %d %q", g.LegacyStatus, g.LegacyCode, tc.status, tc.code)
			}
			if tc.path != "" && g.Paths[tc.path] != 1 {
				t.Errorf("paths: got %v; want %q once", g.Paths, tc.path)
			}
			// A mismatch's sample is in its group.
			wantSamples := 0
			if tc.outcome == event.OutcomeMismatch {
				wantSamples = 1
			}
			if len(g.Samples) != wantSamples {
				t.Fatalf("samples: got %d; want %d", len(g.Samples), wantSamples)
			}
			for _, s := range g.Samples {
				if s.Route != g.Route || s.LegacyStatus != g.LegacyStatus || s.LegacyCode != g.LegacyCode {
					t.Errorf("sample: got %q %d %q; want its group's", s.Route, s.LegacyStatus, s.LegacyCode)
				}
			}
		})
	}
	for _, want := range []struct {
		route, what, stage string
		from, to           int
	}{
		{"GET /v1/credits", "the dry run's 403 -> 402", "envelope", 403, 402},
		{"GET /v1/credits-wrong-status", "envelope 402 vs candidate 403", "candidate", 402, 403},
	} {
		if g := group(r, want.route); g != nil && !slices.ContainsFunc(g.StatusChanges, func(sc evidence.StatusChange) bool {
			return sc.Stage == want.stage && sc.From == want.from && sc.To == want.to
		}) {
			t.Errorf("status changes: got %+v; want %s", g.StatusChanges, want.what)
		}
	}
	if v, ok := seen.Load("GET /v1/ok"); !ok || v != "1" {
		t.Errorf("the candidate got X-Shadow-Request %v; want 1", v)
	}

	t.Run("POST is dry-run, not replayed", func(t *testing.T) {
		req, _ := http.NewRequest("POST", in.client+"/v1/jobs", strings.NewReader(`{"a":1}`))
		req.Header.Set("X-API-Key", acmeKey)
		await.Do(t, req)
		await.Until(t, "skipped_method", func() bool {
			return shadowOutcomes(in.shadowReport("acme"), "acme", event.OutcomeSkippedMethod) == 1
		})
		// The dry run is recorded: the POST's route, with its statuses.
		found := false
		for _, g := range in.shadowReport("acme").Groups {
			found = found || (g.Route == "POST /v1/jobs" && g.Outcomes[string(event.OutcomeSkippedMethod)] == 1)
		}
		if !found {
			t.Errorf("no group for the POST's dry run: %+v", in.shadowReport("acme").Groups)
		}
		if _, ok := seen.Load("POST /v1/jobs"); ok {
			t.Errorf("the candidate received a POST")
		}
	})
	t.Run("a slow candidate does not slow the client", func(t *testing.T) {
		before := candidateDone.Load()
		status, _ := in.get("/block", acmeKey)
		// The client's response is complete while the candidate's handler
		// is still blocked: the comparison runs after, on the side.
		if status != 200 || candidateDone.Load() != before {
			t.Fatalf("got %d with the candidate done %d times; want 200 before it returned", status, candidateDone.Load()-before)
		}
	})
	t.Run("saturation drops, never blocks", func(t *testing.T) {
		// One comparison is blocked on /block already; max_in_flight is 2.
		for i := 0; i < 5; i++ {
			if status, _ := in.get("/block", acmeKey); status != 200 {
				t.Fatalf("request %d: got %d", i, status)
			}
		}
		await.Until(t, "dropped exchanges", func() bool {
			return shadowOutcomes(in.shadowReport("acme"), "acme", event.OutcomeDropped) >= 4
		})
	})
	t.Run("no key in the report", func(t *testing.T) {
		_, b := await.Get(t, in.admin+"/shadow/report")
		for _, secret := range []string{acmeKey, "should-not-leak"} {
			if strings.Contains(string(b), secret) {
				t.Errorf("the report contains %q", secret)
			}
		}
	})
}

// TestShadowReplaysRequestBody mirrors a listed write method: the candidate
// gets the client's body exactly, and the client its legacy answer.
func TestShadowReplaysRequestBody(t *testing.T) {
	got := make(chan string, 1)
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1}`)
	}))
	defer legacy.Close()
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case got <- r.Method + " " + string(b):
		default:
			t.Errorf("the candidate got a second request: %s %q", r.Method, b)
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"id":1},"success":true,"message":"OK"}`)
	}))
	defer candidate.Close()
	in := startServe(t, configYAML(legacy.URL, "shadow", "shadow: {methods: [POST]}\ncandidate: {url: \""+candidate.URL+"\"}\n"))
	body := `{"session_id":"abc","frames":[1,2,3]}`
	req, _ := http.NewRequest("POST", in.client+"/v1/detect", strings.NewReader(body))
	req.Header.Set("X-API-Key", acmeKey)
	_, b := await.Do(t, req)
	if string(b) != `{"id":1}` {
		t.Errorf("client: got %q; want the legacy body", b)
	}
	if g := await.Receive(t, "the mirrored request", got); g != "POST "+body {
		t.Errorf("candidate: got %q; want %q", g, "POST "+body)
	}
	await.Until(t, "the match", func() bool { return shadowOutcomes(in.shadowReport("acme"), "acme", event.OutcomeMatch) == 1 })
	if g := group(in.shadowReport("acme"), "POST /v1/detect"); g == nil || g.Outcomes[string(event.OutcomeMatch)] != 1 {
		t.Errorf("group POST /v1/detect: got %+v; want one match", g)
	}
}
