package proxy

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The answers the proxy itself writes when the upstream fails, in both
// formats.
const (
	badGatewayEnvelope     = `{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`
	badGatewayLegacy       = `{"error":"Bad Gateway","code":"bad_gateway"}`
	gatewayTimeoutEnvelope = `{"data":null,"success":false,"message":"Gateway Timeout","errors":[{"gateway_timeout":["Gateway Timeout"]}]}`
	gatewayTimeoutLegacy   = `{"error":"Gateway Timeout","code":"gateway_timeout"}`
	wrapSuffix             = `,"success":true,"message":"OK"}`
)

// proxyTo starts envelope-proxy in front of upstreamURL on a loopback
// listener and returns its URL. Unlike startProxy it starts no upstream of
// its own, so it fits raw TCP upstreams, and it takes the Handler's Options.
func proxyTo(t testing.TB, upstreamURL string, edit func(*config.Config), opts Options) string {
	t.Helper()
	cfg := testConfig(upstreamURL)
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	h, err := New(settingsOf(cfg), opts)
	if err != nil {
		t.Fatal(err)
	}
	return serveProxy(t, h).URL
}

// rawServer is a misbehaving peer on a raw TCP listener: serve runs once
// per accepted connection and owns it; it may write anything, close it or
// reset it. Cleanup closes the listener and every connection still open
// and waits for the serve goroutines, so none outlives the test.
type rawServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// startRawServer starts a rawServer and returns its address.
func startRawServer(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &rawServer{ln: ln, conns: map[net.Conn]struct{}{}}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for range 10000 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = struct{}{}
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					c.Close()
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
				}()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for c := range u.conns {
			c.Close()
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return ln.Addr().String()
}

// startRawUpstream starts a raw upstream whose serve runs after the
// request head has been read, and returns its URL.
func startRawUpstream(t testing.TB, serve func(c net.Conn, br *bufio.Reader, req *http.Request)) string {
	t.Helper()
	return "http://" + startRawServer(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		serve(c, br, req)
	})
}

// reset closes c with an RST instead of a FIN: with SO_LINGER 0 the kernel
// drops the connection at once and the peer's next read fails with
// ECONNRESET.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// clientFormats are the two formats the proxy answers its own errors in,
// with a client of each.
var clientFormats = []struct {
	name     string
	key      string
	client   string
	envelope bool
}{
	{"envelope client", envelopeKey, "acme", true},
	{"legacy client", legacyKey, "old", false},
	{"unlisted client", "unlisted-key", "default", false},
	{"shadow client", shadowKey, "watcher", false},
}

// checkProxyError checks a complete answer written by the proxy itself.
func checkProxyError(t *testing.T, got response, status int, want string) {
	t.Helper()
	if got.err != nil {
		t.Errorf("read: got %v; want a complete body", got.err)
	}
	if got.status != status || string(got.body) != want {
		t.Errorf("got %d %q; want %d %q", got.status, got.body, status, want)
	}
	if g := got.header.Get("Content-Type"); g != "application/json" {
		t.Errorf("Content-Type: got %q; want %q", g, "application/json")
	}
	if g := got.header.Get("Content-Length"); g != itoa(len(got.body)) {
		t.Errorf("Content-Length: got %q; want %q", g, itoa(len(got.body)))
	}
}

// checkUpstreamFailure checks the proxy's own answer to a failed upstream,
// in the client's format, and that the failure was counted once under kind
// for the client.
func checkUpstreamFailure(t *testing.T, got response, m *Metrics, client string, envelope bool, status int, kind string) {
	t.Helper()
	bodies := map[int][2]string{
		http.StatusBadGateway:     {badGatewayLegacy, badGatewayEnvelope},
		http.StatusGatewayTimeout: {gatewayTimeoutLegacy, gatewayTimeoutEnvelope},
	}
	want := bodies[status][0]
	if envelope {
		want = bodies[status][1]
	}
	checkProxyError(t, got, status, want)
	if g := testutil.ToFloat64(m.upstreamErrors.WithLabelValues(client, kind)); g != 1 {
		t.Errorf("upstream_errors_total{client=%q,kind=%q}: got %v; want 1", client, kind, g)
	}
}

