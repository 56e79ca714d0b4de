package contract

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/benchload"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// BenchmarkProxyContract measures whole envelope requests over loopback
// through the proxy with the contract checks off and on, to show that
// handing every envelope to the checks costs the request path no
// allocation: off and on must report the same allocs/op. The checks
// themselves run off the request path and allocate (kin-openapi decodes
// each envelope; BenchmarkCheck measures them); here the queue is drained
// without checking, so that allocs/op counts the request path alone.
func BenchmarkProxyContract(b *testing.B) {
	cfg := benchload.EnvelopeConfig(b)
	settings := proxy.Settings{Upstream: cfg.Upstream, Routing: cfg.Routing, MaxBodyBytes: cfg.MaxBodyBytes, RetireAfter: time.Second}
	doc, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	checker := newChecker(Settings{Document: doc, Sample: 1, MaxInFlight: config.MaxContractInFlight}, Options{})
	checker.workers.Add(1)
	go checker.work(func(j *job) {
		checker.put(j)
		checker.release()
	})
	defer checker.Close()
	benchload.SideBySide(b, []string{"off", "on"}, func(variant string) (http.Handler, error) {
		opts := proxy.Options{}
		if variant == "on" {
			opts.Contract = checker
		}
		return proxy.New(settings, opts)
	})
}

// BenchmarkCheck measures one check off the request path: the envelopes
// of the two workloads held to the built-in contract.
func BenchmarkCheck(b *testing.B) {
	doc, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	t, err := transform.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, workload := range []string{"small", "credits"} {
		wl := benchload.Workloads[workload]
		status, body, r := t.Transform(nil, wl.Status, http.Header{"Content-Type": {"application/json"}}, []byte(wl.Body))
		e := Envelope{Method: "GET", Path: "/" + workload, Status: status, Body: body, Fields: r.Fields}
		if f := doc.Check(context.Background(), e); f.Broken() {
			b.Fatalf("%s: %s %s", workload, f.Reason, f.Detail)
		}
		b.Run(workload, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				doc.Check(context.Background(), e)
			}
		})
	}
}
