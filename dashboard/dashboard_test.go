package dashboard

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// staticEvidence is an Evidence over fixed data. Its fields may be changed
// while a server reads them, through set.
type staticEvidence struct {
	mu       sync.Mutex
	overview evidence.Overview
	details  map[string]evidence.ClientDetail
	// byReplica returns a client's detail limited to one replica; nil
	// knows no replica.
	byReplica func(d evidence.ClientDetail, replica string) (evidence.ClientDetail, bool)
	// report is the shadow report of every client, and suggestions the
	// suggestions of every client, each rule naming its clients; the
	// ignore entries are the candidate's learned noise, every client's,
	// as the recorder's are.
	report      evidence.ShadowReport
	suggestions evidence.Suggestions
	// err fails ReplicaClient, as an unreadable store does.
	err error
	// calls are the arguments of every ReplicaClient, ShadowReport and
	// Suggestions call, as "client NAME REPLICA", "report CLIENT" and
	// "suggestions CLIENT".
	calls []string
}

func (s *staticEvidence) set(f func(*staticEvidence)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *staticEvidence) called() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

func (s *staticEvidence) Overview() evidence.Overview {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.overview
}

func (s *staticEvidence) ReplicaClient(name, replica string) (evidence.ClientDetail, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "client "+name+" "+replica)
	if s.err != nil {
		return evidence.ClientDetail{}, false, s.err
	}
	d, ok := s.details[name]
	if !ok || replica == "" {
		return d, ok, nil
	}
	if s.byReplica == nil {
		return evidence.ClientDetail{}, false, nil
	}
	d, ok = s.byReplica(d, replica)
	d.Replica = replica
	return d, ok, nil
}

func (s *staticEvidence) Suggestions(client string) evidence.Suggestions {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "suggestions "+client)
	sg := s.suggestions
	sg.Client = client
	if client == "" {
		return sg
	}
	sg.Rules = []evidence.RuleSuggestion{}
	for _, r := range s.suggestions.Rules {
		if slices.Contains(r.Clients, client) {
			sg.Rules = append(sg.Rules, r)
		}
	}
	return sg
}

func (s *staticEvidence) ShadowReport(client string) evidence.ShadowReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "report "+client)
	rep := s.report
	if client == "" {
		return rep
	}
	rep.Clients, rep.Groups = []evidence.ShadowClient{}, []evidence.ShadowGroup{}
	for _, c := range s.report.Clients {
		if c.Client == client {
			rep.Clients = append(rep.Clients, c)
		}
	}
	for _, g := range s.report.Groups {
		if g.Client == client {
			rep.Groups = append(rep.Groups, g)
		}
	}
	return rep
}

