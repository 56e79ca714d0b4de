package shadow

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/routes"
	"github.com/wI2L/jsondiff"
)

// The comparison hands every outcome to the evidence, which keeps the
// report (evidence/shadow.go, tested there): these tests read what is
// handed over.

func TestReportNeverHoldsSecrets(t *testing.T) {
	const (
		key    = "sk_live_KEY1234567890"
		bearer = "tok_BEARER987654321"
		cookie = "cookie_SESSION55555"
		qtoken = "query_TOKEN4242"
		email  = "bob@example.com"
		email2 = "eve@example.com"
	)
	mask, err := redact.Compile([]string{"/data/email"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		path         string
		legacyStatus int
		legacyBody   string
		candStatus   int
		candBody     string
		redact       redact.Paths
		want         event.Outcome
		wantRoute    string
		// wantLegacy is a part of the sample's legacy body (or of the
		// unmapped sample) that must be there, redacted.
		wantLegacy string
		unmapped   bool
	}{
		{name: "mismatch echoing the key", path: "/v1/keys/" + key, legacyStatus: 401,
			legacyBody: `{"error":"Invalid API key ` + key + `","code":"invalid_key"}`,
			candStatus: 401, candBody: `{"data":null,"success":false,"message":"Invalid key","errors":[{"bad_key":[]}]}`,
			want: event.OutcomeMismatch, wantRoute: "GET /v1/keys/{id}", wantLegacy: "Invalid API key " + redact.Mask},
		{name: "unmapped error echoing the key as its code", path: "/v1/teapot", legacyStatus: 418,
			legacyBody: `{"error":"no tea for ` + key + `","code":"` + key + `"}`,
			candStatus: 418, candBody: `{"data":null,"success":false,"message":"x","errors":[]}`,
			want: event.OutcomeMismatch, wantRoute: "GET /v1/teapot", wantLegacy: "no tea for " + redact.Mask, unmapped: true},
		{name: "dashboard.redact paths masked in bodies and diff values", path: "/v1/me", legacyStatus: 200,
			legacyBody: `{"email":"` + email + `","n":1}`,
			candStatus: 200, candBody: `{"data":{"email":"` + email2 + `","n":2},"success":true,"message":"OK"}`,
			redact: mask, want: event.OutcomeMismatch, wantRoute: "GET /v1/me", wantLegacy: `"email":"` + redact.Mask + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jsonServer(t, tt.candStatus, tt.candBody)
			ex := newExchange(t, "GET", tt.path, tt.legacyStatus, tt.legacyBody)
			ex.Header = http.Header{
				"X-Api-Key":     {key},
				"Authorization": {"Bearer " + bearer},
				"Cookie":        {"session=" + cookie + "; theme=dark"},
				"Accept":        {"application/json"},
			}
			ex.RawQuery = "api_key=" + key + "&token=" + qtoken + "&page=2"
			evs := runOne(t, testConfig(srv.URL, func(s *Settings) { s.Redact = tt.redact }), ex)
			ev := onlyComparison(t, evs)
			if ev.Outcome != tt.want {
				t.Fatalf("got %q; want %q", ev.Outcome, tt.want)
			}
			if ev.Route != tt.wantRoute {
				t.Errorf("route: got %q; want %q", ev.Route, tt.wantRoute)
			}
			// Everything handed over, the sample included.
			b, err := json.Marshal(evs)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{key, bearer, cookie, qtoken, "page=2", email, email2} {
				if strings.Contains(string(b), secret) {
					t.Errorf("the comparison holds %q: %s", secret, b)
				}
			}
			s := ev.Sample
			if s == nil {
				t.Fatalf("got no sample; want one")
			}
			if want := "GET " + strings.ReplaceAll(tt.path, key, redact.Mask) + "?api_key=[redacted]&token=[redacted]&page=[redacted]"; s.Request != want {
				t.Errorf("request: got %q; want %q", s.Request, want)
			}
			if s.Route != ev.Route || s.LegacyCode != ev.LegacyCode || s.LegacyStatus != ev.LegacyStatus {
				t.Errorf("sample's group: got %q %d %q; want %q %d %q", s.Route, s.LegacyStatus, s.LegacyCode, ev.Route, ev.LegacyStatus, ev.LegacyCode)
			}
			for _, h := range []string{"X-Api-Key", "Authorization", "Cookie"} {
				if s.Header[h] != redacted {
					t.Errorf("header %s: got %q; want %q", h, s.Header[h], redacted)
				}
			}
			if s.Header["Accept"] != "application/json" {
				t.Errorf("header Accept: got %q; want %q", s.Header["Accept"], "application/json")
			}
			if !strings.Contains(s.LegacyBody, tt.wantLegacy) {
				t.Errorf("legacy body: got %q; want it to hold %q", s.LegacyBody, tt.wantLegacy)
			}
			if ev.Unmapped != tt.unmapped {
				t.Errorf("unmapped: got %v; want %v", ev.Unmapped, tt.unmapped)
			}
			if tt.unmapped && (ev.LegacyBodyCode != redact.Mask || ev.LegacyCode != "other") {
				t.Errorf("codes: got body %q, legacy %q; want %q, %q", ev.LegacyBodyCode, ev.LegacyCode, redact.Mask, "other")
			}
			if ev.Unmapped && !strings.Contains(ev.UnmappedSample, tt.wantLegacy) {
				t.Errorf("unmapped sample: got %q; want it to hold %q", ev.UnmappedSample, tt.wantLegacy)
			}
			touched := 0
			for _, op := range s.Diff {
				if tt.redact.Touches(op.Path) {
					touched++
					if op.Value != redactedValue {
						t.Errorf("diff op %s: got value %q; want %q", op.Path, op.Value, redactedValue)
					}
				}
			}
			if !tt.redact.Empty() && touched == 0 {
				t.Errorf("diff: got %+v; want an operation at a redacted path, its value withheld", s.Diff)
			}
		})
	}
}

