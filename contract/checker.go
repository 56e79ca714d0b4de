package contract

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/routes"
	"github.com/envelope-proxy/envelope-proxy/sampling"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// The checks' bounds.
const (
	// maxSample bounds a violation's sample body.
	maxSample = 2 << 10
	// maxKeptBody is the largest body buffer a pooled job keeps for the
	// next check; a larger one is let go after its check.
	maxKeptBody = 64 << 10
	// checkTimeout bounds one check, so that a pathological document
	// cannot hold a worker for long.
	checkTimeout = 5 * time.Second
)

// Settings are what the checks take from one config. They follow reloads
// through Swap.
type Settings struct {
	// Document is the contract: the built-in one, or the document
	// contract.openapi names.
	Document *Document
	// Sample is contract.sample: the share of keys whose envelopes are
	// checked.
	Sample float64
	// MaxInFlight is contract.max_in_flight: the checks waiting or
	// running at once; beyond it envelopes are skipped and counted.
	MaxInFlight int
	// Routes are shadow.routes, which name a request's route when no
	// operation of the document describes it.
	Routes []string
	// KeyHeader is routing.header, whose values are scrubbed from
	// samples with the other credentials.
	KeyHeader string
	// Samples is dashboard.samples, and Redact dashboard.redact, masked
	// in a violation's sample before it is kept.
	Samples bool
	Redact  redact.Paths
}

// Options are the Checker's collaborators.
type Options struct {
	// Logger receives the checks' logs; nil logs nothing.
	Logger *zap.Logger
	// Registerer receives the Prometheus counters; nil registers them on
	// a private registry.
	Registerer prometheus.Registerer
	// Recorder receives every check for the migration dashboard; nil
	// records nothing.
	Recorder Recorder
	// Workers is the number of goroutines that run the checks; 0 is half
	// the CPUs (at least one), so that at saturation the checks never
	// take more than half the machine from the request path: the queue
	// fills and envelopes are skipped instead.
	Workers int
}

// Recorder is what the checks need of the migration dashboard's evidence:
// one call per envelope checked or skipped, which never blocks on storage
// and keeps nothing of the event but counts and the sample. Nothing flows
// back.
type Recorder interface {
	RecordContractCheck(c *event.ContractCheck)
}

// Checker holds envelopes to the contract off the request path: Submit
// copies an envelope into a pooled job and queues it for a worker, or
// skips it, counted, when max_in_flight are already queued or running; the
// client never waits. Check runs one at once, for callers already off the
// request path. It is safe for concurrent use.
type Checker struct {
	logger   *zap.Logger
	recorder Recorder
	metrics  *metrics
	cur      atomic.Pointer[compiled]

	// queue holds the jobs admitted, up to the largest max_in_flight, so
	// that a reload may raise it.
	queue    chan *job
	jobs     sync.Pool
	events   sync.Pool // *event.ContractCheck
	inflight atomic.Int64
	closed   atomic.Bool
	stop     chan struct{}
	workers  sync.WaitGroup
}

// compiled is the checks' view of one Settings.
type compiled struct {
	doc         *Document
	sample      sampling.Share
	maxInFlight int64
	routes      *routes.Templates
	keyHeader   string
	samples     bool
	redact      redact.Paths
	// memo remembers the findings of this document's conforming
	// envelopes.
	memo *memo
}

// job is one queued check: the envelope, with its body copied into the
// job's own buffer, and the settings it was admitted under.
type job struct {
	e    event.Envelope
	body []byte
	s    *compiled
}

// NewChecker starts the checks with settings s.
func NewChecker(s Settings, opts Options) *Checker {
	c := newChecker(s, opts)
	workers := opts.Workers
	if workers <= 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/2)
	}
	c.start(workers)
	return c
}

// newChecker builds a Checker with no worker yet.
func newChecker(s Settings, opts Options) *Checker {
	c := &Checker{
		logger:   opts.Logger,
		recorder: opts.Recorder,
		queue:    make(chan *job, config.MaxContractInFlight),
		stop:     make(chan struct{}),
	}
	if c.logger == nil {
		c.logger = zap.NewNop()
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		c.logger.Error("contract metrics not registered; they are kept unexported", zap.Error(err))
		m, _ = newMetrics(prometheus.NewRegistry())
	}
	c.metrics = m
	c.jobs.New = func() any { return new(job) }
	c.events.New = func() any { return new(event.ContractCheck) }
	c.Swap(s)
	return c
}