// smallSource has two clients, one of them with a shadow sample whose
// body holds markup, to show it travels as data.
func smallSource() *staticEvidence {
	gen := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	acme := evidence.ClientSummary{
		Name: "acme", Kind: config.KindClient, Mode: "shadow",
		Requests: 3112, Share: 0.75,
		Classes:      map[string]uint64{"2xx": 3000, "4xx": 100, "5xx": 12},
		Unmapped:     0,
		AddedLatency: evidence.Latency{Count: 3112, P50Ms: 0.4, P99Ms: 2.5},
		Shadow: &evidence.ShadowSummary{
			Outcomes: map[string]uint64{"match": 3100, "mismatch": 12},
			Compared: 3112, MismatchRatio: 12.0 / 3112,
		},
		Verdict: verdict.Verdict{State: verdict.NotReady, Reasons: []string{"mismatch 0.39% > 0.1% over 24h, 3,112 compared"}},
	}
	legacy := evidence.ClientSummary{
		Name: "old-<b>app</b>", Kind: config.KindCohort, Mode: "legacy", Requests: 1000, Share: 0.25,
		Classes: map[string]uint64{"2xx": 1000},
		Verdict: verdict.Verdict{State: verdict.InsufficientEvidence, Reasons: []string{"mode legacy: nothing is rewritten or compared (1,000 requests over 24h); switch it to shadow to gather evidence"}},
	}
	sample := event.Sample{
		Time: gen, Request: "GET /v1/jobs/{id}", Route: "GET /v1/jobs/{id}", LegacyStatus: 200, EnvelopeStatus: 200, CandidateStatus: 200,
		LegacyBody:    `{"price":10}`,
		EnvelopeBody:  `{"data":{"price":10},"success":true,"message":"<script>alert(1)</script>","errors":[]}`,
		CandidateBody: `{"data":{"price":"10"},"success":true,"message":"","errors":[]}`,
		Diff:          []event.DiffOp{{Op: "replace", Path: "/data/price", Value: `"10"`}},
	}
	return &staticEvidence{
		overview: evidence.Overview{
			GeneratedAt: gen, Window: "24h",
			Thresholds: verdict.Thresholds{MinRequests: 1000, MaxMismatchRatio: 0.001},
			State: evidence.StateInfo{
				Persistent: true, Kind: "postgres", Location: "postgres://evidence@db.internal:5432/envelope",
				Replica: "proxy-a", Pending: 2, Since: gen.Add(-48 * time.Hour),
			},
			Replicas: []evidence.ReplicaSummary{
				{Name: "proxy-a", Self: true, State: evidence.ReplicaActive, Started: gen.Add(-30 * time.Hour), LastSeen: gen.Add(-2 * time.Second), Requests: 3000, Share: 3000.0 / 4112},
				{Name: "proxy-b", State: evidence.ReplicaSilent, Started: gen.Add(-30 * time.Hour), LastSeen: gen.Add(-10 * time.Minute), Requests: 1112, Share: 1112.0 / 4112},
			},
			FleetWarning: "silent while others write: proxy-b (nothing written for more than 15s, and not stopped cleanly): stuck, cut off from the store, or gone",
			Requests:     4112,
			Clients:      []evidence.ClientSummary{acme, legacy},
		},
		byReplica: func(d evidence.ClientDetail, replica string) (evidence.ClientDetail, bool) {
			switch replica {
			case "proxy-a":
				d.Requests, d.Share = 3000, 3000.0/4112
			case "proxy-b":
				d.Requests, d.Share, d.Samples = 112, 112.0/4112, nil
			default:
				return evidence.ClientDetail{}, false
			}
			return d, true
		},
		report: evidence.ShadowReport{
			GeneratedAt: gen, Window: "24h",
			Clients: []evidence.ShadowClient{
				{Client: "acme", Total: 3112, Outcomes: map[string]uint64{"match": 3100, "mismatch": 12}},
				{Client: "globex", Total: 7, Outcomes: map[string]uint64{"skipped_method": 7}},
			},
			Groups: []evidence.ShadowGroup{{
				Client: "acme", Route: "GET /v1/jobs/{id}", LegacyStatus: 200, Total: 3112,
				Outcomes:         map[string]uint64{"match": 3100, "mismatch": 12},
				Paths:            map[string]uint64{"/data/price": 12},
				StatusChanges:    []evidence.StatusChange{{Stage: "candidate", From: 200, To: 500, Count: 1}},
				LegacyLatency:    evidence.Latency{Count: 3112, P50Ms: 12, P99Ms: 80},
				CandidateLatency: evidence.Latency{Count: 3112, P50Ms: 9, P99Ms: 41},
				Samples:          []event.Sample{sample},
			}},
		},
		suggestions: evidence.Suggestions{
			GeneratedAt: gen, Window: "24h",
			Rules: []evidence.RuleSuggestion{{
				Kind: evidence.SuggestUnmapped, LegacyStatus: 403, LegacyCode: "account_suspended", Clients: []string{"acme"}, Count: 4,
				Reason: "legacy 403 account_suspended fell to the generic fallback 4 times",
				Rule:   transform.Rule{Name: "account_suspended", Match: transform.Match{Status: 403, Code: "account_suspended"}, Status: 403, Code: "account_suspended"},
				Sample: `{"error": "Suspended", "code": "account_suspended"}`,
			}},
			Ignore: []evidence.IgnoreSuggestion{{Pointer: "/data/updated_at", Routes: []string{"GET /v1/jobs/{id}"}, Count: 5, Checks: 5}},
		},
		details: map[string]evidence.ClientDetail{
			"acme": {
				ClientSummary: acme,
				Routes:        []evidence.RouteCount{{Route: "GET /v1/jobs/{id}", Compared: 3112, Mismatches: 12}},
				Paths:         []evidence.PathCount{{Path: "/data/price", Count: 12}},
				Samples:       []event.Sample{sample},
				// Mapped by a rule since: listed as covered, not counted.
				UnmappedCodes: []evidence.UnmappedCode{{LegacyStatus: 403, Code: "account_suspended", Count: 4, Covered: true, Sample: `{"error": "Suspended", "code": "account_suspended"}`, SampleTime: gen}},
				Series:        evidence.Series{StepSeconds: 300, Points: []evidence.Point{{Time: gen.Unix() - 300, Requests: 10, Compared: 10, Mismatches: 1}}},
			},
		},
	}
}

