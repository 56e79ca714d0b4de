package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/headless"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the browser test's screenshots to ../docs/ (dashboard.png, dashboard-detail.png)")

// browserThresholds are the readiness settings of the fixture.
var browserThresholds = verdict.Thresholds{
	Window:                  24 * time.Hour,
	MinRequests:             1000,
	MaxMismatchRatio:        0.001,
	MaxUnmapped:             0,
	MaxCandidateErrorsRatio: 0.01,
	MaxUpstreamErrorsRatio:  0.01,
	MaxContractViolations:   0,
}

// series makes points shaped like office traffic, perStep requests per
// five minutes on average, with mismatches at the given ratio of the
// compared exchanges, as the API returns them: the last hour by minute and
// the day by hour.
func series(end time.Time, perStep float64, compared, mismatch float64, seed int) (recent, window evidence.Series) {
	return points(end, 60, 60, perStep/5, compared, mismatch, seed), points(end, 3600, 25, perStep*12, compared, mismatch, seed)
}

// points makes n points of step seconds, the last one holding end.
func points(end time.Time, step int64, n int, perStep float64, compared, mismatch float64, seed int) evidence.Series {
	s := evidence.Series{StepSeconds: step}
	start := end.Unix() - end.Unix()%step - int64(n-1)*step
	// The carries spread fractions over the steps, so that the points add
	// up to about the summary's totals however small they are.
	var reqCarry, errCarry, mmCarry float64
	for i := range n {
		t := start + int64(i)*step
		hour := float64(t%86400) / 3600
		shape := 0.55 + 0.45*math.Sin((hour-8)/24*2*math.Pi) + 0.08*math.Sin(float64(i*7+seed))
		reqCarry += math.Max(0, perStep*shape)
		req := uint64(reqCarry)
		reqCarry -= float64(req)
		errCarry += float64(req) * 0.011
		p := evidence.Point{Time: t, Requests: req, Errors: uint64(errCarry)}
		errCarry -= float64(p.Errors)
		if compared > 0 {
			p.Compared = uint64(float64(req) * compared)
			mmCarry += float64(p.Compared) * mismatch * (1 + 0.9*math.Sin(float64(i)/7+float64(seed)))
			p.Mismatches = min(p.Compared, uint64(math.Max(0, mmCarry)))
			mmCarry -= float64(p.Mismatches)
		}
		s.Points = append(s.Points, p)
	}
	return s
}

func recentOf(recent, _ evidence.Series) evidence.Series { return recent }
func windowOf(_, window evidence.Series) evidence.Series { return window }

// withUnmapped spreads n unmapped errors over the last hours of s.
func withUnmapped(s evidence.Series, n uint64) evidence.Series {
	for i := len(s.Points) - 1; n > 0 && i >= 0; i -= 3 {
		k := min(n, uint64(1+i%4))
		s.Points[i].Unmapped = k
		s.Points[i].Errors += k
		n -= k
	}
	return s
}

