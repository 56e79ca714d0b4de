package evidence

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// comparison is one comparison of client on route, legacy status and
// code, with the latencies of a candidate that answered, edited by mods.
func comparison(client string, o event.Outcome, route string, status int, code string, mods ...func(*event.Comparison)) event.Comparison {
	ev := event.Comparison{Client: client, Outcome: o, Route: route, LegacyStatus: status, LegacyCode: code,
		EnvelopeStatus: status, LegacyLatency: 10 * time.Millisecond}
	if o.Compared() {
		ev.CandidateStatus, ev.CandidateLatency = status, 20*time.Millisecond
	}
	for _, m := range mods {
		m(&ev)
	}
	return ev
}

// withSample gives a comparison its sample, taken at t, of request
// (its route, status and code the comparison's).
func withSample(t time.Time, request string) func(*event.Comparison) {
	return func(ev *event.Comparison) {
		ev.Sample = &event.Sample{Time: t, Request: request, Route: ev.Route, LegacyCode: ev.LegacyCode,
			LegacyStatus: ev.LegacyStatus, EnvelopeStatus: ev.EnvelopeStatus, CandidateStatus: ev.CandidateStatus}
	}
}

// briefGroup is a group in one line: its key, counts and samples'
// requests, maps printed in key order.
func briefGroup(g ShadowGroup) string {
	var changes, samples []string
	for _, c := range g.StatusChanges {
		changes = append(changes, fmt.Sprintf("%s %d->%d x%d", c.Stage, c.From, c.To, c.Count))
	}
	for _, s := range g.Samples {
		samples = append(samples, s.Request)
	}
	return fmt.Sprintf("%s %q %d %q: total %d %v rules %v changes %q paths %v unmapped %d not_json %d latency %d/%d samples %q",
		g.Client, g.Route, g.LegacyStatus, g.LegacyCode, g.Total, g.Outcomes, g.Rules, changes, g.Paths,
		g.Unmapped, g.LegacyNotJSON, g.LegacyLatency.Count, g.CandidateLatency.Count, samples)
}

func briefGroups(gs []ShadowGroup) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, briefGroup(g))
	}
	return out
}

func briefClients(cs []ShadowClient) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, fmt.Sprintf("%s: total %d %v", c.Client, c.Total, c.Outcomes))
	}
	return out
}

// equalLines reports the first difference between got and want, line by
// line.
func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			t.Errorf("%s %d:\n got %q\nwant %q", what, i, g, w)
		}
	}
}

// shadowTraffic records acme's and globex's comparisons of several routes,
// legacy statuses and codes, samples taken from t on.
func shadowTraffic(r *Recorder, t time.Time) {
	const items, credits, teapot = "GET /v1/items/{id}", "GET /v1/credits", "GET /v1/teapot"
	price := func(paths ...string) func(*event.Comparison) {
		return func(ev *event.Comparison) { ev.Paths = paths }
	}
	creditsRule := func(ev *event.Comparison) { ev.Rule, ev.EnvelopeStatus = "insufficient_credits", 402 }
	for _, ev := range []event.Comparison{
		comparison("acme", event.OutcomeMatch, items, 200, ""),
		comparison("acme", event.OutcomeMatch, items, 200, ""),
		comparison("acme", event.OutcomeMismatch, items, 200, "", price("/data/price"), withSample(t.Add(time.Second), "GET /v1/items/1")),
		comparison("acme", event.OutcomeMismatch, items, 200, "", price("/data/price", "/data/name"), withSample(t.Add(3*time.Second), "GET /v1/items/3")),
		comparison("acme", event.OutcomeIgnored, items, 200, ""),
		comparison("acme", event.OutcomeMismatch, credits, 403, "insufficient_credits", creditsRule,
			func(ev *event.Comparison) { ev.CandidateStatus = 403 }, withSample(t.Add(2*time.Second), "GET /v1/credits")),
		comparison("acme", event.OutcomeMatch, credits, 403, "insufficient_credits", creditsRule,
			func(ev *event.Comparison) { ev.CandidateStatus = 402 }),
		comparison("acme", event.OutcomeCandidateTimeout, credits, 403, "insufficient_credits", creditsRule,
			// A candidate that did not answer has no latency to count.
			func(ev *event.Comparison) { ev.CandidateLatency = 5 * time.Second }),
		comparison("acme", event.OutcomeDryRun, teapot, 418, "other", func(ev *event.Comparison) {
			ev.EnvelopeStatus, ev.Unmapped, ev.LegacyBodyCode, ev.LegacyNotJSON = 500, true, "teapot", true
		}),
		comparison("acme", event.OutcomeUpstreamError, items, 0, "", func(ev *event.Comparison) { ev.EnvelopeStatus, ev.LegacyLatency = 0, 0 }),
		comparison("acme", event.OutcomeMismatch, items, 500, "", func(ev *event.Comparison) { ev.CandidateStatus = 200 },
			withSample(t.Add(4*time.Second), "GET /v1/items/4")),
		// The outcomes decided before the exchange had a route.
		{Client: "acme", Outcome: event.OutcomeDropped},
		{Client: "acme", Outcome: event.OutcomeDropped},
		{Client: "acme", Outcome: event.OutcomeSkippedMethod},
		comparison("globex", event.OutcomeMatch, items, 200, ""),
		// globex's sample of the same route, status and code is globex's.
		comparison("globex", event.OutcomeMismatch, items, 200, "", withSample(t.Add(5*time.Second), "GET /v1/items/9")),
	} {
		r.RecordComparison(ev)
	}
}

