package shadow

import (
	"context"
	"fmt"
	"math/rand/v2"
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
	// Noise tells the candidate's noise learned on a route, which
	// shadow.learn_ignores applies to the comparison; nil learns nothing
	// back.
	Noise NoiseSource
}

// NoiseSource is what the comparison needs of the evidence to apply the
// candidate's learned noise: the JSON Pointers learned on a route, over the
// whole fleet. It is read off the request path, once per comparison.
type NoiseSource interface {
	LearnedIgnores(route string) []string
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
	noise    NoiseSource
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
		noise:       opts.Noise,
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

// Admit reports whether a shadow-mode request is captured at all (its key
// is in the sample: every method is dry-run), and whether it may be
// replayed to the candidate, which is when its body is worth capturing. A
// key outside the sample is not part of the comparison and is not counted.
// It runs on the request path: one atomic load and a few comparisons, no
// allocation.
func (c *Comparator) Admit(client, method, path string, keyHash uint64) (admitted, replayable bool) {
	s := c.cur.Load()
	if !s.sample.Includes(keyHash) || method == http.MethodConnect {
		return false, false
	}
	return true, s.replays(method, path)
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
	if ex.Method == http.MethodConnect || ex.Header.Get("Upgrade") != "" {
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
	// noiseChecked reports a second replay made to learn the candidate's
	// noise, and noise the collapsed pointers its two answers differed
	// at.
	noiseChecked bool
	noise        []string
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
	route := routeName(s, ex)
	r := c.compare(s, ex, route)
	recorded = true
	c.record(s, cs, ex, route, &r)
}

// compare runs the dry run and, with a candidate, the replay and the diff.
func (c *Comparator) compare(s *compiled, ex *event.Capture, route string) comparison {
	if ex.UpstreamError != "" {
		return comparison{outcome: event.OutcomeUpstreamError}
	}
	if ex.LegacyTruncated {
		return comparison{outcome: event.OutcomeSkippedTooLarge}
	}
	dry := c.dryRun(s, ex)
	r := comparison{dry: &dry}
	switch {
	case s.candidate == nil:
		r.outcome = event.OutcomeDryRun
		return r
	case ex.BodyNotCaptured || !s.replays(ex.Method, ex.Path):
		// Dry-run, and not replayed: a write on no shadow.replay route, or
		// one that was on none when the proxy admitted it.
		r.outcome = event.OutcomeSkippedMethod
		return r
	case ex.BodyTruncated || int64(len(ex.Body)) > s.maxRequestBytes:
		r.outcome = event.OutcomeSkippedTooLarge
		return r
	}
	resp, failed := c.replay(s, ex)
	if failed != "" {
		r.outcome = failed
		return r
	}
	r.cand = &resp
	if safeMethod(ex.Method) && s.learnSample > 0 && rand.Float64() < s.learnSample {
		// The same request again: what differs between the two answers is
		// the candidate's noise, not the migration's.
		if again, failed := c.replay(s, ex); failed == "" {
			r.noiseChecked = true
			if again.status == resp.status {
				r.noise = s.diff.noise(resp.body, again.body)
			}
		}
	}
	var learned []string
	if s.learnIgnores && c.noise != nil {
		learned = c.noise.LearnedIgnores(route)
	}
	r.diff = s.diff.compare(dry.body, resp.body, learned)
	switch {
	case resp.status != dry.status, len(r.diff.ops) > 0:
		r.outcome = event.OutcomeMismatch
	case r.diff.learned:
		r.outcome = event.OutcomeIgnoredLearned
	case r.diff.ignored:
		r.outcome = event.OutcomeIgnored
	default:
		r.outcome = event.OutcomeMatch
	}
	return r
}

// replay sends ex to the candidate, logging a failure at debug level.
func (c *Comparator) replay(s *compiled, ex *event.Capture) (candidateResponse, event.Outcome) {
	resp, failed, err := s.candidate.replay(c.ctx, ex, c.codecs, s.maxBodyBytes, s.candidateHeaders)
	if failed != "" && err != nil {
		if ce := c.logger.Check(zap.DebugLevel, "shadow candidate failed"); ce != nil {
			ce.Write(zap.String("client", ex.Client), zap.String("outcome", string(failed)), zap.Error(err))
		}
	}
	return resp, failed
}

// routeName is the exchange's route: its method and route template.
func routeName(s *compiled, ex *event.Capture) string {
	return ex.Method + " " + s.routes.Name(ex.Path)
}

// safeMethod reports the methods RFC 9110 calls safe: replaying one twice
// changes nothing.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// record counts the comparison in the client's counters and hands it to
// the evidence, which keeps the report: by route, legacy status and code,
// with what differed and a sample of each mismatch, all redacted.
func (c *Comparator) record(s *compiled, cs *clientStats, ex *event.Capture, route string, r *comparison) {
	cs.count(r.outcome)
	ev := event.Comparison{
		Client:        cs.name,
		Outcome:       r.outcome,
		Route:         route,
		LegacyStatus:  ex.LegacyStatus,
		LegacyLatency: ex.LegacyLatency,
		NoiseChecked:  r.noiseChecked,
		Noise:         r.noise,
	}
	if d := r.dry; d != nil {
		ev.LegacyCode, ev.Rule, ev.EnvelopeStatus, ev.LegacyNotJSON = d.outcome.LegacyCode, d.outcome.Rule, d.status, d.legacyNotJSON
		if d.outcome.Action == transform.Rewrite {
			ev.EnvelopeCode = d.outcome.Code
		}
		if ex.LegacyStatus >= 400 {
			rd := newRedactor(s.keyHeader, ex.Header, s.candidateSecrets)
			ev.LegacyBodyCode = rd.text(transform.LegacyCode(d.legacy))
			if d.outcome.Unmapped {
				c.metrics.unmapped.WithLabelValues(cs.name).Inc()
				ev.Unmapped = true
				ev.UnmappedSample = unmappedSample(s, rd, d.legacy)
			}
		}
		if d.status != ex.LegacyStatus {
			c.metrics.statusChanges.WithLabelValues(statusLabel(ex.LegacyStatus), statusLabel(d.status)).Inc()
		}
		c.checkContract(cs.name, ex, d)
	}
	if r.cand != nil {
		ev.CandidateStatus, ev.CandidateLatency = r.cand.status, r.cand.latency
		ev.CandidateCode = envelopeCode(r.cand.body)
		if r.dry != nil && r.cand.status != r.dry.status {
			c.metrics.candidateStatus.WithLabelValues(statusLabel(r.dry.status), statusLabel(r.cand.status)).Inc()
		}
	}
	ev.Paths = collapsedPaths(r.diff.ops)
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