// TestFaults injects upstream failures, each from a real misbehaving
// upstream on a loopback listener, and checks what the client gets.
func TestFaults(t *testing.T) {
	t.Run("refused", testFaultRefused)
	t.Run("never answers", testFaultNeverAnswers)
	t.Run("closed in the response head", testFaultClosedInHead)
	t.Run("reset mid buffered error", testFaultResetMidError)
	t.Run("reset mid streamed success", testFaultResetMidStream)
	t.Run("content-length mismatch", testFaultContentLength)
	t.Run("broken gzip", testFaultGzip)
	t.Run("drip", testFaultDrip)
	t.Run("huge response head", testFaultHugeHead)
	t.Run("huge body", testFaultHugeBody)
	t.Run("client disconnects mid stream", testFaultClientGone)
	t.Run("client half-closes before the answer", testFaultHalfClose)
}

func testFaultRefused(t *testing.T) {
	dead := loopback.RefusedURL(t)
	for _, cf := range clientFormats {
		t.Run(cf.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			url := proxyTo(t, dead, nil, Options{Metrics: m})
			got := do(t, "GET", url+"/v1/x", cf.key, nil)
			checkUpstreamFailure(t, got, m, cf.client, cf.envelope, http.StatusBadGateway, upstreamRefused)
		})
	}
}

func testFaultNeverAnswers(t *testing.T) {
	for _, cf := range clientFormats[:2] {
		t.Run(cf.name, func(t *testing.T) {
			// The upstream reads the request and then waits for the
			// proxy to give up, which it sees as the end of its input.
			gaveUp := make(chan struct{})
			up := startRawUpstream(t, func(c net.Conn, br *bufio.Reader, _ *http.Request) {
				io.Copy(io.Discard, br)
				close(gaveUp)
			})
			m := NewMetrics(prometheus.NewRegistry())
			url := proxyTo(t, up, func(c *config.Config) { c.Upstream.Timeout = 100 * time.Millisecond }, Options{Metrics: m})
			got := do(t, "GET", url+"/v1/slow", cf.key, nil)
			checkUpstreamFailure(t, got, m, cf.client, cf.envelope, http.StatusGatewayTimeout, upstreamTimeout)
			// The proxy closes the connection it gave up on rather than
			// leaving it open to the upstream.
			await.Receive(t, "the proxy to close the upstream connection it gave up on", gaveUp)
		})
	}
}

func testFaultClosedInHead(t *testing.T) {
	tests := []struct {
		name  string
		head  string
		reset bool
	}{
		{"nothing sent", "", false},
		{"mid status line", "HTTP/1.1 20", false},
		{"mid header name", "HTTP/1.1 200 OK\r\nContent-Ty", false},
		{"after a header, before the blank line", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", false},
		{"reset mid header name", "HTTP/1.1 200 OK\r\nContent-Ty", true},
	}
	for _, tc := range tests {
		for _, cf := range clientFormats[:2] {
			t.Run(tc.name+"/"+cf.name, func(t *testing.T) {
				up := startRawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
					io.WriteString(c, tc.head)
					if tc.reset {
						reset(c)
					}
				})
				url := proxyTo(t, up, nil, Options{})
				got := do(t, "GET", url+"/v1/x", cf.key, nil)
				want := badGatewayLegacy
				if cf.envelope {
					want = badGatewayEnvelope
				}
				checkProxyError(t, got, http.StatusBadGateway, want)
			})
		}
	}
}