func TestShadowReport(t *testing.T) {
	c := start()
	ts := testConfig("")
	r := newTestRecorder(t, ts, c)
	t0 := c.now()
	shadowTraffic(r, t0)
	acme := []string{
		`acme "GET /v1/items/{id}" 200 "": total 5 map[ignored:1 match:2 mismatch:2] rules map[] changes [] paths map[/data/name:1 /data/price:2] unmapped 0 not_json 0 latency 5/5 samples ["GET /v1/items/3" "GET /v1/items/1"]`,
		`acme "GET /v1/credits" 403 "insufficient_credits": total 3 map[candidate_timeout:1 match:1 mismatch:1] rules map[insufficient_credits:3] changes ["candidate 402->403 x1" "envelope 403->402 x3"] paths map[] unmapped 0 not_json 0 latency 3/2 samples ["GET /v1/credits"]`,
	}
	globex := `globex "GET /v1/items/{id}" 200 "": total 2 map[match:1 mismatch:1] rules map[] changes [] paths map[] unmapped 0 not_json 0 latency 2/2 samples ["GET /v1/items/9"]`
	acmeOnes := []string{
		`acme "GET /v1/items/{id}" 0 "": total 1 map[upstream_error:1] rules map[] changes [] paths map[] unmapped 0 not_json 0 latency 0/0 samples []`,
		`acme "GET /v1/items/{id}" 500 "": total 1 map[mismatch:1] rules map[] changes ["candidate 500->200 x1"] paths map[] unmapped 0 not_json 0 latency 1/1 samples ["GET /v1/items/4"]`,
		`acme "GET /v1/teapot" 418 "other": total 1 map[dry_run:1] rules map[] changes ["envelope 418->500 x1"] paths map[] unmapped 1 not_json 1 latency 1/0 samples []`,
	}
	acmeClient := "acme: total 14 map[candidate_timeout:1 dropped:2 dry_run:1 ignored:1 match:3 mismatch:4 skipped_method:1 upstream_error:1]"
	globexClient := "globex: total 2 map[match:1 mismatch:1]"
	tests := []struct {
		name        string
		client      string
		wantClients []string
		wantGroups  []string
	}{
		{name: "every client", wantClients: []string{acmeClient, globexClient},
			wantGroups: slices.Concat(acme, []string{globex}, acmeOnes)},
		{name: "one client", client: "acme", wantClients: []string{acmeClient}, wantGroups: slices.Concat(acme, acmeOnes)},
		{name: "the other client", client: "globex", wantClients: []string{globexClient}, wantGroups: []string{globex}},
		{name: "unknown client", client: "nobody", wantClients: []string{}, wantGroups: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := r.ShadowReport(tt.client)
			if want := verdict.Window(ts.Thresholds.Window); rep.Window != want {
				t.Errorf("window: got %q; want %q", rep.Window, want)
			}
			if !rep.GeneratedAt.Equal(t0) {
				t.Errorf("generated_at: got %v; want %v", rep.GeneratedAt, t0)
			}
			equalLines(t, "client", briefClients(rep.Clients), tt.wantClients)
			equalLines(t, "group", briefGroups(rep.Groups), tt.wantGroups)
			// A report with nothing to show has empty lists, not nulls.
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			if len(tt.wantGroups) == 0 && !strings.Contains(string(b), `"clients":[],"groups":[]`) {
				t.Errorf("got %s; want empty lists of clients and groups", b)
			}
		})
	}
}

