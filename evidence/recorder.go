// Package evidence gathers, per client, what the migration dashboard shows:
// requests by status class, what the rewrite did, the rules' blind spots,
// the latency the proxy added, and the shadow comparison's outcomes, in
// one-minute buckets rolled up into hours, with a few redacted samples.
//
// The proxy and the shadow comparison feed a Recorder; nothing here calls
// back into them. Recording takes one short per-client lock and allocates
// nothing on the request path once a client's minute is open. A background
// loop writes the changed buckets to the store (package store) in one
// transaction every few seconds, rolls minutes into hours, and enforces
// the window, the retention and the size cap. When the store cannot be
// opened or written, evidence stays in memory and requests never notice.
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
	minute = 60
	hour   = 3600
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
	// DefaultFlushInterval is how often changes are written to the store.
	DefaultFlushInterval = 5 * time.Second
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
}

// Options are the Recorder's collaborators, and the settings read once,
// when it is built.
type Options struct {
	// StateDir is the directory of the SQLite store; "" keeps evidence in
	// memory only.
	StateDir string
	// MaxStateBytes caps the store's file (readiness.max_state_bytes); 0
	// is no cap.
	MaxStateBytes int64
	// Logger receives the store's problems; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// FlushInterval is how often changes are written; 0 is the default.
	FlushInterval time.Duration
}

// Recorder holds the evidence. It is safe for concurrent use.
type Recorder struct {
	logger   *zap.Logger
	now      func() time.Time
	settings atomic.Pointer[settings]
	clients  atomic.Pointer[map[string]*clientState]
	addMu    sync.Mutex

	// store is nil when evidence is in memory only; stateErr says why.
	// persisting mirrors store != nil for readers that must not wait on
	// a write in progress.
	store      *store.Store
	storeMu    sync.Mutex
	persisting atomic.Bool
	stateErr   atomic.Pointer[string]
	since      atomic.Int64
	// clearSamples asks the next write to delete the stored samples:
	// samples were turned off, or the redaction changed.
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
}

// window is readiness.window.
func (s *settings) window() time.Duration { return s.Thresholds.Window }

// hourOf returns the start of the hour holding t (Unix seconds).
func hourOf(t int64) int64 { return t - t%hour }

type row struct {
	name, kind, mode string
}

// clientState is one client's evidence.
type clientState struct {
	name string
	mu   sync.Mutex
	// cur is the open minute, also the last of minutes.
	cur     *bucket
	minutes []*bucket
	hours   []*bucket
	// rolled are the minute ranges rolled into hours, whose rows the next
	// write deletes.
	rolled []store.Range
	// unmappedSamples keep one sample per unmapped code; mismatches the
	// recent mismatches, oldest first.
	unmappedSamples map[unmappedKey]*unmappedSample
	mismatches      []*event.Sample
	samplesDirty    bool
}

type unmappedSample struct {
	body string
	time time.Time
}

// New builds a Recorder with settings s and opens its store at
// opts.StateDir. A store that cannot be opened is logged and the Recorder
// runs in memory. Close stops its background loop.
func New(s Settings, opts Options) *Recorder {
	r := &Recorder{
		logger: opts.Logger,
		now:    opts.Now,
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if r.logger == nil {
		r.logger = zap.NewNop()
	}
	if r.now == nil {
		r.now = time.Now
	}
	empty := map[string]*clientState{}
	r.clients.Store(&empty)
	r.Swap(s)
	r.since.Store(r.now().Unix())
	r.open(opts.StateDir, opts.MaxStateBytes)
	interval := opts.FlushInterval
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	go r.loop(interval)
	return r
}

// open opens the store and loads the evidence of the window from it.
func (r *Recorder) open(dir string, maxBytes int64) {
	if dir == "" {
		r.setStateErr("state_dir is empty: evidence is kept in memory only and lost on restart")
		r.logger.Info("dashboard evidence kept in memory only (state_dir is empty)")
		return
	}
	st, err := store.Open(dir, store.Options{MaxBytes: maxBytes})
	if err != nil {
		r.setStateErr("the store could not be opened, evidence is kept in memory only: " + err.Error())
		r.logger.Error("dashboard evidence kept in memory only", zap.Error(err))
		return
	}
	r.store = st
	r.persisting.Store(true)
	if err := r.load(r.settings.Load().window()); err != nil {
		r.logger.Error("loading dashboard evidence; starting from what could be read", zap.Error(err))
	}
	r.logger.Info("dashboard evidence stored", zap.String("path", st.Path()))
}

func (r *Recorder) setStateErr(s string) {
	if s == "" {
		r.stateErr.Store(nil)
		return
	}
	r.stateErr.Store(&s)
}

// Swap puts new settings in force. A longer window loads the older
// evidence from the store; the store's directory and size cap are read
// once, at New.
func (r *Recorder) Swap(in Settings) {
	s := &settings{Settings: in}
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
		// Memory holds the hours from the old window's first on.
		held := hourOf(r.now().Add(-old.window()).Unix())
		if err := r.loadRange(r.now().Add(-s.window()), time.Unix(held, 0)); err != nil {
			r.logger.Error("loading older dashboard evidence for the longer window", zap.Error(err))
		}
	}
}