func testFaultResetMidError(t *testing.T) {
	const part = `{"error": "Insufficient cre`
	up := func(t *testing.T) string {
		return startRawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"+part)
			reset(c)
		})
	}
	t.Run("envelope client gets a complete 502", func(t *testing.T) {
		m := NewMetrics(prometheus.NewRegistry())
		url := proxyTo(t, up(t), nil, Options{Metrics: m})
		got := do(t, "GET", url+"/v1/x", envelopeKey, nil)
		checkUpstreamFailure(t, got, m, "acme", true, http.StatusBadGateway, upstreamReset)
	})
	t.Run("legacy client's read is aborted", func(t *testing.T) {
		url := proxyTo(t, up(t), nil, Options{})
		got := do(t, "GET", url+"/v1/x", legacyKey, nil)
		if got.status != 403 {
			t.Errorf("status: got %d; want 403 (the upstream's, already sent)", got.status)
		}
		if got.err == nil {
			t.Errorf("read: got a complete body %q; want the connection aborted", got.body)
		}
		if !strings.HasPrefix(part, string(got.body)) {
			t.Errorf("body: got %q; want a prefix of %q", got.body, part)
		}
	})
}

// jsonZeros returns the first n bytes of a JSON array of zeros, "[0,0,0,".
func jsonZeros(n int) string {
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for b.Len() < n {
		b.WriteString("0,")
	}
	return b.String()[:n]
}

func testFaultResetMidStream(t *testing.T) {
	const declared, sent = 100000, 50000
	prefix := jsonZeros(sent)
	tests := []struct {
		name    string
		chunked bool
		key     string
	}{
		{"envelope client, content-length", false, envelopeKey},
		{"envelope client, chunked", true, envelopeKey},
		{"legacy client, content-length", false, legacyKey},
		{"legacy client, chunked", true, legacyKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := startRawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
				if tc.chunked {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(prefix), prefix)
				} else {
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", declared, prefix)
				}
				reset(c)
			})
			url := proxyTo(t, up, func(c *config.Config) { c.MaxBodyBytes = 1024 }, Options{})
			got := do(t, "GET", url+"/v1/big", tc.key, nil)
			if got.status != 200 {
				t.Errorf("status: got %d; want 200 (already sent when the reset came)", got.status)
			}
			if got.err == nil {
				t.Errorf("read: got a complete body of %d bytes; want the connection aborted", len(got.body))
			}
			if tc.key == envelopeKey {
				if bytes.HasSuffix(got.body, []byte(wrapSuffix)) {
					t.Errorf("the aborted body ends like a complete envelope: %q", lastBytes(got.body, 60))
				}
				if !bytes.HasPrefix([]byte(`{"data":`+prefix), got.body) {
					t.Errorf("body: got %q...; want a prefix of the wrapped upstream bytes", firstBytes(got.body, 60))
				}
				if !tc.chunked {
					if g := got.header.Get("Content-Length"); g != itoa(declared+39) {
						t.Errorf("Content-Length: got %q; want %q", g, itoa(declared+39))
					}
				}
				return
			}
			if !strings.HasPrefix(prefix, string(got.body)) {
				t.Errorf("body: got %q...; want a prefix of the upstream's", firstBytes(got.body, 60))
			}
		})
	}
}

func firstBytes(b []byte, n int) []byte { return b[:min(n, len(b))] }
func lastBytes(b []byte, n int) []byte  { return b[len(b)-min(n, len(b)):] }

