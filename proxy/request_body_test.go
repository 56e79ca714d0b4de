package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recordingUpstream answers 200 {} and records each request it got whole:
// its headers and body, or the error reading the body.
type recordingUpstream struct {
	mu  sync.Mutex
	got []recorded
}

type recorded struct {
	header http.Header
	te     []string
	length int64
	body   string
	err    error
}

func (u *recordingUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	u.mu.Lock()
	u.got = append(u.got, recorded{header: r.Header.Clone(), te: r.TransferEncoding, length: r.ContentLength, body: string(body), err: err})
	u.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{}`)
}

func (u *recordingUpstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.got...)
}

// rawRequest sends a request written by hand to the proxy, as a broken
// client would, half-closes the connection when close is set, and returns
// the proxy's answer.
func rawRequest(t *testing.T, proxyURL, request string, closeWrite bool) response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(proxyURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	body, rerr := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: body, err: rerr}
}

// TestClientBodyErrors sends request bodies the client cannot finish and
// checks they are the client's errors: a 400 in its format, counted as a
// client error and never as an upstream one; and with request buffering
// on, the upstream never sees them.
func TestClientBodyErrors(t *testing.T) {
	const badRequestLegacy = `{"error":"Bad Request","code":"bad_request"}`
	const badRequestEnvelope = `{"data":null,"success":false,"message":"Bad Request","errors":[{"bad_request":["Bad Request"]}]}`
	head := func(key, framing string) string {
		return "POST /v1/detect HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + "\r\nContent-Type: application/json\r\n" + framing + "\r\n"
	}
	tests := []struct {
		name       string
		request    func(key string) string
		closeWrite bool
	}{
		{"bad chunk size", func(key string) string {
			return head(key, "Transfer-Encoding: chunked\r\n") + "5\r\n{\"a\":\r\nzz\r\n"
		}, false},
		{"shorter than its Content-Length", func(key string) string {
			return head(key, "Content-Length: 100\r\n") + `{"a":1}`
		}, true},
		{"chunked body cut short", func(key string) string {
			return head(key, "Transfer-Encoding: chunked\r\n") + "100\r\n{\"a\":1}"
		}, true},
	}
	for _, buffering := range []int64{config.DefaultRequestBuffering, 0} {
		for _, tc := range tests {
			for _, cf := range clientFormats[:2] {
				name := tc.name + "/" + cf.name + "/buffered"
				if buffering == 0 {
					name = tc.name + "/" + cf.name + "/streamed"
				}
				t.Run(name, func(t *testing.T) {
					up := &recordingUpstream{}
					upSrv := httptest.NewServer(up)
					t.Cleanup(upSrv.Close)
					m := NewMetrics(prometheus.NewRegistry())
					url := proxyTo(t, upSrv.URL, func(c *config.Config) { c.Server.RequestBuffering = buffering }, Options{Metrics: m})
					got := rawRequest(t, url, tc.request(cf.key), tc.closeWrite)
					want := badRequestLegacy
					if cf.envelope {
						want = badRequestEnvelope
					}
					if got.status != 400 || string(got.body) != want {
						t.Errorf("got %d %q; want 400 %q", got.status, got.body, want)
					}
					if g := testutil.ToFloat64(m.clientErrors.WithLabelValues(cf.client, clientRequestBody)); g != 1 {
						t.Errorf("client_errors_total{kind=request_body}: got %v; want 1", g)
					}
					for _, kind := range []string{upstreamRefused, upstreamTimeout, upstreamReset, upstreamBadEncoding, upstreamOther} {
						if g := testutil.ToFloat64(m.upstreamErrors.WithLabelValues(cf.client, kind)); g != 0 {
							t.Errorf("upstream_errors_total{kind=%s}: got %v; want 0", kind, g)
						}
					}
					if buffering > 0 {
						if reqs := up.requests(); len(reqs) != 0 {
							t.Errorf("the upstream got %d requests; want none: a body the client cannot finish never reaches it", len(reqs))
						}
					}
				})
			}
		}
	}
}

// TestRequestBuffering checks what the upstream gets of a buffered body:
// the whole body with its Content-Length, even when the client sent it
// chunked, and no Expect: 100-continue to wait on; a body larger than the
// buffer streams as it came.
func TestRequestBuffering(t *testing.T) {
	small := `{"frames":[1,2,3]}`
	large := `{"blob":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, body string
		chunked    bool
		header     http.Header
		wantLength int64 // -1: chunked
	}{
		{"chunked small body gets its length", small, true, nil, int64(len(small))},
		{"small body keeps its length", small, false, nil, int64(len(small))},
		{"expect continue is answered by the proxy", small, false, http.Header{"Expect": {"100-continue"}}, int64(len(small))},
		{"chunked large body streams", large, true, nil, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := &recordingUpstream{}
			upSrv := httptest.NewServer(up)
			t.Cleanup(upSrv.Close)
			url := proxyTo(t, upSrv.URL, func(c *config.Config) { c.Server.RequestBuffering = 64 << 10 }, Options{})
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, err := http.NewRequest("POST", url+"/v1/detect", body)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header[k] = v
			}
			sendUnread(t, noCompressionClient, req, envelopeKey).Body.Close()
			reqs := up.requests()
			if len(reqs) != 1 {
				t.Fatalf("the upstream got %d requests; want 1", len(reqs))
			}
			r := reqs[0]
			if r.err != nil || r.body != tc.body {
				t.Errorf("body: got %d bytes (%v); want the %d sent", len(r.body), r.err, len(tc.body))
			}
			if r.length != tc.wantLength {
				t.Errorf("Content-Length at the upstream: got %d (Transfer-Encoding %q); want %d", r.length, r.te, tc.wantLength)
			}
			if g := r.header.Get("Expect"); g != "" {
				t.Errorf("Expect at the upstream: got %q; want none", g)
			}
		})
	}
}
