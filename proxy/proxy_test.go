package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// The test clients: envelopeKey is listed in envelope mode, legacyKey in
// legacy mode; any other key falls to the default (legacy).
const (
	envelopeKey = "key-envelope-client"
	legacyKey   = "key-legacy-client"
	shadowKey   = "key-shadow-client"
)

func digest(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// testConfig returns a valid config for tests, with the three clients.
func testConfig(upstreamURL string) *config.Config {
	c := config.Default()
	c.Listen = "127.0.0.1:0"
	c.Upstream.URL = upstreamURL
	c.MaxBodyBytes = 64 << 10
	c.Server.ShutdownTimeout = time.Second
	c.Routing.Clients = []config.Client{
		{Name: "acme", KeysSHA256: []string{digest(envelopeKey)}, Mode: config.ModeEnvelope},
		{Name: "old", KeysSHA256: []string{digest(legacyKey)}, Mode: config.ModeLegacy},
		{Name: "watcher", KeysSHA256: []string{digest(shadowKey)}, Mode: config.ModeShadow},
	}
	return c
}

// settingsOf is the proxy's part of cfg, as the serve command hands it
// over.
func settingsOf(cfg *config.Config) Settings {
	return Settings{
		Upstream:              cfg.Upstream,
		Routing:               cfg.Routing,
		Rules:                 cfg.Rules,
		MigratedPrefixes:      cfg.MigratedPrefixes,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		RequestBuffering:      cfg.Server.RequestBuffering,
		AccessLog:             cfg.Log.AccessLog,
		Samples:               cfg.Dashboard.Samples,
		ShadowMaxRequestBytes: cfg.Shadow.MaxRequestBytes,
		ShadowMaxBodyBytes:    cfg.Shadow.MaxBodyBytes,
		RetireAfter:           cfg.Server.ShutdownTimeout,
	}
}

// startProxy starts an upstream with handler and envelope-proxy in front of
// it, both on real loopback listeners, and returns the proxy's URL.
func startProxy(t testing.TB, upstream http.Handler, edit func(*config.Config)) string {
	t.Helper()
	_, px := startHandler(t, upstream, edit)
	return px.URL
}

// startHandler is startProxy for tests that also look at the Handler.
func startHandler(t testing.TB, upstream http.Handler, edit func(*config.Config)) (*Handler, *httptest.Server) {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	cfg := testConfig(up.URL)
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	h, err := New(settingsOf(cfg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return h, serveProxy(t, h)
}

// serveProxy serves h on a test server, and closes it when the test ends.
func serveProxy(t testing.TB, h *Handler) *httptest.Server {
	t.Helper()
	px := httptest.NewServer(h)
	t.Cleanup(px.Close)
	return px
}

// response is what a client saw.
type response struct {
	status int
	header http.Header
	body   []byte
	err    error // a read error: the connection was aborted
}

// noCompressionClient never adds Accept-Encoding by itself, so tests see
// bytes exactly as the proxy sent them.
var noCompressionClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

func do(t testing.TB, method, url, key string, header http.Header) response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp := sendUnread(t, noCompressionClient, req, key)
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body, err: rerr}
}

// sendUnread sends req through client with key in X-API-Key (none when
// "") and returns the response with its body unread, for the tests that
// read it themselves; the caller closes it.
func sendUnread(t testing.TB, client *http.Client, req *http.Request, key string) *http.Response {
	t.Helper()
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// fixed answers every request with the same status, headers and body.
func fixed(status int, header http.Header, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, vs := range header {
			w.Header()[k] = vs
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func TestLegacyClientsGetUpstreamBytes(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"credits error", 403, jsonHeader, `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`},
		{"success", 200, http.Header{"Content-Type": {"application/json"}, "Etag": {`"v1"`}, "X-Custom": {"a", "b"}}, `{"id": 9007199254740993}`},
		{"html error", 502, http.Header{"Content-Type": {"text/html"}}, "<html>bad gateway</html>"},
		{"not json at all", 200, jsonHeader, "{\"a\":1}\n{\"a\":2}\n"},
	}
	for _, tc := range tests {
		for _, key := range []string{legacyKey, "unlisted-key", "", shadowKey} {
			t.Run(tc.name+"/"+key, func(t *testing.T) {
				url := startProxy(t, fixed(tc.status, tc.header, tc.body), nil)
				got := do(t, "GET", url+"/v1/x", key, nil)
				if got.status != tc.status {
					t.Errorf("status: got %d; want %d", got.status, tc.status)
				}
				if string(got.body) != tc.body {
					t.Errorf("body: got %q; want %q", got.body, tc.body)
				}
				for k, want := range tc.header {
					if g := got.header[k]; strings.Join(g, "|") != strings.Join(want, "|") {
						t.Errorf("header %s: got %q; want %q", k, g, want)
					}
				}
				if g := got.header.Get("Content-Length"); g != itoa(len(tc.body)) {
					t.Errorf("Content-Length: got %q; want %q", g, itoa(len(tc.body)))
				}
			})
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestEnvelopeErrorRewrite(t *testing.T) {
	header := http.Header{
		"Content-Type":     {"application/json; charset=utf-8"},
		"Retry-After":      {"30"},
		"Www-Authenticate": {`Bearer realm="api"`},
		"Allow":            {"GET, POST"},
		"Etag":             {`"abc"`},
		"Content-Md5":      {"Q2hlY2sgSW50ZWdyaXR5IQ=="},
		"Digest":           {"sha-256=abc"},
		"X-Request-Id":     {"r-1"},
	}
	url := startProxy(t, fixed(403, header, `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`), nil)
	got := do(t, "POST", url+"/v1/detect", envelopeKey, nil)
	want := `{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50","errors":[{"insufficient_credits":["Insufficient credits. Required: 120, available: 50"]}]}`
	if got.status != 402 || string(got.body) != want {
		t.Fatalf("got %d %q; want 402 %q", got.status, got.body, want)
	}
	checks := map[string]string{
		"Content-Type":     "application/json",
		"Content-Length":   itoa(len(want)),
		"Retry-After":      "30",
		"Www-Authenticate": `Bearer realm="api"`,
		"Allow":            "GET, POST",
		"Etag":             `W/"abc` + tagMarker + rulesFingerprint(nil) + `"`,
		"Content-Md5":      "",
		"Digest":           "",
		"X-Request-Id":     "r-1",
		"Vary":             "X-Api-Key",
	}
	for k, w := range checks {
		if g := got.header.Get(k); g != w {
			t.Errorf("%s: got %q; want %q", k, g, w)
		}
	}
}

func TestEnvelopeSuccessWrap(t *testing.T) {
	body := `{"id": 9007199254740993, "z": 1, "a": "caf\u00e9", "f": 1.10}`
	url := startProxy(t, fixed(200, http.Header{"Content-Type": {"application/json"}, "Etag": {`W/"weak"`}}, body), nil)
	got := do(t, "GET", url+"/v1/items/1", envelopeKey, nil)
	want := `{"data":` + body + `,"success":true,"message":"OK"}`
	if got.status != 200 || string(got.body) != want {
		t.Fatalf("got %d %q; want 200 %q", got.status, got.body, want)
	}
	if g := got.header.Get("Content-Length"); g != itoa(len(want)) {
		t.Errorf("Content-Length: got %q; want %q", g, itoa(len(want)))
	}
	if g, w := got.header.Get("Etag"), `W/"weak`+tagMarker+rulesFingerprint(nil)+`"`; g != w {
		t.Errorf("Etag: got %q; want %q", g, w)
	}
}

func TestEnvelopeErrorBodies(t *testing.T) {
	big := `{"error": "` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantStatus int
		want       string // "" means: the legacy body unchanged
	}{
		{"html from a load balancer", 502, http.Header{"Content-Type": {"text/html"}}, "<html><body><h1>502 Bad Gateway</h1></body></html>", 502,
			`{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`},
		{"malformed json", 400, jsonHeader, `{"error": "Invalid`, 400,
			`{"data":null,"success":false,"message":"Bad Request","errors":[{"bad_request":["Bad Request"]}]}`},
		{"empty body", 404, nil, ``, 404,
			`{"data":null,"success":false,"message":"Not Found","errors":[{"not_found":["Not Found"]}]}`},
		{"oversize passes unchanged", 500, jsonHeader, big, 500, ""},
		{"oversize without length passes unchanged", 500, http.Header{"Content-Type": {"application/json"}, "X-Chunked": {"1"}}, big, 500, ""},
		{"already an envelope", 401, jsonHeader, `{"data": null, "success": false, "message": "Not authenticated", "errors": [{"invalid_key": ["Not authenticated"]}]}`, 401, ""},
		{"pydantic 422 becomes 400", 422, jsonHeader, `{"detail": [{"loc": ["body", "session_id"], "msg": "Field required"}]}`, 400,
			`{"data":null,"success":false,"message":"session_id: Field required","errors":[{"session_id":["Field required"]}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, vs := range tc.header {
					w.Header()[k] = vs
				}
				w.WriteHeader(tc.status)
				if tc.header.Get("X-Chunked") != "" {
					// Two flushed writes: no Content-Length.
					io.WriteString(w, tc.body[:10])
					w.(http.Flusher).Flush()
					io.WriteString(w, tc.body[10:])
					return
				}
				io.WriteString(w, tc.body)
			})
			url := startProxy(t, up, nil)
			got := do(t, "GET", url+"/v1/x", envelopeKey, nil)
			want := tc.want
			if want == "" {
				want = tc.body
			}
			if got.status != tc.wantStatus || string(got.body) != want {
				t.Errorf("got %d %.200q; want %d %.200q", got.status, got.body, tc.wantStatus, want)
			}
			if got.err != nil {
				t.Errorf("read: %v", got.err)
			}
		})
	}
}

func TestEnvelopeSuccessPasses(t *testing.T) {
	tests := []struct {
		name   string
		method string
		path   string
		status int
		header http.Header
		body   string
	}{
		{"csv", "GET", "/v1/export", 200, http.Header{"Content-Type": {"text/csv"}}, "a,b\n1,2\n"},
		{"image", "GET", "/logo.png", 200, http.Header{"Content-Type": {"image/png"}}, "\x89PNG\r\n\x1a\n"},
		{"ndjson labelled json", "GET", "/v1/x", 200, jsonHeader, "{\"a\":1}\n{\"a\":2}\n"},
		{"truncated json", "GET", "/v1/x", 200, jsonHeader, `{"a": [1, 2`},
		{"redirect", "GET", "/v1/old", 302, http.Header{"Location": {"/v1/new"}, "Content-Type": {"application/json"}}, `{"moved": true}`},
		{"no content", "DELETE", "/v1/x", 204, nil, ""},
		{"head", "HEAD", "/v1/x", 403, jsonHeader, ""},
		{"migrated prefix", "GET", "/v2/items", 200, jsonHeader, `{"data": {"id": 1}, "success": true, "message": "OK"}`},
		{"partial content", "GET", "/v1/x", 206, http.Header{"Content-Type": {"application/json"}, "Content-Range": {"bytes 0-3/10"}}, `{"a"`},
		{"unknown encoding", "GET", "/v1/x", 200, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"compress"}}, "\x1f\x9d"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, fixed(tc.status, tc.header, tc.body), func(c *config.Config) {
				c.MigratedPrefixes = []string{"/v2/"}
			})
			client := &http.Client{Transport: noCompressionClient.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest(tc.method, url+tc.path, nil)
			resp := sendUnread(t, client, req, envelopeKey)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || string(body) != tc.body {
				t.Errorf("got %d %q; want %d %q", resp.StatusCode, body, tc.status, tc.body)
			}
			for k, want := range tc.header {
				if g := resp.Header.Get(k); g != want[0] {
					t.Errorf("%s: got %q; want %q", k, g, want[0])
				}
			}
		})
	}
}

// TestPassthroughStreams checks that a passed-through body reaches the
// client as it arrives: the upstream sends its first bytes and then waits
// until the client has read them, which deadlocks (and the test times out)
// if the proxy holds the bytes back until the body ends. It also checks
// that the copy uses a large buffer exactly when the body's length is known
// to exceed a small one, and gives it back.
func TestPassthroughStreams(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		header http.Header
		length bool
	}{
		{"legacy json with length", legacyKey, jsonHeader, true},
		{"legacy chunked", legacyKey, jsonHeader, false},
		{"envelope client, csv", envelopeKey, http.Header{"Content-Type": {"text/csv"}}, true},
		{"envelope client, event stream", envelopeKey, http.Header{"Content-Type": {"text/event-stream"}}, false},
		{"envelope client, oversize error", envelopeKey, http.Header{"Content-Type": {"text/plain"}, "X-Status": {"500"}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, rest := "first-bytes;", strings.Repeat("r", 100<<10)
			clientGotFirst := make(chan struct{})
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, vs := range tc.header {
					w.Header()[k] = vs
				}
				if tc.length {
					w.Header().Set("Content-Length", itoa(len(first)+len(rest)))
				}
				status := 200
				if tc.header.Get("X-Status") != "" {
					status = 500
				}
				w.WriteHeader(status)
				io.WriteString(w, first)
				w.(http.Flusher).Flush()
				select {
				case <-clientGotFirst:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, rest)
			})
			h, px := startHandler(t, up, func(c *config.Config) { c.MaxBodyBytes = 16 })
			req, _ := http.NewRequest("GET", px.URL+"/stream", nil)
			resp := sendUnread(t, noCompressionClient, req, tc.key)
			defer resp.Body.Close()
			buf := make([]byte, len(first))
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			if string(buf) != first {
				t.Fatalf("first bytes: got %q; want %q", buf, first)
			}
			// The copy is under way, waiting for the rest.
			wantLarge := int64(0)
			if tc.length {
				wantLarge = 1
			}
			if got := h.services.copies.largeInUse.Load(); got != wantLarge {
				t.Errorf("large copy buffers in use mid-body: got %d; want %d", got, wantLarge)
			}
			close(clientGotFirst)
			tail, err := io.ReadAll(resp.Body)
			if err != nil || string(tail) != rest {
				t.Errorf("rest: got %d bytes, %v; want %d bytes", len(tail), err, len(rest))
			}
			px.Close() // waits for the handler to return
			if got := h.services.copies.largeInUse.Load(); got != 0 {
				t.Errorf("large copy buffers in use after the response: got %d; want 0", got)
			}
		})
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	for _, tc := range []struct {
		key  string
		want string
	}{
		{envelopeKey, `{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`},
		{legacyKey, `{"error":"Bad Gateway","code":"bad_gateway"}`},
	} {
		t.Run(tc.key, func(t *testing.T) {
			url := startProxy(t, http.NotFoundHandler(), func(c *config.Config) { c.Upstream.URL = deadURL })
			got := do(t, "GET", url+"/v1/x", tc.key, nil)
			if got.status != 502 || string(got.body) != tc.want {
				t.Errorf("got %d %q; want 502 %q", got.status, got.body, tc.want)
			}
			if g := got.header.Get("Content-Type"); g != "application/json" {
				t.Errorf("Content-Type: got %q; want application/json", g)
			}
		})
	}
}

func TestUpstreamTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	url := startProxy(t, up, func(c *config.Config) { c.Upstream.Timeout = 50 * time.Millisecond })
	for _, tc := range []struct {
		key  string
		want string
	}{
		{envelopeKey, `{"data":null,"success":false,"message":"Gateway Timeout","errors":[{"gateway_timeout":["Gateway Timeout"]}]}`},
		{"", `{"error":"Gateway Timeout","code":"gateway_timeout"}`},
	} {
		got := do(t, "GET", url+"/slow", tc.key, nil)
		if got.status != 504 || string(got.body) != tc.want {
			t.Errorf("key %q: got %d %q; want 504 %q", tc.key, got.status, got.body, tc.want)
		}
	}
}

func TestBufferedErrorResetMidBody(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(403)
		io.WriteString(w, `{"error": "Insufficient cre`)
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	url := startProxy(t, up, nil)
	got := do(t, "GET", url+"/v1/x", envelopeKey, nil)
	want := `{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`
	if got.status != 502 || string(got.body) != want {
		t.Errorf("got %d %q; want 502 %q", got.status, got.body, want)
	}
}

func TestVary(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*config.Config)
		upstream http.Header
		want     []string
	}{
		{"mixed modes", nil, jsonHeader, []string{"X-Api-Key"}},
		{"with override header", func(c *config.Config) { c.Routing.OverrideHeader = "X-Response-Format" }, jsonHeader, []string{"X-Api-Key, X-Response-Format"}},
		{"merged into the upstream's vary", nil, http.Header{"Content-Type": {"application/json"}, "Vary": {"Accept-Encoding"}}, []string{"Accept-Encoding, X-Api-Key"}},
		{"upstream lines merged, no duplicate token", func(c *config.Config) { c.Routing.OverrideHeader = "X-Response-Format" },
			http.Header{"Content-Type": {"application/json"}, "Vary": {"accept-encoding, x-api-key", "Origin,Accept-Encoding"}},
			[]string{"accept-encoding, x-api-key, Origin, X-Response-Format"}},
		{"vary star stays", nil, http.Header{"Content-Type": {"application/json"}, "Vary": {"*"}}, []string{"*"}},
		{"vary star among others stays", nil, http.Header{"Content-Type": {"application/json"}, "Vary": {"Accept-Encoding", "*"}}, []string{"Accept-Encoding", "*"}},
		{"one format for all", func(c *config.Config) { c.Routing.Clients = nil }, jsonHeader, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, fixed(200, tc.upstream, `{}`), tc.edit)
			for _, key := range []string{envelopeKey, legacyKey, ""} {
				got := do(t, "GET", url+"/", key, nil)
				if g := got.header["Vary"]; strings.Join(g, "|") != strings.Join(tc.want, "|") {
					t.Errorf("key %q: got %q; want %q", key, g, tc.want)
				}
			}
		})
	}
}

func TestOverrideHeader(t *testing.T) {
	seen := make(chan http.Header, 10)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	tests := []struct {
		name     string
		override string
		key      string
		edit     func(*config.Config)
		wantWrap bool
	}{
		{"off by default", "envelope", legacyKey, nil, false},
		{"selects envelope", "envelope", legacyKey, func(c *config.Config) { c.Routing.OverrideHeader = "X-Response-Format" }, true},
		{"selects legacy", "legacy", envelopeKey, func(c *config.Config) { c.Routing.OverrideHeader = "X-Response-Format" }, false},
		{"mode not allowed", "envelope", legacyKey, func(c *config.Config) {
			c.Routing.OverrideHeader = "X-Response-Format"
			c.Routing.OverrideModes = []config.Mode{config.ModeLegacy}
		}, false},
		{"unknown value ignored", "json", envelopeKey, func(c *config.Config) { c.Routing.OverrideHeader = "X-Response-Format" }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, up, tc.edit)
			got := do(t, "GET", url+"/", tc.key, http.Header{"X-Response-Format": {tc.override}})
			wrapped := bytes.HasPrefix(got.body, []byte(`{"data":`))
			if wrapped != tc.wantWrap {
				t.Errorf("got %q; want wrapped=%v", got.body, tc.wantWrap)
			}
			h := await.Receive(t, "the request at the upstream", seen)
			if h.Get("X-Api-Key") != tc.key {
				t.Errorf("upstream X-API-Key: got %q; want the client's key", h.Get("X-Api-Key"))
			}
			if tc.edit != nil && h.Get("X-Response-Format") != "" {
				t.Errorf("override header reached the upstream: %q", h.Get("X-Response-Format"))
			}
		})
	}
}