// testFaultContentLength checks upstream bodies whose Content-Length is
// wrong. Longer than the body: the upstream closes early; a buffered body
// becomes a 502, a streamed one (passed, or wrapped past max_body_bytes) is
// aborted. Shorter: only the declared bytes are the response, so the
// client gets exactly those, or the envelope made of them, with a matching
// Content-Length.
func testFaultContentLength(t *testing.T) {
	const (
		forbiddenEnvelope = `{"data":null,"success":false,"message":"Forbidden","errors":[{"forbidden":["Forbidden"]}]}`
	)
	big := jsonZeros(2000)
	tests := []struct {
		name      string
		status    int
		declared  int
		sent      string
		key       string
		max       int64
		wantAbort bool   // the client's read fails; its body is a prefix of wantPrefix
		want      string // else the complete body
		wantCode  int
	}{
		{"longer, error, envelope", 403, 100, `{"error":"`, envelopeKey, 0, false, badGatewayEnvelope, 502},
		{"longer, error, legacy", 403, 100, `{"error":"`, legacyKey, 0, true, `{"error":"`, 403},
		{"longer, success, envelope", 200, 100, `[1,2,3,4,5]`, envelopeKey, 0, false, badGatewayEnvelope, 502},
		{"longer, success, legacy", 200, 100, `[1,2,3,4,5]`, legacyKey, 0, true, `[1,2,3,4,5]`, 200},
		{"longer, streamed success, envelope", 200, 5000, big, envelopeKey, 1024, true, `{"data":` + big, 200},
		{"longer, oversize error, envelope", 500, 5000, big, envelopeKey, 1024, true, big, 500},
		{"shorter, error, envelope", 403, 5, `{"error":"Insufficient credits","code":"x"}` + strings.Repeat(" ", 6), envelopeKey, 0, false, forbiddenEnvelope, 403},
		{"shorter, error, legacy", 403, 5, `{"error":"Insufficient credits","code":"x"}` + strings.Repeat(" ", 6), legacyKey, 0, false, `{"err`, 403},
		{"shorter, success, envelope", 200, 5, `[1,2][3,4][5,6][7,8][9,0]` + strings.Repeat(" ", 25), envelopeKey, 0, false, `{"data":[1,2]` + wrapSuffix, 200},
		{"shorter, success, legacy", 200, 5, `[1,2][3,4][5,6][7,8][9,0]` + strings.Repeat(" ", 25), legacyKey, 0, false, `[1,2]`, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := startRawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
				fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
					tc.status, http.StatusText(tc.status), tc.declared, tc.sent)
			})
			url := proxyTo(t, up, func(c *config.Config) {
				if tc.max > 0 {
					c.MaxBodyBytes = tc.max
				}
			}, Options{})
			got := do(t, "GET", url+"/v1/x", tc.key, nil)
			if got.status != tc.wantCode {
				t.Errorf("status: got %d; want %d", got.status, tc.wantCode)
			}
			if tc.wantAbort {
				if got.err == nil {
					t.Errorf("read: got a complete body %q; want the connection aborted", firstBytes(got.body, 80))
				}
				if !strings.HasPrefix(tc.want, string(got.body)) {
					t.Errorf("body: got %q; want a prefix of %q", firstBytes(got.body, 80), tc.want[:min(80, len(tc.want))])
				}
				if bytes.HasSuffix(got.body, []byte(wrapSuffix)) {
					t.Errorf("the aborted body ends like a complete envelope")
				}
				return
			}
			if got.err != nil {
				t.Errorf("read: %v", got.err)
			}
			if string(got.body) != tc.want {
				t.Errorf("body: got %q; want %q", got.body, tc.want)
			}
			if g := got.header.Get("Content-Length"); g != itoa(len(got.body)) {
				t.Errorf("Content-Length: got %q; want %q", g, itoa(len(got.body)))
			}
		})
	}
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// gunzipPartial decodes as much of a gzip stream as it can.
func gunzipPartial(b []byte) []byte {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, _ := io.ReadAll(r)
	return out
}

