package shadow

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Options are the Comparator's collaborators.
type Options struct {
	// Logger receives the comparison's logs; nil logs nothing.
	Logger *zap.Logger
	// Registerer receives the Prometheus counters; nil registers them on
	// a private registry.
	Registerer prometheus.Registerer
	// Codecs decode compressed bodies; nil uses a new set.
	Codecs *codec.Set
	// Recorder receives every outcome for the migration dashboard; nil
	// records nothing.
	Recorder Recorder
	// Contract holds every dry run's envelope to the new API's contract;
	// nil checks nothing.
	Contract ContractChecker
}

// Recorder is what the comparison needs of the migration dashboard's
// evidence: one call per outcome that never blocks on storage. Nothing
// flows back.
type Recorder interface {
	RecordComparison(ev event.Comparison)
}

// Comparator runs the shadow comparison: it admits shadow-mode requests on
// the request path, and compares the exchanges it is handed on goroutines
// of its own, at most max_in_flight at once, counting every outcome and
// handing it to the evidence, which keeps the report. It is safe for
// concurrent use.
type Comparator struct {
	logger   *zap.Logger
	codecs   *codec.Set
	recorder Recorder
	contract ContractChecker
	metrics  *metrics
	clients  *clientTable
	// transformer has the built-in rules only, for exchanges handed over
	// without the rule set they were served with.
	transformer *transform.Transformer

	// cur is the settings in force, replaced whole by Swap.
	cur    atomic.Pointer[compiled]
	swapMu sync.Mutex

	// inflight counts the running comparisons; it is both the
	// max_in_flight semaphore (so a smaller limit applies at once) and
	// what Close waits on.
	inflight atomic.Int64
	closed   atomic.Bool
	// idle is signalled when inflight drops to zero after Close began.
	idle chan struct{}

	// ctx is every candidate request's parent: independent of the
	// clients' requests, canceled only when Close gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc
}

