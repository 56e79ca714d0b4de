package shadow

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/envelope-proxy/envelope-proxy/event"
	"go.uber.org/zap"
)

// The report's memory bounds. Groups are keyed by config names, bounded
// methods, statuses and codes, and route templates; templates are the one
// part that traffic can multiply, so groups are capped, and the rest is
// capped per group.
const (
	// maxGroups bounds the regular groups; an exchange that would open one
	// more is folded into its client's overflow group (route {other}).
	maxGroups = 2000
	// maxPathsPerGroup bounds the differing paths counted per group;
	// further paths are counted as {other}.
	maxPathsPerGroup = 64
	// maxStatusChangesPerGroup and maxRulesPerGroup bound the other
	// per-group tallies the same way.
	maxStatusChangesPerGroup = 32
	maxRulesPerGroup         = 64
	// maxSamplesPerGroup is the number of recent mismatches kept per
	// group, and maxSamples the number kept in all: the oldest is evicted
	// first, whatever its group.
	maxSamplesPerGroup = 5
	maxSamples         = 500
	// maxSampleOps bounds the diff operations kept per sample, and
	// maxOpValue each operation's value (JSON text).
	maxSampleOps = 32
	maxOpValue   = 256
	// sketchAccuracy and sketchBins size the latency sketches: 2%
	// relative accuracy over a range of about 1:27,000 before the lowest
	// bins collapse, at most 2 KiB per sketch.
	sketchAccuracy = 0.02
	sketchBins     = 256
	// overflowMethod is the method of overflow groups, which fold every
	// method together.
	overflowMethod = "*"
)

// Report is the shadow comparison's state since the Comparator started, as
// served at /shadow/report.
type Report struct {
	// GeneratedAt is when the report was taken.
	GeneratedAt time.Time `json:"generated_at"`
	// CandidateConfigured reports whether a candidate is configured now;
	// without one, exchanges end as dry_run.
	CandidateConfigured bool `json:"candidate_configured"`
	// Clients are each client's outcome totals, including the outcomes
	// decided before an exchange has a route or a status (skipped_method,
	// dropped), which the groups do not count.
	Clients []ClientTotals `json:"clients"`
	// Groups aggregate the compared exchanges, most frequent first.
	Groups []Group `json:"groups"`
	// Limits are the memory bounds the report was kept within.
	Limits Limits `json:"limits"`
}

// ClientTotals are one client's outcome counts.
type ClientTotals struct {
	// Client is the client's config (or cohort) name, or {other} past the
	// client bound.
	Client string `json:"client"`
	// Total is the sum of Outcomes.
	Total uint64 `json:"total"`
	// Outcomes count exchanges by outcome; zero counts are left out.
	Outcomes map[event.Outcome]uint64 `json:"outcomes"`
}

// Group aggregates the exchanges of one client, method, route template,
// legacy status and legacy code.
type Group struct {
	// Client is the client's config name.
	Client string `json:"client"`
	// Method is the request method, "*" in an overflow group.
	Method string `json:"method"`
	// Route is the route template (/v1/jobs/{id}), or {other} for the
	// client's overflow group once the group bound is reached.
	Route string `json:"route"`
	// LegacyStatus is the legacy response's status (0 when the upstream
	// failed, and in overflow groups).
	LegacyStatus int `json:"legacy_status"`
	// LegacyCode is the dry run's legacy code: a code the rules name,
	// "other", or "" when the body had none.
	LegacyCode string `json:"legacy_code"`
	// Total is the number of exchanges in the group.
	Total uint64 `json:"total"`
	// Outcomes count exchanges by outcome; zero counts are left out.
	Outcomes map[event.Outcome]uint64 `json:"outcomes"`
	// Paths count the JSON Pointers at which the envelope and the
	// candidate differed (outside ignored paths), array indices and id
	// keys collapsed to "*"; "" is the whole document (a body that is not
	// JSON), "{other}" paths past the per-group bound.
	Paths map[string]uint64 `json:"paths,omitempty"`
	// StatusChanges count the status changes: the dry run's (legacy to
	// envelope) and the candidate's (envelope to candidate).
	StatusChanges []StatusChange `json:"status_changes,omitempty"`
	// Rules count the dry runs by the rule that matched.
	Rules map[string]uint64 `json:"rules,omitempty"`
	// Unmapped counts the dry runs whose error fell to the generic
	// fallback: the migration's blind spot.
	Unmapped uint64 `json:"unmapped"`
	// LegacyNotJSON counts legacy bodies that were not JSON (an HTML error
	// page, malformed JSON, an empty error body).
	LegacyNotJSON uint64 `json:"legacy_not_json"`
	// LegacyLatency is the legacy exchange's duration, as the client saw
	// it.
	LegacyLatency Latency `json:"legacy_latency"`
	// CandidateLatency is the candidate's duration, for the exchanges it
	// answered.
	CandidateLatency Latency `json:"candidate_latency"`
	// Samples are the group's most recent mismatches, oldest first.
	Samples []ReportSample `json:"samples,omitempty"`
}