// testFaultGzip covers broken gzip bodies that TestCorruptGzip does not:
// truncated and bad-checksum errors, and success bodies too large to buffer
// that turn out broken while they stream: the buffered ones get the proxy's
// 502, the streamed ones an aborted connection, and every one is counted
// as an upstream error of kind bad_encoding.
func testFaultGzip(t *testing.T) {
	errBody := gzipBytes([]byte(`{"error": "Trial expired, please subscribe", "code": "trial_expired"}`))
	badCRC := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-8] ^= 0xff // the CRC-32 in the 8-byte trailer
		return b
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var large strings.Builder
	large.WriteString(`{"items": [`)
	for i := range 20000 {
		fmt.Fprintf(&large, "%d,", rng.Uint32()+uint32(i))
	}
	large.WriteString(`0]}`)
	largeGz := gzipBytes([]byte(large.String()))
	flipped := bytes.Clone(largeGz)
	flipped[len(flipped)/2] ^= 0x55
	// Compresses ~1000:1: fits in max_body_bytes encoded, not decoded, so
	// the buffered decode stops at the limit before the broken trailer.
	zeros := gzipBytes([]byte(jsonZeros(400001) + "0]"))

	tests := []struct {
		name   string
		status int
		body   []byte
		// aborted means the read must be aborted; else the proxy answers
		// 502 whole.
		aborted bool
	}{
		{"truncated error", 403, errBody[:len(errBody)-6], false},
		{"error with a bad checksum", 403, badCRC(errBody), false},
		{"truncated error cut in the deflate data", 403, errBody[:len(errBody)/2], false},
		{"streamed success truncated", 200, largeGz[:len(largeGz)/2], true},
		{"streamed success with a bad checksum", 200, badCRC(largeGz), true},
		{"streamed success corrupt mid-stream", 200, flipped, true},
		{"small encoding, large body, bad checksum", 200, badCRC(zeros), true},
	}
	if len(zeros) > 4096 {
		t.Fatalf("the zeros body is %d bytes encoded; want at most 4096", len(zeros))
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := httptest.NewServer(fixed(tc.status, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, string(tc.body)))
			t.Cleanup(up.Close)
			m := NewMetrics(prometheus.NewRegistry())
			url := proxyTo(t, up.URL, func(c *config.Config) { c.MaxBodyBytes = 4096 }, Options{Metrics: m})
			got := do(t, "GET", url+"/", envelopeKey, http.Header{"Accept-Encoding": {"gzip"}})
			if !tc.aborted {
				checkUpstreamFailure(t, got, m, "acme", true, http.StatusBadGateway, upstreamBadEncoding)
				return
			}
			if g := got.header.Get("Content-Encoding"); g != "gzip" {
				t.Errorf("Content-Encoding: got %q; want %q", g, "gzip")
			}
			if got.err == nil {
				t.Errorf("read: got a complete body of %d bytes; want the connection aborted", len(got.body))
			}
			if plain := gunzipPartial(got.body); bytes.HasSuffix(plain, []byte(wrapSuffix)) {
				t.Errorf("the aborted body decodes to a complete envelope")
			}
			// The count follows the abort, once the exchange is finished.
			await.Until(t, "the bad_encoding count", func() bool {
				return testutil.ToFloat64(m.upstreamErrors.WithLabelValues("acme", upstreamBadEncoding)) == 1
			})
		})
	}
}

