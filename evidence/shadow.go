package evidence

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// Bounds on a shadow group's tallies, past which entries fold into
// {other}: rules and status changes are few by nature, paths come from
// the candidate's bodies.
const (
	maxGroupKeys     = 64
	maxGroupRules    = 16
	maxGroupChanges  = 16
	maxGroupPaths    = 32
	stageEnvelope    = "envelope"
	stageCandidate   = "candidate"
	maxReportSamples = maxMismatchSamples
)

// groupKey names a shadow group: the comparisons of one route ("GET
// /v1/jobs/{id}"), legacy status and legacy code.
type groupKey struct {
	Route  string `json:"route"`
	Status int    `json:"legacy_status"`
	Code   string `json:"legacy_code"`
}

// changeKey is one status change: the dry run's (legacy status to the
// envelope's, stage envelope) or the candidate's (the envelope's to the
// candidate's, stage candidate).
type changeKey struct {
	Stage string `json:"stage"`
	From  int    `json:"from"`
	To    int    `json:"to"`
}

// groupCounts are one shadow group's tallies in a bucket.
type groupCounts struct {
	Outcomes  [event.NumOutcomes]uint64
	Unmapped  uint64
	NotJSON   uint64
	rules     map[string]uint64
	changes   map[changeKey]uint64
	paths     map[string]uint64
	legacy    histogram
	candidate histogram
}

// group returns b's group of k, folding k into its route's {other} code
// and then into the {other} route past maxGroupKeys.
func (b *bucket) group(k groupKey) *groupCounts {
	if g := b.groups[k]; g != nil {
		return g
	}
	if b.groups == nil {
		b.groups = make(map[groupKey]*groupCounts)
	}
	if len(b.groups) >= maxGroupKeys {
		k = groupKey{Route: otherKey}
		if g := b.groups[k]; g != nil {
			return g
		}
	}
	g := &groupCounts{}
	b.groups[k] = g
	return g
}

// add counts one comparison in g.
func (g *groupCounts) add(ev *event.Comparison, outcome int) {
	g.Outcomes[outcome]++
	if ev.Unmapped {
		g.Unmapped++
	}
	if ev.LegacyNotJSON {
		g.NotJSON++
	}
	if ev.Rule != "" {
		bump(&g.rules, ev.Rule, otherKey, maxGroupRules, 1)
	}
	if ev.EnvelopeStatus != 0 && ev.EnvelopeStatus != ev.LegacyStatus {
		bump(&g.changes, changeKey{stageEnvelope, ev.LegacyStatus, ev.EnvelopeStatus}, changeKey{Stage: otherKey}, maxGroupChanges, 1)
	}
	if ev.CandidateStatus != 0 && ev.CandidateStatus != ev.EnvelopeStatus {
		bump(&g.changes, changeKey{stageCandidate, ev.EnvelopeStatus, ev.CandidateStatus}, changeKey{Stage: otherKey}, maxGroupChanges, 1)
	}
	for _, p := range ev.Paths {
		bump(&g.paths, p, otherKey, maxGroupPaths, 1)
	}
	if ev.LegacyLatency > 0 {
		g.legacy.add(ev.LegacyLatency)
	}
	if ev.CandidateStatus != 0 && ev.CandidateLatency > 0 {
		g.candidate.add(ev.CandidateLatency)
	}
}

// merge adds o into g.
func (g *groupCounts) merge(o *groupCounts) {
	for i := range g.Outcomes {
		g.Outcomes[i] += o.Outcomes[i]
	}
	g.Unmapped += o.Unmapped
	g.NotJSON += o.NotJSON
	for k, v := range o.rules {
		bump(&g.rules, k, otherKey, maxGroupRules, v)
	}
	for k, v := range o.changes {
		bump(&g.changes, k, changeKey{Stage: otherKey}, maxGroupChanges, v)
	}
	for k, v := range o.paths {
		bump(&g.paths, k, otherKey, maxGroupPaths, v)
	}
	g.legacy.merge(&o.legacy)
	g.candidate.merge(&o.candidate)
}

// compared are the group's comparisons the candidate answered.
func (g *groupCounts) compared() uint64 {
	return compared(&g.Outcomes)
}

// storedGroup is a group's form in a stored bucket.
type storedGroup struct {
	groupKey
	Outcomes  []uint64          `json:"outcomes"`
	Unmapped  uint64            `json:"unmapped,omitempty"`
	NotJSON   uint64            `json:"not_json,omitempty"`
	Rules     map[string]uint64 `json:"rules,omitempty"`
	Changes   []storedChange    `json:"changes,omitempty"`
	Paths     map[string]uint64 `json:"paths,omitempty"`
	Legacy    map[string]uint32 `json:"legacy_latency,omitempty"`
	Candidate map[string]uint32 `json:"candidate_latency,omitempty"`
}

