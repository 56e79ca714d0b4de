// Package evidence gathers, per client, what the migration dashboard shows:
// requests by status class, what the rewrite did, the rules' blind spots,
// the latency the proxy added, and the shadow comparison's outcomes, in
// one-minute buckets rolled up into hours, with a few redacted samples.
//
// The proxy and the shadow comparison feed a Recorder; nothing here calls
// back into them. Recording takes one short per-client lock and allocates
// nothing on the request path once a client's minute is open.
//
// A fleet of replicas shares one store (package store): each replica writes
// what it counted, as deltas, and reads what the others wrote, so that every
// replica's dashboard and verdict are computed on all the traffic. In
// memory, a client's evidence is the fleet's sum of what has been written
// (minutes, then hours), plus this replica's own evidence not yet written
// (pending). A background loop writes the pending evidence in one
// transaction every few seconds, reads the others', and takes its turn at
// the fleet's maintenance. When the store cannot be reached, evidence stays
// in memory, bounded, and is written once it is back; requests never wait
// on it.
package evidence

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
	"go.uber.org/zap"
)

// The recorder's resolutions and bounds.
const (
	minute = store.Minute
	hour   = store.Hour
	// minuteHorizon is how long minute buckets are kept before they are
	// rolled into their hour.
	minuteHorizon = hour
	// maxClients bounds the client table: names come from config, but a
	// long life of reloads could add up.
	maxClients = 10000
	// maxMismatchSamples are the recent mismatches kept per client, and
	// unmappedSampleAge how long one unmapped code's sample is kept
	// before a newer one replaces it.
	maxMismatchSamples = 10
	unmappedSampleAge  = time.Hour
	// maxUnmappedSample bounds an unmapped code's sample body.
	maxUnmappedSample = 2 << 10
	// maxPending bounds the buckets of evidence kept unwritten while the
	// store is unreachable (about 0.7 KiB each): past it, the oldest goes
	// and is counted as lost.
	maxPending = 100_000
	// DefaultFlushInterval is how often evidence is written and the other
	// replicas' is read.
	DefaultFlushInterval = 5 * time.Second
	// DefaultMaintainInterval is how often this replica tries to take its
	// turn at the fleet's maintenance.
	DefaultMaintainInterval = time.Minute
	// firstConnectTimeout bounds the first attempt to open the store.
	firstConnectTimeout = 2 * time.Second
)

// Settings are what the Recorder takes from one config. They follow
// reloads through Swap.
type Settings struct {
	// Thresholds are the verdict's window and thresholds (readiness.*).
	Thresholds verdict.Thresholds
	// Retention is how long stored evidence is kept (readiness.retention).
	Retention time.Duration
	// Samples keeps sample bodies (dashboard.samples), masked with Redact
	// (dashboard.redact) before they are kept.
	Samples bool
	Redact  redact.Paths
	// Targets are the names routing gives requests, in config order: the
	// dashboard's rows.
	Targets []config.Target
	// Rules are the configured rules and Ignore shadow.ignore: an
	// unmapped error the rules in force now cover no longer counts
	// against the verdict, and a suggestion they cover is not made.
	Rules  []transform.Rule
	Ignore []string
}

// Options are the Recorder's collaborators, and the settings read once,
// when it is built.
type Options struct {
	// Open opens the store, and is called again, with backoff, until it
	// succeeds; nil keeps evidence in memory only.
	Open Opener
	// Kind names the store for the page ("sqlite", "postgres"), and
	// MemoryReason says why there is none when Open is nil.
	Kind         string
	MemoryReason string
	// Replica is this replica's name in the fleet.
	Replica string
	// Logger receives the store's problems; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// FlushInterval and MaintainInterval are the loop's periods; 0 is
	// the default.
	FlushInterval    time.Duration
	MaintainInterval time.Duration
}