// testFaultDrip sends a body one byte at a time, 100 ms apart.
func testFaultDrip(t *testing.T) {
	const body = `[1,2,3,4]`
	t.Run("legacy client gets each byte as it comes", func(t *testing.T) {
		// The upstream sends the next byte only once the client has read
		// the previous one: if the proxy holds any byte back, this
		// deadlocks until the request's deadline (await.Patience) fails it.
		ack := make(chan struct{})
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", itoa(len(body)))
			w.WriteHeader(200)
			drip(w, body, func() bool {
				select {
				case <-ack:
					return true
				case <-r.Context().Done():
					return false
				}
			})
		})
		resp := getStreamed(t, startProxy(t, up, nil)+"/drip", legacyKey)
		var got []byte
		one := make([]byte, 1)
		for i := range len(body) {
			if _, err := io.ReadFull(resp.Body, one); err != nil {
				t.Fatalf("byte %d: %v", i, err)
			}
			got = append(got, one[0])
			if i < len(body)-1 {
				select {
				case ack <- struct{}{}:
				case <-time.After(await.Patience):
					t.Fatalf("byte %d: the upstream never asked for the next byte", i)
				}
			}
		}
		if rest, err := io.ReadAll(resp.Body); err != nil || len(rest) > 0 {
			t.Errorf("after the body: got %q, %v; want EOF", rest, err)
		}
		if string(got) != body {
			t.Errorf("got %q; want %q", got, body)
		}
	})
	t.Run("status and headers come before a late first byte", func(t *testing.T) {
		// The upstream sends its status and headers at once and its body
		// only once the client has them: if the proxy holds the head back
		// until the body, this deadlocks until the request's deadline
		// (await.Patience) fails it. This
		// holds for streamed responses (no Content-Length, or an event
		// stream), where a late body is the norm. A response with a
		// Content-Length has its head sent with its first body byte: the
		// price of not arming a flush timer per response (README,
		// Performance).
		tests := []struct {
			name, key, ctype string
			length           bool
		}{
			{"legacy client, chunked", legacyKey, "application/json", false},
			{"legacy client, event stream with content-length", legacyKey, "text/event-stream", true},
			{"envelope client, passed csv, chunked", envelopeKey, "text/csv", false},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				gotHead := make(chan struct{})
				up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", tc.ctype)
					if tc.length {
						w.Header().Set("Content-Length", itoa(len(body)))
					}
					w.WriteHeader(200)
					w.(http.Flusher).Flush()
					select {
					case <-gotHead:
					case <-r.Context().Done():
						return
					}
					io.WriteString(w, body)
				})
				resp := getStreamed(t, startProxy(t, up, nil)+"/late", tc.key)
				close(gotHead)
				got, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode != 200 || string(got) != body {
					t.Errorf("got %d %q, %v; want 200 %q", resp.StatusCode, got, err, body)
				}
			})
		}
	})
	t.Run("envelope client gets the envelope at the end", func(t *testing.T) {
		for _, length := range []bool{true, false} {
			t.Run(fmt.Sprintf("content-length=%v", length), func(t *testing.T) {
				up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					if length {
						w.Header().Set("Content-Length", itoa(len(body)))
					}
					w.WriteHeader(200)
					drip(w, body, nil)
				})
				url := startProxy(t, up, nil)
				got := do(t, "GET", url+"/drip", envelopeKey, nil)
				want := `{"data":` + body + wrapSuffix
				if got.err != nil || got.status != 200 || string(got.body) != want {
					t.Errorf("got %d %q, %v; want 200 %q", got.status, got.body, got.err, want)
				}
				if g := got.header.Get("Content-Length"); g != itoa(len(want)) {
					t.Errorf("Content-Length: got %q; want %q", g, itoa(len(want)))
				}
			})
		}
	})
}

