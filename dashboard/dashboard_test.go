package dashboard

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// staticSource is a Source over fixed data.
type staticSource struct {
	overview evidence.Overview
	details  map[string]evidence.ClientDetail
}

func (s *staticSource) Overview() evidence.Overview { return s.overview }

func (s *staticSource) Client(name string) (evidence.ClientDetail, bool) {
	d, ok := s.details[name]
	return d, ok
}

// smallSource has two clients, one of them with a shadow sample whose
// body holds markup, to show it travels as data.
func smallSource() *staticSource {
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
	return &staticSource{
		overview: evidence.Overview{
			GeneratedAt: gen, Window: "24h",
			Thresholds: verdict.Thresholds{MinRequests: 1000, MaxMismatchRatio: 0.001},
			State:      evidence.StateInfo{Persistent: true, Since: gen.Add(-48 * time.Hour)},
			Requests:   4112,
			Clients:    []evidence.ClientSummary{acme, legacy},
		},
		details: map[string]evidence.ClientDetail{
			"acme": {
				ClientSummary: acme,
				Routes:        []evidence.RouteCount{{Route: "GET /v1/jobs/{id}", Compared: 3112, Mismatches: 12}},
				Paths:         []evidence.PathCount{{Path: "/data/price", Count: 12}},
				Samples: []event.Sample{{
					Time: gen, Request: "GET /v1/jobs/{id}", LegacyStatus: 200, EnvelopeStatus: 200, CandidateStatus: 200,
					LegacyBody:    `{"price":10}`,
					EnvelopeBody:  `{"data":{"price":10},"success":true,"message":"<script>alert(1)</script>","errors":[]}`,
					CandidateBody: `{"data":{"price":"10"},"success":true,"message":"","errors":[]}`,
					Diff:          []event.DiffOp{{Op: "replace", Path: "/data/price", Value: `"10"`}},
				}},
				Series: evidence.Series{StepSeconds: 300, Points: []evidence.Point{{Time: gen.Unix() - 300, Requests: 10, Compared: 10, Mismatches: 1}}},
			},
		},
	}
}

// newServer serves the dashboard's routes the way the admin server
// registers them: "GET "+path.
func newServer(t *testing.T, src Source) *httptest.Server {
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

func TestRoutes(t *testing.T) {
	d := New(smallSource(), Options{})
	var got []string
	for p := range d.Routes() {
		got = append(got, p)
	}
	want := []string{"/{$}", "/dashboard/", "/api/clients", "/api/clients/{name}"}
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
		{"script", "/dashboard/assets/app.js", 200, "text/javascript; charset=utf-8", "'use strict'"},
		{"style sheet", "/dashboard/assets/app.css", 200, "text/css; charset=utf-8", ".badge"},
		{"icon", "/dashboard/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"overview", "/api/clients", 200, "application/json", `"window":"24h"`},
		{"detail", "/api/clients/acme", 200, "application/json", `"/data/price"`},
		{"unknown client", "/api/clients/nobody", 404, "application/json", `{"error":"unknown client"}`},
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
				t.Errorf("body %.200q lacks %q", body, tt.contains)
			}
			headers := map[string]string{
				"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
			}
			for k, want := range headers {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("%s: got %q; want %q", k, got, want)
				}
			}
			if strings.HasPrefix(tt.path, "/api/") {
				if got, want := resp.Header.Get("Cache-Control"), "no-store"; got != want {
					t.Errorf("Cache-Control: got %q; want %q", got, want)
				}
			}
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
	for _, p := range []string{"/", "/dashboard/", "/dashboard/assets/app.js", "/api/clients", "/api/clients/acme"} {
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
	t.Run("HEAD", func(t *testing.T) {
		resp, err := http.Head(ts.URL + "/api/clients")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusOK; got != want {
			t.Errorf("got %d; want %d", got, want)
		}
	})
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