// StatusChange counts one status pair.
type StatusChange struct {
	// Stage is "envelope" for the dry run (From is the legacy status, To
	// the envelope's) or "candidate" for the comparison (From is the
	// envelope's status, To the candidate's).
	Stage string `json:"stage"`
	// From and To are the statuses before and after the change.
	From int `json:"from"`
	To   int `json:"to"`
	// Count is the number of exchanges with this change.
	Count uint64 `json:"count"`
}

// The status change stages.
const (
	stageEnvelope  = "envelope"
	stageCandidate = "candidate"
)

// Latency summarises durations with a quantile sketch (DDSketch, 2%
// relative accuracy).
type Latency struct {
	// Count is the number of durations recorded.
	Count uint64 `json:"count"`
	// P50Ms and P99Ms are the median and the 99th percentile, in
	// milliseconds.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// ReportSample is one mismatching exchange, redacted: the key header,
// Authorization, Cookie and other credential headers read [redacted], as
// does every query value, and those credentials are scrubbed from the
// path and the bodies too. Bodies are cut to 4 KiB. It is the dashboard's
// sample with the request's (redacted) headers.
type ReportSample struct {
	event.Sample
	// Header holds the request headers, redacted.
	Header map[string]string `json:"header,omitempty"`
}

// Limits are the report's memory bounds.
type Limits struct {
	// MaxGroups bounds the groups (besides one overflow group per
	// client).
	MaxGroups int `json:"max_groups"`
	// MaxPathsPerGroup bounds a group's paths (besides {other}).
	MaxPathsPerGroup int `json:"max_paths_per_group"`
	// MaxSamplesPerGroup and MaxSamples bound the samples kept per group
	// and in all.
	MaxSamplesPerGroup int `json:"max_samples_per_group"`
	MaxSamples         int `json:"max_samples"`
	// Folded counts the exchanges folded into overflow groups because
	// the group bound was reached.
	Folded uint64 `json:"folded"`
}

// groupKey identifies a group.
type groupKey struct {
	client, method, route string
	status                int
	code                  string
}

// statusChangeKey identifies a status change.
type statusChangeKey struct {
	stage    string
	from, to int
}

// group is a Group being aggregated.
type group struct {
	key              groupKey
	total            uint64
	outcomes         [event.NumOutcomes]uint64
	paths            map[string]uint64
	statusChanges    map[statusChangeKey]uint64
	rules            map[string]uint64
	unmapped         uint64
	legacyNotJSON    uint64
	legacyLatency    *ddsketch.DDSketch
	candidateLatency *ddsketch.DDSketch
	samples          []*storedSample
}

// storedSample is a ReportSample held by its group and by the store's ring of
// all samples, which evicts the oldest.
type storedSample struct {
	g    *group
	s    ReportSample
	live bool
}

// observation is one compared exchange, ready to be aggregated.
type observation struct {
	key     groupKey
	outcome event.Outcome
	// statusChanges are the exchange's status changes (at most two).
	statusChanges []statusChangeKey
	rule          string
	unmapped      bool
	legacyNotJSON bool
	legacyLatency time.Duration
	// candidateLatency is set when the candidate answered.
	candidateLatency    time.Duration
	hasCandidateLatency bool
	// paths are the collapsed differing paths, each once.
	paths  []string
	sample *ReportSample
}

// store aggregates observations in bounded memory. Its lock is taken by
// comparisons (off the request path) and report readers only.
type store struct {
	mu      sync.Mutex
	groups  map[groupKey]*group
	regular int
	folded  uint64
	// ring holds every live sample in arrival order, so that the oldest
	// is evicted when maxSamples is reached.
	ring []*storedSample
	head int
}

func newStore() *store {
	return &store{groups: make(map[groupKey]*group), ring: make([]*storedSample, 0, maxSamples)}
}

// add aggregates one observation.
func (st *store) add(o *observation) {
	st.mu.Lock()
	defer st.mu.Unlock()
	g := st.group(o.key)
	g.total++
	if i := o.outcome.Index(); i >= 0 {
		g.outcomes[i]++
	}
	for _, sc := range o.statusChanges {
		if _, ok := g.statusChanges[sc]; ok || len(g.statusChanges) < maxStatusChangesPerGroup {
			g.statusChanges[sc]++
		}
	}
	if o.rule != "" {
		bumpBounded(g.rules, o.rule, maxRulesPerGroup)
	}
	if o.unmapped {
		g.unmapped++
	}
	if o.legacyNotJSON {
		g.legacyNotJSON++
	}
	if o.legacyLatency >= 0 {
		addLatency(g.legacyLatency, o.legacyLatency)
	}
	if o.hasCandidateLatency {
		addLatency(g.candidateLatency, o.candidateLatency)
	}
	for _, p := range o.paths {
		bumpBounded(g.paths, p, maxPathsPerGroup)
	}
	if o.sample != nil {
		st.addSample(g, o.sample)
	}
}

// group returns the group of key, creating it while fewer than maxGroups
// exist; past the bound the client's overflow group takes the exchange.
func (st *store) group(key groupKey) *group {
	if g, ok := st.groups[key]; ok {
		return g
	}
	if st.regular >= maxGroups {
		st.folded++
		key = groupKey{client: key.client, method: overflowMethod, route: otherRoute}
		if g, ok := st.groups[key]; ok {
			return g
		}
	} else {
		st.regular++
	}
	g := &group{
		key:              key,
		paths:            make(map[string]uint64),
		statusChanges:    make(map[statusChangeKey]uint64),
		rules:            make(map[string]uint64),
		legacyLatency:    newSketch(),
		candidateLatency: newSketch(),
	}
	st.groups[key] = g
	return g
}

// bumpBounded counts k in m, or under {other} once m holds limit keys.
func bumpBounded(m map[string]uint64, k string, limit int) {
	if _, ok := m[k]; !ok && len(m) >= limit {
		k = otherRoute
	}
	m[k]++
}

// addSample keeps s as g's most recent sample, evicting g's oldest past
// maxSamplesPerGroup and the store's oldest past maxSamples.
func (st *store) addSample(g *group, s *ReportSample) {
	ss := &storedSample{g: g, s: *s, live: true}
	g.samples = append(g.samples, ss)
	if len(g.samples) > maxSamplesPerGroup {
		g.samples[0].kill()
		g.samples = slices.Delete(g.samples, 0, 1)
	}
	if len(st.ring) < maxSamples {
		st.ring = append(st.ring, ss)
		return
	}
	if old := st.ring[st.head]; old.live {
		old.g.samples = slices.DeleteFunc(old.g.samples, func(x *storedSample) bool { return x == old })
		old.kill()
	}
	st.ring[st.head] = ss
	st.head = (st.head + 1) % maxSamples
}

// kill marks an evicted sample and frees its bodies at once.
func (ss *storedSample) kill() {
	ss.live = false
	ss.s = ReportSample{}
}

// newSketch returns a latency sketch of bounded size, or nil if the sketch
// library refuses the parameters (it never does for these constants).
func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(sketchAccuracy, sketchBins)
	if err != nil {
		return nil
	}
	return s
}