// drip writes body to w one byte at a time, 100 ms apart, flushing each.
// Before each byte after the first it waits for proceed (when not nil) to
// report true, and stops if it reports false.
func drip(w http.ResponseWriter, body string, proceed func() bool) {
	for i := range len(body) {
		if i > 0 {
			if proceed != nil && !proceed() {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		io.WriteString(w, body[i:i+1])
		w.(http.Flusher).Flush()
	}
}

// getStreamed sends GET url with key and returns the response with its
// body unread, for the tests that read a body as it arrives. The request
// is cut after await.Patience, so that a proxy holding bytes back fails
// the test rather than hangs it; the body is closed when the test ends.
func getStreamed(t *testing.T, url, key string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), await.Patience)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := sendUnread(t, noCompressionClient, req, key)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// testFaultHugeHead sends response heads far larger than any legitimate
// one. The proxy must answer 502 in the client's format rather than relay
// them, crash or hang. 11 MiB is past net/http's default limit on a
// response head (Transport.MaxResponseHeaderBytes, 10 MiB when unset);
// 1 MiB is within it, so it needs a limit of the proxy's own.
func testFaultHugeHead(t *testing.T) {
	for _, size := range []int{1 << 20, 11 << 20} {
		for _, cf := range clientFormats[:2] {
			t.Run(fmt.Sprintf("%d MiB/%s", size>>20, cf.name), func(t *testing.T) {
				up := startRawUpstream(t, func(c net.Conn, _ *bufio.Reader, _ *http.Request) {
					bw := bufio.NewWriterSize(c, 64<<10)
					io.WriteString(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n")
					line := strings.Repeat("v", 1024)
					for i := 0; i*1024 < size; i++ {
						fmt.Fprintf(bw, "X-Filler-%06d: %s\r\n", i, line[:1024-len("X-Filler-000000: \r\n")])
					}
					io.WriteString(bw, "\r\n{}")
					bw.Flush()
				})
				url := proxyTo(t, up, nil, Options{})
				got := do(t, "GET", url+"/v1/x", cf.key, nil)
				want := badGatewayLegacy
				if cf.envelope {
					want = badGatewayEnvelope
				}
				if got.status != http.StatusBadGateway {
					t.Fatalf("got %d with %d header fields, body %q; want 502 %q", got.status, len(got.header), firstBytes(got.body, 80), want)
				}
				checkProxyError(t, got, http.StatusBadGateway, want)
			})
		}
	}
}

// edges counts the bytes written to it and keeps the first and last 64.
type edges struct {
	n    int64
	head [64]byte
	tail [64]byte
}

func (e *edges) Write(p []byte) (int, error) {
	if e.n < int64(len(e.head)) {
		copy(e.head[e.n:], p)
	}
	if len(p) >= len(e.tail) {
		copy(e.tail[:], p[len(p)-len(e.tail):])
	} else {
		copy(e.tail[:], e.tail[len(p):])
		copy(e.tail[len(e.tail)-len(p):], p)
	}
	e.n += int64(len(p))
	return len(p), nil
}

// heapBytes returns the bytes of live and not yet swept heap objects,
// without stopping the world as runtime.ReadMemStats does.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// testFaultHugeBody streams success bodies much larger than max_body_bytes
// through the proxy to an envelope client, and checks every byte arrives,
// wrapped, with the right Content-Length, while the heap stays flat. The
// proxy, the upstream and the client all run in this process, so the heap
// sampled here bounds all three.
func testFaultHugeBody(t *testing.T) {
	sizes := []struct {
		name string
		n    int64
		slow bool
	}{
		{"256 MiB", 256 << 20, false},
		{"5 GiB", 5 << 30, true},
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			if sz.slow && testing.Short() {
				t.Skip("streams 5 GiB; skipped with -short (the 256 MiB case always runs)")
			}
			// The body is [0,0,...,0 ] (the space makes its length even),
			// generated on the fly from one 64 KiB chunk.
			pairs := (sz.n - 4) / 2
			if 4+2*pairs != sz.n {
				t.Fatalf("size %d is odd", sz.n)
			}
			chunk := []byte(strings.Repeat("0,", 32<<10))
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", strconv.FormatInt(sz.n, 10))
				w.WriteHeader(200)
				if _, err := io.WriteString(w, "["); err != nil {
					return
				}
				for left := pairs; left > 0; {
					n := min(left, int64(len(chunk)/2))
					if _, err := w.Write(chunk[:2*n]); err != nil {
						return
					}
					left -= n
				}
				io.WriteString(w, "0 ]")
			})
			url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = config.DefaultMaxBodyBytes })

			// The heap sampled counts garbage not yet collected, up to the
			// GC's goal, which a previous test's live heap may have raised:
			// a collection first sets the goal from this test's heap.
			runtime.GC()
			var peak uint64
			stop, sampled := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(sampled)
				tick := time.NewTicker(10 * time.Millisecond)
				defer tick.Stop()
				for range 10_000_000 { // ends with stop; the bound is a day of samples
					peak = max(peak, heapBytes())
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			}()

			start := time.Now()
			req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/huge", nil)
			req.Header.Set("X-API-Key", envelopeKey)
			resp, err := noCompressionClient.Do(req)
			if err != nil {
				close(stop)
				<-sampled
				t.Fatal(err)
			}
			var got edges
			_, rerr := io.CopyBuffer(&got, resp.Body, make([]byte, 256<<10))
			resp.Body.Close()
			close(stop)
			<-sampled
			elapsed := time.Since(start)
			count := got.n
			t.Logf("%s: %d bytes in %v (%.0f MiB/s), peak heap %.1f MiB", sz.name, count, elapsed.Round(time.Millisecond),
				float64(count)/(1<<20)/elapsed.Seconds(), float64(peak)/(1<<20))

			if rerr != nil {
				t.Errorf("read after %d bytes: %v", count, rerr)
			}
			want := sz.n + 39
			if count != want {
				t.Errorf("bytes: got %d; want %d", count, want)
			}
			if g := resp.Header.Get("Content-Length"); g != strconv.FormatInt(want, 10) {
				t.Errorf("Content-Length: got %q; want %q", g, strconv.FormatInt(want, 10))
			}
			wantHead := (`{"data":[` + strings.Repeat("0,", 40))[:len(got.head)]
			if g := string(got.head[:min(count, int64(len(got.head)))]); g != wantHead {
				t.Errorf("head: got %q; want %q", g, wantHead)
			}
			wantTail := strings.Repeat("0,", 40) + "0 ]" + wrapSuffix
			wantTail = wantTail[len(wantTail)-64:]
			if g := string(got.tail[64-min(count, 64):]); g != wantTail {
				t.Errorf("tail: got %q; want %q", g, wantTail)
			}
			const bound = 64 << 20
			if peak > bound {
				t.Errorf("peak heap: got %d MiB; want at most %d MiB", peak>>20, bound>>20)
			}
		})
	}
}