// Recorder holds the evidence. It is safe for concurrent use.
type Recorder struct {
	logger   *zap.Logger
	now      func() time.Time
	replica  string
	started  time.Time
	settings atomic.Pointer[settings]
	clients  atomic.Pointer[map[string]*clientState]
	addMu    sync.Mutex

	// The store and what the loop knows of it; see flush.go.
	link link
	// fleet is what the page shows of the replicas; see fleet.go.
	fleet fleet
	// learned is the candidate's noise, summed for the comparison; see
	// noise.go.
	learned learnedCache
	// lost counts buckets dropped while the store was unreachable and
	// memory full.
	lost atomic.Uint64
	// clearSamples asks the next write to delete this replica's stored
	// samples: samples were turned off, or the redaction changed.
	clearSamples atomic.Bool

	stop chan struct{}
	done chan struct{}
	// closeOnce makes Close idempotent.
	closeOnce sync.Once
}

// settings are the Settings in force with the dashboard's rows.
type settings struct {
	Settings
	// rows are the configured clients, cohorts and the default, in
	// config order, with their kind and mode.
	rows []row
	// transformer is Rules compiled; nil if they did not compile.
	transformer *transform.Transformer
}

// window is readiness.window.
func (s *settings) window() time.Duration { return s.Thresholds.Window }

// hourOf returns the start of the hour holding t (Unix seconds).
func hourOf(t int64) int64 { return t - t%hour }

type row struct {
	name, kind, mode string
}

// clientState is one client's evidence: the fleet's, written, by minute
// for the last hour and by hour before, and this replica's own, not yet
// written (pending) or written without a confirmation (unconfirmed).
type clientState struct {
	name string
	mu   sync.Mutex
	// cur is the open minute of pending.
	cur         *bucket
	pending     []*bucket
	unconfirmed []*bucket
	minutes     []*bucket
	hours       []*bucket
	// unmapped keeps the newest sample per unmapped code, mismatches the
	// newest mismatches, oldest first, from every replica; ownDirty
	// reports own samples not yet written.
	unmapped   map[unmappedKey]*unmappedSample
	mismatches []*mismatch
	// violations keeps the newest sample per kind of contract violation.
	violations map[violationKey]*violationSample
	ownDirty   bool
}

// unmappedSample is one unmapped code's sample, with the replica that took
// it.
type unmappedSample struct {
	replica string
	body    string
	time    time.Time
}

// mismatch is one mismatch sample, with the replica that took it.
type mismatch struct {
	replica string
	sample  *event.Sample
}

// New builds a Recorder with settings s. When opts.Open is set, its loop
// opens the store in the background, so New never waits on it. Close stops
// the loop.
func New(s Settings, opts Options) *Recorder {
	r := &Recorder{
		logger:  opts.Logger,
		now:     opts.Now,
		replica: opts.Replica,
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.replica == "" {
		r.replica = "local"
	}
	r.started = r.now()
	empty := map[string]*clientState{}
	r.clients.Store(&empty)
	r.Swap(s)
	r.link.init(opts)
	flush, maintain := opts.FlushInterval, opts.MaintainInterval
	if flush <= 0 {
		flush = DefaultFlushInterval
	}
	if maintain <= 0 {
		maintain = DefaultMaintainInterval
	}
	r.fleet.interval = flush
	if opts.Open == nil {
		r.logger.Info("dashboard evidence kept in memory only", zap.String("reason", opts.MemoryReason))
	} else {
		// The first attempt is made at once, so that a reachable store
		// has loaded the window before the proxy serves; it is bounded,
		// so that an unreachable one delays the start by no more than
		// that, and the loop tries again.
		r.connect(firstConnectTimeout)
	}
	go r.loop(flush, maintain)
	return r
}

// Replica returns this replica's name in the fleet.
func (r *Recorder) Replica() string { return r.replica }

// Swap puts new settings in force. A longer window takes effect on the
// evidence in memory at once, and on the stored evidence at the next load.
func (r *Recorder) Swap(in Settings) {
	s := &settings{Settings: in}
	if tr, err := transform.New(in.Rules); err == nil {
		s.transformer = tr
	} else {
		r.logger.Error("the rules do not compile: unmapped errors are judged as recorded", zap.Error(err))
	}
	for _, t := range in.Targets {
		s.rows = append(s.rows, row{t.Name, t.Kind, string(t.Mode)})
	}
	old := r.settings.Swap(s)
	if old != nil && ((old.Samples && !s.Samples) || !old.Redact.Equal(s.Redact)) {
		// Samples taken under other settings go, from memory now and
		// from the store at the next write.
		r.dropSamples()
	}
	if old != nil && s.window() > old.window() {
		r.link.reloadWanted.Store(true)
	}
}

// dropSamples forgets every sample, in memory and (at the next write) this
// replica's in the store.
func (r *Recorder) dropSamples() {
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		cs.unmapped, cs.mismatches, cs.violations, cs.ownDirty = nil, nil, nil, false
		cs.mu.Unlock()
	}
	r.clearSamples.Store(true)
}

