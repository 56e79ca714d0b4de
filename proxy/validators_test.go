package proxy

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// resources is a small legacy API that honours conditional requests the
// way Django's ConditionalGetMiddleware does: If-None-Match with weak
// comparison, then If-Modified-Since, If-Match with strong comparison. It
// records the conditional headers each request arrived with.
type resources struct {
	mu   sync.Mutex
	seen []http.Header
}

const lastModified = "Mon, 07 Dec 2026 10:00:00 GMT"

func (rs *resources) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rs.mu.Lock()
	rs.seen = append(rs.seen, r.Header.Clone())
	rs.mu.Unlock()
	var status int
	var body, ctype, etag string
	switch r.URL.Path {
	case "/json":
		status, body, ctype, etag = 200, `{"v":1}`, "application/json", `"v1"`
	case "/file":
		status, body, ctype, etag = 200, "PNG....", "image/png", `"f1"`
	case "/error":
		status, body, ctype, etag = 403, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":5,"required":9}}`, "application/json", `"e1"`
	default:
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Etag", etag)
	h.Set("Last-Modified", lastModified)
	if im := r.Header.Get("If-Match"); im != "" && im != "*" && !strings.Contains(im, etag) {
		w.WriteHeader(http.StatusPreconditionFailed)
		return
	}
	inm := r.Header.Get("If-None-Match")
	if inm == "*" || (inm != "" && strings.Contains(strings.ReplaceAll(inm, "W/", ""), etag)) ||
		(inm == "" && r.Header.Get("If-Modified-Since") == lastModified) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", ctype)
	w.WriteHeader(status)
	w.Write([]byte(body))
}

// last returns the conditional headers of the last request the upstream
// got, "-" for each one absent.
func (rs *resources) last() string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	h := rs.seen[len(rs.seen)-1]
	var out []string
	for _, k := range []string{"If-None-Match", "If-Match", "If-Modified-Since", "Range", "If-Range"} {
		v := strings.Join(h[k], ", ")
		if v == "" {
			v = "-"
		}
		out = append(out, v)
	}
	return strings.Join(out, " | ")
}

func marked(tag string) string {
	weak, opaque := strings.HasPrefix(tag, "W/"), strings.Trim(strings.TrimPrefix(tag, "W/"), `"`)
	out := `"` + opaque + tagMarker + rulesFingerprint(nil) + `"`
	if weak {
		out = "W/" + out
	}
	return out
}

// TestEntityTagsPerFormat checks the validators each format gets: an
// envelope client's tags are marked (weak for a body the proxy rewrote,
// the upstream's strength for one it passed) and carry no Last-Modified
// where the body is an envelope; a legacy client's are the upstream's.
func TestEntityTagsPerFormat(t *testing.T) {
	url := startProxy(t, &resources{}, nil)
	tests := []struct {
		path, key          string
		wantTag, wantLastM string
	}{
		{"/json", envelopeKey, marked(`W/"v1"`), ""},
		{"/error", envelopeKey, marked(`W/"e1"`), ""},
		{"/file", envelopeKey, marked(`"f1"`), lastModified},
		{"/json", legacyKey, `"v1"`, lastModified},
		{"/error", legacyKey, `"e1"`, lastModified},
		{"/file", shadowKey, `"f1"`, lastModified},
	}
	for _, tc := range tests {
		t.Run(tc.path+" "+tc.key, func(t *testing.T) {
			got := do(t, "GET", url+tc.path, tc.key, nil)
			if g := got.header.Get("Etag"); g != tc.wantTag {
				t.Errorf("ETag: got %q; want %q", g, tc.wantTag)
			}
			if g := got.header.Get("Last-Modified"); g != tc.wantLastM {
				t.Errorf("Last-Modified: got %q; want %q", g, tc.wantLastM)
			}
		})
	}
}