type storedChange struct {
	changeKey
	Count uint64 `json:"count"`
}

func (g *groupCounts) stored(k groupKey) storedGroup {
	s := storedGroup{groupKey: k, Outcomes: g.Outcomes[:], Unmapped: g.Unmapped, NotJSON: g.NotJSON, Rules: g.rules, Paths: g.paths,
		Legacy: g.legacy.stored(), Candidate: g.candidate.stored()}
	for k, v := range g.changes {
		s.Changes = append(s.Changes, storedChange{k, v})
	}
	return s
}

// decode reads a stored group into b, with every bound of a live one.
func (s *storedGroup) decode(b *bucket) {
	g := &groupCounts{}
	copy(g.Outcomes[:], s.Outcomes)
	g.Unmapped, g.NotJSON = s.Unmapped, s.NotJSON
	for k, v := range s.Rules {
		bump(&g.rules, clip(k, maxCodeLen), otherKey, maxGroupRules, v)
	}
	for _, c := range s.Changes {
		if c.Stage != stageEnvelope && c.Stage != stageCandidate {
			// Only the two stages exist: anything else read from a file
			// folds into {other}.
			c.changeKey = changeKey{Stage: otherKey}
		}
		bump(&g.changes, c.changeKey, changeKey{Stage: otherKey}, maxGroupChanges, c.Count)
	}
	for k, v := range s.Paths {
		bump(&g.paths, clip(k, maxRouteLen), otherKey, maxGroupPaths, v)
	}
	g.legacy.load(s.Legacy)
	g.candidate.load(s.Candidate)
	b.group(groupKey{clip(s.Route, maxRouteLen), s.Status, clip(s.Code, maxCodeLen)}).merge(g)
}

// ShadowReport is GET /shadow/report: the shadow comparison's outcomes over
// the readiness window, fleet-wide, by client, and by client, route, legacy
// status and legacy code, with what differed and the recent mismatches.
type ShadowReport struct {
	GeneratedAt time.Time `json:"generated_at"`
	// Window is the readiness window the report covers, as "24h".
	Window string `json:"window"`
	// CandidateConfigured reports whether this replica has a candidate
	// configured now; without one, exchanges end as dry_run.
	CandidateConfigured bool `json:"candidate_configured"`
	// Clients are each client's outcome totals, including the outcomes
	// decided before an exchange has a route (skipped_method, dropped),
	// which the groups do not count.
	Clients []ShadowClient `json:"clients"`
	// Groups are the compared exchanges, most frequent first.
	Groups []ShadowGroup `json:"groups"`
}

// ShadowClient is one client's outcome counts.
type ShadowClient struct {
	Client   string            `json:"client"`
	Total    uint64            `json:"total"`
	Outcomes map[string]uint64 `json:"outcomes"`
}

// ShadowGroup aggregates one client's exchanges of one route, legacy
// status and legacy code.
type ShadowGroup struct {
	Client string `json:"client"`
	// Route is "GET /v1/jobs/{id}", or {other} past the bound on groups.
	Route string `json:"route"`
	// LegacyStatus and LegacyCode are the legacy response's; the code as
	// the rules name it ("other" for one they do not, "" for none).
	LegacyStatus int               `json:"legacy_status"`
	LegacyCode   string            `json:"legacy_code"`
	Total        uint64            `json:"total"`
	Outcomes     map[string]uint64 `json:"outcomes"`
	// Paths count the JSON Pointers at which the envelope and the
	// candidate differed, array indices and id-like keys collapsed to *.
	Paths map[string]uint64 `json:"paths,omitempty"`
	// StatusChanges count the dry run's (legacy to envelope) and the
	// candidate's (envelope to candidate) status changes.
	StatusChanges []StatusChange `json:"status_changes,omitempty"`
	// Rules count the dry runs by the rule that matched.
	Rules map[string]uint64 `json:"rules,omitempty"`
	// Unmapped counts the dry runs no rule matched, and LegacyNotJSON the
	// legacy bodies that were not JSON.
	Unmapped      uint64 `json:"unmapped"`
	LegacyNotJSON uint64 `json:"legacy_not_json"`
	// LegacyLatency and CandidateLatency are the two exchanges' durations.
	LegacyLatency    Latency `json:"legacy_latency"`
	CandidateLatency Latency `json:"candidate_latency"`
	// Samples are the group's recent mismatches, newest first.
	Samples []event.Sample `json:"samples,omitempty"`
}

