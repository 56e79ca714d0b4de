package shadow

import (
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDryRunWithoutCandidate(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		status    int
		header    http.Header
		body      []byte
		migrated  bool
		wantCode  string   // the group's legacy code
		wantRules []string // the rules that matched
		wantMoves []string // legacy→envelope status changes
		unmapped  uint64
		notJSON   uint64
	}{
		{name: "credits 403 becomes 402", status: 403, body: []byte(creditsLegacy), wantCode: "insufficient_credits",
			wantRules: []string{"insufficient_credits"}, wantMoves: []string{"403->402"}},
		{name: "gzip legacy body is decoded", status: 403, body: gzipped(t, creditsLegacy),
			header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, wantCode: "insufficient_credits",
			wantRules: []string{"insufficient_credits"}, wantMoves: []string{"403->402"}},
		{name: "unsupported encoding passes", status: 403, body: []byte("\x1f\x9d..."),
			header: http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"compress"}}},
		{name: "unknown error is unmapped", status: 418, body: []byte(`{"error":"teapot"}`), unmapped: 1},
		{name: "HTML error page is not JSON", status: 502, body: []byte("<html>Bad Gateway</html>"),
			header: http.Header{"Content-Type": {"text/html"}}, unmapped: 1, notJSON: 1},
		{name: "empty error body is not JSON", status: 500, body: nil, wantRules: []string{"internal_error"}, notJSON: 1},
		{name: "success is wrapped", status: 200, body: []byte(`{"id":1}`)},
		{name: "invalid JSON success passes", status: 200, body: []byte(`{"id":`), notJSON: 1},
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
			c := New(testConfig("", nil), Options{Registerer: reg})
			c.Submit(ex)
			c.Close()
			rep := c.Report("")
			if rep.CandidateConfigured {
				t.Errorf("candidate_configured: got true; want false")
			}
			if got := outcomeOf(t, rep); got != event.OutcomeDryRun {
				t.Errorf("got %q; want %q", got, event.OutcomeDryRun)
			}
			g := onlyGroup(t, rep)
			if g.LegacyCode != tt.wantCode {
				t.Errorf("legacy code: got %q; want %q", g.LegacyCode, tt.wantCode)
			}
			var rules, moves []string
			for r := range g.Rules {
				rules = append(rules, r)
			}
			for _, sc := range g.StatusChanges {
				moves = append(moves, fmt.Sprintf("%d->%d", sc.From, sc.To))
				if sc.Stage != stageEnvelope {
					t.Errorf("status change stage: got %q; want %q", sc.Stage, stageEnvelope)
				}
			}
			if !slices.Equal(rules, tt.wantRules) {
				t.Errorf("rules: got %q; want %q", rules, tt.wantRules)
			}
			if !slices.Equal(moves, tt.wantMoves) {
				t.Errorf("status changes: got %q; want %q", moves, tt.wantMoves)
			}
			if g.Unmapped != tt.unmapped {
				t.Errorf("unmapped: got %d; want %d", g.Unmapped, tt.unmapped)
			}
			if g.LegacyNotJSON != tt.notJSON {
				t.Errorf("legacy_not_json: got %d; want %d", g.LegacyNotJSON, tt.notJSON)
			}
			if g.LegacyLatency.Count != 1 || g.LegacyLatency.P50Ms < 11 || g.LegacyLatency.P50Ms > 13 {
				t.Errorf("legacy latency: got %+v; want 1 value near 12 ms", g.LegacyLatency)
			}
			if got := testutil.ToFloat64(c.metrics.total.WithLabelValues("acme", string(event.OutcomeDryRun))); got != 1 {
				t.Errorf("envelope_proxy_shadow_total{acme,dry_run}: got %v; want 1", got)
			}
			wantChanges := 0
			if len(tt.wantMoves) > 0 {
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