// TestConditionalRequestsPerFormat sends the revalidations that caches and
// clients send, after a flip, after a rollback and in steady state, and
// checks what the upstream is asked and what the client gets: never a 304
// for a copy that may be in the other format.
func TestConditionalRequestsPerFormat(t *testing.T) {
	oldRules := `W/"v1` + tagMarker + `0badf00d"`
	tests := []struct {
		name       string
		path, key  string
		header     http.Header
		wantStatus int
		// wantUp is what the upstream got: If-None-Match | If-Match |
		// If-Modified-Since | Range | If-Range.
		wantUp  string
		wantTag string
	}{
		{"envelope revalidates its envelope", "/json", envelopeKey, http.Header{"If-None-Match": {marked(`W/"v1"`)}},
			304, `"v1" | - | - | - | -`, marked(`W/"v1"`)},
		{"flipped to envelope, revalidates a legacy copy", "/json", envelopeKey, http.Header{"If-None-Match": {`"v1"`}},
			200, `- | - | - | - | -`, marked(`W/"v1"`)},
		{"flipped to envelope, revalidates a legacy copy by date", "/json", envelopeKey, http.Header{"If-Modified-Since": {lastModified}},
			200, `- | - | - | - | -`, marked(`W/"v1"`)},
		{"rolled back to legacy, revalidates an envelope", "/json", legacyKey, http.Header{"If-None-Match": {marked(`W/"v1"`)}},
			200, marked(`W/"v1"`) + ` | - | - | - | -`, `"v1"`},
		{"envelope made under other rules", "/json", envelopeKey, http.Header{"If-None-Match": {oldRules}},
			200, `- | - | - | - | -`, marked(`W/"v1"`)},
		{"one of several tags is the envelope's", "/json", envelopeKey, http.Header{"If-None-Match": {`"v0", ` + marked(`W/"v1"`)}},
			304, `"v1" | - | - | - | -`, marked(`W/"v1"`)},
		{"star is kept", "/json", envelopeKey, http.Header{"If-None-Match": {"*"}},
			304, `* | - | - | - | -`, marked(`W/"v1"`)},
		{"envelope revalidates a passed file", "/file", envelopeKey, http.Header{"If-None-Match": {marked(`"f1"`)}},
			304, `"f1" | - | - | - | -`, marked(`"f1"`)},
		{"legacy revalidates by tag", "/json", legacyKey, http.Header{"If-None-Match": {`"v1"`}},
			304, `"v1" | - | - | - | -`, `"v1"`},
		{"legacy revalidates by date", "/json", legacyKey, http.Header{"If-Modified-Since": {lastModified}},
			304, `- | - | ` + lastModified + ` | - | -`, `"v1"`},
		{"envelope If-Match is unmarked", "/error", envelopeKey, http.Header{"If-Match": {marked(`W/"e1"`)}},
			402, `- | "e1" | - | - | -`, marked(`W/"e1"`)},
		{"envelope If-Match with a legacy tag is kept", "/error", envelopeKey, http.Header{"If-Match": {`"e1"`}},
			402, `- | "e1" | - | - | -`, marked(`W/"e1"`)},
		{"envelope Range is not forwarded", "/json", envelopeKey, http.Header{"Range": {"bytes=0-3"}, "If-Range": {`"v1"`}},
			200, `- | - | - | - | -`, marked(`W/"v1"`)},
		{"legacy Range is forwarded", "/file", legacyKey, http.Header{"Range": {"bytes=0-3"}},
			200, `- | - | - | bytes=0-3 | -`, `"f1"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &resources{}
			url := startProxy(t, up, nil)
			got := do(t, "GET", url+tc.path, tc.key, tc.header)
			if got.status != tc.wantStatus {
				t.Errorf("status: got %d; want %d (body %q)", got.status, tc.wantStatus, got.body)
			}
			if g := up.last(); g != tc.wantUp {
				t.Errorf("upstream got %q; want %q", g, tc.wantUp)
			}
			if g := got.header.Get("Etag"); g != tc.wantTag {
				t.Errorf("ETag: got %q; want %q", g, tc.wantTag)
			}
			if tc.key == envelopeKey && tc.path != "/file" && got.header.Get("Last-Modified") != "" {
				t.Errorf("Last-Modified: got %q; want none on an envelope", got.header.Get("Last-Modified"))
			}
		})
	}
}

// TestRulesChangeRefetches checks that a reload with other rules changes
// the envelope's tags, so an envelope made under the old rules is fetched
// again rather than confirmed.
func TestRulesChangeRefetches(t *testing.T) {
	h, px := startHandler(t, &resources{}, nil)
	before := do(t, "GET", px.URL+"/json", envelopeKey, nil).header.Get("Etag")
	s := h.current.Load().settings
	s.Rules = []transform.Rule{{Name: "teapot", Match: transform.Match{Status: 418}, Code: "teapot"}}
	if err := h.Swap(s); err != nil {
		t.Fatal(err)
	}
	got := do(t, "GET", px.URL+"/json", envelopeKey, http.Header{"If-None-Match": {before}})
	if got.status != 200 {
		t.Errorf("revalidation after a rules change: got %d; want 200", got.status)
	}
	if after := got.header.Get("Etag"); after == before {
		t.Errorf("ETag after a rules change: got %q, the same as before", after)
	}
}

// TestHeadIsGetWithoutBody compares every header of an envelope client's
// HEAD with its GET, for each kind of response the rewrite treats
// differently, and checks that a legacy client's HEAD still goes upstream
// as a HEAD.
func TestHeadIsGetWithoutBody(t *testing.T) {
	methods := make(chan string, 100)
	large := `[` + strings.Repeat(`1,`, 40<<10) + `1]`
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		methods <- r.Method
		switch r.URL.Path {
		case "/credits":
			w.Header().Set("Etag", `"c1"`)
			w.Header().Set("Accept-Ranges", "bytes")
			fixed(403, jsonHeader, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":5,"required":9}}`).ServeHTTP(w, r)
		case "/small":
			w.Header().Set("Etag", `"s1"`)
			fixed(200, jsonHeader, `{"id":1}`).ServeHTTP(w, r)
		case "/large":
			w.Header().Set("Content-Length", itoa(len(large)))
			fixed(200, jsonHeader, large).ServeHTTP(w, r)
		case "/file":
			w.Header().Set("Content-Length", "7")
			w.Header().Set("Accept-Ranges", "bytes")
			fixed(200, http.Header{"Content-Type": {"image/png"}}, "PNG....").ServeHTTP(w, r)
		case "/notjson":
			fixed(200, jsonHeader, `{"id":`).ServeHTTP(w, r)
		}
	})
	url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = 16 << 10 })
	for _, path := range []string{"/credits", "/small", "/large", "/file", "/notjson"} {
		t.Run(path, func(t *testing.T) {
			get := do(t, "GET", url+path, envelopeKey, nil)
			<-methods
			head := do(t, "HEAD", url+path, envelopeKey, nil)
			if m := <-methods; m != "GET" {
				t.Errorf("the envelope client's HEAD reached the upstream as %s; want GET", m)
			}
			if head.status != get.status {
				t.Errorf("status: HEAD %d, GET %d", head.status, get.status)
			}
			if len(head.body) != 0 {
				t.Errorf("HEAD body: got %d bytes; want none", len(head.body))
			}
			for _, h := range []http.Header{get.header, head.header} {
				h.Del("Date")
			}
			for k := range mergeKeys(get.header, head.header) {
				if g, w := head.header.Values(k), get.header.Values(k); strings.Join(g, "|") != strings.Join(w, "|") {
					t.Errorf("%s: HEAD %q, GET %q", k, g, w)
				}
			}
		})
	}
	t.Run("legacy", func(t *testing.T) {
		do(t, "HEAD", url+"/small", legacyKey, nil)
		if m := <-methods; m != "HEAD" {
			t.Errorf("a legacy client's HEAD reached the upstream as %s; want HEAD", m)
		}
	})
}

func mergeKeys(a, b http.Header) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