// dropSamples forgets every sample, in memory and (at the next write) in
// the store.
func (r *Recorder) dropSamples() {
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		cs.unmappedSamples, cs.mismatches, cs.samplesDirty = nil, nil, false
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

// bucketFor returns the bucket of the minute holding t; the caller holds
// cs.mu.
func (cs *clientState) bucketFor(t int64) *bucket {
	start := t - t%minute
	if b := cs.cur; b != nil && b.start == start {
		return b
	}
	// A clock that stepped back lands in an existing minute.
	for i := len(cs.minutes) - 1; i >= 0; i-- {
		if cs.minutes[i].start == start {
			return cs.minutes[i]
		}
	}
	b := newBucket(start, minute)
	cs.minutes = append(cs.minutes, b)
	sortBuckets(cs.minutes)
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
	b := cs.bucketFor(now.Unix())
	b.dirty = true
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
		cs.countUnmapped(b, s, ev.LegacyStatus, ev.UnmappedCode, now, func() string {
			return sampleText(s.Redact, ev.UnmappedBody, ev.UnmappedTruncated, maxUnmappedSample)
		})
	}
	cs.mu.Unlock()
}

// countUnmapped tallies an unmapped error by legacy status and code in b
// and, with samples on and a sample to take, keeps one for the code; the
// caller holds cs.mu.
func (cs *clientState) countUnmapped(b *bucket, s *settings, status int, code string, now time.Time, sample func() string) {
	k := unmappedKey{status, clip(code, maxCodeLen)}
	bump(&b.unmapped, k, unmappedKey{Code: otherKey}, maxUnmappedKeys, 1)
	if s.Samples && sample != nil {
		cs.keepUnmapped(k, now, sample)
	}
}

// keepUnmapped keeps a sample for k unless a recent one is kept; the
// caller holds cs.mu.
func (cs *clientState) keepUnmapped(k unmappedKey, now time.Time, body func() string) {
	if k.Code == otherKey {
		return
	}
	cur := cs.unmappedSamples[k]
	if cur != nil && now.Sub(cur.time) < unmappedSampleAge {
		return
	}
	if cur == nil && len(cs.unmappedSamples) >= maxUnmappedKeys {
		return
	}
	if cs.unmappedSamples == nil {
		cs.unmappedSamples = make(map[unmappedKey]*unmappedSample)
	}
	cs.unmappedSamples[k] = &unmappedSample{body: body(), time: now}
	cs.samplesDirty = true
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
	b := cs.bucketFor(now.Unix())
	b.dirty = true
	b.Shadow[i]++
	if ev.Route != "" && (i == outcomeMatch || i == outcomeMismatch || i == outcomeIgnored) {
		rc := routeCounts{Compared: 1}
		if i == outcomeMismatch {
			rc.Mismatches = 1
		}
		b.addRoute(ev.Route, rc)
	}
	for _, p := range ev.Paths {
		bump(&b.paths, p, otherKey, maxPathKeys, 1)
	}
	if ev.Unmapped {
		b.ShadowUnmapped++
		var sample func() string
		if ev.UnmappedSample != "" {
			sample = func() string { return ev.UnmappedSample }
		}
		cs.countUnmapped(b, r.settings.Load(), ev.LegacyStatus, ev.UnmappedCode, now, sample)
	}
	if ev.Sample != nil && r.settings.Load().Samples {
		if len(cs.mismatches) == maxMismatchSamples {
			copy(cs.mismatches, cs.mismatches[1:])
			cs.mismatches = cs.mismatches[:maxMismatchSamples-1]
		}
		cs.mismatches = append(cs.mismatches, ev.Sample)
		cs.samplesDirty = true
	}
}
