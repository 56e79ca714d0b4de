package evidence_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/benchload"
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
	up := httptest.NewServer(benchload.Upstream())
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
	client := benchload.Client()
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
			b.Run(workload+"/"+name, func(b *testing.B) { benchload.Run(b, client, px.URL, workload, key) })
		}
		px.Close()
	}
}