// start runs n workers, each taking jobs from the queue until Close.
func (c *Checker) start(n int) {
	c.workers.Add(n)
	for range n {
		go c.work(c.run)
	}
}

// Swap puts new settings in force. Checks already queued run with the
// settings they were admitted under; a smaller max_in_flight applies to
// the next Submit.
func (c *Checker) Swap(in Settings) {
	s := &compiled{
		doc:         in.Document,
		sample:      sampling.NewShare(in.Sample),
		maxInFlight: int64(min(in.MaxInFlight, config.MaxContractInFlight)),
		routes:      routes.New(in.Routes),
		keyHeader:   in.KeyHeader,
		samples:     in.Samples,
		redact:      in.Redact,
	}
	if s.maxInFlight <= 0 {
		s.maxInFlight = config.DefaultContractMaxInFlight
	}
	if s.doc == nil {
		doc, err := Builtin()
		if err != nil {
			c.logger.Error("the built-in contract does not load; envelopes are not checked", zap.Error(err))
			s.sample = sampling.Share{}
		}
		s.doc = doc
	}
	s.memo = newMemo(s.doc)
	c.cur.Store(s)
}

// Document is the contract in force.
func (c *Checker) Document() *Document { return c.cur.Load().doc }

// Submit queues e to be checked, unless its key is outside the sample. It
// never blocks: when max_in_flight checks are queued or running, or the
// Checker is closed, e is skipped and counted as busy. It copies e's body
// and keeps a reference to its header, which must not change afterwards;
// once the pool of jobs is warm it allocates nothing. An envelope the memo
// knows conforms is counted at once, without a check. A large wrapped
// success held to a contract that leaves data free is checked as its
// stand-in (standIn), which is neither copied nor decoded whole.
func (c *Checker) Submit(e *event.Envelope) {
	s, ok := c.admit(e)
	if !ok {
		return
	}
	if b, ok := standIn(s.doc, e); ok {
		sub := *e
		sub.Body = b
		e = &sub
	}
	if f, ok := s.memo.lookup(e); ok {
		c.report(s, e, &f)
		return
	}
	if c.inflight.Add(1) > s.maxInFlight || c.closed.Load() {
		c.release()
		c.skip(e, event.SkipBusy)
		return
	}
	j := c.jobs.Get().(*job)
	j.e, j.s = *e, s
	j.body = append(j.body[:0], e.Body...)
	j.e.Body = j.body
	select {
	case c.queue <- j:
	default:
		c.put(j)
		c.release()
		c.skip(e, event.SkipBusy)
	}
}

// Check holds e to the contract now, on the caller's goroutine, unless
// its key is outside the sample: for the shadow comparison's dry runs,
// which are off the request path and bounded already.
func (c *Checker) Check(e *event.Envelope) {
	if s, ok := c.admit(e); ok {
		c.check(s, e)
	}
}

// admit returns the settings in force and whether e is to be checked: its
// key is in the sample, and it was not streamed (which is counted).
func (c *Checker) admit(e *event.Envelope) (*compiled, bool) {
	s := c.cur.Load()
	if !s.sample.Includes(e.KeyHash) {
		return nil, false
	}
	if e.Streamed {
		c.skip(e, event.SkipTooLarge)
		return nil, false
	}
	return s, true
}

// work hands queued jobs to run until Close.
func (c *Checker) work(run func(*job)) {
	defer c.workers.Done()
	for {
		select {
		case j := <-c.queue:
			run(j)
		case <-c.stop:
			return
		}
	}
}

// run checks one queued envelope and lets its job go. A panic (a bug in
// the validator, never an input: bodies are data) is logged, and the
// check is lost rather than the proxy.
func (c *Checker) run(j *job) {
	defer func() {
		if p := recover(); p != nil {
			c.logger.Error("contract check failed", zap.String("client", j.e.Client), zap.Any("panic", p))
		}
		c.put(j)
		c.release()
	}()
	c.check(j.s, &j.e)
}