func TestShadowReportJSON(t *testing.T) {
	// The report's shape: the route holds the method, no separate method
	// and no limits; samples are in their group.
	c := start()
	r := newTestRecorder(t, testConfig(""), c)
	shadowTraffic(r, c.now())
	b, err := json.Marshal(r.ShadowReport("acme"))
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		mm, _ := m.(map[string]any)
		return slices.Sorted(maps.Keys(mm))
	}
	groups, _ := rep["groups"].([]any)
	if len(groups) == 0 {
		t.Fatalf("got no groups in %s", b)
	}
	first, _ := groups[0].(map[string]any)
	samples, _ := first["samples"].([]any)
	if len(samples) == 0 {
		t.Fatalf("got no samples in the first group %s", b)
	}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"report", keys(rep), []string{"candidate_configured", "clients", "generated_at", "groups", "window"}},
		{"group", keys(first), []string{"client", "legacy_code", "legacy_latency", "legacy_status", "candidate_latency",
			"outcomes", "paths", "route", "samples", "total", "unmapped", "legacy_not_json"}},
		{"sample", keys(samples[0]), []string{"candidate_body", "candidate_status", "diff", "envelope_body", "envelope_status",
			"legacy_body", "legacy_status", "request", "route", "time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(tt.got, want) {
				t.Errorf("keys: got %q; want %q", tt.got, want)
			}
		})
	}
	if got, want := first["route"], "GET /v1/items/{id}"; got != want {
		t.Errorf("route: got %q; want %q", got, want)
	}
}

func TestShadowReportWindow(t *testing.T) {
	tests := []struct {
		name       string
		after      time.Duration
		wantTotal  uint64
		wantGroups int
		// wantSamples are the acme samples still shown.
		wantSamples int
	}{
		{name: "within the window", after: time.Hour, wantTotal: 15, wantGroups: 6, wantSamples: 4},
		{name: "past the window", after: 26 * time.Hour, wantTotal: 1, wantGroups: 1, wantSamples: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := start()
			r := newTestRecorder(t, testConfig(""), c)
			shadowTraffic(r, c.now())
			c.advance(tt.after)
			r.RecordComparison(comparison("acme", event.OutcomeMatch, "GET /v1/late", 200, ""))
			rep := r.ShadowReport("acme")
			if len(rep.Clients) != 1 || rep.Clients[0].Total != tt.wantTotal {
				t.Errorf("clients: got %q; want acme with %d", briefClients(rep.Clients), tt.wantTotal)
			}
			samples := 0
			for _, g := range rep.Groups {
				samples += len(g.Samples)
			}
			if len(rep.Groups) != tt.wantGroups || samples != tt.wantSamples {
				t.Errorf("got %d groups and %d samples; want %d and %d:\n%q", len(rep.Groups), samples, tt.wantGroups, tt.wantSamples, briefGroups(rep.Groups))
			}
		})
	}
}

func TestShadowReportSamplesOff(t *testing.T) {
	c := start()
	ts := testConfig("")
	ts.Samples = false
	r := newTestRecorder(t, ts, c)
	shadowTraffic(r, c.now())
	rep := r.ShadowReport("")
	for _, g := range rep.Groups {
		if len(g.Samples) != 0 {
			t.Errorf("group %s %d %q: got %d samples; want none with samples off", g.Route, g.LegacyStatus, g.LegacyCode, len(g.Samples))
		}
	}
	if len(rep.Groups) != 6 {
		t.Errorf("got %d groups; want the 6 counted all the same", len(rep.Groups))
	}
}

