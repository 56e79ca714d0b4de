package evidence

import (
	"encoding/json"
	"fmt"

	"github.com/envelope-proxy/envelope-proxy/event"
)

// The counters of the outcomes the verdict reads, by their position in
// event.Outcomes (the stored order of counts.Shadow).
var (
	outcomeMatch            = event.OutcomeMatch.Index()
	outcomeMismatch         = event.OutcomeMismatch.Index()
	outcomeCandidateError   = event.OutcomeCandidateError.Index()
	outcomeCandidateTimeout = event.OutcomeCandidateTimeout.Index()
	outcomeDryRun           = event.OutcomeDryRun.Index()
)

// compared sums the outcome counters of the exchanges the candidate
// answered, as event.Outcome.Compared names them.
func compared(outcomes *[event.NumOutcomes]uint64) uint64 {
	var n uint64
	for i, o := range event.Outcomes {
		if o.Compared() {
			n += outcomes[i]
		}
	}
	return n
}

// The status classes, in the order of the counters.
var classNames = [...]string{"1xx", "2xx", "3xx", "4xx", "5xx", "none"}

func classIndex(status int) int {
	if status >= 100 && status < 600 {
		return status/100 - 1
	}
	return len(classNames) - 1
}

// Bounds on a bucket's tallies. Codes and routes come from untrusted
// traffic, so each tally has a cap past which entries fold into {other}.
const (
	maxRewriteKeys  = 256
	maxUnmappedKeys = 32
	// maxRouteLen bounds a route or a path as kept.
	maxRouteLen = 1 << 10
	otherKey    = "{other}"
)

// counts are a bucket's scalar counters.
type counts struct {
	Requests       uint64    `json:"requests,omitempty"`
	Classes        [6]uint64 `json:"classes"`
	Rewritten      uint64    `json:"rewritten,omitempty"`
	Wrapped        uint64    `json:"wrapped,omitempty"`
	Passed         uint64    `json:"passed,omitempty"`
	Unmapped       uint64    `json:"unmapped,omitempty"`
	UpstreamErrors uint64    `json:"upstream_errors,omitempty"`
	// Envelope and EnvelopeUpstreamErrors count the requests served in
	// envelope mode, which an envelope client's verdict is about.
	Envelope               uint64                    `json:"envelope,omitempty"`
	EnvelopeUpstreamErrors uint64                    `json:"envelope_upstream_errors,omitempty"`
	Shadow                 [event.NumOutcomes]uint64 `json:"shadow"`
	ShadowUnmapped         uint64                    `json:"shadow_unmapped,omitempty"`
	// The contract checks: envelopes checked, those the contract does
	// not allow, those it allows only as extensions, and those skipped.
	ContractChecked    uint64 `json:"contract_checked,omitempty"`
	ContractViolations uint64 `json:"contract_violations,omitempty"`
	ContractExtensions uint64 `json:"contract_extensions,omitempty"`
	ContractSkipped    uint64 `json:"contract_skipped,omitempty"`
}

func (c *counts) add(o *counts) {
	c.Requests += o.Requests
	for i := range c.Classes {
		c.Classes[i] += o.Classes[i]
	}
	c.Rewritten += o.Rewritten
	c.Wrapped += o.Wrapped
	c.Passed += o.Passed
	c.Unmapped += o.Unmapped
	c.UpstreamErrors += o.UpstreamErrors
	c.Envelope += o.Envelope
	c.EnvelopeUpstreamErrors += o.EnvelopeUpstreamErrors
	for i := range c.Shadow {
		c.Shadow[i] += o.Shadow[i]
	}
	c.ShadowUnmapped += o.ShadowUnmapped
	c.ContractChecked += o.ContractChecked
	c.ContractViolations += o.ContractViolations
	c.ContractExtensions += o.ContractExtensions
	c.ContractSkipped += o.ContractSkipped
}

// compared are the shadow exchanges the candidate answered.
func (c *counts) compared() uint64 {
	return compared(&c.Shadow)
}

func (c *counts) candidateErrors() uint64 {
	return c.Shadow[outcomeCandidateError] + c.Shadow[outcomeCandidateTimeout]
}

func (c *counts) shadowTotal() uint64 {
	var n uint64
	for _, v := range c.Shadow {
		n += v
	}
	return n
}

// rewriteKey is one (legacy status, legacy code) to (status, code) pair.
type rewriteKey struct {
	LegacyStatus int
	LegacyCode   string
	Status       int
	Code         string
}

// unmappedKey is one legacy status and code no rule matched.
type unmappedKey struct {
	Status int
	Code   string
}

// bucket is one client's evidence over one minute or one hour. Its maps
// are made on first use, so a bucket of plain traffic holds none.
type bucket struct {
	start int64 // Unix seconds
	span  int64 // 60 or 3600
	counts
	latency  histogram
	rewrites map[rewriteKey]uint64
	passed   map[string]uint64
	unmapped map[unmappedKey]uint64
	// groups are the shadow comparisons, by route, legacy status and
	// code (shadow.go).
	groups map[groupKey]*groupCounts
	// violations are the contract violations by kind (contract.go).
	violations map[violationKey]uint64
	// noiseChecks count the double replays by route, and noise the paths
	// their answers differed at (noise.go); answers count the compared
	// exchanges by legacy, envelope and candidate status and code
	// (suggest.go).
	noiseChecks map[string]uint64
	noise       map[noiseKey]uint64
	answers     map[answerKey]uint64
}

func newBucket(start, span int64) *bucket {
	return &bucket{start: start, span: span}
}