// put returns j to the pool, keeping its buffer unless it grew large.
func (c *Checker) put(j *job) {
	body := j.body[:0]
	if cap(body) > maxKeptBody {
		body = nil
	}
	*j = job{body: body}
	c.jobs.Put(j)
}

func (c *Checker) release() { c.inflight.Add(-1) }

// check holds e to s's document, unless the memo knows the finding, and
// hands the result on.
func (c *Checker) check(s *compiled, e *event.Envelope) {
	f, ok := s.memo.lookup(e)
	if !ok {
		f = checkNow(s, e)
		s.memo.remember(e, f)
	}
	c.report(s, e, &f)
}

// checkNow holds e to s's document, within checkTimeout.
func checkNow(s *compiled, e *event.Envelope) Finding {
	ctx, cancel := context.WithTimeout(context.Background(), checkTimeout)
	defer cancel()
	return s.doc.Check(ctx, Envelope{Method: e.Method, Path: e.Path, Status: e.Status, Body: e.Body, Fields: e.Fields})
}

// report counts and records the finding f of e. The event is pooled: the
// recorder keeps nothing of it, and on the request path (a remembered
// envelope) it would otherwise be an allocation per request.
func (c *Checker) report(s *compiled, e *event.Envelope, f *Finding) {
	route := s.memo.route(e.Method, e.Path, f.Operation, func() string {
		route := f.Operation
		if route == "" {
			route = s.routes.Name(e.Path)
		}
		return e.Method + " " + route
	})
	ev := c.events.Get().(*event.ContractCheck)
	defer c.events.Put(ev)
	*ev = event.ContractCheck{
		Client:    e.Client,
		Source:    e.Source,
		Route:     route,
		Status:    e.Status,
		Code:      e.Code,
		Reason:    f.Reason,
		Extension: f.Extension,
		Time:      time.Now(),
	}
	if ev.Violation() && s.samples {
		ev.Sample, ev.Detail = sample(s, e, f)
	}
	c.metrics.count(ev)
	if ev.Violation() {
		if ce := c.logger.Check(zap.DebugLevel, "contract violation"); ce != nil {
			ce.Write(zap.String("client", ev.Client), zap.String("route", ev.Route), zap.Int("status", ev.Status), zap.String("reason", ev.Reason), zap.String("detail", ev.Detail))
		}
	}
	if c.recorder != nil {
		c.recorder.RecordContractCheck(ev)
	}
}

// skip counts an envelope that was not checked.
func (c *Checker) skip(e *event.Envelope, why event.Skip) {
	ev := event.ContractCheck{Client: e.Client, Source: e.Source, Status: e.Status, Code: e.Code, Skipped: why, Time: time.Now()}
	c.metrics.count(&ev)
	if c.recorder != nil {
		c.recorder.RecordContractCheck(&ev)
	}
}

// sample is a violation's envelope and the validator's reason as they may
// be kept: the request's credentials scrubbed from both, the
// dashboard.redact paths masked in the envelope, and the reason withheld
// when it is about a value those paths mask (it may quote it); the
// envelope is cut to maxSample bytes.
func sample(s *compiled, e *event.Envelope, f *Finding) (body, detail string) {
	secrets := redact.Credentials(s.keyHeader, e.Header)
	masked, _ := s.redact.Envelope(secrets.Bytes(e.Body))
	body, cut := transform.CutString(string(masked), maxSample)
	if cut {
		body += "…"
	}
	detail = secrets.String(f.Detail)
	if f.Pointer != "" && s.redact.Touches(f.Pointer) {
		detail = "at " + f.Pointer + ": [withheld: dashboard.redact covers this value]"
	}
	return body, detail
}

// Close stops taking envelopes, lets the queued checks finish, and stops
// the workers.
func (c *Checker) Close() {
	if c.closed.Swap(true) {
		return
	}
	// The queued checks are quick; a check stuck past its own timeout
	// is not waited for.
	deadline := time.Now().Add(checkTimeout + time.Second)
	for c.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(c.stop)
	c.workers.Wait()
}