// browserSource has the four clients the test looks at and a thousand
// more rows with too little evidence, as a large fleet would.
func browserSource() *staticEvidence {
	now := time.Now().Truncate(time.Minute)
	src := &staticEvidence{details: map[string]evidence.ClientDetail{}}
	var total uint64
	put := func(d evidence.ClientDetail) {
		src.overview.Clients = append(src.overview.Clients, d.ClientSummary)
		src.details[d.Name] = d
		total += d.Requests
	}
	classes := func(n uint64) map[string]uint64 {
		return map[string]uint64{"2xx": n - n/10 - n/100, "4xx": n / 10, "5xx": n / 100}
	}

	put(evidence.ClientDetail{
		ClientSummary: evidence.ClientSummary{
			Name: "acme-envelope", Kind: config.KindClient, Mode: "envelope",
			Requests: 48_210, Classes: classes(48_210),
			Rewritten: 4_821, Wrapped: 42_900, Passed: 489, UpstreamErrors: 12,
			AddedLatency: evidence.Latency{Count: 48_210, P50Ms: 0.31, P99Ms: 2.4},
			// Every envelope checked conforms; a few successes streamed
			// past max_body_bytes went unchecked.
			Contract: &evidence.ContractSummary{Checked: 47_715, Extensions: 1_204, Skipped: 6},
			Verdict: verdict.Verdict{State: verdict.Ready, Reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"contract violations 0 ≤ 0 over 24h, 47,715 checked",
				"upstream errors 0.025% ≤ 1% over 24h, 48,210 requests",
			}},
		},
		Violations: []evidence.ViolationCount{},
		Rewrites: []evidence.RewriteCount{
			{LegacyStatus: 200, Status: 200, Count: 42_900},
			{LegacyStatus: 400, LegacyCode: "invalid_param", Status: 422, Code: "VALIDATION_FAILED", Count: 3_911},
			{LegacyStatus: 404, LegacyCode: "not_found", Status: 404, Code: "NOT_FOUND", Count: 910},
		},
		Passthrough: map[string]uint64{"not_json": 401, "oversize": 88},
		Recent:      recentOf(series(now, 170, 0, 0, 1)), Series: windowOf(series(now, 170, 0, 0, 1)),
	})
	put(evidence.ClientDetail{
		ClientSummary: evidence.ClientSummary{
			Name: "beta-unmapped", Kind: config.KindClient, Mode: "envelope",
			Requests: 21_377, Classes: classes(21_377),
			Rewritten: 2_101, Wrapped: 19_000, Passed: 276, Unmapped: 37,
			AddedLatency: evidence.Latency{Count: 21_377, P50Ms: 0.42, P99Ms: 3.9},
			// Flipped from shadow within the window: its dry runs were
			// checked too.
			Contract: &evidence.ContractSummary{Checked: 21_064, Violations: 5},
			Verdict: verdict.Verdict{State: verdict.NotReady, Reasons: []string{
				"unmapped 37 > 0 (teapot_error) over 24h",
				"contract violations 5 > 0 over 24h (402 payment_required (undocumented_code), 200 (schema), 422 validation_error (undocumented_status)), 21,064 checked",
			}},
		},
		Violations: betaViolations(now),
		Rewrites: []evidence.RewriteCount{
			{LegacyStatus: 200, Status: 200, Count: 19_000},
			{LegacyStatus: 400, LegacyCode: "invalid_param", Status: 422, Code: "VALIDATION_FAILED", Count: 2_064},
			{LegacyStatus: 418, LegacyCode: "other", Status: 500, Code: "INTERNAL", Count: 37},
		},
		Passthrough: map[string]uint64{"not_json": 276},
		UnmappedCodes: []evidence.UnmappedCode{{
			LegacyStatus: 418, Code: "teapot_error", Count: 37,
			Sample:     `{"error":{"code":"teapot_error","message":"I refuse to brew coffee","request_id":"[redacted]"}}`,
			SampleTime: now.Add(-17 * time.Minute),
		}, {
			// Mapped by a rule added since: listed, not counted.
			LegacyStatus: 403, Code: "account_suspended", Count: 5, Covered: true,
			Sample:     `{"error":"Account suspended","code":"account_suspended"}`,
			SampleTime: now.Add(-5 * time.Hour),
		}},
		Recent: withUnmapped(recentOf(series(now, 75, 0, 0, 2)), 3), Series: withUnmapped(windowOf(series(now, 75, 0, 0, 2)), 37),
	})
	put(evidence.ClientDetail{
		ClientSummary: evidence.ClientSummary{
			Name: "gamma-shadow-match", Kind: config.KindClient, Mode: "shadow",
			Requests: 2_050, Classes: classes(2_050),
			AddedLatency: evidence.Latency{Count: 2_050, P50Ms: 0.8, P99Ms: 6.1},
			Shadow: &evidence.ShadowSummary{
				Outcomes: map[string]uint64{"match": 2_000, "skipped_method": 50},
				Compared: 2_000,
			},
			Verdict: verdict.Verdict{State: verdict.Ready, Reasons: []string{
				"unmapped 0 ≤ 0 over 24h",
				"candidate errors 0% ≤ 1% over 24h, 2,000 replays",
				"mismatch 0% ≤ 0.1% over 24h, 2,000 compared",
			}},
		},
		Recent: recentOf(series(now, 7.2, 0.97, 0, 3)), Series: windowOf(series(now, 7.2, 0.97, 0, 3)),
	})
	put(evidence.ClientDetail{
		ClientSummary: evidence.ClientSummary{
			Name: "delta-shadow-mismatch", Kind: config.KindClient, Mode: "shadow",
			Requests: 2_120, Classes: classes(2_120),
			AddedLatency: evidence.Latency{Count: 2_120, P50Ms: 0.9, P99Ms: 7.5},
			Shadow: &evidence.ShadowSummary{
				Outcomes: map[string]uint64{"match": 1_884, "mismatch": 100, "ignored": 10, "ignored_learned": 6, "candidate_timeout": 4, "skipped_method": 116},
				Compared: 2_000, MismatchRatio: 0.05, CandidateErrorsRatio: 4.0 / 2_004,
			},
			Contract: &evidence.ContractSummary{Checked: 1_990, Extensions: 31},
			Verdict: verdict.Verdict{State: verdict.NotReady, Reasons: []string{
				"mismatch 5% > 0.1% over 24h, 2,000 compared",
			}},
		},
		Routes: []evidence.RouteCount{
			{Route: "GET /v1/products/{id}", Compared: 1_200, Mismatches: 96},
			{Route: "GET /v1/products", Compared: 600, Mismatches: 4},
			{Route: "POST /v1/orders", Compared: 200, Mismatches: 0},
		},
		Paths: []evidence.PathCount{{Path: "/data/price", Count: 96}, {Path: "/errors/0/code", Count: 4}},
		Samples: []event.Sample{{
			Time: now.Add(-3 * time.Minute), Request: "GET /v1/products/{id}",
			LegacyStatus: 200, EnvelopeStatus: 200, CandidateStatus: 200,
			LegacyBody:    `{"id":"p-1042","name":"Espresso cup","price":10,"currency":"EUR"}`,
			EnvelopeBody:  `{"data":{"id":"p-1042","name":"Espresso cup","price":10,"currency":"EUR"},"success":true,"message":"","errors":[]}`,
			CandidateBody: `{"data":{"id":"p-1042","name":"Espresso cup","price":"10","currency":"EUR"},"success":true,"message":"","errors":[]}`,
			Diff:          []event.DiffOp{{Op: "replace", Path: "/data/price", Value: `"10"`}},
		}},
		Recent: recentOf(series(now, 7.4, 0.94, 0.05, 4)), Series: windowOf(series(now, 7.4, 0.94, 0.05, 4)),
	})

	// The rest of the fleet: still legacy, or shadowed with too little
	// traffic to judge.
	modes := []string{"legacy", "legacy", "legacy", "shadow", "envelope"}
	for i := range 1_001 {
		name, kind := fmt.Sprintf("tenant-%04d", i), config.KindClient
		if i%25 == 7 {
			name, kind = fmt.Sprintf("cohort-%02d", i/25), config.KindCohort
		}
		req := uint64(900 - i*9/10)
		mode := modes[i%len(modes)]
		c := evidence.ClientSummary{
			Name: name, Kind: kind, Mode: mode, Requests: req, Classes: classes(req),
			AddedLatency: evidence.Latency{Count: req, P50Ms: 0.3 + float64(i%7)/10, P99Ms: 2 + float64(i%11)/2},
			Verdict:      verdict.Verdict{State: verdict.InsufficientEvidence},
		}
		switch mode {
		case "legacy":
			c.AddedLatency = evidence.Latency{}
			c.Verdict.Reasons = []string{fmt.Sprintf("mode legacy: nothing is rewritten or compared (%s requests over 24h); switch it to shadow to gather evidence", verdict.Count(req))}
		case "shadow":
			compared := req * 9 / 10
			c.Shadow = &evidence.ShadowSummary{Outcomes: map[string]uint64{"match": compared, "skipped_method": req - compared}, Compared: compared}
			c.Verdict.Reasons = []string{
				fmt.Sprintf("%s compared < 1,000 needed over 24h", verdict.Count(compared)),
				"candidate errors 0% ≤ 1% over 24h",
			}
		case "envelope":
			c.Wrapped = req
			c.Verdict.Reasons = []string{fmt.Sprintf("%s requests < 1,000 needed over 24h", verdict.Count(req))}
		}
		put(evidence.ClientDetail{ClientSummary: c, Recent: recentOf(series(now, float64(req)/288, 0, 0, i)), Series: windowOf(series(now, float64(req)/288, 0, 0, i))})
	}
	// A name is whatever config says; markup in it must show as text.
	put(evidence.ClientDetail{ClientSummary: evidence.ClientSummary{
		Name: hostileName, Kind: evidence.KindRemoved, Mode: "legacy", Requests: 3, Classes: classes(3),
		Verdict: verdict.Verdict{State: verdict.InsufficientEvidence, Reasons: []string{`mode legacy: <img src="/hostile" onerror="alert(1)">`}},
	}})
	put(evidence.ClientDetail{ClientSummary: evidence.ClientSummary{
		Name: "default", Kind: config.KindDefault, Mode: "legacy", Requests: 9_811, Classes: classes(9_811),
		Verdict: verdict.Verdict{State: verdict.InsufficientEvidence, Reasons: []string{
			"mode legacy: nothing is rewritten or compared (9,811 requests over 24h); switch it to shadow to gather evidence",
		}},
	}})

	for i := range src.overview.Clients {
		c := &src.overview.Clients[i]
		c.Share = float64(c.Requests) / float64(total)
		d := src.details[c.Name]
		d.ClientSummary = *c
		src.details[c.Name] = d
	}
	slices.SortStableFunc(src.overview.Clients, func(a, b evidence.ClientSummary) int {
		return int(b.Requests) - int(a.Requests)
	})
	src.overview.GeneratedAt = now
	src.overview.Window = "24h"
	src.overview.Thresholds = browserThresholds
	src.overview.State = evidence.StateInfo{
		Persistent: true, Kind: "postgres", Location: "postgres://evidence@db.internal:5432/envelope?sslmode=require",
		Replica: "proxy-a", Pending: 3, Since: now.Add(-36 * time.Hour),
	}
	src.overview.Requests = total
	// Four replicas: this one, another writing, one gone silent and one
	// stopped before the window, with no request in it.
	for _, r := range browserReplicas {
		src.overview.Replicas = append(src.overview.Replicas, evidence.ReplicaSummary{
			Name: r.name, Self: r.name == "proxy-a", State: r.state,
			Started: now.Add(-r.started), LastSeen: now.Add(-r.lastSeen),
			Requests: scale(total, r.share), Share: r.share,
		})
	}
	src.suggestions = browserSuggestions(now)
	src.overview.FleetWarning = "silent while others write: proxy-c (nothing written for more than 15s, and not stopped cleanly): stuck, cut off from the store, or gone"
	src.byReplica = func(d evidence.ClientDetail, replica string) (evidence.ClientDetail, bool) {
		for _, r := range browserReplicas {
			if r.name == replica {
				return scaled(d, r.share, replica == "proxy-b"), true
			}
		}
		return evidence.ClientDetail{}, false
	}
	return src
}

// betaViolations are beta-unmapped's contract violations: a live one
// whose sample holds markup, which must show as text, and one of its dry
// runs from before it was flipped, whose detail points into the sample,
// and one kept without a sample.
func betaViolations(now time.Time) []evidence.ViolationCount {
	return []evidence.ViolationCount{
		{
			Source: string(event.SourceLive), Route: "GET /v1/jobs/{id}", Status: 402, Code: "payment_required", Reason: "undocumented_code", Count: 3,
			Detail:     `status 402 documents codes insufficient_credits, trial_expired, not "payment_required"`,
			Sample:     `{"data":null,"success":false,"message":"Payment required <img src=/hostile>","errors":[{"payment_required":["Payment required"]}]}`,
			SampleTime: now.Add(-9 * time.Minute),
		},
		{
			Source: string(event.SourceDryRun), Route: "GET /v1/jobs", Status: 200, Reason: "schema", Count: 1,
			Detail:     "at /data/0/id: got string, want integer",
			Sample:     `{"data":[{"id":"j-17","state":"done"}],"success":true,"message":"OK"}`,
			SampleTime: now.Add(-20 * time.Hour),
		},
		{
			Source: string(event.SourceDryRun), Route: "POST /v1/jobs", Status: 422, Code: "validation_error", Reason: "undocumented_status", Count: 1,
			Detail: "no response for status 422, and no default",
		},
	}
}