// bump adds n to m[k], folding k into fold once m holds limit keys.
func bump[K comparable](m *map[K]uint64, k, fold K, limit int, n uint64) {
	if *m == nil {
		*m = make(map[K]uint64)
	}
	if _, ok := (*m)[k]; !ok && len(*m) >= limit {
		k = fold
	}
	(*m)[k] += n
}

// merge adds o into b. With tallies false only what an overview row
// needs is merged: the counters, the latency, the unmapped errors and the
// contract violations.
func (b *bucket) merge(o *bucket, tallies bool) {
	b.counts.add(&o.counts)
	b.latency.merge(&o.latency)
	for k, v := range o.unmapped {
		bump(&b.unmapped, k, unmappedKey{Code: otherKey}, maxUnmappedKeys, v)
	}
	for k, v := range o.violations {
		bump(&b.violations, k, otherViolation, maxViolationKeys, v)
	}
	if !tallies {
		return
	}
	for k, v := range o.answers {
		bump(&b.answers, k, otherAnswer, maxAnswerKeys, v)
	}
	b.mergeNoise(o)
	for k, v := range o.rewrites {
		bump(&b.rewrites, k, rewriteKey{LegacyCode: otherKey, Code: otherKey}, maxRewriteKeys, v)
	}
	for k, v := range o.passed {
		bump(&b.passed, k, otherKey, maxRewriteKeys, v)
	}
	for k, g := range o.groups {
		b.group(k).merge(g)
	}
}

// stored is a bucket's form in the store: JSON, readable with sqlite3 when
// an operator needs to look.
type stored struct {
	Span        int64             `json:"span"`
	Counts      counts            `json:"counts"`
	Latency     map[string]uint32 `json:"latency,omitempty"`
	Rewrites    []storedRewrite   `json:"rewrites,omitempty"`
	Passthrough map[string]uint64 `json:"passthrough,omitempty"`
	Unmapped    []storedUnmapped  `json:"unmapped,omitempty"`
	Groups      []storedGroup     `json:"groups,omitempty"`
	Violations  []storedViolation `json:"violations,omitempty"`
	Noise       []storedNoise     `json:"noise,omitempty"`
	Answers     []storedAnswer    `json:"answers,omitempty"`
	// Routes and Paths are the shadow tallies of the first layout, read
	// from files written before groups.
	Routes map[string]storedRoute `json:"routes,omitempty"`
	Paths  map[string]uint64      `json:"paths,omitempty"`
}

// storedRoute is one route's comparisons in the first layout.
type storedRoute struct {
	Compared   uint64 `json:"compared"`
	Mismatches uint64 `json:"mismatches"`
}

type storedRewrite struct {
	rewriteKey
	Count uint64
}

type storedUnmapped struct {
	unmappedKey
	Count uint64
}

func (b *bucket) encode() ([]byte, error) {
	s := stored{Span: b.span, Counts: b.counts, Passthrough: b.passed, Latency: b.latency.stored()}
	for k, g := range b.groups {
		s.Groups = append(s.Groups, g.stored(k))
	}
	for k, v := range b.rewrites {
		s.Rewrites = append(s.Rewrites, storedRewrite{k, v})
	}
	for k, v := range b.unmapped {
		s.Unmapped = append(s.Unmapped, storedUnmapped{k, v})
	}
	for k, v := range b.violations {
		s.Violations = append(s.Violations, storedViolation{k, v})
	}
	for k, v := range b.answers {
		s.Answers = append(s.Answers, storedAnswer{k, v})
	}
	s.Noise = b.storedNoise()
	return json.Marshal(&s)
}

// decodeBucket reads a stored bucket; every bound of a live bucket is
// applied again, since the file is not trusted more than traffic.
func decodeBucket(start int64, data []byte) (*bucket, error) {
	var s stored
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("decoding bucket %d: %w", start, err)
	}
	if s.Span != 60 && s.Span != 3600 {
		return nil, fmt.Errorf("decoding bucket %d: span %d is neither a minute nor an hour", start, s.Span)
	}
	b := newBucket(start, s.Span)
	b.counts = s.Counts
	b.latency.load(s.Latency)
	for _, r := range s.Rewrites {
		bump(&b.rewrites, r.rewriteKey, rewriteKey{LegacyCode: otherKey, Code: otherKey}, maxRewriteKeys, r.Count)
	}
	for k, v := range s.Passthrough {
		bump(&b.passed, k, otherKey, maxRewriteKeys, v)
	}
	for _, u := range s.Unmapped {
		bump(&b.unmapped, u.unmappedKey, unmappedKey{Code: otherKey}, maxUnmappedKeys, u.Count)
	}
	for i := range s.Groups {
		s.Groups[i].decode(b)
	}
	for _, v := range s.Violations {
		k := v.violationKey
		k.Route, k.Code, k.Reason, k.Source = clip(k.Route, maxRouteLen), clip(k.Code, maxCodeLen), clip(k.Reason, maxCodeLen), clip(k.Source, maxCodeLen)
		bump(&b.violations, k, otherViolation, maxViolationKeys, v.Count)
	}
	for _, a := range s.Answers {
		bump(&b.answers, a.answerKey.clipped(), otherAnswer, maxAnswerKeys, a.Count)
	}
	b.loadNoise(s.Noise)
	for route, rc := range s.Routes {
		// The first layout counted compared exchanges and mismatches by
		// route only: they become groups of unknown status and code.
		g := b.group(groupKey{Route: clip(route, maxRouteLen)})
		g.Outcomes[outcomeMismatch] += rc.Mismatches
		g.Outcomes[outcomeMatch] += rc.Compared - min(rc.Mismatches, rc.Compared)
	}
	for path, n := range s.Paths {
		bump(&b.group(groupKey{Route: otherKey}).paths, clip(path, maxRouteLen), otherKey, maxGroupPaths, n)
	}
	return b, nil
}