// newServer serves the dashboard's routes the way the admin server
// registers them: "GET "+path.
func newServer(t *testing.T, src Evidence) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	for p, h := range New(src, Options{}).Routes() {
		mux.Handle("GET "+p, h)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := await.Client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// securityHeaders are the headers every dashboard response carries.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"X-Frame-Options":         "DENY",
}

// checkHeaders fails t for each security header h lacks, and for a JSON
// response that is not application/json or may be cached.
func checkHeaders(t *testing.T, h http.Header, json bool) {
	t.Helper()
	for k, want := range securityHeaders {
		if got := h.Get(k); got != want {
			t.Errorf("%s: got %q; want %q", k, got, want)
		}
	}
	if json {
		if got, want := h.Get("Content-Type"), "application/json"; got != want {
			t.Errorf("Content-Type: got %q; want %q", got, want)
		}
		if got, want := h.Get("Cache-Control"), "no-store"; got != want {
			t.Errorf("Cache-Control: got %q; want %q", got, want)
		}
	}
}

func TestRoutes(t *testing.T) {
	d := New(smallSource(), Options{})
	var got []string
	for p := range d.Routes() {
		got = append(got, p)
	}
	want := []string{"/{$}", "/dashboard/", "/api/clients", "/api/clients/{name}", "/shadow/report", "/api/suggestions"}
	for _, w := range want {
		if _, ok := d.Routes()[w]; !ok {
			t.Errorf("Routes() lacks %q; has %q", w, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("Routes() has %d paths %q; want %d", len(got), got, len(want))
	}
}

func TestResponses(t *testing.T) {
	ts := newServer(t, smallSource())
	tests := []struct {
		name        string
		path        string
		status      int
		contentType string
		contains    string
	}{
		{"page at root", "/", 200, "text/html; charset=utf-8", `<script src="/dashboard/assets/app.js"`},
		{"page under dashboard", "/dashboard/", 200, "text/html; charset=utf-8", `id="filter-verdict"`},
		{"page with the fleet", "/", 200, "text/html; charset=utf-8", `id="replicas-body"`},
		{"page with the replica selector", "/", 200, "text/html; charset=utf-8", `id="detail-replica"`},
		{"script", "/dashboard/assets/app.js", 200, "text/javascript; charset=utf-8", "'use strict'"},
		{"style sheet", "/dashboard/assets/app.css", 200, "text/css; charset=utf-8", ".badge"},
		{"icon", "/dashboard/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"overview", "/api/clients", 200, "application/json", `"window":"24h"`},
		{"overview with the fleet", "/api/clients", 200, "application/json", `"replicas":[{"name":"proxy-a","self":true,"state":"active"`},
		{"detail", "/api/clients/acme", 200, "application/json", `"/data/price"`},
		{"detail with a covered code", "/api/clients/acme", 200, "application/json", `"code":"account_suspended","count":4,"covered":true`},
		{"detail of a replica", "/api/clients/acme?replica=proxy-b", 200, "application/json", `"replica":"proxy-b"`},
		{"detail of an unknown replica", "/api/clients/acme?replica=proxy-z", 404, "application/json", `{"error":"unknown client"}`},
		{"shadow report", "/shadow/report", 200, "application/json", `"route":"GET /v1/jobs/{id}"`},
		{"shadow report of a client", "/shadow/report?client=globex", 200, "application/json", `"client":"globex"`},
		{"shadow report of nobody", "/shadow/report?client=nobody", 200, "application/json", `"clients":[],"groups":[]`},
		{"unknown client", "/api/clients/nobody", 404, "application/json", `{"error":"unknown client"}`},
		{"suggestions", "/api/suggestions", 200, "application/json", `"match":{"status":403,"code":"account_suspended"}`},
		{"suggestions of another client", "/api/suggestions?client=globex", 200, "application/json", `"rules":[],"ignore":[{"pointer":"/data/updated_at"`},
		{"suggestions as YAML", "/api/suggestions?format=yaml", 200, "application/yaml; charset=utf-8", "    match: {status: 403, code: account_suspended}\n"},
		{"suggestions in no known format", "/api/suggestions?format=xml", 400, "application/json", `"error":"format: json or yaml"`},
		{"unknown asset", "/dashboard/assets/nothing.js", 404, "text/plain; charset=utf-8", "not found"},
		{"asset directory", "/dashboard/assets/", 404, "text/plain; charset=utf-8", "not found"},
		{"other path under dashboard", "/dashboard/app.js", 404, "text/plain; charset=utf-8", "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(t, ts.URL+tt.path)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d; want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q; want %q", got, tt.contentType)
			}
			if !strings.Contains(body, tt.contains) {
				t.Errorf("body %.300q lacks %q", body, tt.contains)
			}
			checkHeaders(t, resp.Header, tt.contentType == "application/json")
		})
	}
}

