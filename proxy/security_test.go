package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/lockedbuf"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// TestKeysNeverLogged sends keys every way a client might (listed,
// unlisted, in the query string, in other headers, echoed back by the
// upstream), through successes, rewrites and upstream failures, with every
// log at debug level, and checks that no key appears in the logs or in
// the metrics, while the logs do name the clients by key id.
func TestKeysNeverLogged(t *testing.T) {
	const (
		unlistedKey = "sk_live_unlisted_5f3a9c0e7b21d4"
		queryKey    = "sk_live_in_query_8d2e61a0c3"
		queryToken  = "tok_in_query_77c1e09b"
		bearer      = "sk_live_bearer_a41f0c99d2"
	)
	longKey := "sk_live_long_" + strings.Repeat("x9", 200) // past hashKey's stack buffer
	keys := []string{envelopeKey, legacyKey, shadowKey, unlistedKey, queryKey, queryToken, bearer, longKey}

	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, `{"ok":true}`)
		case "/credits":
			w.WriteHeader(403)
			io.WriteString(w, `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 1, "required": 2}}`)
		case "/echo":
			// A backend that echoes the key in its error message and code.
			k := r.Header.Get("X-API-Key")
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error": "Invalid API key %s", "code": "bad_key_%s"}`, k, k)
		case "/cut":
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(403)
			io.WriteString(w, `{"error": "Insufficient`)
			w.(http.Flusher).Flush()
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				reset(c)
			}
		case "/slow":
			<-r.Context().Done()
		}
	})
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)

	var logs lockedbuf.Buffer
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewDevelopmentEncoderConfig()), zapcore.AddSync(&logs), zapcore.DebugLevel)
	logger := zap.New(core)
	reg := prometheus.NewRegistry()
	cfg := testConfig(upstream.URL)
	cfg.Upstream.Timeout = 100 * time.Millisecond
	cfg.Routing.OverrideHeader = "X-Response-Format"
	cfg.Log.AccessLog = true
	cfg.Log.Level = "debug"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h, err := New(settingsOf(cfg), Options{Logger: logger, AccessLog: logger.Named("access"), Metrics: NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	px := serveProxy(t, h)

	for _, path := range []string{"/ok", "/credits", "/echo", "/cut", "/slow"} {
		for _, key := range []string{envelopeKey, legacyKey, shadowKey, unlistedKey, longKey, ""} {
			for _, override := range []string{"", "envelope"} {
				url := px.URL + path + "?api_key=" + queryKey + "&token=" + queryToken
				do(t, "GET", url, key, http.Header{"Authorization": {"Bearer " + bearer}, "X-Response-Format": {override}})
			}
		}
	}

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var metricsText strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&metricsText, mf); err != nil {
			t.Fatal(err)
		}
	}
	logText := logs.String()

	// The logs and metrics are not empty: they name the clients the
	// documented way, so the checks below are not vacuous.
	for _, want := range []string{`"key_id":"` + digest(envelopeKey)[:8] + `"`, `"key_id":"` + digest(unlistedKey)[:8] + `"`, `"key_id":"","mode":"legacy","upstream_status":`, `"client":"acme"`, "upstream error", `"path":"/echo"`} {
		if !strings.Contains(logText, want) {
			t.Errorf("logs: got no %s; want one (%d bytes of logs)", want, len(logText))
		}
	}
	for _, want := range []string{`envelope_proxy_requests_total{client="acme"`, `kind="reset"`, `kind="timeout"`} {
		if !strings.Contains(metricsText.String(), want) {
			t.Errorf("metrics: got no %s; want one", want)
		}
	}
	for _, key := range keys {
		if strings.Contains(logText, key) {
			i := strings.Index(logText, key)
			t.Errorf("logs: got key %q in %q; want no key", key, logText[max(0, i-200):min(len(logText), i+len(key)+50)])
		}
		if strings.Contains(logText, digest(key)) {
			t.Errorf("logs: got the full SHA-256 of key %q; want at most its first 8 hex digits", key)
		}
		if strings.Contains(metricsText.String(), key) {
			t.Errorf("metrics: got key %q; want no key", key)
		}
	}
}

