// Package benchload is the in-process load of the benchmarks that measure
// whole requests over loopback (packages proxy, evidence and contract): the
// workloads modelled on bench/run.sh's, an upstream that serves them, and the client
// loop that sends them, so that their allocations per request compare.
package benchload

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
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

// Key is the API key of EnvelopeConfig's one client.
const Key = "bench-envelope-key"

// EnvelopeConfig starts Upstream until the benchmark ends and returns the
// default config in front of it with one client, acme, in envelope mode
// with Key: the setup of the benchmarks that show what a component adds to
// an envelope request, so that their figures compare.
func EnvelopeConfig(b *testing.B) *config.Config {
	up := httptest.NewServer(Upstream())
	b.Cleanup(up.Close)
	sum := sha256.Sum256([]byte(Key))
	cfg := config.Default()
	cfg.Routing.Clients = []config.Client{{Name: "acme", KeysSHA256: []string{hex.EncodeToString(sum[:])}, Mode: config.ModeEnvelope}}
	cfg.Upstream.URL = up.URL
	return cfg
}

// SideBySide runs the small and credits workloads with Key through the
// handler that proxy returns for each variant in turn, as sub-benchmarks
// named workload/variant, so that the variants' allocations per request
// stand next to each other. A nil handler skips its variant.
func SideBySide(b *testing.B, variants []string, proxy func(variant string) (http.Handler, error)) {
	client := Client()
	for _, variant := range variants {
		h, err := proxy(variant)
		if err != nil {
			b.Fatal(err)
		}
		if h == nil {
			continue
		}
		px := httptest.NewServer(h)
		for _, workload := range []string{"small", "credits"} {
			b.Run(workload+"/"+variant, func(b *testing.B) { Run(b, client, px.URL, workload, Key) })
		}
		px.Close()
	}
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