// New builds a Comparator with settings s. It never fails: a counter that
// cannot be registered or a candidate URL that cannot be used is logged,
// and the comparison runs without it.
func New(s Settings, opts Options) *Comparator {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	codecs := opts.Codecs
	if codecs == nil {
		codecs = new(codec.Set)
	}
	m, err := newMetrics(reg)
	if err != nil {
		logger.Error("shadow metrics not registered; they are kept unexported", zap.Error(err))
		m, _ = newMetrics(prometheus.NewRegistry())
	}
	t, err := transform.New(nil)
	if err != nil {
		logger.Error("building the built-in rules", zap.Error(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Comparator{
		logger:      logger,
		codecs:      codecs,
		recorder:    opts.Recorder,
		contract:    opts.Contract,
		metrics:     m,
		clients:     newClientTable(m.total),
		transformer: t,
		idle:        make(chan struct{}, 1),
		ctx:         ctx,
		cancel:      cancel,
	}
	c.Swap(s)
	return c
}

// Swap puts new settings in force: sample, methods, ignore,
// compare_messages, max_in_flight, the size limits, routes and the
// candidate. Comparisons already running finish with the settings they
// started with; a smaller max_in_flight applies to the next Submit.
func (c *Comparator) Swap(in Settings) {
	c.swapMu.Lock()
	defer c.swapMu.Unlock()
	old := c.cur.Load()
	s, replaced, invalid, err := compile(in, old)
	for _, p := range invalid {
		c.logger.Warn("shadow.ignore entry is not a JSON Pointer; left out", zap.String("pointer", p))
	}
	if err != nil {
		c.logger.Error("candidate not usable; shadow mode runs dry runs only", zap.Error(err))
	}
	c.cur.Store(s)
	if replaced != nil && replaced != s.candidate {
		replaced.close()
	}
}

// Admit reports whether a shadow-mode request should be captured at all:
// its key is sampled and its method is mirrored. A sampled request with a
// method that is not mirrored (CONNECT never is) is counted as
// skipped_method here; a key outside the sample is not part of the
// comparison and is not counted. It runs on the request path: atomic loads
// only, no allocation once the client has been seen.
func (c *Comparator) Admit(client, method string, keyHash uint64) bool {
	s := c.cur.Load()
	if !s.sample.Includes(keyHash) {
		return false
	}
	if method == http.MethodConnect || !s.mirrors(method) {
		c.count(c.clients.get(client), event.OutcomeSkippedMethod)
		return false
	}
	return true
}

// Submit hands over a captured exchange, which the Comparator owns from
// then on. It never blocks: when max_in_flight comparisons are running,
// or the Comparator is closed, the exchange is counted as dropped. The
// comparison runs on its own goroutine.
func (c *Comparator) Submit(ex *event.Capture) {
	if ex == nil {
		return
	}
	s := c.cur.Load()
	cs := c.clients.get(ex.Client)
	if ex.Method == http.MethodConnect || ex.Header.Get("Upgrade") != "" || !s.mirrors(ex.Method) {
		// The proxy never captures CONNECT or protocol upgrades; they are
		// refused here too, since replaying either would open a tunnel.
		c.count(cs, event.OutcomeSkippedMethod)
		return
	}
	if c.inflight.Add(1) > s.maxInFlight || c.closed.Load() {
		c.release()
		c.count(cs, event.OutcomeDropped)
		return
	}
	go c.run(s, cs, ex)
}

// release ends one comparison's hold on the semaphore, and wakes Close
// when it was the last.
func (c *Comparator) release() {
	if c.inflight.Add(-1) == 0 && c.closed.Load() {
		select {
		case c.idle <- struct{}{}:
		default:
		}
	}
}

// Close stops accepting exchanges and waits for the running comparisons.
// The wait is bounded: past candidate.timeout (plus a second), requests
// still waiting on the candidate are canceled, and end as candidate_error.
func (c *Comparator) Close() {
	c.closed.Store(true)
	s := c.cur.Load()
	timer := time.NewTimer(s.candidateTimeout + time.Second)
	defer timer.Stop()
	deadline := timer.C
	for c.inflight.Load() > 0 {
		select {
		case <-c.idle:
		case <-deadline:
			c.cancel()
			deadline = nil
		}
	}
	c.cancel()
	if s.candidate != nil {
		s.candidate.close()
	}
}

// comparison is how one comparison ended.
type comparison struct {
	outcome event.Outcome
	// dry is the dry run, nil when it could not run (no legacy body).
	dry *dryRun
	// cand is the candidate's answer, nil when there was none.
	cand *candidateResponse
	diff diffResult
}

// run compares one exchange and records it. A panic (a bug, never an
// input: bodies are untrusted and handled as data) is logged and recorded
// as candidate_error rather than taking the proxy down.
func (c *Comparator) run(s *compiled, cs *clientStats, ex *event.Capture) {
	defer c.release()
	recorded := false
	defer func() {
		if p := recover(); p != nil {
			msg, _ := transform.CutString(fmt.Sprint(p), 200)
			c.logger.Error("shadow comparison failed", zap.String("client", cs.name), zap.String("panic", msg))
			if !recorded {
				c.count(cs, event.OutcomeCandidateError)
			}
		}
	}()
	r := c.compare(s, ex)
	recorded = true
	c.record(s, cs, ex, &r)
}

// compare runs the dry run and, with a candidate, the replay and the diff.
func (c *Comparator) compare(s *compiled, ex *event.Capture) comparison {
	if ex.UpstreamError != "" {
		return comparison{outcome: event.OutcomeUpstreamError}
	}
	if ex.LegacyTruncated {
		return comparison{outcome: event.OutcomeSkippedTooLarge}
	}
	dry := c.dryRun(s, ex)
	r := comparison{dry: &dry}
	if s.candidate == nil {
		r.outcome = event.OutcomeDryRun
		return r
	}
	if ex.BodyTruncated || int64(len(ex.Body)) > s.maxRequestBytes {
		r.outcome = event.OutcomeSkippedTooLarge
		return r
	}
	resp, failed, err := s.candidate.replay(c.ctx, ex, c.codecs, s.maxBodyBytes)
	if failed != "" {
		if err != nil {
			if ce := c.logger.Check(zap.DebugLevel, "shadow candidate failed"); ce != nil {
				ce.Write(zap.String("client", ex.Client), zap.String("outcome", string(failed)), zap.Error(err))
			}
		}
		r.outcome = failed
		return r
	}
	r.cand = &resp
	r.diff = s.diff.compare(dry.body, resp.body)
	switch {
	case resp.status != dry.status, len(r.diff.ops) > 0:
		r.outcome = event.OutcomeMismatch
	case r.diff.ignored:
		r.outcome = event.OutcomeIgnored
	default:
		r.outcome = event.OutcomeMatch
	}
	return r
}

// record counts the comparison in the client's counters and hands it to
// the evidence, which keeps the report: by route, legacy status and code,
// with what differed and a sample of each mismatch, all redacted.
func (c *Comparator) record(s *compiled, cs *clientStats, ex *event.Capture, r *comparison) {
	cs.count(r.outcome)
	ev := event.Comparison{
		Client:        cs.name,
		Outcome:       r.outcome,
		Route:         ex.Method + " " + s.routes.Name(ex.Path),
		LegacyStatus:  ex.LegacyStatus,
		LegacyLatency: ex.LegacyLatency,
	}
	if d := r.dry; d != nil {
		ev.LegacyCode, ev.Rule, ev.EnvelopeStatus, ev.LegacyNotJSON = d.outcome.LegacyCode, d.outcome.Rule, d.status, d.legacyNotJSON
		if d.outcome.Unmapped {
			c.metrics.unmapped.WithLabelValues(cs.name).Inc()
			rd := newRedactor(s.keyHeader, ex.Header)
			ev.Unmapped = true
			ev.UnmappedCode = rd.text(transform.LegacyCode(d.legacy))
			ev.UnmappedSample = unmappedSample(s, rd, d.legacy)
		}
		if d.status != ex.LegacyStatus {
			c.metrics.statusChanges.WithLabelValues(statusLabel(ex.LegacyStatus), statusLabel(d.status)).Inc()
		}
		c.checkContract(cs.name, ex, d)
	}
	if r.cand != nil {
		ev.CandidateStatus, ev.CandidateLatency = r.cand.status, r.cand.latency
		if r.dry != nil && r.cand.status != r.dry.status {
			c.metrics.candidateStatus.WithLabelValues(statusLabel(r.dry.status), statusLabel(r.cand.status)).Inc()
		}
	}
	for _, op := range r.diff.ops {
		if len(ev.Paths) == maxPaths {
			break
		}
		if p := collapsePointer(op.Path); !containsString(ev.Paths, p) {
			ev.Paths = append(ev.Paths, p)
		}
	}
	if r.outcome == event.OutcomeMismatch {
		ev.Sample = newSample(s, ex, r, ev.Route)
		if ce := c.logger.Check(zap.DebugLevel, "shadow mismatch"); ce != nil {
			ce.Write(zap.String("client", cs.name), zap.String("route", ev.Route),
				zap.Int("envelope_status", r.dry.status), zap.Int("candidate_status", r.cand.status), zap.Int("diff_ops", len(r.diff.ops)))
		}
	}
	if c.recorder != nil {
		c.recorder.RecordComparison(ev)
	}
}

// count counts an outcome decided before the exchange had a route or a
// status (skipped_method, dropped, a failed comparison).
func (c *Comparator) count(cs *clientStats, o event.Outcome) {
	cs.count(o)
	if c.recorder != nil {
		c.recorder.RecordComparison(event.Comparison{Client: cs.name, Outcome: o})
	}
}

// CandidateConfigured reports whether a candidate is configured now:
// without one, exchanges end as dry_run.
func (c *Comparator) CandidateConfigured() bool { return c.cur.Load().candidate != nil }