// headerFields parses a raw HTTP head (request or response) into its
// fields, keyed by lower-case name, values as sent.
func headerFields(head string) map[string][]string {
	fields := map[string][]string{}
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		n := strings.ToLower(name)
		fields[n] = append(fields[n], strings.TrimSpace(value))
	}
	return fields
}

// rawHead reads one message head from br, byte for byte.
func rawHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for range 1000 {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
	return b.String(), fmt.Errorf("head longer than 1000 lines")
}

// TestHopByHopHeaders checks, on the wire on both sides, that hop-by-hop
// headers, and headers the Connection header names, travel neither from
// the client to the upstream nor from the upstream to the client.
func TestHopByHopHeaders(t *testing.T) {
	type seen struct {
		head string
		body string
	}
	received := make(chan seen, 10)
	// The upstream answers /v1/hop/<status>/<connection option> on
	// keep-alive connections, with hop-by-hop headers of its own.
	up := startRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for range 100 {
			head, err := rawHead(br)
			if err != nil {
				return
			}
			req, err := http.ReadRequest(bufio.NewReader(io.MultiReader(strings.NewReader(head), br)))
			if err != nil {
				return
			}
			body, _ := io.ReadAll(req.Body)
			received <- seen{head, string(body)}
			parts := strings.Split(req.URL.Path, "/")
			st, _ := strconv.Atoi(parts[3])
			respBody := `{"ok":true}`
			if st != 200 {
				respBody = `{"error":"Trial expired","code":"trial_expired"}`
			}
			fmt.Fprintf(c, "HTTP/1.1 %d %s\r\n"+
				"Content-Type: application/json\r\n"+
				"Connection: %s, X-Resp-Secret\r\n"+
				"Connection: X-Resp-Other\r\n"+
				"Keep-Alive: timeout=5, max=100\r\n"+
				"Proxy-Connection: keep-alive\r\n"+
				"Proxy-Authenticate: Basic realm=\"upstream\"\r\n"+
				"Upgrade: h2c\r\n"+
				"Te: trailers\r\n"+
				"X-Resp-Secret: 1\r\n"+
				"X-Resp-Other: 2\r\n"+
				"X-End-To-End: kept\r\n"+
				"Content-Length: %d\r\n\r\n%s", st, http.StatusText(st), parts[4], len(respBody), respBody)
			if parts[4] == "close" {
				return
			}
		}
	})
	url := proxyTo(t, "http://"+up, nil, Options{})
	proxyAddr := strings.TrimPrefix(url, "http://")

	requestHop := []string{"connection", "keep-alive", "proxy-connection", "te", "upgrade", "proxy-authorization", "x-secret", "x-other-secret"}
	responseHop := []string{"keep-alive", "proxy-connection", "proxy-authenticate", "upgrade", "te", "x-resp-secret", "x-resp-other"}

	tests := []struct {
		name     string
		key      string
		status   int
		reqConn  string // the request's first Connection option
		respConn string // the upstream response's first Connection option
		method   string
		extra    string // more request header lines
		body     string // a chunked request body
		wantBody string // what the upstream must read
	}{
		{"legacy client", legacyKey, 200, "keep-alive", "keep-alive", "GET", "", "", ""},
		{"envelope client, wrapped success", envelopeKey, 200, "keep-alive", "keep-alive", "GET", "", "", ""},
		{"envelope client, rewritten error", envelopeKey, 403, "keep-alive", "keep-alive", "GET", "", "", ""},
		{"chunked request body", legacyKey, 200, "keep-alive", "keep-alive", "POST", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world"},
		// net/http deletes a Connection header holding "close" when it
		// parses a message, before the proxy can read the other options.
		{"request connection close", legacyKey, 200, "close", "keep-alive", "GET", "", "", ""},
		{"response connection close", legacyKey, 200, "keep-alive", "close", "GET", "", "", ""},
		{"response connection close, envelope client", envelopeKey, 403, "keep-alive", "close", "GET", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.respConn == "close" {
				t.Skip("known limitation of net/http: an upstream Connection header holding \"close\" is deleted while the response is parsed, so ReverseProxy never sees the other headers it names (README, Known limitations)")
			}
			conn, err := net.Dial("tcp", proxyAddr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
			defer conn.Close()
			fmt.Fprintf(conn, "%s /v1/hop/%d/%s HTTP/1.1\r\n"+
				"Host: proxy.example\r\n"+
				"X-API-Key: %s\r\n"+
				"Connection: %s, X-Secret\r\n"+
				"Connection: X-Other-Secret\r\n"+
				"X-Secret: 1\r\n"+
				"X-Other-Secret: 2\r\n"+
				"Keep-Alive: timeout=5\r\n"+
				"Proxy-Connection: keep-alive\r\n"+
				"Te: gzip\r\n"+
				"Upgrade: h2c\r\n"+
				"Proxy-Authorization: Basic c2VjcmV0OnNlY3JldA==\r\n"+
				"X-End-To-End: kept\r\n"+
				"%s\r\n%s", tc.method, tc.status, tc.respConn, tc.key, tc.reqConn, tc.extra, tc.body)

			br := bufio.NewReader(conn)
			head, err := rawHead(br)
			if err != nil {
				t.Fatalf("reading the response head: %v (%q)", err, head)
			}
			resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(head), br)), nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()

			got := await.Receive(t, "the request at the upstream", received)
			reqFields := headerFields(got.head)
			for _, h := range requestHop {
				if v, ok := reqFields[h]; ok {
					t.Errorf("upstream got %s: %q; want it dropped", h, v)
				}
			}
			if g := reqFields["x-end-to-end"]; !slices.Equal(g, []string{"kept"}) {
				t.Errorf("upstream X-End-To-End: got %q; want [kept]", g)
			}
			if g := reqFields["x-api-key"]; !slices.Equal(g, []string{tc.key}) {
				t.Errorf("upstream X-API-Key: got %q; want [%s]", g, tc.key)
			}
			if got.body != tc.wantBody {
				t.Errorf("upstream body: got %q; want %q", got.body, tc.wantBody)
			}
			// The request body is framed once, by the proxy's own transport.
			te, cl := reqFields["transfer-encoding"], reqFields["content-length"]
			if len(te)+len(cl) > 1 || (len(te) == 1 && te[0] != "chunked") {
				t.Errorf("upstream framing: got Transfer-Encoding %q and Content-Length %q; want one of them, once", te, cl)
			}

			respFields := headerFields(head)
			for _, h := range responseHop {
				if v, ok := respFields[h]; ok {
					t.Errorf("client got %s: %q; want it dropped", h, v)
				}
			}
			// The only Connection header the client may get is the proxy's
			// own "close" (net/http never lets an upstream's "close" through).
			if v, ok := respFields["connection"]; ok && !slices.Equal(v, []string{"close"}) {
				t.Errorf("client got connection: %q; want it dropped", v)
			}
			if g := respFields["x-end-to-end"]; !slices.Equal(g, []string{"kept"}) {
				t.Errorf("client X-End-To-End: got %q; want [kept]", g)
			}
		})
	}
}

