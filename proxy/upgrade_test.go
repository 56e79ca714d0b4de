package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// TestWebSocketUpgradePasses checks that an envelope client's upgrade is
// proxied untouched: the 101 and then raw bytes both ways, also when the
// upgraded connection lives longer than upstream.timeout (which bounds only
// the wait for the 101).
func TestWebSocketUpgradePasses(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want an upgrade", 400)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		buf := make([]byte, 4)
		if _, err := io.ReadFull(brw, buf); err == nil {
			conn.Write(buf) // echo
		}
	})
	for _, tc := range []struct {
		name    string
		timeout time.Duration // upstream.timeout; 0 keeps the default
		idle    time.Duration // how long the upgraded connection stays quiet
	}{
		{"default timeout", 0, 0},
		{"upgraded longer than the timeout", 50 * time.Millisecond, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := startProxy(t, up, func(c *config.Config) {
				if tc.timeout > 0 {
					c.Upstream.Timeout = tc.timeout
				}
			})
			conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(await.Patience)) // a stuck read fails the test, never hangs it
			defer conn.Close()
			io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nX-API-Key: "+envelopeKey+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
				t.Fatalf("got %d %v; want 101 websocket", resp.StatusCode, resp.Header)
			}
			time.Sleep(tc.idle)
			io.WriteString(conn, "ping")
			buf := make([]byte, 4)
			if _, err := io.ReadFull(br, buf); err != nil || string(buf) != "ping" {
				t.Errorf("echo: got %q, %v; want %q", buf, err, "ping")
			}
		})
	}
}

func TestNotModifiedPasses(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if inm := r.Header.Get("If-None-Match"); inm == `W/"v1"` || inm == `"v1"` {
			w.Header().Set("Etag", `W/"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Etag", `"v1"`)
		io.WriteString(w, `{"v":1}`)
	})
	url := startProxy(t, up, nil)
	first := do(t, "GET", url+"/", envelopeKey, nil)
	etag := first.header.Get("Etag")
	if want := `W/"v1` + tagMarker + rulesFingerprint(nil) + `"`; etag != want {
		t.Fatalf("ETag of the wrapped body: got %q; want %q", etag, want)
	}
	second := do(t, "GET", url+"/", envelopeKey, http.Header{"If-None-Match": {etag}})
	if second.status != http.StatusNotModified || len(second.body) != 0 {
		t.Errorf("revalidation: got %d %q; want 304 and no body", second.status, second.body)
	}
}