func TestSamplesOff(t *testing.T) {
	srv := jsonServer(t, 418, `{"data":{"x":1},"success":true,"message":"OK"}`)
	tests := []struct {
		name     string
		status   int
		body     string
		want     event.Outcome
		unmapped bool
		// legacyCode is the code as the rules name it, bodyCode as the
		// legacy body has it.
		legacyCode, bodyCode string
	}{
		{name: "mismatch", status: 200, body: `{"a":1}`, want: event.OutcomeMismatch},
		{name: "unmapped error", status: 418, body: `{"error":"teapot","code":"brewing"}`, want: event.OutcomeMismatch, unmapped: true,
			legacyCode: "other", bodyCode: "brewing"},
		{name: "an error a rule matches by status alone", status: 401, body: `{"error":"revoked","code":"token_revoked"}`, want: event.OutcomeMismatch,
			legacyCode: "other", bodyCode: "token_revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := onlyComparison(t, runOne(t, testConfig(srv.URL, func(s *Settings) { s.Samples = false }), newExchange(t, "GET", "/v1/a", tt.status, tt.body)))
			if ev.Outcome != tt.want {
				t.Fatalf("got %q; want %q", ev.Outcome, tt.want)
			}
			if ev.Unmapped != tt.unmapped {
				t.Errorf("unmapped: got %v; want %v", ev.Unmapped, tt.unmapped)
			}
			// The counts are handed over; no body is.
			if ev.Sample != nil || ev.UnmappedSample != "" {
				t.Errorf("got sample %+v and unmapped sample %q; want none with samples off", ev.Sample, ev.UnmappedSample)
			}
			if ev.LegacyCode != tt.legacyCode || ev.LegacyBodyCode != tt.bodyCode {
				t.Errorf("codes: got legacy %q, body %q; want %q, %q", ev.LegacyCode, ev.LegacyBodyCode, tt.legacyCode, tt.bodyCode)
			}
		})
	}
}