// browserSuggestions are the fixture's suggestions: a rule for
// beta-unmapped's unmapped teapot, whose sample holds markup, and one for
// a codeless 403 the candidate answers with a 402, matched by a message
// YAML must quote; and two paths learned as the candidate's noise, which
// are every client's.
func browserSuggestions(now time.Time) evidence.Suggestions {
	return evidence.Suggestions{
		GeneratedAt: now, Window: "24h",
		Rules: []evidence.RuleSuggestion{
			{
				Kind: evidence.SuggestUnmapped, LegacyStatus: 418, LegacyCode: "teapot_error", Clients: []string{"beta-unmapped"}, Count: 37,
				Reason: "legacy 418 teapot_error fell to the generic fallback 37 times",
				Rule:   transform.Rule{Name: "teapot_error", Match: transform.Match{Status: 418, Code: "teapot_error"}, Status: 418, Code: "teapot_error"},
				Sample: `{"error":"I refuse to brew coffee <img src=/hostile>","code":"teapot_error"}`,
			},
			{
				Kind: evidence.SuggestCandidate, LegacyStatus: 403, Clients: []string{"delta-shadow-mismatch", "tenant-0003"}, Count: 14,
				Reason:          "the candidate answers legacy 403 (no code) with 402 payment_required in 14 of 15 comparisons, where the dry run sends 403 forbidden",
				Rule:            transform.Rule{Name: "forbidden", Match: transform.Match{Status: 403, Message: `^Payment required: plan "free"$`}, Status: 402, Code: "payment_required"},
				Sample:          `{"error":"Payment required: plan \"free\""}`,
				EnvelopeSample:  `{"data":null,"success":false,"message":"Payment required: plan \"free\"","errors":[{"forbidden":["Payment required: plan \"free\""]}]}`,
				CandidateSample: `{"data":null,"success":false,"message":"Payment required","errors":[{"payment_required":["Payment required"]}]}`,
			},
		},
		Ignore: []evidence.IgnoreSuggestion{
			{Pointer: "/data/request_id", Routes: []string{"GET /v1/products", "GET /v1/products/{id}"}, Count: 40, Checks: 40},
			{Pointer: "/data/served_at", Routes: []string{"GET /v1/products/{id}"}, Count: 9, Checks: 31},
		},
	}
}

// browserReplicas are the fleet of the fixture: each replica's state, how
// long ago it started and last wrote, and its share of every count.
var browserReplicas = []struct {
	name              string
	state             string
	started, lastSeen time.Duration
	share             float64
}{
	{"proxy-a", evidence.ReplicaActive, 26 * time.Hour, 2 * time.Second, 0.5},
	{"proxy-b", evidence.ReplicaActive, 26 * time.Hour, 4 * time.Second, 0.35},
	{"proxy-c", evidence.ReplicaSilent, 26 * time.Hour, 7 * time.Minute, 0.15},
	{"proxy-d", evidence.ReplicaStopped, 50 * time.Hour, 25 * time.Hour, 0},
}

func scale(n uint64, f float64) uint64 { return uint64(math.Round(float64(n) * f)) }

// scaled is d limited to a replica that served f of its traffic: every
// count scaled, and the mismatch samples kept only when samples is set
// (they belong to the replica that took them).
func scaled(d evidence.ClientDetail, f float64, samples bool) evidence.ClientDetail {
	scaleMap := func(m map[string]uint64) map[string]uint64 {
		if m == nil {
			return nil
		}
		out := make(map[string]uint64, len(m))
		for k, v := range m {
			out[k] = scale(v, f)
		}
		return out
	}
	c := &d.ClientSummary
	c.Requests, c.Share = scale(c.Requests, f), c.Share*f
	c.Classes = scaleMap(c.Classes)
	c.Rewritten, c.Wrapped, c.Passed = scale(c.Rewritten, f), scale(c.Wrapped, f), scale(c.Passed, f)
	c.Unmapped, c.UpstreamErrors = scale(c.Unmapped, f), scale(c.UpstreamErrors, f)
	if c.Contract != nil {
		cs := *c.Contract
		cs.Checked, cs.Violations, cs.Extensions, cs.Skipped = scale(cs.Checked, f), scale(cs.Violations, f), scale(cs.Extensions, f), scale(cs.Skipped, f)
		c.Contract = &cs
	}
	c.AddedLatency.Count = scale(c.AddedLatency.Count, f)
	if c.Shadow != nil {
		sh := *c.Shadow
		sh.Outcomes, sh.Compared = scaleMap(sh.Outcomes), scale(sh.Compared, f)
		c.Shadow = &sh
	}
	d.Rewrites = slices.Clone(d.Rewrites)
	for i := range d.Rewrites {
		d.Rewrites[i].Count = scale(d.Rewrites[i].Count, f)
	}
	d.Passthrough = scaleMap(d.Passthrough)
	d.UnmappedCodes = slices.Clone(d.UnmappedCodes)
	for i := range d.UnmappedCodes {
		d.UnmappedCodes[i].Count = scale(d.UnmappedCodes[i].Count, f)
	}
	d.Violations = slices.Clone(d.Violations)
	for i := range d.Violations {
		d.Violations[i].Count = scale(d.Violations[i].Count, f)
	}
	d.Routes = slices.Clone(d.Routes)
	for i := range d.Routes {
		d.Routes[i].Compared, d.Routes[i].Mismatches = scale(d.Routes[i].Compared, f), scale(d.Routes[i].Mismatches, f)
	}
	d.Paths = slices.Clone(d.Paths)
	for i := range d.Paths {
		d.Paths[i].Count = scale(d.Paths[i].Count, f)
	}
	if !samples {
		d.Samples = nil
	}
	for _, s := range []*evidence.Series{&d.Recent, &d.Series} {
		s.Points = slices.Clone(s.Points)
		for i := range s.Points {
			p := &s.Points[i]
			p.Requests, p.Errors, p.Compared = scale(p.Requests, f), scale(p.Errors, f), scale(p.Compared, f)
			p.Mismatches, p.Unmapped = scale(p.Mismatches, f), scale(p.Unmapped, f)
		}
	}
	return d
}

// hostileName is a client name made of markup.
const hostileName = `removed-<b>bold</b><img src="/hostile">`