// StatusChange counts one status change.
type StatusChange struct {
	Stage string `json:"stage"`
	From  int    `json:"from"`
	To    int    `json:"to"`
	Count uint64 `json:"count"`
}

// ShadowReport returns the shadow report over the window, for one client
// when client is not "".
func (r *Recorder) ShadowReport(client string) ShadowReport {
	s := r.settings.Load()
	now := r.now()
	from := now.Add(-s.window()).Unix()
	rep := ShadowReport{GeneratedAt: now.UTC(), Window: verdict.Window(s.window()), Clients: []ShadowClient{}, Groups: []ShadowGroup{}}
	for name, cs := range *r.clients.Load() {
		if client != "" && name != client {
			continue
		}
		cs.mu.Lock()
		sum := cs.aggregate(from, true)
		var samples []event.Sample
		for i := len(cs.mismatches) - 1; i >= 0 && s.Samples; i-- {
			if m := cs.mismatches[i]; m.sample.Time.Unix() >= from {
				samples = append(samples, *m.sample)
			}
		}
		cs.mu.Unlock()
		if total := sum.shadowTotal(); total > 0 {
			rep.Clients = append(rep.Clients, ShadowClient{Client: name, Total: total, Outcomes: outcomeMap(sum.Shadow[:])})
		}
		for i, smp := range samples {
			// A sample of a group folded into {other} is shown there.
			if k := (groupKey{smp.Route, smp.LegacyStatus, smp.LegacyCode}); sum.groups[k] == nil {
				samples[i].Route, samples[i].LegacyStatus, samples[i].LegacyCode = otherKey, 0, ""
			}
		}
		for k, g := range sum.groups {
			rep.Groups = append(rep.Groups, g.report(name, k, samples))
		}
	}
	slices.SortFunc(rep.Clients, func(a, b ShadowClient) int { return cmp.Compare(a.Client, b.Client) })
	slices.SortFunc(rep.Groups, func(a, b ShadowGroup) int {
		return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Client, b.Client), cmp.Compare(a.Route, b.Route),
			cmp.Compare(a.LegacyStatus, b.LegacyStatus), cmp.Compare(a.LegacyCode, b.LegacyCode))
	})
	return rep
}

// report is the group as the report shows it, with the samples of its
// route, status and code.
func (g *groupCounts) report(client string, k groupKey, samples []event.Sample) ShadowGroup {
	out := ShadowGroup{Client: client, Route: k.Route, LegacyStatus: k.Status, LegacyCode: k.Code,
		Outcomes: outcomeMap(g.Outcomes[:]), Paths: g.paths, Rules: g.rules, Unmapped: g.Unmapped, LegacyNotJSON: g.NotJSON,
		LegacyLatency: g.legacy.summary(), CandidateLatency: g.candidate.summary()}
	for _, n := range g.Outcomes {
		out.Total += n
	}
	for c, n := range g.changes {
		out.StatusChanges = append(out.StatusChanges, StatusChange{c.Stage, c.From, c.To, n})
	}
	slices.SortFunc(out.StatusChanges, func(a, b StatusChange) int {
		return cmp.Or(cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	for _, smp := range samples {
		if smp.Route == k.Route && smp.LegacyStatus == k.Status && smp.LegacyCode == k.Code && len(out.Samples) < maxReportSamples {
			out.Samples = append(out.Samples, smp)
		}
	}
	return out
}

// outcomeMap names per-outcome counts, zeros left out.
func outcomeMap(counts []uint64) map[string]uint64 {
	out := make(map[string]uint64)
	for i, n := range counts {
		if n > 0 {
			out[string(event.Outcomes[i])] = n
		}
	}
	return out
}

// storedLatency is a histogram's stored form: its non-zero slots.
func (h *histogram) stored() map[string]uint32 {
	var out map[string]uint32
	for i, v := range h {
		if v != 0 {
			if out == nil {
				out = make(map[string]uint32)
			}
			out[strconv.Itoa(i)] = v
		}
	}
	return out
}

// load adds stored slots to h, ignoring slots out of range.
func (h *histogram) load(m map[string]uint32) {
	for k, v := range m {
		if i, err := strconv.Atoi(k); err == nil && i >= 0 && i < latencySlots {
			h[i] += v
		}
	}
}

// summary is the histogram as a Latency.
func (h *histogram) summary() Latency {
	n := h.count()
	if n == 0 {
		return Latency{}
	}
	return Latency{Count: n, P50Ms: h.quantile(0.5, n), P99Ms: h.quantile(0.99, n)}
}