// TestRequestSmuggling sends requests whose framing is ambiguous. The
// proxy must either refuse them (nothing reaches the upstream) or forward
// one unambiguous request; it must never forward a request hidden in the
// body of another, as the second of two requests a front end that framed
// the bytes differently would have seen as one.
func TestRequestSmuggling(t *testing.T) {
	type got struct {
		method, path, body string
		header             http.Header
	}
	var mu sync.Mutex
	var seen []got
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, got{r.Method, r.URL.Path, string(body), r.Header.Clone()})
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	url := startProxy(t, up, nil)
	addr := strings.TrimPrefix(url, "http://")

	smuggled := "GET /smuggled HTTP/1.1\r\nHost: x\r\nX-API-Key: " + envelopeKey + "\r\n\r\n"
	const sentinel = "GET /sentinel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	clte := "0\r\n\r\n" + smuggled
	tests := []struct {
		name string
		raw  string
		// bothCLTE marks a request with both Content-Length and a
		// chunked Transfer-Encoding: if the proxy serves it, RFC 9112
		// section 6.1 requires it to close the connection afterwards, so
		// the sentinel behind it must never be served.
		bothCLTE bool
	}{
		{"content-length and chunked (CL.TE)", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(clte)) + "\r\nTransfer-Encoding: chunked\r\n\r\n" + clte, true},
		{"chunked and content-length (TE.CL)", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len("abc"+smuggled), "abc"+smuggled), true},
		{"two differing content-lengths", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, false},
		{"content-length list", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 0, " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, false},
		{"two transfer-encodings", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nContent-Length: " + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, false},
		{"obfuscated transfer-encoding", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: " + itoa(len(clte)) + "\r\n\r\n" + clte, false},
		{"transfer-encoding xchunked", "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: " + itoa(len(clte)) + "\r\n\r\n" + clte, false},
		{"signed content-length", "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: +" + itoa(len(smuggled)) + "\r\n\r\n" + smuggled, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
			defer conn.Close()
			// A last request asks the proxy to close the connection, so the
			// client can read every answer until EOF. (A half-close would
			// not do: net/http cancels the requests of a half-closed
			// connection.)
			if _, err := io.WriteString(conn, tc.raw+sentinel); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			var statuses []int
			for range 5 {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					break
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				statuses = append(statuses, resp.StatusCode)
			}
			mu.Lock()
			var got []got
			sentinelServed := false
			for _, g := range seen {
				if g.path != "/sentinel" {
					got = append(got, g)
				} else if len(statuses) > 0 {
					sentinelServed = true
					statuses = statuses[:len(statuses)-1] // the sentinel's answer
				}
			}
			mu.Unlock()
			if tc.bothCLTE && sentinelServed {
				t.Errorf("the proxy served the next request on the connection of a request with both Content-Length and Transfer-Encoding; want the connection closed after it (RFC 9112 section 6.1)")
			}
			var paths []string
			for _, g := range got {
				paths = append(paths, g.method+" "+g.path)
			}
			t.Logf("client got %v; upstream got %q", statuses, paths)
			switch {
			case len(got) == 0:
				if len(statuses) != 1 || statuses[0] < 400 {
					t.Errorf("nothing reached the upstream, but the client got %v; want one 4xx or 5xx refusal", statuses)
				}
			case len(got) == 1:
				if g := got[0]; g.method != "POST" || g.path != "/first" {
					t.Errorf("upstream got %s %s; want POST /first", g.method, g.path)
				}
				if len(statuses) != 1 {
					t.Errorf("client got %d responses %v; want 1", len(statuses), statuses)
				}
			default:
				t.Errorf("upstream got %d requests %q from one ambiguous request; want at most 1", len(got), paths)
			}
			for _, g := range got {
				if g.path == "/smuggled" {
					t.Errorf("the smuggled request reached the upstream")
				}
			}
		})
	}
}

