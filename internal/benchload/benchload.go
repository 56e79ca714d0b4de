// Package benchload is the in-process load of the benchmarks that measure
// whole requests over loopback (packages proxy, evidence and contract): the
// workloads of bench/run.sh, an upstream that serves them, and the client
// loop that sends them, so that their allocations per request compare.
package benchload

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Workload is one legacy answer.
type Workload struct {
	Status int
	Body   string
}

// Workloads are bench/run.sh's, by path: a small success, the credits
// error and a 1 MiB success.
var Workloads = map[string]Workload{
	"small":   {200, `{"id": 9007199254740993, "name": "caf\u00e9", "items": [1, 2, 3], "ok": true, "note": "a small success body of a typical API call"}`},
	"credits": {403, `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`},
	"large":   {200, `[` + strings.Repeat(`{"id": 12345, "name": "item name", "score": 0.75, "tags": ["a", "b"]},`, 14000) + `{}]`},
}

// Upstream serves each workload at /<name>, as JSON with its length.
func Upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wl := Workloads[strings.TrimPrefix(r.URL.Path, "/")]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(wl.Body)))
		w.WriteHeader(wl.Status)
		io.WriteString(w, wl.Body)
	})
}

// Client is a keep-alive client for the loop, asking for no compression.
func Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// Run sends GET url/workload with key in X-API-Key in parallel, b.N times,
// each answer read whole, and reports allocations.
func Run(b *testing.B, client *http.Client, url, workload, key string) {
	b.ReportAllocs()
	req, err := http.NewRequest(http.MethodGet, url+"/"+workload, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
