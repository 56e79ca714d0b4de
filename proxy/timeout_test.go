package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// TestUpstreamTimeoutAfterTheRequest checks upstream.timeout, with request bodies buffered
// before the upstream is dialled and streamed as they arrive. The wait
// starts once the whole request has been sent: a slow upload is not cut,
// an upstream silent after reading the body is; an idle keep-alive
// connection is not touched.
func TestUpstreamTimeoutAfterTheRequest(t *testing.T) {
	const timeout = 100 * time.Millisecond
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/hang" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"got":`+strings.Repeat("1", min(len(body), 1))+`0}`)
	}))
	t.Cleanup(up.Close)

	for _, buffering := range []int64{config.DefaultRequestBuffering, 0} {
		t.Run(fmt.Sprintf("request_buffering %d", buffering), func(t *testing.T) {
			cfg := testConfig(up.URL)
			cfg.Upstream.Timeout = timeout
			cfg.Server.RequestBuffering = buffering
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			h, err := New(settingsOf(cfg), Options{})
			if err != nil {
				t.Fatal(err)
			}
			px := serveProxy(t, h)
			client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
			t.Cleanup(client.CloseIdleConnections)
			send := func(t *testing.T, method, path string, body io.Reader) (*http.Response, string, bool) {
				t.Helper()
				req, err := http.NewRequest(method, px.URL+path, body)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("X-API-Key", envelopeKey)
				reused := false
				req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
					GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
				}))
				resp, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				return resp, string(b), reused
			}

			t.Run("silent upstream", func(t *testing.T) {
				resp, body, _ := send(t, "GET", "/hang", nil)
				if resp.StatusCode != 504 || body != gatewayTimeoutEnvelope {
					t.Errorf("got %d %q; want 504 %q", resp.StatusCode, body, gatewayTimeoutEnvelope)
				}
			})
			t.Run("silent after the body", func(t *testing.T) {
				resp, body, _ := send(t, "POST", "/hang", strings.NewReader(`{"a":1}`))
				if resp.StatusCode != 504 || body != gatewayTimeoutEnvelope {
					t.Errorf("got %d %q; want 504 %q", resp.StatusCode, body, gatewayTimeoutEnvelope)
				}
			})
			t.Run("upload slower than the timeout", func(t *testing.T) {
				pr, pw := io.Pipe()
				go func() {
					for range 4 {
						time.Sleep(timeout)
						pw.Write([]byte(" "))
					}
					pw.Write([]byte(`{"a":1}`))
					pw.Close()
				}()
				resp, body, _ := send(t, "POST", "/upload", pr)
				if want := `{"data":{"got":10},"success":true,"message":"OK"}`; resp.StatusCode != 200 || body != want {
					t.Errorf("got %d %q; want 200 %q", resp.StatusCode, body, want)
				}
			})
			t.Run("idle keep-alive longer than the timeout", func(t *testing.T) {
				client.CloseIdleConnections()
				for i := range 2 {
					resp, body, reused := send(t, "GET", "/ok", nil)
					if want := `{"data":{"got":0},"success":true,"message":"OK"}`; resp.StatusCode != 200 || body != want {
						t.Errorf("request %d: got %d %q; want 200 %q", i, resp.StatusCode, body, want)
					}
					if i == 1 && !reused {
						t.Errorf("request %d: a new connection; want the idle one reused", i)
					}
					time.Sleep(3 * timeout)
				}
			})
		})
	}
}