// addLatency records d in milliseconds.
func addLatency(s *ddsketch.DDSketch, d time.Duration) {
	if s == nil || d < 0 {
		return
	}
	_ = s.Add(float64(d) / float64(time.Millisecond))
}

// latency summarises a sketch.
func latency(s *ddsketch.DDSketch) Latency {
	if s == nil || s.IsEmpty() {
		return Latency{}
	}
	l := Latency{Count: uint64(s.GetCount())}
	if v, err := s.GetValueAtQuantile(0.5); err == nil {
		l.P50Ms = round3(v)
	}
	if v, err := s.GetValueAtQuantile(0.99); err == nil {
		l.P99Ms = round3(v)
	}
	return l
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// snapshot copies the groups of client (all when client is ""), most
// frequent first.
func (st *store) snapshot(client string) ([]Group, uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]Group, 0, len(st.groups))
	for _, g := range st.groups {
		if client != "" && g.key.client != client {
			continue
		}
		out = append(out, g.report())
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.Total, a.Total); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Route, b.Route),
			cmp.Compare(a.LegacyStatus, b.LegacyStatus), cmp.Compare(a.LegacyCode, b.LegacyCode))
	})
	return out, st.folded
}

// report copies g into a Group.
func (g *group) report() Group {
	r := Group{
		Client:           g.key.client,
		Method:           g.key.method,
		Route:            g.key.route,
		LegacyStatus:     g.key.status,
		LegacyCode:       g.key.code,
		Total:            g.total,
		Outcomes:         outcomeMap(g.outcomes[:]),
		Unmapped:         g.unmapped,
		LegacyNotJSON:    g.legacyNotJSON,
		LegacyLatency:    latency(g.legacyLatency),
		CandidateLatency: latency(g.candidateLatency),
	}
	if len(g.paths) > 0 {
		r.Paths = copyCounts(g.paths)
	}
	if len(g.rules) > 0 {
		r.Rules = copyCounts(g.rules)
	}
	for k, n := range g.statusChanges {
		r.StatusChanges = append(r.StatusChanges, StatusChange{Stage: k.stage, From: k.from, To: k.to, Count: n})
	}
	slices.SortFunc(r.StatusChanges, func(a, b StatusChange) int {
		return cmp.Or(cmp.Compare(a.Stage, b.Stage), cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To))
	})
	for _, ss := range g.samples {
		s := ss.s
		s.Diff = slices.Clone(s.Diff)
		r.Samples = append(r.Samples, s)
	}
	return r
}

