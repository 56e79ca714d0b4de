package evidence_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

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
	cfg := benchload.EnvelopeConfig(b)
	settings := proxy.Settings{Upstream: cfg.Upstream, Routing: cfg.Routing, MaxBodyBytes: cfg.MaxBodyBytes, RetireAfter: time.Second}
	es := evidence.Settings{
		Thresholds: verdict.Thresholds{Window: cfg.Readiness.Window},
		Retention:  cfg.Readiness.Retention,
		Targets:    cfg.Routing.Targets(),
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
	benchload.SideBySide(b, []string{"none", "memory", "postgres"}, func(variant string) (http.Handler, error) {
		opts := proxy.Options{}
		if variant != "none" {
			rec := recorders[variant]
			if rec == nil {
				return nil, nil
			}
			opts.Recorder = rec
		}
		return proxy.New(settings, opts)
	})
}