func TestPageServedTwice(t *testing.T) {
	ts := newServer(t, smallSource())
	_, root := get(t, ts.URL+"/")
	_, sub := get(t, ts.URL+"/dashboard/")
	if root != sub {
		t.Errorf("/ and /dashboard/ differ: got %d and %d bytes", len(root), len(sub))
	}
	if root == "" {
		t.Error("the page is empty")
	}
}

func TestAssetRevalidation(t *testing.T) {
	ts := newServer(t, smallSource())
	resp, _ := get(t, ts.URL+"/dashboard/assets/app.js")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on an asset")
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/dashboard/assets/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp2, err := await.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if got, want := resp2.StatusCode, http.StatusNotModified; got != want {
		t.Errorf("status with If-None-Match: got %d; want %d", got, want)
	}
}

func TestAPI(t *testing.T) {
	src := smallSource()
	ts := newServer(t, src)
	t.Run("overview", func(t *testing.T) {
		_, body := get(t, ts.URL+"/api/clients")
		var got evidence.Overview
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, src.overview) {
			t.Errorf("overview round trip:\ngot  %+v\nwant %+v", got, src.overview)
		}
	})
	t.Run("detail", func(t *testing.T) {
		_, body := get(t, ts.URL+"/api/clients/acme")
		var got evidence.ClientDetail
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, src.details["acme"]) {
			t.Errorf("detail round trip:\ngot  %+v\nwant %+v", got, src.details["acme"])
		}
	})
	t.Run("detail of a replica", func(t *testing.T) {
		resp, body := get(t, ts.URL+"/api/clients/acme?replica=proxy-b")
		var got evidence.ClientDetail
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		want, _ := src.byReplica(src.details["acme"], "proxy-b")
		want.Replica = "proxy-b"
		if resp.StatusCode != 200 || !reflect.DeepEqual(got, want) {
			t.Errorf("replica detail round trip: got %d\n  %+v\nwant 200\n  %+v", resp.StatusCode, got, want)
		}
		if got.Requests == src.details["acme"].Requests {
			t.Errorf("replica detail: got the fleet's %d requests; want the replica's", got.Requests)
		}
	})
	t.Run("the replica reaches the source", func(t *testing.T) {
		for _, q := range []string{"", "?replica=proxy-a", "?replica=" + "a%20b%2Fc", "?replica="} {
			get(t, ts.URL+"/api/clients/acme"+q)
		}
		calls := src.called()
		want := []string{"client acme ", "client acme proxy-a", "client acme a b/c", "client acme "}
		if len(calls) < len(want) || !slices.Equal(calls[len(calls)-len(want):], want) {
			t.Errorf("source calls: got %q; want them to end with %q", calls, want)
		}
	})
	for _, tt := range []struct {
		name, query string
		rules       []string // the suggested rules' names
		call        string
	}{
		{"suggestions", "", []string{"account_suspended"}, "suggestions "},
		{"suggestions of a client", "?client=acme", []string{"account_suspended"}, "suggestions acme"},
		{"suggestions of a client without any rule", "?client=globex", []string{}, "suggestions globex"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(src.called())
			resp, body := get(t, ts.URL+"/api/suggestions"+tt.query)
			checkHeaders(t, resp.Header, true)
			if calls := src.called()[before:]; !slices.Equal(calls, []string{tt.call}) {
				t.Errorf("source calls: got %q; want %q", calls, []string{tt.call})
			}
			var got evidence.Suggestions
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatal(err)
			}
			want := src.Suggestions(strings.TrimPrefix(tt.query, "?client="))
			if !reflect.DeepEqual(got, want) {
				t.Errorf("suggestions round trip:\ngot  %+v\nwant %+v", got, want)
			}
			names := []string{}
			for _, r := range got.Rules {
				names = append(names, r.Rule.Name)
			}
			if !slices.Equal(names, tt.rules) {
				t.Errorf("rules: got %q; want %q", names, tt.rules)
			}
			// The learned noise is the candidate's, whatever the client.
			if len(got.Ignore) != 1 || got.Ignore[0].Pointer != "/data/updated_at" {
				t.Errorf("ignore: got %+v; want /data/updated_at", got.Ignore)
			}
		})
	}
	t.Run("markup stays data", func(t *testing.T) {
		_, body := get(t, ts.URL+"/api/clients/acme")
		if strings.Contains(body, "<script>") {
			t.Errorf("got %q in the JSON; want it escaped", "<script>")
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		resp, body := get(t, ts.URL+"/api/clients/nobody")
		var got map[string]string
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 404 || got["error"] != "unknown client" {
			t.Errorf("got %d %q; want 404 %q", resp.StatusCode, got["error"], "unknown client")
		}
	})
}

