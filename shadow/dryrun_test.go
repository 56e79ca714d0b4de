package shadow

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDryRunWithoutCandidate(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		status   int
		header   http.Header
		body     []byte
		migrated bool
		wantCode string // the legacy code
		wantRule string // the rule that matched
		wantMove string // the legacy→envelope status change, "" for none
		// unmapped and unmappedSample are the unmapped error and its
		// sample body.
		unmapped       bool
		unmappedSample string
		notJSON        bool
	}{
		{name: "credits 403 becomes 402", status: 403, body: []byte(creditsLegacy), wantCode: "insufficient_credits",
			wantRule: "insufficient_credits", wantMove: "403->402"},
		{name: "gzip legacy body is decoded", status: 403, body: gzipped(t, creditsLegacy),
			header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, wantCode: "insufficient_credits",
			wantRule: "insufficient_credits", wantMove: "403->402"},
		{name: "unsupported encoding passes", status: 403, body: []byte("\x1f\x9d..."),
			header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"compress"}}},
		{name: "unknown error is unmapped", status: 418, body: []byte(`{"error":"teapot"}`), unmapped: true, unmappedSample: `{"error":"teapot"}`},
		{name: "HTML error page is not JSON", status: 502, body: []byte("<html>Bad Gateway</html>"),
			header: http.Header{"Content-Type": {"text/html"}}, unmapped: true, unmappedSample: "<html>Bad Gateway</html>", notJSON: true},
		{name: "empty error body is not JSON", status: 500, body: nil, wantRule: "internal_error", notJSON: true},
		{name: "success is wrapped", status: 200, body: []byte(`{"id":1}`)},
		{name: "invalid JSON success passes", status: 200, body: []byte(`{"id":`), notJSON: true},
		{name: "HEAD passes", method: "HEAD", status: 403, body: nil},
		{name: "migrated passes", status: 200, body: []byte(`{"data":{},"success":true,"message":"OK"}`), migrated: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = "GET"
			}
			ex := newExchange(t, method, "/v1/credits", tt.status, "")
			ex.LegacyBody = tt.body
			ex.Migrated = tt.migrated
			if tt.header != nil {
				ex.LegacyHeader = tt.header
			}
			reg := prometheus.NewRegistry()
			rec := &recorder{}
			c := New(testConfig("", nil), Options{Registerer: reg, Recorder: rec})
			c.Submit(ex)
			c.Close()
			if c.CandidateConfigured() {
				t.Errorf("CandidateConfigured: got true; want false")
			}
			ev := onlyComparison(t, rec.all())
			if ev.Outcome != event.OutcomeDryRun {
				t.Errorf("got %q; want %q", ev.Outcome, event.OutcomeDryRun)
			}
			move := ""
			if ev.EnvelopeStatus != ev.LegacyStatus {
				move = fmt.Sprintf("%d->%d", ev.LegacyStatus, ev.EnvelopeStatus)
			}
			checks := []struct{ name, got, want string }{
				{"route", ev.Route, method + " /v1/credits"},
				{"legacy status", fmt.Sprint(ev.LegacyStatus), fmt.Sprint(tt.status)},
				{"legacy code", ev.LegacyCode, tt.wantCode},
				{"rule", ev.Rule, tt.wantRule},
				{"status change", move, tt.wantMove},
				{"unmapped", fmt.Sprint(ev.Unmapped), fmt.Sprint(tt.unmapped)},
				{"unmapped sample", ev.UnmappedSample, tt.unmappedSample},
				{"legacy not JSON", fmt.Sprint(ev.LegacyNotJSON), fmt.Sprint(tt.notJSON)},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("%s: got %q; want %q", ck.name, ck.got, ck.want)
				}
			}
			if ev.LegacyLatency != 12*time.Millisecond {
				t.Errorf("legacy latency: got %v; want %v", ev.LegacyLatency, 12*time.Millisecond)
			}
			if ev.CandidateStatus != 0 || ev.CandidateLatency != 0 || len(ev.Paths) != 0 || ev.Sample != nil {
				t.Errorf("candidate: got status %d, latency %v, paths %q, sample %v; want none without a candidate",
					ev.CandidateStatus, ev.CandidateLatency, ev.Paths, ev.Sample)
			}
			if got := testutil.ToFloat64(c.metrics.total.WithLabelValues("acme", string(event.OutcomeDryRun))); got != 1 {
				t.Errorf("envelope_proxy_shadow_total{acme,dry_run}: got %v; want 1", got)
			}
			wantChanges := 0
			if tt.wantMove != "" {
				wantChanges = 1
			}
			if got := testutil.CollectAndCount(c.metrics.statusChanges); got != wantChanges {
				t.Errorf("status change series: got %d; want %d", got, wantChanges)
			}
			if wantChanges == 1 {
				if got := testutil.ToFloat64(c.metrics.statusChanges.WithLabelValues("403", "402")); got != 1 {
					t.Errorf("envelope_proxy_shadow_status_changes_total{403,402}: got %v; want 1", got)
				}
			}
		})
	}
}