// failing wraps h to answer 503 for the API while fail is set, telling b
// that those URLs fail on purpose.
func failing(h http.Handler, fail *atomic.Bool, b *headless.Browser) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fail.Load() && strings.HasPrefix(r.URL.Path, "/api/") {
			b.ExpectFailure("http://" + r.Host + r.URL.RequestURI())
			http.Error(w, "upstream of the test is down", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func TestBrowser(t *testing.T) {
	b := headless.Start(t)
	var failAPI atomic.Bool
	mux := http.NewServeMux()
	src := browserSource()
	for p, h := range New(src, Options{}).Routes() {
		mux.Handle("GET "+p, h)
	}
	ts := httptest.NewServer(failing(mux, &failAPI, b))
	defer ts.Close()

	const rowNames = `[...document.querySelectorAll('#clients-body tr[data-client]')].map(r => r.dataset.client)`
	// waitRows waits until the table shows n rows.
	waitRows := func(t *testing.T, what string, n int) []string {
		t.Helper()
		b.Do(t, what, chromedp.Poll[chromedp.Void](
			fmt.Sprintf(`document.querySelectorAll('#clients-body tr[data-client]').length === %d`, n),
			chromedp.WithPollingTimeout(10*time.Second)))
		return b.Eval(t, what, rowNames)
	}
	setSelect := func(id, value string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](fmt.Sprintf(
			`(() => { const e = document.getElementById(%q); e.value = %q; e.dispatchEvent(new Event('change', {bubbles: true})); })()`, id, value))
	}
	// waitText waits until the element css selects has the text want.
	waitText := func(t *testing.T, what, css, want string) {
		t.Helper()
		b.Do(t, what, chromedp.Poll[chromedp.Void](
			fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e !== null && e.textContent === %q; })()`, css, want),
			chromedp.WithPollingTimeout(10*time.Second)))
	}

	b.Do(t, "loading the page",
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(ts.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-client="acme-envelope"]`)),
	)

	t.Run("verdicts", func(t *testing.T) {
		want := map[string]string{
			"acme-envelope":         "ready",
			"beta-unmapped":         "not_ready",
			"gamma-shadow-match":    "ready",
			"delta-shadow-mismatch": "not_ready",
		}
		for name, state := range want {
			got := b.Eval(t, "reading a verdict", fmt.Sprintf(
				`[...document.querySelectorAll('tr[data-client=%q] [data-verdict]')].map(e => e.dataset.verdict + ' ' + e.textContent)`, name))
			if w := state + " " + strings.ReplaceAll(state, "_", " "); len(got) != 1 || got[0] != w {
				t.Errorf("%s: got badges %q; want [%q]", name, got, w)
			}
		}
		reason := b.Eval(t, "reading a reason", `[...document.querySelectorAll('tr[data-client="delta-shadow-mismatch"] .reason')].map(e => e.textContent)`)
		if w := "mismatch 5% > 0.1% over 24h, 2,000 compared"; len(reason) != 1 || reason[0] != w {
			t.Errorf("delta's first reason: got %q; want [%q]", reason, w)
		}
	})

	t.Run("fleet", func(t *testing.T) {
		got := b.Eval(t, "reading the replicas", `[...document.querySelectorAll('#replicas-body tr[data-replica]')].map(r =>
			[r.dataset.replica, r.querySelector('[data-state]').dataset.state, r.querySelector('[data-state]').textContent,
			 r.querySelector('.self-tag') ? r.querySelector('.self-tag').textContent : '-',
			 r.querySelector('.last-write').textContent, r.querySelector('td:nth-of-type(4)').textContent,
			 r.querySelector('td:nth-of-type(5)').textContent].join('|'))`)
		total := src.overview.Requests
		want := []string{
			"proxy-a|active|active|this replica|2s ago|" + verdict.Count(scale(total, 0.5)) + "|50%",
			"proxy-b|active|active|-|4s ago|" + verdict.Count(scale(total, 0.35)) + "|35%",
			"proxy-c|silent|silent|-|7m ago|" + verdict.Count(scale(total, 0.15)) + "|15%",
			"proxy-d|stopped|stopped|-|25h ago|0|0%",
		}
		if len(got) != len(want) {
			t.Fatalf("got replicas %q; want %q", got, want)
		}
		for i := range want {
			// The seconds count up from the fetch: a slow machine reads a
			// second or two more.
			g, w := got[i], want[i]
			if strings.Contains(w, "s ago|") {
				g = regexp.MustCompile(`\|\d+s ago\|`).ReplaceAllString(g, "|Ns ago|")
				w = regexp.MustCompile(`\|\d+s ago\|`).ReplaceAllString(w, "|Ns ago|")
			}
			if g != w {
				t.Errorf("replica %d: got %q; want %q", i, got[i], want[i])
			}
		}
		store := b.Eval(t, "reading the store", `[...document.querySelectorAll('#fleet-store > div')].map(e => e.querySelector('dt').textContent + '=' + e.querySelector('dd').textContent)`)
		if len(store) != 4 || store[0] != "Store=postgres" || store[1] != "Location=postgres://evidence@db.internal:5432/envelope?sslmode=require" || store[2] != "This replica=proxy-a" {
			t.Errorf("store facts: got %q; want postgres, its location and proxy-a", store)
		}
		banner := b.Eval(t, "reading the fleet warning", `[String(document.getElementById('fleet-warning').hidden), document.getElementById('fleet-warning').textContent,
			String(document.getElementById('store-problem').hidden)]`)
		if banner[0] != "false" || !strings.Contains(banner[1], "silent while others write: proxy-c (") || !strings.Contains(banner[1], "missing from every number") {
			t.Errorf("fleet warning: got hidden=%s %q; want it shown, naming proxy-c", banner[0], banner[1])
		}
		if banner[2] != "true" {
			t.Errorf("store problem shown without a store error")
		}
	})

	t.Run("contract column", func(t *testing.T) {
		// cell reads a row's Contract cell: its text, and whether it is
		// marked hot and none.
		const cell = `(name) => {
			const i = [...document.querySelectorAll('#clients-head th')].findIndex(th => th.dataset.key === 'contract');
			const td = document.querySelector('tr[data-client="' + name + '"]').children[i];
			return [td.textContent, 'hot=' + td.classList.contains('hot'), 'none=' + td.classList.contains('none')].join('|');
		}`
		for _, tt := range []struct{ name, client, want string }{
			{"violations over the threshold", "beta-unmapped", "5|hot=true|none=false"},
			{"every envelope conforms", "acme-envelope", "0|hot=false|none=true"},
			{"nothing checked", "gamma-shadow-match", "–|hot=false|none=true"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got := b.Eval(t, "reading the cell", fmt.Sprintf(`[(%s)(%q)]`, cell, tt.client))
				if len(got) != 1 || got[0] != tt.want {
					t.Errorf("%s: got %q; want %q", tt.client, got, tt.want)
				}
			})
		}
		got := b.Eval(t, "reading the header", `[document.querySelector('#clients-head th[data-key="contract"] button').title,
			document.getElementById('facts').textContent]`)
		if w := "Envelopes the new API's contract does not allow (live and dry run). Sort by this column"; got[0] != w {
			t.Errorf("column title: got %q; want %q", got[0], w)
		}
		if w := "upstream errors ≤ 1% · contract violations ≤ 0"; !strings.Contains(got[1], w) {
			t.Errorf("thresholds: got %q; want %q in it", got[1], w)
		}
		b.Do(t, "sorting by contract", chromedp.Click(chromedp.CSS(`#clients-head th[data-key="contract"] button`)))
		rows := waitRows(t, "sorted rows", 50)
		if w := []string{"beta-unmapped", "acme-envelope", "delta-shadow-mismatch"}; !slices.Equal(rows[:3], w) {
			t.Errorf("first by contract violations: got %q; want %q, then the rows without checks", rows[:3], w)
		}
		b.Do(t, "sorting by requests", chromedp.Click(chromedp.CSS(`#clients-head th[data-key="requests"] button`)))
		if rows = waitRows(t, "rows by requests", 50); rows[0] != "acme-envelope" {
			t.Errorf("first by requests: got %q; want %q", rows[0], "acme-envelope")
		}
	})

	t.Run("pagination", func(t *testing.T) {
		rows := waitRows(t, "first page", 50)
		if len(rows) != 50 {
			t.Errorf("got %d rows; want 50", len(rows))
		}
		showing := b.Eval(t, "reading the pager", `[document.getElementById('showing').textContent]`)
		if w := "showing 1–50 of 1,007"; showing[0] != w {
			t.Errorf("got %q; want %q", showing[0], w)
		}
		b.Do(t, "next page", chromedp.Click(chromedp.CSS(`#pager button[aria-label="Next page"]`)))
		second := waitRows(t, "second page", 50)
		if slices.Contains(second, rows[0]) {
			t.Errorf("page 2 repeats %q from page 1", rows[0])
		}
		showing = b.Eval(t, "reading the pager", `[document.getElementById('showing').textContent]`)
		if w := "showing 51–100 of 1,007"; showing[0] != w {
			t.Errorf("got %q; want %q", showing[0], w)
		}
		b.Do(t, "first page", chromedp.Click(chromedp.CSS(`#pager button[aria-label="First page"]`)))
		waitRows(t, "first page again", 50)
	})

	t.Run("filter by verdict", func(t *testing.T) {
		b.Do(t, "choosing not ready", setSelect("filter-verdict", "not_ready"))
		got := waitRows(t, "not ready rows", 2)
		slices.Sort(got)
		if want := []string{"beta-unmapped", "delta-shadow-mismatch"}; !slices.Equal(got, want) {
			t.Errorf("got %q; want %q", got, want)
		}
		b.Do(t, "clearing the verdict", setSelect("filter-verdict", ""))
		waitRows(t, "all rows", 50)
	})

	t.Run("filter by mode", func(t *testing.T) {
		b.Do(t, "choosing shadow", setSelect("filter-mode", "shadow"))
		got := waitRows(t, "shadow rows", 50)
		for _, name := range got {
			if strings.HasPrefix(name, "acme") || strings.HasPrefix(name, "beta") {
				t.Errorf("got envelope client %q among the shadow ones", name)
			}
		}
		b.Do(t, "clearing the mode", setSelect("filter-mode", ""))
		waitRows(t, "all rows", 50)
	})

	t.Run("sort", func(t *testing.T) {
		b.Do(t, "sorting by name", chromedp.Click(chromedp.CSS(`#clients-head th[data-key="name"] button`)))
		rows := waitRows(t, "sorted rows", 50)
		if rows[0] != "acme-envelope" {
			t.Errorf("first by name: got %q; want %q", rows[0], "acme-envelope")
		}
		b.Do(t, "sorting by name descending", chromedp.Click(chromedp.CSS(`#clients-head th[data-key="name"] button`)))
		rows = b.Eval(t, "reading rows", rowNames)
		if rows[0] != "tenant-1000" {
			t.Errorf("first by name descending: got %q; want %q", rows[0], "tenant-1000")
		}
		b.Do(t, "sorting by requests", chromedp.Click(chromedp.CSS(`#clients-head th[data-key="requests"] button`)))
		rows = b.Eval(t, "reading rows", rowNames)
		if rows[0] != "acme-envelope" {
			t.Errorf("first by requests: got %q; want %q", rows[0], "acme-envelope")
		}
	})

	var listShot []byte
	t.Run("screenshot of the list", func(t *testing.T) {
		b.Do(t, "scrolling up", chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`))
		shot := headless.Run(t, b, "taking a screenshot", chromedp.CaptureScreenshot())
		checkPNG(t, shot)
		listShot = shot
	})

	t.Run("markup in data stays text", func(t *testing.T) {
		b.Do(t, "finding the row", chromedp.SendKeys(chromedp.ID("filter-name"), "removed-"))
		waitRows(t, "the hostile row", 1)
		got := b.Eval(t, "reading the row", `[...document.querySelectorAll('#clients-body tr')].map(r =>
			[r.dataset.client, r.querySelector('a.client-link').textContent, r.querySelector('.reason').textContent,
			 String(r.querySelectorAll('b, img').length)].join('|'))`)
		want := hostileName + "|" + hostileName + `|mode legacy: <img src="/hostile" onerror="alert(1)">|0`
		if len(got) != 1 || got[0] != want {
			t.Errorf("got %q; want [%q]", got, want)
		}
		b.Do(t, "clearing the name", chromedp.Evaluate[chromedp.Void](
			`(() => { const e = document.getElementById('filter-name'); e.value = ''; e.dispatchEvent(new Event('input', {bubbles: true})); })()`))
		waitRows(t, "all rows", 50)
	})

	t.Run("filter by name and open a client", func(t *testing.T) {
		b.Do(t, "typing a name", chromedp.SendKeys(chromedp.ID("filter-name"), "shadow"))
		got := waitRows(t, "filtered rows", 2)
		slices.Sort(got)
		if want := []string{"delta-shadow-mismatch", "gamma-shadow-match"}; !slices.Equal(got, want) {
			t.Errorf("got %q; want %q", got, want)
		}
		b.Do(t, "opening delta",
			chromedp.Click(chromedp.CSS(`tr[data-client="delta-shadow-mismatch"] a.client-link`)),
			chromedp.WaitVisible(chromedp.CSS(`#detail .sample`)),
		)
		for _, col := range []string{"col-envelope", "col-candidate"} {
			lines := b.Eval(t, "reading the diff", fmt.Sprintf(`[...document.querySelectorAll('#detail .%s .line.diff')].map(e => e.textContent)`, col))
			if len(lines) != 1 || !strings.Contains(lines[0], `"price"`) {
				t.Errorf("%s: got highlighted lines %q; want one with \"price\"", col, lines)
			}
		}
		legacy := b.Eval(t, "reading the legacy column", `[...document.querySelectorAll('#detail .col-legacy .line')].map(e => e.textContent)`)
		if len(legacy) == 0 || !strings.Contains(strings.Join(legacy, "\n"), `"Espresso cup"`) {
			t.Errorf("legacy column: got %q; want the legacy body", legacy)
		}
		ops := b.Eval(t, "reading the ops", `[...document.querySelectorAll('#detail table.ops tbody tr')].map(e => e.textContent)`)
		if w := `replace/data/price"10"`; len(ops) != 1 || ops[0] != w {
			t.Errorf("diff ops: got %q; want [%q]", ops, w)
		}
		charts := b.Eval(t, "reading the charts", `[...document.querySelectorAll('#detail svg.chart')].map(e => e.getAttribute('aria-label') + ' ' + e.querySelectorAll('g.pt title').length)`)
		if w := []string{"Requests over time 60", "Mismatch rate over time 60"}; !slices.Equal(charts, w) {
			t.Errorf("charts of the last hour: got %q; want %q", charts, w)
		}
		b.Do(t, "switching the charts to the window",
			chromedp.Click(chromedp.CSS(`#detail button[data-range="series"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#detail button[data-range="series"].on`)),
		)
		charts = b.Eval(t, "reading the window's charts", `[...document.querySelectorAll('#detail svg.chart')].map(e => e.getAttribute('aria-label') + ' ' + e.querySelectorAll('g.pt title').length)`)
		if w := []string{"Requests over time 25", "Mismatch rate over time 25"}; !slices.Equal(charts, w) {
			t.Errorf("charts of the window: got %q; want %q", charts, w)
		}
		b.Do(t, "switching back to the last hour",
			chromedp.Click(chromedp.CSS(`#detail button[data-range="recent"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#detail button[data-range="recent"].on`)),
		)
		if *updateScreenshot {
			// The whole detail page, for the docs.
			shot := headless.Run(t, b, "taking a screenshot of the page", chromedp.FullScreenshot(100))
			checkPNG(t, shot)
			writeShot(t, "dashboard-detail.png", shot)
		}
		b.Do(t, "going back",
			chromedp.Evaluate[chromedp.Void](`history.back()`),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-client="gamma-shadow-match"]`)),
		)
		if got := b.Eval(t, "reading the filter", `[document.getElementById('filter-name').value]`); got[0] != "shadow" {
			t.Errorf("name filter after going back: got %q; want %q", got[0], "shadow")
		}
		waitRows(t, "filtered rows again", 2)
	})

	t.Run("unmapped codes", func(t *testing.T) {
		b.Do(t, "opening beta",
			chromedp.Navigate(ts.URL+"/dashboard/#client=beta-unmapped"),
			chromedp.WaitVisible(chromedp.CSS(`#detail .unmapped pre`)),
		)
		got := b.Eval(t, "reading the codes", `[...document.querySelectorAll('#detail .unmapped')].map(e => JSON.stringify({
			Code: e.querySelector('.code-name').textContent,
			Covered: e.dataset.covered + ' ' + e.classList.contains('covered'),
			Tag: e.querySelector('.covered-tag') ? e.querySelector('.covered-tag').textContent : '',
			Text: e.textContent,
		}))`)
		for i, tt := range []struct {
			name, code, covered, tag, sample string
		}{
			{"unmapped", "teapot_error", "false false", "", `"I refuse to brew coffee"`},
			{"covered by a rule now", "account_suspended", "true true", "covered by a rule now; not counted", `"Account suspended"`},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if i >= len(got) {
					t.Fatalf("got %d codes; want %s at %d", len(got), tt.code, i)
				}
				var u struct{ Code, Covered, Tag, Text string }
				if err := json.Unmarshal([]byte(got[i]), &u); err != nil {
					t.Fatal(err)
				}
				for _, f := range []struct{ what, got, want string }{
					{"code", u.Code, tt.code}, {"covered (attribute, class)", u.Covered, tt.covered}, {"tag", u.Tag, tt.tag},
				} {
					if f.got != f.want {
						t.Errorf("%s: got %q; want %q", f.what, f.got, f.want)
					}
				}
				if !strings.Contains(u.Text, tt.sample) {
					t.Errorf("text: got %q; want %q in it", u.Text, tt.sample)
				}
			})
		}
		if len(got) != 2 {
			t.Errorf("got %d codes; want 2", len(got))
		}
		if v := b.Eval(t, "reading the unmapped tile", `[...document.querySelectorAll('#detail .stat')].filter(e => e.querySelector('.stat-label').textContent === 'Unmapped errors').map(e => e.querySelector('.stat-value').textContent)`); !slices.Equal(v, []string{"37"}) {
			t.Errorf("unmapped errors tile: got %q; want %q (the covered code not counted)", v, []string{"37"})
		}
	})

	t.Run("suggestions", func(t *testing.T) {
		// suggestion is one rule of the section, as the page shows it.
		type suggestion struct {
			Kind, Legacy, Meta, Reason string
			YAML                       []string // the rule's lines
			Samples                    []string // the samples' labels
			Text                       string   // the samples' lines
			Markup                     int      // elements made of the data
		}
		// section is the section as the page shows it.
		type section struct {
			Title, Nothing string
			Rules          []suggestion
			Noise          []string
			Link, Command  string
		}
		const readSection = `[(() => {
			const s = document.getElementById('suggestions');
			if (s === null) return 'none';
			const text = (sel) => { const e = s.querySelector(sel); return e === null ? '' : e.textContent; };
			const link = s.querySelector('a.copy-yaml');
			return JSON.stringify({
				Title: text('h3'), Nothing: text('.nothing'),
				Rules: [...s.querySelectorAll('.suggestion')].map(x => ({
					Kind: x.dataset.kind, Legacy: x.querySelector('.suggestion-legacy').textContent,
					Meta: x.querySelector('.suggestion-meta').textContent, Reason: x.querySelector('.suggestion-reason').textContent,
					YAML: [...x.querySelectorAll('pre.rule-yaml .line')].map(l => l.textContent),
					Samples: [...x.querySelectorAll('.side-head')].map(e => e.textContent),
					Text: [...x.querySelectorAll('.side pre .line')].map(l => l.textContent).join('\n'),
					Markup: x.querySelectorAll('img, b, script').length,
				})),
				Noise: [...s.querySelectorAll('.noise-list li')].map(l => l.textContent),
				Link: link === null ? '' : link.getAttribute('href') + ' ' + link.textContent,
				Command: text('.suggest-cmd'),
			});
		})()]`
		noise := []string{
			"/data/request_id on GET /v1/products, GET /v1/products/{id}: differed in 40 of 40 double replays",
			"/data/served_at on GET /v1/products/{id}: differed in 9 of 31 double replays",
		}
		copyLink := func(client string) string {
			return "/api/suggestions?client=" + client + "&format=yaml Copy as YAML"
		}
		command := func(client string) string {
			return "envelope-proxy suggest -admin " + ts.URL + " -client " + client
		}
		for _, tt := range []struct {
			name, client string
			noNoise      bool     // no noise learned either
			want         *section // nil: no section
		}{
			{
				name: "an unmapped error", client: "beta-unmapped",
				want: &section{
					Title: "Suggested rules",
					Rules: []suggestion{{
						Kind: "unmapped", Legacy: "418 teapot_error", Meta: "beta-unmapped · 37 unmapped",
						Reason:  "legacy 418 teapot_error fell to the generic fallback 37 times",
						YAML:    []string{"- name: teapot_error", "  match: {status: 418, code: teapot_error}", "  status: 418", "  code: teapot_error"},
						Samples: []string{"Legacy"},
						Text:    "{\n  \"error\": \"I refuse to brew coffee <img src=/hostile>\",\n  \"code\": \"teapot_error\"\n}",
					}},
					Noise: noise, Link: copyLink("beta-unmapped"), Command: command("beta-unmapped"),
				},
			},
			{
				name: "a consistent candidate answer", client: "delta-shadow-mismatch",
				want: &section{
					Title: "Suggested rules",
					Rules: []suggestion{{
						Kind: "candidate", Legacy: "403 (no code)", Meta: "delta-shadow-mismatch, tenant-0003 · 14 comparisons agree",
						Reason:  "the candidate answers legacy 403 (no code) with 402 payment_required in 14 of 15 comparisons, where the dry run sends 403 forbidden",
						YAML:    []string{"- name: forbidden", `  match: {status: 403, message: '^Payment required: plan "free"$'}`, "  status: 402", "  code: payment_required"},
						Samples: []string{"Legacy", "Envelope (dry run)", "Candidate"},
						Text: strings.Join([]string{
							"{", `  "error": "Payment required: plan \"free\""`, "}",
							"{", `  "data": null,`, `  "success": false,`, `  "message": "Payment required: plan \"free\"",`, `  "errors": [`, "    {", `      "forbidden": [`, `        "Payment required: plan \"free\""`, "      ]", "    }", "  ]", "}",
							"{", `  "data": null,`, `  "success": false,`, `  "message": "Payment required",`, `  "errors": [`, "    {", `      "payment_required": [`, `        "Payment required"`, "      ]", "    }", "  ]", "}",
						}, "\n"),
					}},
					Noise: noise, Link: copyLink("delta-shadow-mismatch"), Command: command("delta-shadow-mismatch"),
				},
			},
			{
				name: "nothing to suggest", client: "gamma-shadow-match", noNoise: true,
				want: &section{
					Title:   "Suggested rules",
					Nothing: "Nothing to suggest: no unmapped error, no consistent difference with the candidate and no learned noise over 24h.",
					Rules:   []suggestion{},
					Noise:   []string{},
				},
			},
			{name: "a legacy client", client: "tenant-0000"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if tt.noNoise {
					src.set(func(s *staticEvidence) { s.suggestions.Ignore = []evidence.IgnoreSuggestion{} })
					defer src.set(func(s *staticEvidence) { s.suggestions.Ignore = browserSuggestions(time.Now()).Ignore })
				}
				b.Do(t, "opening "+tt.client,
					chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = 'client=' + encodeURIComponent(%q)`, tt.client)),
					chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const n = document.querySelector('#detail-title > span');
						return n !== null && n.textContent === %q && document.querySelector('#detail .stats') !== null; })()`, tt.client),
						chromedp.WithPollingTimeout(10*time.Second)))
				raw := b.Eval(t, "reading the section", readSection)
				if tt.want == nil {
					if raw[0] != "none" {
						t.Errorf("section: got %q; want none for a legacy client", raw[0])
					}
					if calls := src.called(); slices.Contains(calls, "suggestions "+tt.client) {
						t.Errorf("source calls: got %q; want no suggestions fetched for a legacy client", "suggestions "+tt.client)
					}
					return
				}
				if raw[0] == "none" {
					t.Fatalf("section: got none; want %q", tt.want.Title)
				}
				var got section
				if err := json.Unmarshal([]byte(raw[0]), &got); err != nil {
					t.Fatalf("section %q: %v", raw[0], err)
				}
				for _, f := range []struct{ what, got, want string }{
					{"title", got.Title, tt.want.Title}, {"nothing to suggest", got.Nothing, tt.want.Nothing},
					{"link", got.Link, tt.want.Link}, {"command", got.Command, tt.want.Command},
				} {
					if f.got != f.want {
						t.Errorf("%s: got %q; want %q", f.what, f.got, f.want)
					}
				}
				if !slices.Equal(got.Noise, tt.want.Noise) {
					t.Errorf("learned noise: got %q; want %q", got.Noise, tt.want.Noise)
				}
				if len(got.Rules) != len(tt.want.Rules) {
					t.Fatalf("got %d rules %q; want %d", len(got.Rules), raw[0], len(tt.want.Rules))
				}
				_, yaml := get(t, ts.URL+"/api/suggestions?client="+tt.client+"&format=yaml")
				for i, w := range tt.want.Rules {
					g := got.Rules[i]
					for _, f := range []struct{ what, got, want string }{
						{"kind", g.Kind, w.Kind}, {"legacy error", g.Legacy, w.Legacy}, {"clients and count", g.Meta, w.Meta},
						{"reason", g.Reason, w.Reason}, {"samples", g.Text, w.Text},
					} {
						if f.got != f.want {
							t.Errorf("rule %d: %s: got %q; want %q", i, f.what, f.got, f.want)
						}
					}
					if !slices.Equal(g.YAML, w.YAML) {
						t.Errorf("rule %d: YAML: got %q; want %q", i, g.YAML, w.YAML)
					}
					// The page writes the rule as the YAML endpoint does,
					// under rules:.
					if entry := "  " + strings.Join(w.YAML, "\n  ") + "\n"; !strings.Contains(yaml, entry) {
						t.Errorf("rule %d: got YAML %q from the endpoint; want the page's %q in it", i, yaml, entry)
					}
					if !slices.Equal(g.Samples, w.Samples) {
						t.Errorf("rule %d: sample labels: got %q; want %q", i, g.Samples, w.Samples)
					}
					if g.Markup != 0 {
						t.Errorf("rule %d: got %d elements made of the samples' markup; want none", i, g.Markup)
					}
				}
				if calls := src.called(); !slices.Contains(calls, "suggestions "+tt.client) {
					t.Errorf("source calls: got none %q; want it", "suggestions "+tt.client)
				}
			})
		}
	})

	t.Run("shadow outcomes", func(t *testing.T) {
		b.Do(t, "opening delta",
			chromedp.Evaluate[chromedp.Void](`location.hash = 'client=delta-shadow-mismatch'`),
			chromedp.WaitVisible(chromedp.CSS(`#detail table.outcomes`)))
		for _, tt := range []struct {
			outcome string
			want    string // label|class|title|count
		}{
			{"ignored_learned", "ignored_learned|oc-learned|Equal statuses; the bodies differ only at paths learned as the candidate's noise (shadow.learn_ignores), and ignored ones|6"},
			{"ignored", "ignored|oc-ignored|Equal statuses; the bodies differ only at shadow.ignore paths|10"},
			{"match", "match|oc-good|The candidate answered the envelope's status and an equal body|1,884"},
			{"mismatch", "mismatch|oc-bad|The statuses differ, or the bodies differ outside the ignored paths|100"},
			{"skipped_method", "skipped_method|oc-other|Dry-run, not replayed: the method is not in shadow.methods nor the route in shadow.replay|116"},
		} {
			t.Run(tt.outcome, func(t *testing.T) {
				got := b.Eval(t, "reading the row", fmt.Sprintf(`[...document.querySelectorAll('#detail table.outcomes tbody tr')].filter(r => r.dataset.outcome === %q)
					.map(r => [r.cells[0].textContent, r.className, r.cells[0].title, r.cells[1].textContent].join('|'))`, tt.outcome))
				if len(got) != 1 || got[0] != tt.want {
					t.Errorf("got %q; want [%q]", got, tt.want)
				}
			})
		}
	})

	t.Run("contract violations", func(t *testing.T) {
		// violation is one entry of the section, as the page shows it.
		type violation struct {
			Source, Reason string
			Code, Tag      string // the status and code, and the reason
			Meta, Why      string
			Sample         string // the code block's lines, or ""
			Marked         []string
			NoSample       string // the line said instead of a sample
			Markup         int    // elements made of the data
		}
		const readViolations = `[...document.querySelectorAll('#detail .violation')].map(v => JSON.stringify({
			Source: v.dataset.source, Reason: v.dataset.reason,
			Code: v.querySelector('.code-name').textContent, Tag: v.querySelector('.violation-reason').textContent,
			Meta: v.querySelector('.violation-head .muted').textContent,
			Why: v.querySelector('.violation-why') ? v.querySelector('.violation-why').textContent : '',
			Sample: [...v.querySelectorAll('pre .line')].map(l => l.textContent).join('\n'),
			Marked: [...v.querySelectorAll('pre .line.diff')].map(l => l.textContent.trim()),
			NoSample: v.querySelector(':scope > p.muted') ? v.querySelector(':scope > p.muted').textContent : '',
			Markup: v.querySelectorAll('img, b, script').length,
		}))`
		const readTile = `[...document.querySelectorAll('#detail .stat')].filter(e => e.querySelector('.stat-label').textContent === 'Contract violations')
			.map(e => [e.querySelector('.stat-value').textContent, e.querySelector('.stat-sub').textContent, 'bad=' + e.classList.contains('bad')].join('|'))`
		const readSection = `[...document.querySelectorAll('#detail section.panel')].filter(e => e.querySelector('h3').textContent === 'Contract violations')
			.map(e => e.querySelector(':scope > p').textContent)`
		for _, tt := range []struct {
			name, client string
			tile         []string // value|sub|bad; none for no tile
			section      []string // the section's first line; none for no section
			violations   []violation
		}{
			{
				name: "violations", client: "beta-unmapped",
				tile:    []string{"5|21,064 checked · 0 extensions · 0 skipped · threshold ≤ 0|bad=true"},
				section: []string{"Envelopes the new API's contract does not allow. Live: sent to this client. Dry run: computed by a shadow client's dry run, what it would get once flipped. Errors no rule matched are not counted here: they are the unmapped codes."},
				violations: []violation{
					{
						Source: "live", Reason: "undocumented_code", Code: "402 payment_required", Tag: "undocumented_code",
						Meta:   "GET /v1/jobs/{id} · live · 3 seen · sample from ",
						Why:    `The contract does not list this error code for this status. status 402 documents codes insufficient_credits, trial_expired, not "payment_required"`,
						Sample: `"message": "Payment required <img src=/hostile>",`,
					},
					{
						Source: "dry_run", Reason: "schema", Code: "200 success", Tag: "schema",
						Meta:   "GET /v1/jobs · dry run · 1 seen · sample from ",
						Why:    "The body does not match the response's schema. at /data/0/id: got string, want integer",
						Sample: `"id": "j-17",`, Marked: []string{`"id": "j-17",`},
					},
					{
						Source: "dry_run", Reason: "undocumented_status", Code: "422 validation_error", Tag: "undocumented_status",
						Meta:     "POST /v1/jobs · dry run · 1 seen",
						Why:      "The contract documents no response with this status for this operation. no response for status 422, and no default",
						NoSample: "No sample kept (dashboard.samples is off).",
					},
				},
			},
			{
				name: "every envelope conforms", client: "acme-envelope",
				tile:    []string{"0|47,715 checked · 1,204 extensions · 6 skipped · threshold ≤ 0|bad=false"},
				section: []string{"Every envelope checked in the window conforms to the new API's contract (47,715 checked)."},
			},
			{name: "nothing checked", client: "gamma-shadow-match"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				b.Do(t, "opening "+tt.client,
					chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = 'client=' + encodeURIComponent(%q)`, tt.client)),
					chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const n = document.querySelector('#detail-title > span');
						return n !== null && n.textContent === %q && document.querySelector('#detail .stats') !== null; })()`, tt.client),
						chromedp.WithPollingTimeout(10*time.Second)))
				if got := b.Eval(t, "reading the tile", readTile); !slices.Equal(got, tt.tile) {
					t.Errorf("tile: got %q; want %q", got, tt.tile)
				}
				if got := b.Eval(t, "reading the section", readSection); !slices.Equal(got, tt.section) {
					t.Errorf("section: got %q; want %q", got, tt.section)
				}
				raw := b.Eval(t, "reading the violations", readViolations)
				if len(raw) != len(tt.violations) {
					t.Fatalf("got %d violations %q; want %d", len(raw), raw, len(tt.violations))
				}
				for i, w := range tt.violations {
					var got violation
					if err := json.Unmarshal([]byte(raw[i]), &got); err != nil {
						t.Fatalf("violation %d: %v", i, err)
					}
					for _, f := range []struct{ what, got, want string }{
						{"source", got.Source, w.Source}, {"reason", got.Reason, w.Reason},
						{"status and code", got.Code, w.Code}, {"reason tag", got.Tag, w.Tag},
						{"why", got.Why, w.Why}, {"no sample", got.NoSample, w.NoSample},
					} {
						if f.got != f.want {
							t.Errorf("violation %d: %s: got %q; want %q", i, f.what, f.got, f.want)
						}
					}
					if !strings.HasPrefix(got.Meta, w.Meta) || (!strings.HasSuffix(w.Meta, " ") && got.Meta != w.Meta) {
						t.Errorf("violation %d: route, source and count: got %q; want %q", i, got.Meta, w.Meta)
					}
					if !strings.Contains(got.Sample, w.Sample) || (w.Sample == "") != (got.Sample == "") {
						t.Errorf("violation %d: sample: got %q; want %q in it", i, got.Sample, w.Sample)
					}
					if !slices.Equal(got.Marked, w.Marked) {
						t.Errorf("violation %d: highlighted lines: got %q; want %q", i, got.Marked, w.Marked)
					}
					if got.Markup != 0 {
						t.Errorf("violation %d: got %d elements made of the sample's markup; want none", i, got.Markup)
					}
				}
			})
		}
	})

	t.Run("replica selector", func(t *testing.T) {
		const requests = `#detail .stats .stat .stat-value`
		fleet := src.details["delta-shadow-mismatch"].Requests
		b.Do(t, "opening delta",
			chromedp.Navigate(ts.URL+"/dashboard/#client=delta-shadow-mismatch"),
			chromedp.WaitVisible(chromedp.CSS(`#detail .sample`)),
		)
		options := b.Eval(t, "reading the replicas", `[...document.querySelectorAll('#detail-replica option')].map(o => o.value + '=' + o.textContent)`)
		if want := []string{"=All replicas", "proxy-a=proxy-a (this replica)", "proxy-b=proxy-b", "proxy-c=proxy-c · silent", "proxy-d=proxy-d · stopped"}; !slices.Equal(options, want) {
			t.Errorf("replica options: got %q; want %q", options, want)
		}
		waitText(t, "reading the fleet's requests", requests, verdict.Count(fleet))
		if got := b.Eval(t, "reading the scope", `[String(document.getElementById('detail-scope') === null), document.getElementById('detail-replica').value]`); got[0] != "true" || got[1] != "" {
			t.Errorf("the fleet's page: got no scope=%s, selection %q; want true and %q", got[0], got[1], "")
		}

		b.Do(t, "choosing proxy-b", setSelect("detail-replica", "proxy-b"),
			chromedp.WaitVisible(chromedp.CSS(`#detail-scope[data-replica="proxy-b"]`)))
		waitText(t, "reading proxy-b's requests", requests, verdict.Count(scale(fleet, 0.35)))
		got := b.Eval(t, "reading proxy-b's page", `[location.hash, document.getElementById('detail-scope').textContent,
			document.querySelector('#detail .replica-tag').textContent, String(document.querySelectorAll('#detail .sample').length)]`)
		if got[0] != "#client=delta-shadow-mismatch&replica=proxy-b" {
			t.Errorf("hash: got %q; want the replica kept in it", got[0])
		}
		if !strings.HasPrefix(got[1], "Limited to replica proxy-b:") || got[2] != "replica proxy-b" {
			t.Errorf("scope: got %q and tag %q; want the numbers said to be proxy-b's", got[1], got[2])
		}
		if got[3] != "1" {
			t.Errorf("proxy-b's samples: got %s; want 1", got[3])
		}

		b.Do(t, "choosing proxy-a", setSelect("detail-replica", "proxy-a"),
			chromedp.WaitVisible(chromedp.CSS(`#detail-scope[data-replica="proxy-a"]`)))
		waitText(t, "reading proxy-a's requests", requests, verdict.Count(scale(fleet, 0.5)))
		if got := b.Eval(t, "reading proxy-a's samples", `[String(document.querySelectorAll('#detail .sample').length)]`); got[0] != "0" {
			t.Errorf("proxy-a's samples: got %s; want none (proxy-b took it)", got[0])
		}

		b.Do(t, "reloading proxy-a's page", chromedp.Reload(),
			chromedp.WaitVisible(chromedp.CSS(`#detail-scope[data-replica="proxy-a"]`)))
		waitText(t, "reading proxy-a's requests after a reload", requests, verdict.Count(scale(fleet, 0.5)))
		if got := b.Eval(t, "reading the selection", `[document.getElementById('detail-replica').value]`); got[0] != "proxy-a" {
			t.Errorf("selection after a reload: got %q; want %q", got[0], "proxy-a")
		}

		b.Do(t, "showing all replicas", chromedp.Click(chromedp.CSS(`#detail-scope button`)))
		waitText(t, "reading the fleet's requests again", requests, verdict.Count(fleet))
		got = b.Eval(t, "reading the fleet's page", `[location.hash, document.getElementById('detail-replica').value, String(document.getElementById('detail-scope') === null)]`)
		if want := []string{"#client=delta-shadow-mismatch", "", "true"}; !slices.Equal(got, want) {
			t.Errorf("back to the fleet: got %q; want %q", got, want)
		}
	})

	t.Run("API failure keeps the data", func(t *testing.T) {
		failAPI.Store(true)
		// Opening a client polls at once.
		b.Do(t, "opening acme while the API fails",
			chromedp.Evaluate[chromedp.Void](`location.hash = 'client=acme-envelope'`),
			chromedp.WaitVisible(chromedp.ID("error")),
		)
		got := b.Eval(t, "reading the banner", `[document.getElementById('error').textContent, document.getElementById('updated').className]`)
		if !strings.Contains(got[0], "HTTP 503") || !strings.Contains(got[0], "Showing the data from") {
			t.Errorf("banner: got %q; want the status and that the last data is kept", got[0])
		}
		if got[1] != "updated stale" {
			t.Errorf("freshness class: got %q; want %q", got[1], "updated stale")
		}
		b.Do(t, "going to the list while the API fails",
			chromedp.Evaluate[chromedp.Void](`location.hash = ''`),
			chromedp.WaitVisible(chromedp.CSS(`tr[data-client="beta-unmapped"]`)),
		)
		if got := waitRows(t, "the kept rows", 50); len(got) != 50 {
			t.Errorf("got %d rows with the API down; want the last 50 kept", len(got))
		}
		if got := b.Eval(t, "reading the banner", `[String(document.getElementById('error').hidden)]`); got[0] != "false" {
			t.Errorf("banner hidden: got %s; want false while the API fails", got[0])
		}
		failAPI.Store(false)
		b.Do(t, "opening gamma once the API works",
			chromedp.Evaluate[chromedp.Void](`location.hash = 'client=gamma-shadow-match'`),
			chromedp.WaitVisible(chromedp.CSS(`#detail .stats`)),
			chromedp.WaitNotVisible(chromedp.ID("error")),
		)
		if got := b.Eval(t, "reading the freshness", `[document.getElementById('updated').textContent]`); !strings.HasPrefix(got[0], "updated ") {
			t.Errorf("freshness: got %q; want %q", got[0], "updated Ns ago")
		}
	})

	t.Run("store problem", func(t *testing.T) {
		src.set(func(s *staticEvidence) {
			s.overview.State.Error = "writing evidence failed; this replica's evidence is kept in memory until the store answers: dial tcp 10.0.0.5:5432: connect: connection refused"
			s.overview.State.Pending, s.overview.State.Lost = 12, 4
			s.overview.FleetWarning = ""
			reps := slices.Clone(s.overview.Replicas)
			reps[2].State = evidence.ReplicaActive
			s.overview.Replicas = reps
		})
		defer src.set(func(s *staticEvidence) { s.overview = browserSource().overview })
		b.Do(t, "reloading the list",
			chromedp.Navigate(ts.URL+"/"),
			chromedp.WaitVisible(chromedp.ID("store-problem")),
		)
		got := b.Eval(t, "reading the store problem", `[document.getElementById('store-problem').textContent,
			String(document.getElementById('fleet-warning').hidden), document.querySelector('#facts .warn').textContent,
			document.querySelector('#replicas-body tr[data-replica="proxy-c"] [data-state]').dataset.state]`)
		for _, w := range []string{"Evidence store problem.", "connection refused.", "12 minute buckets of this replica's evidence", "4 minute buckets lost"} {
			if !strings.Contains(got[0], w) {
				t.Errorf("store problem: got %q; want %q in it", got[0], w)
			}
		}
		if got[1] != "true" {
			t.Error("fleet warning shown without fleet_warning")
		}
		if got[2] != "postgres failing, 12 pending" {
			t.Errorf("header: got %q; want %q", got[2], "postgres failing, 12 pending")
		}
		if got[3] != "active" {
			t.Errorf("proxy-c: got %q; want active once it writes again", got[3])
		}

		// Memory only: no location, and why.
		src.set(func(s *staticEvidence) {
			s.overview.State = evidence.StateInfo{Kind: "memory", Replica: "proxy-a", Error: "readiness.state_dir is empty", Since: s.overview.State.Since}
			s.overview.Replicas = s.overview.Replicas[:1]
		})
		b.Do(t, "reloading the list in memory",
			chromedp.Navigate(ts.URL+"/dashboard/"),
			chromedp.WaitVisible(chromedp.CSS(`#store-problem.memory`)),
		)
		got = b.Eval(t, "reading the memory store", `[document.getElementById('store-problem').textContent,
			[...document.querySelectorAll('#fleet-store dt')].map(e => e.textContent).join(','), document.getElementById('fleet-store').textContent,
			document.querySelector('#facts .warn').textContent]`)
		if w := "Evidence in memory only. readiness.state_dir is empty. It is lost at a restart and shared with no other replica."; got[0] != w {
			t.Errorf("memory only: got %q; want %q", got[0], w)
		}
		if got[1] != "Store,This replica,Evidence since" || strings.Contains(got[2], "null") {
			t.Errorf("memory store facts: got %q (%q); want no location", got[1], got[2])
		}
		if w := "memory only: readiness.state_dir is empty"; got[3] != w {
			t.Errorf("header: got %q; want %q", got[3], w)
		}

		// A detail the store cannot give is a 503 the banner explains.
		src.set(func(s *staticEvidence) { s.err = errors.New("dial tcp 10.0.0.5:5432: connect: connection refused") })
		defer src.set(func(s *staticEvidence) { s.err = nil })
		b.ExpectFailure(ts.URL + "/api/clients/acme-envelope?replica=proxy-b")
		b.Do(t, "opening a replica's detail with the store down",
			chromedp.Evaluate[chromedp.Void](`location.hash = 'client=acme-envelope&replica=proxy-b'`),
			chromedp.WaitVisible(chromedp.ID("error")),
		)
		banner := b.Eval(t, "reading the banner", `[document.getElementById('error').textContent]`)
		if w := "HTTP 503 from /api/clients/acme-envelope?replica=proxy-b: the evidence store could not be read: dial tcp 10.0.0.5:5432: connect: connection refused."; !strings.Contains(banner[0], w) {
			t.Errorf("banner: got %q; want %q in it", banner[0], w)
		}
	})

	if listShot != nil {
		writeShot(t, "dashboard.png", listShot)
	}
	b.Check(t, ts.URL)
}

func checkPNG(t *testing.T, b []byte) {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("screenshot: got %d bytes starting %q; want a PNG", len(b), b[:min(len(b), 8)])
	}
}

// writeShot writes a screenshot to ../docs with -update-screenshot, and
// to the test's temporary directory otherwise.
func writeShot(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := t.TempDir()
	if *updateScreenshot {
		dir = filepath.Join("..", "docs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}