// client returns name's state, creating it on first use. The table is
// copied on write, so the common case is one atomic load and a map read.
func (r *Recorder) client(name string) *clientState {
	if cs := (*r.clients.Load())[name]; cs != nil {
		return cs
	}
	r.addMu.Lock()
	defer r.addMu.Unlock()
	cur := *r.clients.Load()
	if cs := cur[name]; cs != nil {
		return cs
	}
	if len(cur) >= maxClients {
		name = otherKey
		if cs := cur[name]; cs != nil {
			return cs
		}
	}
	next := make(map[string]*clientState, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	cs := &clientState{name: name}
	next[name] = cs
	r.clients.Store(&next)
	return cs
}

// pendingFor returns the pending bucket of the minute holding t; the
// caller holds cs.mu.
func (cs *clientState) pendingFor(t int64) *bucket {
	start := t - t%minute
	if b := cs.cur; b != nil && b.start == start {
		return b
	}
	// A clock that stepped back lands in an existing minute.
	for _, b := range cs.pending {
		if b.start == start {
			cs.cur = b
			return b
		}
	}
	b := newBucket(start, minute)
	cs.pending = append(cs.pending, b)
	cs.cur = b
	return b
}

// RecordRequest counts one finished request. It never blocks on the store
// and allocates nothing once the client's current minute is open (an
// unmapped error's sample aside).
func (r *Recorder) RecordRequest(ev *event.Request) {
	cs := r.client(ev.Client)
	now := r.now()
	cs.mu.Lock()
	b := cs.pendingFor(now.Unix())
	b.Requests++
	b.Classes[classIndex(ev.Status)]++
	if ev.Added >= 0 {
		b.latency.add(ev.Added)
	}
	if ev.UpstreamError {
		b.UpstreamErrors++
	}
	if ev.Envelope {
		b.Envelope++
		if ev.UpstreamError {
			b.EnvelopeUpstreamErrors++
		}
	}
	if ev.Rewritten() {
		switch ev.Action {
		case transform.Rewrite:
			b.Rewritten++
			bump(&b.rewrites, rewriteKey{ev.LegacyStatus, ev.LegacyCode, ev.Status, ev.Code}, rewriteKey{LegacyCode: otherKey, Code: otherKey}, maxRewriteKeys, 1)
		case transform.Wrap:
			b.Wrapped++
			bump(&b.rewrites, rewriteKey{LegacyStatus: ev.LegacyStatus, Status: ev.Status}, rewriteKey{LegacyCode: otherKey, Code: otherKey}, maxRewriteKeys, 1)
		case transform.Pass:
			b.Passed++
			if ev.Reason != transform.ReasonNone {
				bump(&b.passed, string(ev.Reason), otherKey, maxRewriteKeys, 1)
			}
		}
	}
	if ev.Unmapped {
		b.Unmapped++
		s := r.settings.Load()
		r.countUnmapped(cs, b, s, ev.LegacyStatus, ev.UnmappedCode, now, func() string {
			return sampleText(s.Redact, ev.UnmappedBody, ev.UnmappedTruncated, maxUnmappedSample)
		})
	}
	cs.mu.Unlock()
}

// countUnmapped tallies an unmapped error by legacy status and code in b
// and, with samples on and a sample to take, keeps one for the code; the
// caller holds cs.mu.
func (r *Recorder) countUnmapped(cs *clientState, b *bucket, s *settings, status int, code string, now time.Time, sample func() string) {
	k := unmappedKey{status, clip(code, maxCodeLen)}
	bump(&b.unmapped, k, unmappedKey{Code: otherKey}, maxUnmappedKeys, 1)
	if s.Samples && sample != nil && cs.keepUnmapped(k, r.replica, now, sample) {
		cs.ownDirty = true
	}
}

// keepUnmapped keeps a sample for k unless a recent one is kept, and
// reports whether it did; the caller holds cs.mu.
func (cs *clientState) keepUnmapped(k unmappedKey, replica string, t time.Time, body func() string) bool {
	if k.Code == otherKey {
		return false
	}
	cur := cs.unmapped[k]
	if cur != nil && t.Sub(cur.time) < unmappedSampleAge {
		return false
	}
	if cur == nil && len(cs.unmapped) >= maxUnmappedKeys {
		return false
	}
	if cs.unmapped == nil {
		cs.unmapped = make(map[unmappedKey]*unmappedSample)
	}
	cs.unmapped[k] = &unmappedSample{replica: replica, body: body(), time: t}
	return true
}

// keepMismatch keeps a mismatch sample among the newest, once, and reports
// whether it did; the caller holds cs.mu.
func (cs *clientState) keepMismatch(replica string, smp *event.Sample) bool {
	for _, m := range cs.mismatches {
		if m.replica == replica && m.sample.Time.Equal(smp.Time) && m.sample.Request == smp.Request {
			return false
		}
	}
	i := len(cs.mismatches)
	for i > 0 && cs.mismatches[i-1].sample.Time.After(smp.Time) {
		i--
	}
	if len(cs.mismatches) == maxMismatchSamples {
		if i == 0 {
			return false
		}
		copy(cs.mismatches, cs.mismatches[1:i])
		cs.mismatches[i-1] = &mismatch{replica, smp}
		return true
	}
	cs.mismatches = append(cs.mismatches, nil)
	copy(cs.mismatches[i+1:], cs.mismatches[i:])
	cs.mismatches[i] = &mismatch{replica, smp}
	return true
}

// RecordComparison counts one shadow comparison. The event is passed by
// value so that handing it over allocates nothing.
func (r *Recorder) RecordComparison(ev event.Comparison) {
	i := ev.Outcome.Index()
	if i < 0 {
		return
	}
	cs := r.client(ev.Client)
	now := r.now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	b := cs.pendingFor(now.Unix())
	b.Shadow[i]++
	if ev.Route != "" {
		b.group(groupKey{clip(ev.Route, maxRouteLen), ev.LegacyStatus, clip(ev.LegacyCode, maxCodeLen)}).add(&ev, i)
	}
	b.addNoise(&ev)
	b.addAnswer(&ev)
	s := r.settings.Load()
	if ev.Unmapped {
		b.ShadowUnmapped++
		var sample func() string
		if ev.UnmappedSample != "" {
			sample = func() string { return ev.UnmappedSample }
		}
		r.countUnmapped(cs, b, s, ev.LegacyStatus, ev.LegacyBodyCode, now, sample)
	}
	if ev.Sample != nil && s.Samples {
		// The sample names its group as the group is kept: clipped.
		smp := *ev.Sample
		smp.Route, smp.LegacyCode = clip(smp.Route, maxRouteLen), clip(smp.LegacyCode, maxCodeLen)
		if cs.keepMismatch(r.replica, &smp) {
			cs.ownDirty = true
		}
	}
}
