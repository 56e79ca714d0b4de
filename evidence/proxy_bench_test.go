package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/pgserver"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// BenchmarkProxyRecording measures whole envelope requests over loopback
// through the proxy without evidence, with the dashboard's evidence
// recorded in memory, and with it written to a real PostgreSQL every
// second, side by side, to show that recording costs a request no
// allocation whatever the store: the three must report the same
// allocs/op. (The PostgreSQL variant is skipped where the server's
// binaries are absent.)
func BenchmarkProxyRecording(b *testing.B) {
	const key = "bench-envelope-key"
	bodies := map[string]struct {
		status int
		body   string
	}{
		"small":   {200, `{"id": 9007199254740993, "name": "caf\u00e9", "items": [1, 2, 3], "ok": true}`},
		"credits": {403, `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`},
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wb := bodies[r.URL.Path[1:]]
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(wb.body)))
		w.WriteHeader(wb.status)
		io.WriteString(w, wb.body)
	}))
	defer up.Close()
	sum := sha256.Sum256([]byte(key))
	d := config.Default()
	routing := d.Routing
	routing.Clients = []config.Client{{Name: "acme", KeysSHA256: []string{hex.EncodeToString(sum[:])}, Mode: config.ModeEnvelope}}
	upstream := d.Upstream
	upstream.URL = up.URL
	settings := proxy.Settings{Upstream: upstream, Routing: routing, MaxBodyBytes: d.MaxBodyBytes, RetireAfter: time.Second}
	es := evidence.Settings{
		Thresholds: verdict.Thresholds{Window: d.Readiness.Window},
		Retention:  d.Readiness.Retention,
		Targets:    routing.Targets(),
	}
	recorders := map[string]*evidence.Recorder{"memory": evidence.New(es, evidence.Options{FlushInterval: time.Hour})}
	if _, err := exec.LookPath("psql"); err == nil || os.Getenv("CI") == "true" {
		url := pgserver.Start(b).CreateDatabase(b, "bench")
		recorders["postgres"] = evidence.New(es, evidence.Options{Kind: "postgres", Replica: "bench", FlushInterval: time.Second,
			Open: func(ctx context.Context) (store.Store, error) { return store.OpenPostgres(ctx, url) }})
	}
	for _, rec := range recorders {
		defer rec.Close()
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	for _, name := range []string{"none", "memory", "postgres"} {
		opts := proxy.Options{}
		if name != "none" {
			rec := recorders[name]
			if rec == nil {
				continue
			}
			opts.Recorder = rec
		}
		h, err := proxy.New(settings, opts)
		if err != nil {
			b.Fatal(err)
		}
		px := httptest.NewServer(h)
		for _, workload := range []string{"small", "credits"} {
			req, _ := http.NewRequest("GET", px.URL+"/"+workload, nil)
			req.Header.Set("X-API-Key", key)
			b.Run(workload+"/"+name, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() && fetch(b, client, req) {
					}
				})
			})
		}
		px.Close()
	}
}

// fetch sends req and reads the whole answer, reporting whether it could.
func fetch(b *testing.B, client *http.Client, req *http.Request) bool {
	resp, err := client.Do(req)
	if err != nil {
		b.Error(err)
		return false
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err == nil
}