// copyCounts copies a count map.
func copyCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// outcomeMap turns per-outcome counts into a map without the zeros.
func outcomeMap(counts []uint64) map[event.Outcome]uint64 {
	out := make(map[event.Outcome]uint64)
	for i, n := range counts {
		if n > 0 {
			out[event.Outcomes[i]] = n
		}
	}
	return out
}

// Report returns the report, filtered to one client when client is not
// empty.
func (c *Comparator) Report(client string) Report {
	groups, folded := c.store.snapshot(client)
	r := Report{
		GeneratedAt:         time.Now().UTC(),
		CandidateConfigured: c.cur.Load().candidate != nil,
		Clients:             []ClientTotals{},
		Groups:              groups,
		Limits: Limits{
			MaxGroups:          maxGroups,
			MaxPathsPerGroup:   maxPathsPerGroup,
			MaxSamplesPerGroup: maxSamplesPerGroup,
			MaxSamples:         maxSamples,
			Folded:             folded,
		},
	}
	for _, cs := range c.clients.snapshot() {
		if client != "" && cs.name != client {
			continue
		}
		var counts [event.NumOutcomes]uint64
		var total uint64
		for i := range cs.counts {
			counts[i] = cs.counts[i].Load()
			total += counts[i]
		}
		r.Clients = append(r.Clients, ClientTotals{Client: cs.name, Total: total, Outcomes: outcomeMap(counts[:])})
	}
	slices.SortFunc(r.Clients, func(a, b ClientTotals) int { return cmp.Compare(a.Client, b.Client) })
	return r
}

// ServeHTTP serves the report as JSON: GET (or HEAD), with ?client=NAME to
// keep one client. The owner mounts it on the admin listener, at
// /shadow/report; the path itself is not checked, so it can be mounted
// anywhere.
func (c *Comparator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rep := c.Report(r.URL.Query().Get("client"))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		c.logger.Debug("writing shadow report", zap.Error(err))
	}
}