// testFaultClientGone has the client read a little of a large, slow
// stream and hang up: the proxy must cancel the upstream request (which
// the upstream handler sees as its context ending) and leave nothing
// running, which TestMain's leak check verifies.
func testFaultClientGone(t *testing.T) {
	tests := []struct {
		name string
		key  string
	}{
		{"legacy passthrough", legacyKey},
		{"envelope streamed wrap", envelopeKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outcome := make(chan string, 1)
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(200)
				chunk := []byte(strings.Repeat("0,", 2048))
				io.WriteString(w, "[")
				for range 10000 {
					w.Write(chunk)
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						outcome <- "canceled"
						return
					case <-time.After(time.Millisecond):
					}
				}
				io.WriteString(w, "0]")
				outcome <- "finished"
			})
			url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = 1024 })
			req, _ := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/stream", nil)
			resp := sendUnread(t, noCompressionClient, req, tc.key)
			buf := make([]byte, 16<<10)
			if _, err := io.ReadFull(resp.Body, buf); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close() // unread body: the client closes the connection
			if got := await.Receive(t, "the upstream request to be canceled", outcome); got != "canceled" {
				t.Errorf("upstream handler: got %q; want %q", got, "canceled")
			}
		})
	}
}

// testFaultHalfClose has the client send its request and shut down its
// side of the connection (a half-close, as "nc -N" does) before the
// upstream answers. net/http cancels the request's context when it reads
// EOF, so the upstream request is canceled; the client, which can still
// read, must then get an error status or a closed connection, never a
// success the upstream never sent.
func testFaultHalfClose(t *testing.T) {
	for _, cf := range clientFormats[:2] {
		t.Run(cf.name, func(t *testing.T) {
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// Answer only if the proxy is still waiting: it is not.
				select {
				case <-r.Context().Done():
				case <-t.Context().Done():
				}
			})
			url := startProxy(t, up, nil)
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
			defer conn.Close()
			fmt.Fprintf(conn, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-API-Key: %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", cf.key)
			conn.(*net.TCPConn).CloseWrite()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return // the connection was closed without an answer: fine
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 300 {
				t.Errorf("got %d %q with headers %v; want no answer or an error status (the upstream never answered)", resp.StatusCode, body, resp.Header)
			}
		})
	}
}