// TestTemplatesCannotInjectJSON feeds legacy errors whose texts are built
// to break out of a JSON string (quotes, backslashes, control characters,
// </script>, U+2028, invalid UTF-8), through the built-in rules and a
// custom rule whose templates insert them, and checks every envelope is
// valid JSON of exactly the four keys.
func TestTemplatesCannotInjectJSON(t *testing.T) {
	// evil is a JSON string body (without its quotes) that decodes to
	// every kind of troublesome text.
	const evil = `q\" bs\\ \"}],\"success\":true,\"x\":{\" ctl\u0000\u0001\u001f\n\r\t\b\f </script><!-- \u2028 \u2029 ` +
		"raw\u2028sep \xff\xfe\xc3 invalid \xed\xa0\x80 surrogate end"
	evilObj := `{"a":"\"}]}","b":[1,"</script>",{"c":"\u2028"}],"d":"` + evil + `"}`
	rule := transform.Rule{
		Name:    "conflict",
		Match:   transform.Match{Status: 409},
		Code:    "{{details.code}}",
		Message: `{{error}} / {{details.x}} / {{$message}}`,
	}
	// decoded is the text a JSON string body decodes to, each invalid byte
	// replaced with U+FFFD, as the envelope's encoder does.
	decoded := func(jsonText string) string {
		var v string
		if err := json.Unmarshal([]byte(`"`+jsonText+`"`), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// The object inserted by {{details.x}} is its JSON text.
	objText := func() string {
		b, _ := json.Marshal(evilObj)
		var v string
		json.Unmarshal(b, &v)
		return v
	}()
	tests := []struct {
		name   string
		status int
		body   string
		want   string // the message, when the test pins it
	}{
		{"legacy message", 403, `{"error":"` + evil + `","code":"trial_expired"}`, decoded(evil)},
		{"detail message", 401, `{"detail":"` + evil + `"}`, ""},
		{"legacy code as errors key", 418, `{"error":"` + evil + `","code":"` + evil + `"}`, ""},
		{"field names and messages", 400, `{"error":"x","code":"invalid_payload","details":{"` + evil + `":["` + evil + `"],"ok":["` + evil + `"]}}`, ""},
		{"bare fields", 400, `{"` + evil + `":["` + evil + `"]}`, ""},
		{"pydantic loc and msg", 422, `{"detail":[{"loc":["body","` + evil + `"],"msg":"` + evil + `"}]}`, ""},
		{"custom rule templates", 409, `{"error":"` + evil + `","details":{"x":` + evilObj + `,"code":"` + evil + `"}}`, decoded(evil) + " / " + objText + " / " + decoded(evil)},
		{"custom rule, object as code", 409, `{"error":"e","details":{"x":"x","code":` + evilObj + `}}`, ""},
		{"raw control bytes, not JSON", 500, "{\"error\":\"a\x00\x01\x1f\"b\"}", ""},
		{"html", 502, "<html><script>alert(\"\u2028\")</script></html>", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, fixed(tc.status, jsonHeader, tc.body), func(c *config.Config) { c.Rules = []transform.Rule{rule} })
			got := do(t, "GET", url+"/", envelopeKey, nil)
			if got.err != nil {
				t.Fatalf("read: %v", got.err)
			}
			if !json.Valid(got.body) {
				t.Fatalf("got invalid JSON %q", got.body)
			}
			if g := got.header.Get("Content-Length"); g != itoa(len(got.body)) {
				t.Errorf("Content-Length: got %q; want %q", g, itoa(len(got.body)))
			}
			var env map[string]json.RawMessage
			if err := json.Unmarshal(got.body, &env); err != nil {
				t.Fatalf("got %q: %v", got.body, err)
			}
			var keys []string
			for k := range env {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if want := []string{"data", "errors", "message", "success"}; !slices.Equal(keys, want) {
				t.Errorf("keys: got %q; want %q", keys, want)
			}
			if string(env["data"]) != "null" || string(env["success"]) != "false" {
				t.Errorf("data, success: got %s, %s; want null, false", env["data"], env["success"])
			}
			var msg string
			if err := json.Unmarshal(env["message"], &msg); err != nil {
				t.Errorf("message: got %s; want a string (%v)", env["message"], err)
			}
			var errs []map[string][]string
			if err := json.Unmarshal(env["errors"], &errs); err != nil || len(errs) == 0 {
				t.Errorf("errors: got %s; want a non-empty list of {code: [messages]} (%v)", env["errors"], err)
			}
			if tc.want != "" && msg != tc.want {
				t.Errorf("message: got %q; want %q", msg, tc.want)
			}
		})
	}
}

// TestOversizedRequestHeaders serves the Handler the way the cli does,
// from an http.Server with MaxHeaderBytes, and checks that a request with
// too many header bytes gets a clean 431 and never reaches the upstream.
func TestOversizedRequestHeaders(t *testing.T) {
	var reached sync.Map
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(r.URL.Path, true)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	})
	upstream := httptest.NewServer(up)
	t.Cleanup(upstream.Close)
	cfg := testConfig(upstream.URL)
	h, err := New(settingsOf(cfg), Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, MaxHeaderBytes: 4096, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		// Shutdown, not Close: it waits for the connection net/http keeps
		// open for a moment after a 431 (so the client can read it), which
		// would otherwise outlive the test.
		srv.Shutdown(context.Background())
		<-served
	})

	send := func(path string, headerBytes int) (*http.Response, error) {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
		t.Cleanup(func() { conn.Close() })
		var b strings.Builder
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n", path, envelopeKey)
		for i := 0; b.Len() < headerBytes; i++ {
			fmt.Fprintf(&b, "X-Pad-%d: %s\r\n", i, strings.Repeat("p", 100))
		}
		b.WriteString("\r\n")
		wrote := make(chan error, 1)
		go func() {
			_, err := io.WriteString(conn, b.String())
			wrote <- err
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		conn.Close()
		<-wrote
		return resp, err
	}

	resp, err := send("/small", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Errorf("1 KiB of headers: got %d; want 200", resp.StatusCode)
	}
	resp, err = send("/big", 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB of headers: got %d; want 431", resp.StatusCode)
	}
	if _, ok := reached.Load("/big"); ok {
		t.Errorf("the oversized request reached the upstream")
	}
	if _, ok := reached.Load("/small"); !ok {
		t.Errorf("the small request never reached the upstream")
	}
}