// roundTrip returns b's stored form and the bucket read back from it, as
// the bucket that starts at start.
func roundTrip(t *testing.T, b *bucket, start int64) ([]byte, *bucket) {
	t.Helper()
	data, err := b.encode()
	if err != nil {
		t.Fatal(err)
	}
	d, err := decodeBucket(start, data)
	if err != nil {
		t.Fatal(err)
	}
	return data, d
}

func TestShadowGroupBounds(t *testing.T) {
	const n = 1000
	k := groupKey{"GET /v1/a", 200, ""}
	// tally is one bounded tally of a bucket: its keys, its limit, the
	// count folded into {other} and the count in all.
	type tally struct {
		name               string
		keys, limit        int
		other, all, wanted uint64
	}
	sum := func(m map[string]uint64) (n uint64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	// groupTallies is the tally of the cases that make groups past the
	// bound: the bucket's groups.
	groupTallies := func(b *bucket) []tally {
		var all uint64
		for _, g := range b.groups {
			all += g.compared()
		}
		return []tally{{"groups", len(b.groups), maxGroupKeys, b.groups[groupKey{Route: otherKey}].compared(), all, n}}
	}
	tests := []struct {
		name string
		// record records the i-th comparison in b.
		record  func(b *bucket, i int)
		tallies func(b *bucket) []tally
	}{
		{
			name: "routes past maxGroupKeys fold into {other}",
			record: func(b *bucket, i int) {
				ev := comparison("acme", event.OutcomeMatch, fmt.Sprintf("GET /v1/r%d", i), 200, "")
				b.group(groupKey{ev.Route, 200, ""}).add(&ev, outcomeMatch)
			},
			tallies: groupTallies,
		},
		{
			name: "statuses and codes past maxGroupKeys fold too",
			record: func(b *bucket, i int) {
				ev := comparison("acme", event.OutcomeMatch, "GET /v1/a", 200+i%300, fmt.Sprintf("code_%d", i))
				b.group(groupKey{ev.Route, ev.LegacyStatus, ev.LegacyCode}).add(&ev, outcomeMatch)
			},
			tallies: groupTallies,
		},
		{
			name: "rules, status changes and paths of one group",
			record: func(b *bucket, i int) {
				ev := comparison("acme", event.OutcomeMismatch, k.Route, k.Status, k.Code, func(ev *event.Comparison) {
					ev.Rule = fmt.Sprintf("rule_%d", i)
					ev.EnvelopeStatus, ev.CandidateStatus = 1000+i, 1000+i
					ev.Paths = []string{fmt.Sprintf("/data/f%d", i)}
				})
				b.group(k).add(&ev, outcomeMismatch)
			},
			tallies: func(b *bucket) []tally {
				g := b.groups[k]
				var changes uint64
				for _, v := range g.changes {
					changes += v
				}
				return []tally{
					{"rules", len(g.rules), maxGroupRules, g.rules[otherKey], sum(g.rules), n},
					{"changes", len(g.changes), maxGroupChanges, g.changes[changeKey{Stage: otherKey}], changes, n},
					{"paths", len(g.paths), maxGroupPaths, g.paths[otherKey], sum(g.paths), n},
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBucket(0, minute)
			for i := range n {
				tt.record(b, i)
			}
			// Recorded live, the first limit keys are kept and the rest
			// folded.
			for _, c := range tt.tallies(b) {
				if c.keys != c.limit+1 || c.other != uint64(n-c.limit) || c.all != c.wanted {
					t.Errorf("%s: got %d keys, %d in {other}, %d in all; want %d, %d, %d", c.name, c.keys, c.other, c.all, c.limit+1, n-c.limit, c.wanted)
				}
			}
			// Through encode, decode and merge the bounds hold and
			// nothing is lost (which keys stay is up to map order).
			_, d := roundTrip(t, b, 0)
			merged := newBucket(0, 0)
			merged.merge(b, true)
			merged.merge(d, true)
			for _, step := range []struct {
				name string
				b    *bucket
				n    uint64
			}{{"decoded", d, 1}, {"merged", merged, 2}} {
				for _, c := range tt.tallies(step.b) {
					if c.keys > c.limit+1 || c.all != step.n*c.wanted {
						t.Errorf("%s %s: got %d keys, %d in all; want at most %d, %d", step.name, c.name, c.keys, c.all, c.limit+1, step.n*c.wanted)
					}
				}
			}
		})
	}
}

func TestShadowReportUnderUntrustedVolume(t *testing.T) {
	c := start()
	r := newTestRecorder(t, testConfig(""), c)
	const routes = 3 * maxGroupKeys
	for i := range routes {
		r.RecordComparison(comparison("acme", event.OutcomeMatch, fmt.Sprintf("GET /v1/things/t%d/detail", i), 200, ""))
	}
	longRoute := "GET /" + strings.Repeat("r", 10*maxRouteLen)
	longCode := strings.Repeat("c", 10*maxCodeLen)
	for _, suffix := range []string{"a", "b"} {
		// Two routes and codes differing past the clip are one group.
		r.RecordComparison(comparison("globex", event.OutcomeMatch, longRoute+suffix, 400, longCode+suffix))
	}
	tests := []struct {
		name   string
		client string
		check  func(t *testing.T, rep ShadowReport)
	}{
		{name: "groups past the bound fold into {other}", client: "acme", check: func(t *testing.T, rep ShadowReport) {
			if len(rep.Groups) > maxGroupKeys+1 {
				t.Errorf("got %d groups; want at most %d", len(rep.Groups), maxGroupKeys+1)
			}
			var total, other uint64
			for _, g := range rep.Groups {
				total += g.Total
				if g.Route == otherKey {
					other += g.Total
				}
			}
			if total != routes || other < routes-maxGroupKeys {
				t.Errorf("got %d comparisons, %d in {other}; want %d, at least %d", total, other, routes, routes-maxGroupKeys)
			}
			if got := rep.Clients[0].Total; got != routes {
				t.Errorf("client total: got %d; want %d", got, routes)
			}
		}},
		{name: "long routes and codes are clipped", client: "globex", check: func(t *testing.T, rep ShadowReport) {
			if len(rep.Groups) != 1 {
				t.Fatalf("got %d groups; want 1", len(rep.Groups))
			}
			g := rep.Groups[0]
			if len(g.Route) > maxRouteLen || len(g.LegacyCode) > maxCodeLen || g.Total != 2 {
				t.Errorf("got a route of %d bytes, a code of %d, %d comparisons; want at most %d, %d, and 2",
					len(g.Route), len(g.LegacyCode), g.Total, maxRouteLen, maxCodeLen)
			}
			if !strings.HasPrefix(longRoute, g.Route) || !strings.HasPrefix(longCode, g.LegacyCode) {
				t.Errorf("got route %.40q… code %.40q…; want the start of each", g.Route, g.LegacyCode)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, r.ShadowReport(tt.client))
		})
	}
}

// TestShadowSampleOfALongRoute: the shadow comparison's route templates
// keep up to 16 segments of up to 64 bytes each, then "/{more}" (routes.CollapseSegments;
// shadow's TestRouteIsBounded/longest_route), so with the
// method a route it hands over can be 1,051 bytes, past maxRouteLen. The
// group's route is clipped; the sample, which carries the route unclipped,
// must still be shown in its group.
func TestShadowSampleOfALongRoute(t *testing.T) {
	// A segment of 64 letters that are not hex is no id: shadow keeps it.
	seg := "/" + strings.Repeat("g", 64)
	tests := []struct {
		name  string
		route string
	}{
		{name: "short route", route: "GET /v1/a"},
		{name: "longest shadow route", route: "GET " + strings.Repeat(seg, 16) + "/{more}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := start()
			r := newTestRecorder(t, testConfig(""), c)
			r.RecordComparison(comparison("acme", event.OutcomeMismatch, tt.route, 200, "", withSample(c.now(), "GET /x")))
			rep := r.ShadowReport("acme")
			if len(rep.Groups) != 1 {
				t.Fatalf("got %d groups; want 1", len(rep.Groups))
			}
			if got := len(rep.Groups[0].Samples); got != 1 {
				t.Errorf("route of %d bytes: got %d samples in its group; want 1", len(tt.route), got)
			}
		})
	}
}

func TestShadowGroupSurvivesEncodeDecodeAndMerge(t *testing.T) {
	b := newBucket(600, minute)
	k1 := groupKey{"GET /v1/credits", 403, "insufficient_credits"}
	k2 := groupKey{"POST /v1/jobs", 500, ""}
	for _, ev := range []event.Comparison{
		comparison("acme", event.OutcomeMismatch, k1.Route, k1.Status, k1.Code, func(ev *event.Comparison) {
			ev.Rule, ev.EnvelopeStatus, ev.CandidateStatus = "insufficient_credits", 402, 403
			ev.Paths = []string{"/message", "/errors/*/insufficient_credits"}
		}),
		comparison("acme", event.OutcomeMatch, k1.Route, k1.Status, k1.Code, func(ev *event.Comparison) {
			ev.Rule, ev.EnvelopeStatus, ev.CandidateStatus, ev.LegacyLatency = "insufficient_credits", 402, 402, 300*time.Millisecond
		}),
		comparison("acme", event.OutcomeDryRun, k2.Route, k2.Status, k2.Code, func(ev *event.Comparison) {
			ev.Rule, ev.Unmapped, ev.LegacyNotJSON = "internal_error", true, true
		}),
	} {
		b.group(groupKey{ev.Route, ev.LegacyStatus, ev.LegacyCode}).add(&ev, ev.Outcome.Index())
	}
	data, d := roundTrip(t, b, 600)
	// doubled is g's report with every count twice.
	doubled := func(g ShadowGroup) ShadowGroup {
		dbl := func(m map[string]uint64) map[string]uint64 {
			out := maps.Clone(m)
			for k := range out {
				out[k] *= 2
			}
			return out
		}
		g.Total *= 2
		g.Outcomes, g.Paths, g.Rules = dbl(g.Outcomes), dbl(g.Paths), dbl(g.Rules)
		g.StatusChanges = slices.Clone(g.StatusChanges)
		for i := range g.StatusChanges {
			g.StatusChanges[i].Count *= 2
		}
		g.Unmapped *= 2
		g.LegacyNotJSON *= 2
		g.LegacyLatency.Count *= 2
		g.CandidateLatency.Count *= 2
		return g
	}
	merged := newBucket(0, 0)
	merged.merge(b, true)
	merged.merge(d, true)
	overview := newBucket(0, 0)
	overview.merge(b, false)
	tests := []struct {
		name string
		got  *bucket
		want func(ShadowGroup) ShadowGroup
	}{
		{"decoded", d, func(g ShadowGroup) ShadowGroup { return g }},
		{"merged with its decoded self", merged, doubled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.got.groups) != len(b.groups) {
				t.Fatalf("got %d groups; want %d", len(tt.got.groups), len(b.groups))
			}
			for k, g := range b.groups {
				got := tt.got.groups[k]
				if got == nil {
					t.Errorf("group %v: got none", k)
					continue
				}
				want := tt.want(g.report("acme", k, nil))
				if gr := got.report("acme", k, nil); !reflect.DeepEqual(gr, want) {
					t.Errorf("group %v:\n got %q\nwant %q", k, briefGroup(gr), briefGroup(want))
				}
			}
		})
	}
	if !reflect.DeepEqual(d.groups, b.groups) {
		t.Errorf("decoded groups: got %+v; want %+v", d.groups, b.groups)
	}
	if len(overview.groups) != 0 {
		t.Errorf("merged without tallies: got %d groups; want none", len(overview.groups))
	}
	var s stored
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Groups) != 2 || s.Routes != nil || s.Paths != nil {
		t.Errorf("stored: got %d groups, routes %v, paths %v; want 2 groups and nothing of the first layout", len(s.Groups), s.Routes, s.Paths)
	}
}