func TestComparisonIsBounded(t *testing.T) {
	// A candidate that differs at many places hands over at most maxPaths
	// collapsed paths, each once, and a sample of at most maxSampleOps
	// operations.
	const fields = 3 * maxPaths
	var legacy, cand strings.Builder
	legacy.WriteString(`{`)
	cand.WriteString(`{"data":{`)
	for i := range fields {
		if i > 0 {
			legacy.WriteByte(',')
			cand.WriteByte(',')
		}
		fmt.Fprintf(&legacy, `"f%d":0`, i)
		fmt.Fprintf(&cand, `"f%d":1`, i)
	}
	legacy.WriteString(`,"items":[0,0,0,0]}`)
	cand.WriteString(`,"items":[1,1,1,1]},"success":true,"message":"OK"}`)
	tests := []struct {
		name      string
		legacy    string
		cand      string
		wantPaths int
		wantOps   int
		truncated bool
	}{
		{name: "many fields differ", legacy: legacy.String(), cand: cand.String(), wantPaths: maxPaths, wantOps: maxSampleOps, truncated: true},
		{name: "array elements collapse into one path", legacy: `{"items":[0,0,0,0]}`,
			cand: `{"data":{"items":[1,1,1,1]},"success":true,"message":"OK"}`, wantPaths: 1, wantOps: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := jsonServer(t, 200, tt.cand)
			ev := onlyComparison(t, runOne(t, testConfig(srv.URL, nil), newExchange(t, "GET", "/v1/wide", 200, tt.legacy)))
			if ev.Outcome != event.OutcomeMismatch {
				t.Fatalf("got %q; want %q", ev.Outcome, event.OutcomeMismatch)
			}
			if len(ev.Paths) != tt.wantPaths {
				t.Errorf("paths: got %d; want %d", len(ev.Paths), tt.wantPaths)
			}
			if uniq := slices.Compact(slices.Sorted(slices.Values(ev.Paths))); len(uniq) != len(ev.Paths) {
				t.Errorf("paths: got %q; want each once", ev.Paths)
			}
			for _, p := range ev.Paths {
				if p != collapsePointer(p) {
					t.Errorf("path %q: got it as is; want %q", p, collapsePointer(p))
				}
			}
			if ev.Sample == nil {
				t.Fatalf("got no sample; want one")
			}
			if len(ev.Sample.Diff) != tt.wantOps || ev.Sample.DiffTruncated != tt.truncated {
				t.Errorf("sample: got %d ops (truncated %v); want %d (truncated %v)", len(ev.Sample.Diff), ev.Sample.DiffTruncated, tt.wantOps, tt.truncated)
			}
		})
	}
}

func TestRouteIsBounded(t *testing.T) {
	// The route is a key of the evidence: ids collapse, and a path of any
	// length or depth gives a route of bounded length.
	tests := []struct {
		name, method, path string
		routes             []string
		want               string
	}{
		{name: "id collapsed", method: "GET", path: "/v1/jobs/123", want: "GET /v1/jobs/{id}"},
		{name: "another id, same route", method: "GET", path: "/v1/jobs/456", want: "GET /v1/jobs/{id}"},
		{name: "method is part of the route", method: "HEAD", path: "/v1/jobs/123", want: "HEAD /v1/jobs/{id}"},
		{name: "explicit template", method: "GET", path: "/v1/users/bob", routes: []string{"/v1/users/{name}"}, want: "GET /v1/users/{name}"},
		{name: "overlong segment", method: "GET", path: "/v1/x/" + strings.Repeat("a", 10_000), want: "GET /v1/x/{id}"},
		{name: "deep path", method: "GET", path: strings.Repeat("/a", 1000), want: "GET " + strings.Repeat("/a", routes.MaxSegments) + "/{more}"},
		// 64 letters that are not hex are no id: the longest route there
		// is, 1,051 bytes with the method.
		{name: "longest route", method: "GET", path: strings.Repeat("/"+strings.Repeat("g", routes.MaxSegmentLen), 20),
			want: "GET " + strings.Repeat("/"+strings.Repeat("g", routes.MaxSegmentLen), routes.MaxSegments) + "/{more}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("", func(s *Settings) {
				s.Shadow.Routes = tt.routes
				s.Shadow.Methods = []string{"GET", "HEAD"}
			})
			ev := onlyComparison(t, runOne(t, cfg, newExchange(t, tt.method, tt.path, 200, `{"a":1}`)))
			if ev.Route != tt.want {
				t.Errorf("got %q; want %q", ev.Route, tt.want)
			}
		})
	}
}

func TestSampleBodiesAreCut(t *testing.T) {
	key := strings.Repeat("K", 40)
	body := strings.Repeat("x", maxSampleBody-10) + key + strings.Repeat("y", 100)
	rd := newRedactor("X-Api-Key", http.Header{"X-Api-Key": {key}}, nil)
	got, cut := rd.body([]byte(body))
	if !cut || len(got) > maxSampleBody {
		t.Errorf("got %d bytes (cut %v); want at most %d, cut", len(got), cut, maxSampleBody)
	}
	if strings.Contains(got, "KKKKK") {
		t.Errorf("got a part of the key at the cut: %q", got[len(got)-20:])
	}
	smp := newSample(&compiled{keyHeader: "X-Api-Key", samples: true}, &event.Capture{Method: "GET", Path: "/"}, &comparison{diff: diffResult{ops: make(jsondiff.Patch, 40)}}, "GET /")
	if len(smp.Diff) != maxSampleOps || !smp.DiffTruncated {
		t.Errorf("got %d ops (truncated %v); want %d, truncated", len(smp.Diff), smp.DiffTruncated, maxSampleOps)
	}
	if smp.Route != "GET /" {
		t.Errorf("route: got %q; want %q", smp.Route, "GET /")
	}
}