func TestMethods(t *testing.T) {
	ts := newServer(t, smallSource())
	for _, p := range []string{"/", "/dashboard/", "/dashboard/assets/app.js", "/api/clients", "/api/clients/acme", "/api/clients/acme?replica=proxy-a", "/shadow/report",
		"/api/suggestions?client=acme", "/api/suggestions?client=acme&format=yaml"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			t.Run(method+" "+p, func(t *testing.T) {
				req, _ := http.NewRequest(method, ts.URL+p, strings.NewReader("{}"))
				resp, err := await.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if got, want := resp.StatusCode, http.StatusMethodNotAllowed; got != want {
					t.Errorf("got %d; want %d", got, want)
				}
			})
		}
	}
	for _, tt := range []struct {
		path string
		json bool
	}{
		{"/api/clients", true},
		{"/shadow/report", true},
		{"/api/suggestions?client=acme", true},
		{"/api/suggestions?client=acme&format=yaml", false},
	} {
		t.Run("HEAD "+tt.path, func(t *testing.T) {
			resp, err := http.Head(ts.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusOK; got != want {
				t.Errorf("got %d; want %d", got, want)
			}
			checkHeaders(t, resp.Header, tt.json)
		})
	}
}

// TestAssetsAreSelfContained scans every embedded file for what the CSP
// forbids or an air-gapped network cannot serve.
func TestAssetsAreSelfContained(t *testing.T) {
	// An XML namespace is a name, never fetched; it is the one URL allowed.
	const svgNamespace = "http://www.w3.org/2000/svg"
	url := regexp.MustCompile(`(?i)https?://[^\s"'<>)]*`)
	checks := []struct {
		name string
		re   *regexp.Regexp
		only string // extensions the check applies to; "" for all
	}{
		{"inline script", regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>`), ".html .svg"},
		{"event handler attribute", regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`), ".html .svg"},
		{"style attribute", regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`), ".html .svg"},
		{"style block", regexp.MustCompile(`(?i)<style[\s>]`), ""},
		{"style set as text", regexp.MustCompile(`setAttribute\(\s*['"](?:style|on[a-z]+)['"]|\.cssText\b`), ".js"},
		{"innerHTML", regexp.MustCompile(`\b(?:innerHTML|outerHTML|insertAdjacentHTML|document\.write)\b`), ".js"},
		{"eval", regexp.MustCompile(`\b(?:eval|Function)\(`), ".js"},
		{"import", regexp.MustCompile(`@import|url\(`), ".css"},
	}
	n := 0
	err := fs.WalkDir(embedded, "assets", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		n++
		b, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		text := string(b)
		t.Run(p, func(t *testing.T) {
			for _, u := range url.FindAllString(text, -1) {
				if u != svgNamespace {
					t.Errorf("got URL %q; want none outside the page's origin", u)
				}
			}
			for _, c := range checks {
				if c.only != "" && !slices.Contains(strings.Fields(c.only), path.Ext(p)) {
					continue
				}
				for _, m := range c.re.FindAllString(text, -1) {
					if c.name == "inline script" && regexp.MustCompile(`\ssrc="/dashboard/assets/[^"]+"`).MatchString(m) {
						continue
					}
					t.Errorf("%s: got %q; want none", c.name, m)
				}
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("got %d embedded files; want the page, its script and its style sheet", n)
	}
}

func TestShadowReport(t *testing.T) {
	src := smallSource()
	t.Run("round trip", func(t *testing.T) {
		ts := newServer(t, src)
		resp, body := get(t, ts.URL+"/shadow/report")
		checkHeaders(t, resp.Header, true)
		var got evidence.ShadowReport
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, src.report) {
			t.Errorf("report round trip:\ngot  %+v\nwant %+v", got, src.report)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("got %q in the JSON; want it escaped", "<script>")
		}
	})
	t.Run("one client", func(t *testing.T) {
		ts := newServer(t, src)
		_, body := get(t, ts.URL+"/shadow/report?client=acme")
		var got evidence.ShadowReport
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Clients) != 1 || got.Clients[0].Client != "acme" || len(got.Groups) != 1 || got.Groups[0].Client != "acme" {
			t.Errorf("got clients %+v and groups %+v; want acme's only", got.Clients, got.Groups)
		}
		if calls := src.called(); !slices.Contains(calls, "report acme") {
			t.Errorf("source calls: got %q; want %q among them", calls, "report acme")
		}
	})
	for _, tt := range []struct {
		name      string
		candidate func() bool
		want      bool
	}{
		{"no candidate function", nil, false},
		{"no candidate", func() bool { return false }, false},
		{"a candidate", func() bool { return true }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			New(src, Options{CandidateConfigured: tt.candidate}).Routes()["/shadow/report"].ServeHTTP(rec,
				httptest.NewRequest(http.MethodGet, "/shadow/report", nil))
			checkHeaders(t, rec.Header(), true)
			var got evidence.ShadowReport
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if got.CandidateConfigured != tt.want {
				t.Errorf("candidate_configured: got %v; want %v", got.CandidateConfigured, tt.want)
			}
		})
	}
}

// TestStoreFailure: a detail the store cannot give is a 503 that says so,
// with every header; the overview and the report, read from memory, work.
func TestStoreFailure(t *testing.T) {
	src := smallSource()
	src.err = errors.New("connection refused")
	ts := newServer(t, src)
	for _, p := range []string{"/api/clients/acme", "/api/clients/acme?replica=proxy-b", "/api/clients/nobody?replica=proxy-b"} {
		t.Run(p, func(t *testing.T) {
			resp, body := get(t, ts.URL+p)
			if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
				t.Errorf("status: got %d; want %d", got, want)
			}
			checkHeaders(t, resp.Header, true)
			var got map[string]string
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			if want := "the evidence store could not be read: connection refused"; got["error"] != want {
				t.Errorf("error: got %q; want %q", got["error"], want)
			}
		})
	}
	for _, p := range []string{"/api/clients", "/shadow/report"} {
		resp, _ := get(t, ts.URL+p)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s with the store down: got %d; want 200", p, resp.StatusCode)
		}
	}
}