func TestDecodeBucketShadowGroups(t *testing.T) {
	long := strings.Repeat("x", 4*maxRouteLen)
	tests := []struct {
		name string
		data string
		// want are the decoded groups, briefly, in route order.
		want  []string
		check func(t *testing.T, b *bucket)
	}{
		{
			name: "first layout",
			data: `{"span":60,"counts":{"shadow":[2,1]},"routes":{"GET /x":{"compared":3,"mismatches":1}},"paths":{"/data/a":2}}`,
			want: []string{
				`acme "GET /x" 0 "": total 3 map[match:2 mismatch:1] rules map[] changes [] paths map[] unmapped 0 not_json 0 latency 0/0 samples []`,
				`acme "{other}" 0 "": total 0 map[] rules map[] changes [] paths map[/data/a:2] unmapped 0 not_json 0 latency 0/0 samples []`,
			},
		},
		{
			name: "first layout, more mismatches than comparisons does not wrap",
			data: `{"span":60,"routes":{"GET /x":{"compared":1,"mismatches":5}}}`,
			want: []string{
				`acme "GET /x" 0 "": total 5 map[mismatch:5] rules map[] changes [] paths map[] unmapped 0 not_json 0 latency 0/0 samples []`,
			},
		},
		{
			name: "groups",
			data: `{"span":3600,"groups":[{"route":"GET /x","legacy_status":403,"legacy_code":"c","outcomes":[1,2],"unmapped":1,"not_json":2,` +
				`"rules":{"r":3},"changes":[{"stage":"envelope","from":403,"to":402,"count":3}],"paths":{"/p":2},"legacy_latency":{"40":3,"-1":9,"x":1}}]}`,
			want: []string{
				`acme "GET /x" 403 "c": total 3 map[match:1 mismatch:2] rules map[r:3] changes ["envelope 403->402 x3"] paths map[/p:2] unmapped 1 not_json 2 latency 3/0 samples []`,
			},
		},
		{
			name: "strings from the file are clipped",
			data: `{"span":60,"groups":[{"route":"` + long + `","legacy_code":"` + long + `","outcomes":[1],"rules":{"` + long + `":1},` +
				`"paths":{"` + long + `":1}}]}`,
			check: func(t *testing.T, b *bucket) {
				for k, g := range b.groups {
					if len(k.Route) > maxRouteLen || len(k.Code) > maxCodeLen {
						t.Errorf("key: got a route of %d bytes, a code of %d; want at most %d, %d", len(k.Route), len(k.Code), maxRouteLen, maxCodeLen)
					}
					for r := range g.rules {
						if len(r) > maxCodeLen {
							t.Errorf("rule: got %d bytes; want at most %d", len(r), maxCodeLen)
						}
					}
					for p := range g.paths {
						if len(p) > maxRouteLen {
							t.Errorf("path: got %d bytes; want at most %d", len(p), maxRouteLen)
						}
					}
				}
			},
		},
		{
			// A live change's stage is envelope, candidate or {other}.
			name: "a change's stage from the file is bounded",
			data: `{"span":60,"groups":[{"route":"GET /x","outcomes":[1],"changes":[{"stage":"` + long + `","from":1,"to":2,"count":1}]}]}`,
			check: func(t *testing.T, b *bucket) {
				for _, g := range b.groups {
					for c := range g.changes {
						if len(c.Stage) > maxCodeLen {
							t.Errorf("change stage: got %d bytes; want at most %d (envelope, candidate or {other})", len(c.Stage), maxCodeLen)
						}
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := decodeBucket(600, []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, b)
			}
			if tt.want == nil {
				return
			}
			var got []ShadowGroup
			for k, g := range b.groups {
				got = append(got, g.report("acme", k, nil))
			}
			slices.SortFunc(got, func(a, b ShadowGroup) int { return strings.Compare(a.Route, b.Route) })
			equalLines(t, "group", briefGroups(got), tt.want)
		})
	}
}
