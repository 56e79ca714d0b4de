package proxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// BenchmarkPostBuffering measures envelope clients' POSTs over loopback,
// with their bodies read whole before the upstream is dialled
// (server.request_buffering, the default) and streamed to it as they
// arrive (0), side by side, for a small, a 64 KiB and a 1 MiB body sent
// with a Content-Length and chunked: what buffering costs POST throughput.
func BenchmarkPostBuffering(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id": 1, "accepted": true}`)
	}))
	defer up.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	for _, size := range []int{200, 64 << 10, 1 << 20} {
		body := []byte(`{"frames": "` + strings.Repeat("x", size-16) + `"}`)
		for _, framing := range []string{"length", "chunked"} {
			for _, mode := range []struct {
				name      string
				buffering int64
			}{{"buffered", config.DefaultRequestBuffering}, {"streamed", 0}} {
				url := proxyTo(b, up.URL, func(c *config.Config) { c.Server.RequestBuffering = mode.buffering }, Options{})
				b.Run(strconv.Itoa(size)+"/"+framing+"/"+mode.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(body)))
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							var rd io.Reader = bytes.NewReader(body)
							if framing == "chunked" {
								// Not a *bytes.Reader: the client cannot
								// tell the length and sends it chunked.
								rd = io.MultiReader(rd)
							}
							req, _ := http.NewRequest(http.MethodPost, url+"/v1/detect", rd)
							req.Header.Set("X-API-Key", envelopeKey)
							resp, err := client.Do(req)
							if err != nil {
								b.Error(err)
								return
							}
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					})
				})
			}
		}
	}
}
