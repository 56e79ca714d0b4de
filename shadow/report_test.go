package shadow

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/wI2L/jsondiff"
)

func TestReportMemoryIsBounded(t *testing.T) {
	const paths = 100_000
	c := New(testConfig("", nil), Options{})
	defer c.Close()
	base := newExchange(t, "GET", "/", 200, `{"a":1}`)
	submit := func(from, to int) {
		for i := from; i < to; i++ {
			ex := *base
			ex.Path = fmt.Sprintf("/v1/things/t%d/detail", i) // not an id: one route each
			if i%2 == 0 {
				ex.Path = fmt.Sprintf("/v1/jobs/%d", i) // an id: one route for all
			}
			c.compareNow(&ex)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	submit(0, paths)
	before := heap()
	submit(paths, 2*paths)
	after := heap()
	t.Logf("heap after 100,000 paths: %d KiB; after 200,000: %d KiB", before>>10, after>>10)

	rep := c.Report("")
	if len(rep.Groups) > maxGroups+1 {
		t.Errorf("got %d groups; want at most %d", len(rep.Groups), maxGroups+1)
	}
	byRoute := map[string]Group{}
	for _, g := range rep.Groups {
		byRoute[g.Route] = g
	}
	if g := byRoute["/v1/jobs/{id}"]; g.Total != paths {
		t.Errorf("/v1/jobs/{id}: got %d exchanges; want %d (/v1/jobs/123 and /v1/jobs/456 in one group)", g.Total, paths)
	}
	if _, ok := byRoute["/v1/jobs/2"]; ok {
		t.Errorf("found group /v1/jobs/2; want ids collapsed")
	}
	if g := byRoute[otherRoute]; g.Total == 0 || g.Method != overflowMethod {
		t.Errorf("overflow group: got %+v; want the folded exchanges", g)
	}
	if rep.Limits.Folded == 0 {
		t.Errorf("folded: got 0; want the exchanges past the group bound")
	}
	// The second 100,000 paths open no group: memory does not grow with
	// them (the bound is generous: it only has to tell bounded from
	// linear, which would be tens of MiB).
	if after > before && after-before > 8<<20 {
		t.Errorf("heap grew by %d bytes over 100,000 more distinct paths; want it bounded", after-before)
	}
}

func TestGroupBounds(t *testing.T) {
	st := newStore()
	key := groupKey{client: "acme", method: "GET", route: "/v1/a", status: 200}
	for i := range 100_000 {
		st.add(&observation{
			key:     key,
			outcome: event.OutcomeMismatch,
			paths:   []string{fmt.Sprintf("/data/f%d", i)},
			sample:  &ReportSample{Sample: event.Sample{Request: fmt.Sprintf("GET /v1/a/%d", i)}},
		})
	}
	// Samples of other groups evict the oldest, whatever their group.
	for i := range maxSamples {
		st.add(&observation{key: groupKey{client: "acme", method: "GET", route: fmt.Sprintf("/v1/b%d", i)}, outcome: event.OutcomeMismatch, sample: &ReportSample{}})
	}
	groups, _ := st.snapshot("")
	live := 0
	for _, g := range groups {
		live += len(g.Samples)
		if len(g.Paths) > maxPathsPerGroup+1 {
			t.Errorf("group %s: got %d paths; want at most %d", g.Route, len(g.Paths), maxPathsPerGroup+1)
		}
		if len(g.Samples) > maxSamplesPerGroup {
			t.Errorf("group %s: got %d samples; want at most %d", g.Route, len(g.Samples), maxSamplesPerGroup)
		}
		if g.Route == "/v1/a" {
			if got := g.Paths[otherRoute]; got != 100_000-maxPathsPerGroup {
				t.Errorf("{other} paths: got %d; want %d", got, 100_000-maxPathsPerGroup)
			}
			if len(g.Samples) != 0 {
				t.Errorf("group /v1/a: got %d samples; want its old ones evicted", len(g.Samples))
			}
		}
	}
	if live > maxSamples {
		t.Errorf("got %d samples in all; want at most %d", live, maxSamples)
	}
}

func TestReportNeverHoldsSecrets(t *testing.T) {
	const (
		key    = "sk_live_KEY1234567890"
		bearer = "tok_BEARER987654321"
		cookie = "cookie_SESSION55555"
		qtoken = "query_TOKEN4242"
	)
	srv := jsonServer(t, 401, `{"data":null,"success":false,"message":"Invalid key","errors":[{"bad_key":[]}]}`)
	ex := newExchange(t, "GET", "/v1/keys/"+key, 401, `{"error":"Invalid API key `+key+`","code":"invalid_key"}`)
	ex.Header = http.Header{
		"X-Api-Key":     {key},
		"Authorization": {"Bearer " + bearer},
		"Cookie":        {"session=" + cookie + "; theme=dark"},
		"Accept":        {"application/json"},
	}
	ex.RawQuery = "api_key=" + key + "&token=" + qtoken + "&page=2"
	rep := runOne(t, testConfig(srv.URL, nil), ex)
	if got := outcomeOf(t, rep); got != event.OutcomeMismatch {
		t.Fatalf("got %q; want %q", got, event.OutcomeMismatch)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{key, bearer, cookie, qtoken, "page=2"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("report holds %q: %s", secret, b)
		}
	}
	s := onlyGroup(t, rep).Samples[0]
	if want := "GET /v1/keys/[redacted]?api_key=[redacted]&token=[redacted]&page=[redacted]"; s.Request != want {
		t.Errorf("request: got %q; want %q", s.Request, want)
	}
	for _, h := range []string{"X-Api-Key", "Authorization", "Cookie"} {
		if s.Header[h] != redacted {
			t.Errorf("header %s: got %q; want %q", h, s.Header[h], redacted)
		}
	}
	if s.Header["Accept"] != "application/json" {
		t.Errorf("header Accept: got %q; want %q", s.Header["Accept"], "application/json")
	}
	if !strings.Contains(s.LegacyBody, "Invalid API key [redacted]") {
		t.Errorf("legacy body: got %q; want the echoed key redacted", s.LegacyBody)
	}
}

func TestSampleBodiesAreCut(t *testing.T) {
	key := strings.Repeat("K", 40)
	body := strings.Repeat("x", maxSampleBody-10) + key + strings.Repeat("y", 100)
	rd := newRedactor("X-Api-Key", http.Header{"X-Api-Key": {key}})
	got, cut := rd.body([]byte(body))
	if !cut || len(got) > maxSampleBody {
		t.Errorf("got %d bytes (cut %v); want at most %d, cut", len(got), cut, maxSampleBody)
	}
	if strings.Contains(got, "KKKKK") {
		t.Errorf("got a part of the key at the cut: %q", got[len(got)-20:])
	}
	smp := newSample(&compiled{keyHeader: "X-Api-Key", samples: true}, &event.Capture{Method: "GET", Path: "/"}, &comparison{diff: diffResult{ops: make(jsondiff.Patch, 40)}})
	if len(smp.Diff) != maxSampleOps || !smp.DiffTruncated {
		t.Errorf("got %d ops (truncated %v); want %d, truncated", len(smp.Diff), smp.DiffTruncated, maxSampleOps)
	}
}

func TestServeHTTP(t *testing.T) {
	c := New(testConfig("", nil), Options{})
	for _, client := range []string{"acme", "globex"} {
		ex := newExchange(t, "GET", "/v1/a", 403, creditsLegacy)
		ex.Client = client
		c.compareNow(ex)
	}
	c.Close()
	tests := []struct {
		name, method, target string
		wantStatus           int
		wantClients          []string
	}{
		{"all clients", "GET", "/shadow/report", 200, []string{"acme", "globex"}},
		{"one client", "GET", "/shadow/report?client=globex", 200, []string{"globex"}},
		{"unknown client", "GET", "/shadow/report?client=nobody", 200, nil},
		{"POST refused", "POST", "/shadow/report", 405, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			c.ServeHTTP(w, httptest.NewRequest(tt.method, tt.target, nil))
			if w.Code != tt.wantStatus {
				t.Fatalf("status: got %d; want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q; want %q", ct, "application/json")
			}
			var rep Report
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatalf("decoding report: %v", err)
			}
			var clients, groupClients []string
			for _, ct := range rep.Clients {
				clients = append(clients, ct.Client)
			}
			for _, g := range rep.Groups {
				groupClients = append(groupClients, g.Client)
			}
			if fmt.Sprint(clients) != fmt.Sprint(tt.wantClients) || fmt.Sprint(groupClients) != fmt.Sprint(tt.wantClients) {
				t.Errorf("clients: got %q and groups of %q; want %q", clients, groupClients, tt.wantClients)
			}
		})
	}
}