func TestNilLogger(t *testing.T) {
	d := New(smallSource(), Options{})
	rec := httptest.NewRecorder()
	d.Routes()["/api/clients"].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/clients", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("got %d; want %d", rec.Code, http.StatusOK)
	}
}

func TestUnencodable(t *testing.T) {
	src := smallSource()
	src.overview.Clients[0].Share = nan()
	rec := httptest.NewRecorder()
	New(src, Options{}).Routes()["/api/clients"].ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/clients", nil))
	if got, want := rec.Code, http.StatusInternalServerError; got != want {
		t.Errorf("got %d; want %d", got, want)
	}
	if got := rec.Header().Get("Content-Security-Policy"); got != ContentSecurityPolicy {
		t.Errorf("CSP on an error: got %q; want %q", got, ContentSecurityPolicy)
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

// TestContractEvidence feeds contract checks to a real recorder and reads
// them back through the API, under the names the page reads: a row's
// contract summary (absent when nothing was checked), the threshold, and
// a client's violations (always a list) with their samples.
func TestContractEvidence(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	rec := evidence.New(evidence.Settings{
		Thresholds: verdict.Thresholds{Window: 24 * time.Hour, MinRequests: 1},
		Samples:    true,
		Targets: []config.Target{
			{Name: "acme", Kind: config.KindClient, Mode: config.ModeEnvelope},
			{Name: "globex", Kind: config.KindClient, Mode: config.ModeShadow},
			{Name: "initech", Kind: config.KindClient, Mode: config.ModeEnvelope},
		},
	}, evidence.Options{Now: func() time.Time { return now }, FlushInterval: time.Hour})
	t.Cleanup(func() { rec.Close() })
	const (
		paymentSample = `{"data":null,"success":false,"message":"Payment required <img src=/hostile>","errors":[{"payment_required":["Payment required"]}]}`
		paymentDetail = `status 402 documents codes insufficient_credits, trial_expired, not "payment_required"`
		jobsSample    = `{"data":[{"id":"j-17"}],"success":true,"message":"OK"}`
	)
	for _, ev := range []event.ContractCheck{
		{Client: "acme", Source: event.SourceLive, Route: "GET /v1/jobs/{id}", Status: 402, Code: "payment_required", Reason: "undocumented_code", Detail: paymentDetail, Sample: paymentSample, Time: now},
		{Client: "acme", Source: event.SourceLive, Route: "GET /v1/jobs/{id}", Status: 402, Code: "payment_required", Reason: "undocumented_code", Detail: paymentDetail, Sample: paymentSample, Time: now},
		{Client: "acme", Source: event.SourceLive, Route: "GET /v1/jobs/{id}", Status: 200, Reason: "", Time: now},
		{Client: "acme", Source: event.SourceLive, Route: "GET /v1/jobs", Status: 200, Skipped: event.SkipTooLarge, Time: now},
		{Client: "globex", Source: event.SourceDryRun, Route: "GET /v1/jobs", Status: 200, Reason: "schema", Detail: "at /data/0/id: got string, want integer", Sample: jobsSample, Time: now},
		{Client: "globex", Source: event.SourceDryRun, Route: "GET /v1/jobs/{id}", Status: 402, Code: "insufficient_credits", Extension: "the credits in details", Time: now},
	} {
		rec.RecordContractCheck(&ev)
	}
	ts := newServer(t, rec)

	_, body := get(t, ts.URL+"/api/clients")
	var ov struct {
		Thresholds map[string]any `json:"thresholds"`
		Clients    []struct {
			Name     string          `json:"name"`
			Contract json.RawMessage `json:"contract"`
		} `json:"clients"`
	}
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if got, ok := ov.Thresholds["max_contract_violations"]; !ok || got != 0.0 {
		t.Errorf("thresholds.max_contract_violations: got %v (present %v); want 0", got, ok)
	}
	contracts := map[string]string{}
	for _, c := range ov.Clients {
		contracts[c.Name] = string(c.Contract)
	}
	sampleTime := now.Format(time.RFC3339)
	for _, tt := range []struct {
		client     string
		contract   string // the row's contract, "" for none
		violations []map[string]any
	}{
		{
			client: "acme", contract: `{"checked":3,"violations":2,"extensions":0,"skipped":1}`,
			violations: []map[string]any{{
				"source": "live", "route": "GET /v1/jobs/{id}", "status": 402, "code": "payment_required", "reason": "undocumented_code",
				"count": 2, "detail": paymentDetail, "sample": paymentSample, "sample_time": sampleTime,
			}},
		},
		{
			client: "globex", contract: `{"checked":2,"violations":1,"extensions":1,"skipped":0}`,
			violations: []map[string]any{{
				"source": "dry_run", "route": "GET /v1/jobs", "status": 200, "code": "", "reason": "schema",
				"count": 1, "detail": "at /data/0/id: got string, want integer", "sample": jobsSample, "sample_time": sampleTime,
			}},
		},
		{client: "initech", contract: "", violations: []map[string]any{}},
	} {
		t.Run(tt.client, func(t *testing.T) {
			got, ok := contracts[tt.client]
			if !ok {
				t.Fatalf("no row for %q in %q", tt.client, body)
			}
			if got != tt.contract {
				t.Errorf("contract: got %q; want %q", got, tt.contract)
			}
			_, detail := get(t, ts.URL+"/api/clients/"+tt.client)
			var d map[string]json.RawMessage
			if err := json.Unmarshal([]byte(detail), &d); err != nil {
				t.Fatal(err)
			}
			raw, ok := d["violations"]
			if !ok {
				t.Fatalf("detail %.300q has no violations; want a list, even empty", detail)
			}
			var vs []map[string]any
			if err := json.Unmarshal(raw, &vs); err != nil {
				t.Fatal(err)
			}
			// Both re-encoded, so the numbers and the keys' order agree.
			gotJSON, _ := json.Marshal(vs)
			wantJSON, _ := json.Marshal(tt.violations)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("violations: got %q; want %q", gotJSON, wantJSON)
			}
		})
	}
}