// TestOverrideHeaderLimits adds to TestOverrideHeader: a mode the config
// does not allow is never selected, whatever its case, position or
// spelling, and an allowed one is only selected when it is named exactly.
func TestOverrideHeaderLimits(t *testing.T) {
	up := fixed(403, jsonHeader, `{"error": "Trial expired", "code": "trial_expired"}`)
	const legacyBody = `{"error": "Trial expired", "code": "trial_expired"}`
	on := func(modes ...config.Mode) func(*config.Config) {
		return func(c *config.Config) {
			c.Routing.OverrideHeader = "X-Response-Format"
			if modes != nil {
				c.Routing.OverrideModes = modes
			}
		}
	}
	tests := []struct {
		name         string
		edit         func(*config.Config)
		key          string
		values       []string
		wantEnvelope bool
	}{
		{"off: envelope ignored", nil, legacyKey, []string{"envelope"}, false},
		{"off: legacy ignored", nil, envelopeKey, []string{"legacy"}, true},
		{"shadow not allowed by default", on(), envelopeKey, []string{"shadow"}, true},
		{"shadow allowed", on(config.ModeLegacy, config.ModeEnvelope, config.ModeShadow), envelopeKey, []string{"shadow"}, false},
		{"envelope not allowed", on(config.ModeLegacy), legacyKey, []string{"envelope"}, false},
		{"upper case ignored", on(), legacyKey, []string{"ENVELOPE"}, false},
		{"title case ignored", on(), legacyKey, []string{"Envelope"}, false},
		{"upper case not allowed mode ignored", on(config.ModeLegacy), legacyKey, []string{"ENVELOPE"}, false},
		{"comma list ignored", on(), legacyKey, []string{"envelope, legacy"}, false},
		{"padded value selects", on(), legacyKey, []string{"  envelope  "}, true},
		{"not allowed second", on(config.ModeLegacy), legacyKey, []string{"legacy", "envelope"}, false},
		{"not allowed first", on(config.ModeLegacy), legacyKey, []string{"envelope", "legacy"}, false},
		{"not allowed in either", on(config.ModeLegacy), envelopeKey, []string{"shadow", "envelope"}, true},
		{"not allowed in either, legacy client", on(config.ModeLegacy), legacyKey, []string{"envelope", "shadow"}, false},
		{"empty value ignored", on(), envelopeKey, []string{""}, true},
		{"mode with a control byte ignored", on(), legacyKey, []string{"envelope\x01"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, up, tc.edit)
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
			defer conn.Close()
			// Raw, so that repeated and odd values arrive exactly as sent.
			var b strings.Builder
			fmt.Fprintf(&b, "GET /v1/x HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\n", tc.key)
			for _, v := range tc.values {
				fmt.Fprintf(&b, "X-Response-Format: %s\r\n", v)
			}
			b.WriteString("\r\n")
			io.WriteString(conn, b.String())
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode == http.StatusBadRequest && !bytes.Contains(body, []byte("Trial")) {
				return // refused by net/http before routing: nothing was selected
			}
			isEnvelope := bytes.HasPrefix(body, []byte(`{"data":`))
			if isEnvelope != tc.wantEnvelope {
				t.Errorf("got %d %q; want envelope=%v", resp.StatusCode, body, tc.wantEnvelope)
			}
			if !isEnvelope && string(body) != legacyBody {
				t.Errorf("got %q; want the legacy bytes %q", body, legacyBody)
			}
		})
	}
}
