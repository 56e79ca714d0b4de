package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"
)

// TestConnWatch checks the deadline word of one connection: a deadline
// fires only once it has passed, only for the request it was armed for,
// and never after the request is done, whatever the order of arm, disarm
// and expire.
func TestConnWatch(t *testing.T) {
	type step struct {
		op  string // begin, arm, armOld (the previous request's seq), disarm, expire
		at  int64  // arm: the deadline; expire: now
		ret bool   // disarm: want fired
	}
	tests := []struct {
		name      string
		steps     []step
		wantFired bool // whether the connection's context was cancelled
	}{
		{"deadline not reached", []step{{op: "begin"}, {op: "arm", at: 100}, {op: "expire", at: 99}, {op: "disarm"}}, false},
		{"deadline reached", []step{{op: "begin"}, {op: "arm", at: 100}, {op: "expire", at: 100}, {op: "disarm", ret: true}}, true},
		{"response before the deadline", []step{{op: "begin"}, {op: "arm", at: 100}, {op: "disarm"}, {op: "expire", at: 1000}}, false},
		{"never armed", []step{{op: "begin"}, {op: "expire", at: 1 << 40}, {op: "disarm"}}, false},
		{"disarmed twice", []step{{op: "begin"}, {op: "arm", at: 100}, {op: "expire", at: 200}, {op: "disarm", ret: true}, {op: "disarm", ret: true}}, true},
		{"armed after done", []step{{op: "begin"}, {op: "disarm"}, {op: "arm", at: 0}, {op: "expire", at: 1000}}, false},
		{"second arm ignored", []step{{op: "begin"}, {op: "arm", at: 1000}, {op: "arm", at: 0}, {op: "expire", at: 500}, {op: "disarm"}}, false},
		{"late arm from the previous request", []step{{op: "begin"}, {op: "disarm"}, {op: "begin"}, {op: "armOld", at: 0}, {op: "expire", at: 1000}, {op: "disarm"}}, false},
		{"next request starts clean", []step{{op: "begin"}, {op: "arm", at: 10}, {op: "disarm"}, {op: "begin"}, {op: "expire", at: 1000}, {op: "arm", at: 2000}, {op: "expire", at: 1500}, {op: "disarm"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			w := &connWatch{Context: ctx, cancel: cancel}
			var seq, prev uint64
			for i, s := range tc.steps {
				switch s.op {
				case "begin":
					prev, seq = seq, w.begin()
				case "arm":
					w.arm(seq, s.at)
				case "armOld":
					w.arm(prev, s.at)
				case "expire":
					w.expire(s.at)
				case "disarm":
					if got := w.disarm(seq); got != s.ret {
						t.Errorf("step %d disarm: got fired %v; want %v", i, got, s.ret)
					}
				}
			}
			fired := errors.Is(context.Cause(w), errUpstreamTimeout)
			if fired != tc.wantFired {
				t.Errorf("connection cancelled: got %v; want %v", fired, tc.wantFired)
			}
		})
	}
}

// TestConnWatchSequenceWraps checks that the 16-bit request sequence wraps
// without ever arming a request with another's deadline.
func TestConnWatchSequenceWraps(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &connWatch{Context: ctx, cancel: cancel}
	prev := w.begin()
	for range 1<<16 + 3 {
		seq := w.begin()
		w.arm(prev, 0) // a late arm: must not take
		w.expire(1 << 40)
		if w.disarm(seq) {
			t.Fatalf("request %d: cancelled by the previous request's late arm", seq)
		}
		prev = seq
	}
}

// TestUpstreamTimeoutServers checks upstream.timeout on both kinds of
// server: one set up by ConfigureServer (the watchdog) and a plain one (the
// transport's ResponseHeaderTimeout). The wait starts once the whole
// request has been sent: a slow upload is not cut, an upstream silent
// after reading the body is; an idle keep-alive connection is not touched.
func TestUpstreamTimeoutServers(t *testing.T) {
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

	for _, kind := range []string{"ConfigureServer", "plain server"} {
		t.Run(kind, func(t *testing.T) {
			cfg := testConfig(up.URL)
			cfg.Upstream.Timeout = timeout
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			h, err := New(settingsOf(cfg), Options{})
			if err != nil {
				t.Fatal(err)
			}
			var px *httptest.Server
			if kind == "ConfigureServer" {
				px = serveProxy(t, h)
			} else {
				px = httptest.NewServer(h)
				t.Cleanup(px.Close)
			}
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
				if kind == "ConfigureServer" && !resp.Close {
					// The connection's context is cancelled: it must not
					// serve another request.
					t.Errorf("Connection: got %q; want close", resp.Header.Get("Connection"))
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
