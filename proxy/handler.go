// Package proxy is envelope-proxy's HTTP side: an httputil.ReverseProxy in
// front of the legacy backend whose ModifyResponse rewrites responses for
// the clients that get the envelope.
//
// A request's mode is decided once, when it arrives, from the config
// snapshot current at that moment; the snapshot (router, rules, transport)
// is immutable and is replaced atomically on reload, so a request in flight
// finishes on the config it started with.
package proxy

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Handler is the client-facing http.Handler.
type Handler struct {
	current   atomic.Pointer[snapshot]
	logger    *zap.Logger
	accessLog *zap.Logger
	metrics   *Metrics
	shadow    Shadower
	evidence  Evidence
	exchanges sync.Pool
	codecs    *codec.Set
	buffers   *bufferPool
	copyBufs  *copyPool
	watchdog  *watchdog
}

// snapshot is everything a request needs from one config, built once per
// load.
type snapshot struct {
	cfg         *config.Config
	router      *Router
	transformer *transform.Transformer
	target      *url.URL
	// transport serves the connections of a server set up by
	// ConfigureServer, whose watchdog enforces the upstream timeout;
	// timedTransport, with ResponseHeaderTimeout, serves any other.
	// Only one of them is ever used by a given server.
	transport        *http.Transport
	timedTransport   *http.Transport
	timeout          time.Duration
	watchdog         *watchdog
	migratedPrefixes []string
	// overrideHeader is the canonical override header, removed before
	// the request goes upstream; "" when overrides are off.
	overrideHeader string
	// vary is the Vary value added to every response ("" for none), and
	// varyValues the same as a header value slice, shared read-only by
	// the responses that had no Vary of their own.
	vary       string
	varyValues []string
	maxBody    int64
	// evidence is set when the dashboard records evidence, samples when
	// it keeps sample bodies, and keyHeader names the header whose value
	// is scrubbed from them.
	evidence  bool
	samples   bool
	keyHeader string
	logger    *zap.Logger
	metrics   *Metrics
	accessLog bool
	codecs    *codec.Set
	buffers   *bufferPool
}

// exchange is the per-request state shared by the hooks of one
// ReverseProxy call. It is pooled.
//
// Each exchange carries its own httputil.ReverseProxy whose hooks are the
// exchange's methods, bound once when the exchange is first made: the hooks
// reach their request's state directly instead of through a context value,
// which would cost a context and a copy of the request per request.
// ReverseProxy keeps no state of its own between calls, so a pooled one is
// as good as a shared one; only Transport changes with the snapshot.
type exchange struct {
	snap           *snapshot
	rp             httputil.ReverseProxy
	decision       Decision
	method         string
	path           string
	rawQuery       string
	start          time.Time
	upstreamStart  time.Time
	upstreamStatus int
	upstreamTime   time.Duration
	// upstreamError is the kind of upstream failure, "" when none.
	upstreamError string
	// wait is the request's upstream deadline on its client connection.
	wait    upstreamWait
	outcome transform.Outcome
	rec     responseRecorder
	// respBody is the rewritten response's body (see body).
	respBody pooledBody
	// copyBufs is the ReverseProxy's BufferPool, told by modifyResponse
	// whether the body is large.
	copyBufs copyBuffers
	// accessFields and keyIDHex hold the access log line while it is
	// written: a variadic slice of 17 fields built per request would be a
	// 1 KiB allocation per request, as zap's Write keeps no reference.
	accessFields [17]zap.Field
	keyIDHex     [2 * len(Decision{}.KeyID)]byte
	// reqBody is the client's request body, nil when it had none. Unlike
	// respBody it is allocated per request: the transport may still read
	// or close it after ServeHTTP has returned and the exchange is reused.
	reqBody *requestBody
	shadow  shadowCapture
	// evidence is the event handed to the dashboard's recorder;
	// unmappedCode is an unmapped error's legacy code and unmappedBody
	// the reused copy of its body.
	evidence          evidence.Event
	unmappedCode      string
	unmappedBody      []byte
	unmappedTruncated bool
}

// body returns the exchange's own pooledBody, set to send (*buf)[off:] and
// to return buf to the snapshot's pool on Close. An exchange carries one
// response, whose body the ReverseProxy closes before ServeHTTP returns, so
// the body needs no allocation of its own.
func (ex *exchange) body(buf *[]byte, off int) *pooledBody {
	ex.respBody = pooledBody{buf: buf, off: off, pool: ex.snap.buffers}
	return &ex.respBody
}

// bytesIn returns how many request body bytes the upstream has read.
func (ex *exchange) bytesIn() int64 {
	if ex.reqBody == nil {
		return 0
	}
	return ex.reqBody.n.Load()
}

// Options are the Handler's collaborators. Nil fields are replaced by
// no-op ones.
type Options struct {
	// Logger receives operational logs.
	Logger *zap.Logger
	// AccessLog receives one line per request when log.access_log is on.
	AccessLog *zap.Logger
	// Metrics are updated for every request.
	Metrics *Metrics
	// Shadow receives shadow-mode exchanges; nil makes shadow mode
	// behave exactly as legacy mode, with no capture.
	Shadow Shadower
	// Evidence receives every finished request for the migration
	// dashboard; nil records nothing.
	Evidence Evidence
}

// New builds a Handler serving cfg, which must be valid.
func New(cfg *config.Config, opts Options) (*Handler, error) {
	logger := opts.Logger
	if logger == nil {
		logger = zap.NewNop()
	}
	accessLog := opts.AccessLog
	if accessLog == nil {
		accessLog = zap.NewNop()
	}
	metrics := opts.Metrics
	if metrics == nil {
		metrics = NewMetrics(prometheus.NewRegistry())
	}
	h := &Handler{
		logger:    logger,
		accessLog: accessLog,
		metrics:   metrics,
		shadow:    opts.Shadow,
		evidence:  opts.Evidence,
		codecs:    &codec.Set{},
		buffers:   newBufferPool(int(cfg.MaxBodyBytes) * 2),
		copyBufs:  &copyPool{},
	}
	h.watchdog = newWatchdog(func() time.Duration { return h.current.Load().timeout })
	errorLog := zap.NewStdLog(logger.Named("reverseproxy"))
	h.exchanges.New = func() any { return h.newExchange(errorLog) }
	if err := h.Swap(cfg); err != nil {
		return nil, err
	}
	return h, nil
}

// Swap makes cfg the config of every request that arrives from now on.
// Requests in flight finish on the snapshot they started with. The old
// transport's idle connections are closed once it is replaced.
func (h *Handler) Swap(cfg *config.Config) error {
	old := h.current.Load()
	s, err := h.build(cfg, old)
	if err != nil {
		return err
	}
	h.current.Store(s)
	h.metrics.setModes(cfg)
	if old != nil && old.transport != s.transport {
		// Give requests still on the old transports time to finish before
		// their idle connections are closed.
		time.AfterFunc(old.cfg.Server.ShutdownTimeout, func() {
			old.transport.CloseIdleConnections()
			old.timedTransport.CloseIdleConnections()
		})
	}
	return nil
}

// Config returns the config now in force.
func (h *Handler) Config() *config.Config { return h.current.Load().cfg }

func (h *Handler) build(cfg *config.Config, old *snapshot) (*snapshot, error) {
	target, err := url.Parse(cfg.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	tr, err := transform.New(cfg.Rules)
	if err != nil {
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	s := &snapshot{
		cfg:              cfg,
		router:           NewRouter(cfg),
		transformer:      tr,
		migratedPrefixes: cfg.MigratedPrefixes,
		maxBody:          cfg.MaxBodyBytes,
		evidence:         h.evidence != nil,
		samples:          cfg.Dashboard.Samples,
		keyHeader:        cfg.Routing.Header,
		logger:           h.logger,
		metrics:          h.metrics,
		accessLog:        cfg.Log.AccessLog,
		codecs:           h.codecs,
		buffers:          h.buffers,
		timeout:          cfg.Upstream.Timeout,
		watchdog:         h.watchdog,
	}
	s.vary = s.router.Vary()
	if s.vary != "" {
		s.varyValues = []string{s.vary}
	}
	if old != nil && old.cfg.Upstream == cfg.Upstream {
		s.transport, s.timedTransport = old.transport, old.timedTransport
	} else {
		s.transport, s.timedTransport = newTransport(&cfg.Upstream, 0), newTransport(&cfg.Upstream, cfg.Upstream.Timeout)
	}
	if cfg.Routing.OverrideHeader != "" {
		s.overrideHeader = http.CanonicalHeaderKey(cfg.Routing.OverrideHeader)
	}
	s.target = target
	return s, nil
}

// newExchange makes a pooled exchange and binds its ReverseProxy's hooks
// to it.
func (h *Handler) newExchange(errorLog *log.Logger) *exchange {
	ex := new(exchange)
	ex.copyBufs.pool = h.copyBufs
	ex.rp = httputil.ReverseProxy{
		Rewrite:        ex.rewrite,
		ModifyResponse: ex.modifyResponse,
		ErrorHandler:   ex.handleError,
		BufferPool:     &ex.copyBufs,
		// No flush timer: responseRecorder flushes every body write, so a
		// passed-through body reaches the client as it arrives.
		// ReverseProxy still flushes at once (head included) for responses
		// of unknown length and event streams. FlushInterval -1 would also
		// push the head of every response ahead of its body, at the cost
		// of a timer per response: about 10% of the throughput on small
		// responses.
		FlushInterval: 0,
		ErrorLog:      errorLog,
	}
	return ex
}

// rewrite is the ReverseProxy's Rewrite: the upstream URL, X-Forwarded-*,
// and the override header removed.
func (ex *exchange) rewrite(pr *httputil.ProxyRequest) {
	s := ex.snap
	pr.SetURL(s.target)
	pr.SetXForwarded()
	if s.overrideHeader != "" {
		pr.Out.Header.Del(s.overrideHeader)
	}
	ex.upstreamStart = time.Now()
	if pr.Out.Body == nil || pr.Out.Body == http.NoBody {
		// A request with a body is armed once the transport has read
		// all of it (requestBody.Read).
		ex.wait.arm(ex.upstreamStart)
	}
	if ex.shadow.active {
		// ReverseProxy has already removed the hop-by-hop headers: what
		// is left is what the candidate gets.
		ex.shadow.reqHeader = pr.Out.Header.Clone()
	}
}

// modifyResponse is the ReverseProxy's ModifyResponse.
func (ex *exchange) modifyResponse(resp *http.Response) error {
	if ex.wait.disarm() {
		// The watchdog cancelled the request just as its response came.
		return errUpstreamTimeout
	}
	err := ex.snap.modifyResponse(resp, ex)
	// A HEAD response has a length but no body to copy.
	ex.copyBufs.large = resp.ContentLength > copyBufferSize && resp.Body != http.NoBody
	return err
}

// handleError is the ReverseProxy's ErrorHandler.
func (ex *exchange) handleError(w http.ResponseWriter, r *http.Request, err error) {
	if ex.wait.disarm() {
		// The watchdog cancelled the connection's context, so the
		// connection cannot serve another request.
		w.Header().Set("Connection", "close")
	}
	ex.snap.errorHandler(w, r, err, ex)
}

// newTransport builds the upstream transport from config, with
// headerTimeout as its ResponseHeaderTimeout (0: none). Compression is
// left to the client and the upstream: the proxy forwards Accept-Encoding
// as it is and decodes only the bodies it rewrites.
func newTransport(u *config.Upstream, headerTimeout time.Duration) *http.Transport {
	d := &net.Dialer{Timeout: u.DialTimeout, KeepAlive: u.KeepAlive}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    u.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           u.MaxIdleConns,
		MaxIdleConnsPerHost:    u.MaxIdleConnsPerHost,
		MaxConnsPerHost:        u.MaxConnsPerHost,
		IdleConnTimeout:        u.IdleConnTimeout,
		MaxResponseHeaderBytes: u.MaxResponseHeaderBytes,
		DisableCompression:     true,
	}
}

// ServeHTTP routes the request once, hands it to the snapshot's
// ReverseProxy, then records the exchange in metrics and the access log.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.current.Load()
	ex := h.exchanges.Get().(*exchange)
	ex.reset()
	ex.snap, ex.decision, ex.start = s, s.router.Route(r), time.Now()
	ex.method, ex.path, ex.rawQuery = r.Method, r.URL.Path, r.URL.RawQuery
	// A connWatch holds one request at a time, as an HTTP/1 connection
	// serves them; HTTP/2 streams share a connection, so they keep the
	// transport's timer.
	if cw, ok := r.Context().Value(connWatchKey{}).(*connWatch); ok && r.ProtoMajor == 1 {
		ex.wait = upstreamWait{watch: cw, seq: cw.begin(), snap: s}
		ex.rp.Transport = s.transport
	} else {
		ex.rp.Transport = s.timedTransport
	}
	ex.rec.ResponseWriter = w
	ex.rec.flusher, _ = w.(http.Flusher)
	if ce := h.logger.Check(zap.DebugLevel, "routed"); ce != nil {
		ce.Write(zap.String("client", ex.decision.Client), zap.String("key_id", ex.decision.KeyIDString()),
			zap.String("mode", string(ex.decision.Mode)), zap.Bool("overridden", ex.decision.Overridden))
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http has already dropped any Content-Length that came with
		// Transfer-Encoding, so such a request cannot be told from a plain
		// chunked one here; RFC 9112 section 6.1 requires closing the
		// connection after it, so every chunked request closes it. The
		// upstream only ever sees the one unambiguous request.
		w.Header().Set("Connection", "close")
	}
	h.admitShadow(s, ex, r)
	if r.Body != nil && r.Body != http.NoBody {
		ex.reqBody = &requestBody{ReadCloser: r.Body}
		ex.reqBody.wait = ex.wait
		if ex.shadow.active {
			ex.reqBody.limit, ex.reqBody.capturing = ex.shadow.maxRequestBytes, true
		}
		r.Body = ex.reqBody
	}
	defer h.finish(s, ex)
	ex.rp.ServeHTTP(&ex.rec, r)
}

// reset readies a pooled exchange for its next request: every field is
// zero but the ReverseProxy bound to it, its copy pool and the buffer kept
// for unmapped bodies. It clears the exchange in place: building the new
// value as a composite literal would put a 2.4 KiB temporary in
// ServeHTTP's frame, which stays on the stack of every request waiting for
// its upstream and, with 1,000 of them, doubles their stacks.
func (ex *exchange) reset() {
	rp, pool, unmapped := ex.rp, ex.copyBufs.pool, ex.unmappedBody[:0]
	*ex = exchange{}
	ex.rp, ex.copyBufs.pool, ex.unmappedBody = rp, pool, unmapped
}

// finish records the exchange. It runs even when the copy was aborted, so
// an aborted stream is counted and logged too.
func (h *Handler) finish(s *snapshot, ex *exchange) {
	ex.wait.disarm() // normally done by ModifyResponse or ErrorHandler already
	elapsed := time.Since(ex.start)
	h.metrics.observe(ex, elapsed.Seconds())
	if s.accessLog {
		h.logAccess(ex, elapsed)
	}
	if ex.shadow.active {
		h.submitShadow(s, ex, elapsed)
	}
	if h.evidence != nil {
		h.recordEvidence(ex, elapsed)
	}
	if cap(ex.unmappedBody) > maxUnmappedCapture {
		ex.unmappedBody = nil
	}
	ex.rec.ResponseWriter, ex.rec.flusher = nil, nil
	ex.reqBody, ex.snap, ex.rp.Transport, ex.wait = nil, nil, nil, upstreamWait{}
	h.exchanges.Put(ex)
}

// logAccess writes the exchange's access log line. It names the client by
// config name and key hash prefix; it never logs a header value or a query
// string, where keys and tokens travel.
func (h *Handler) logAccess(ex *exchange, elapsed time.Duration) {
	ce := h.accessLog.Check(zap.InfoLevel, "request")
	if ce == nil {
		return
	}
	r := ex.rec
	// Set one by one: an array literal would be a 1 KiB temporary on the
	// stack.
	f := &ex.accessFields
	f[0] = zap.String("method", ex.method)
	f[1] = zap.String("path", ex.path)
	f[2] = zap.String("client", ex.decision.Client)
	f[3] = zap.ByteString("key_id", ex.decision.AppendKeyID(ex.keyIDHex[:0]))
	f[4] = zap.String("mode", string(ex.decision.Mode))
	f[5] = zap.Int("upstream_status", ex.upstreamStatus)
	f[6] = zap.Int("status", r.status)
	f[7] = zap.String("action", ex.outcome.Action.String())
	f[8] = zap.String("reason", string(ex.outcome.Reason))
	f[9] = zap.String("rule", ex.outcome.Rule)
	f[10] = zap.String("legacy_code", ex.outcome.LegacyCode)
	f[11] = zap.String("code", ex.outcome.Code)
	f[12] = zap.String("upstream_error", ex.upstreamError)
	f[13] = zap.Int64("bytes_in", ex.bytesIn())
	f[14] = zap.Int64("bytes_out", r.bytes)
	f[15] = zap.Duration("duration", elapsed)
	f[16] = zap.Duration("upstream_duration", ex.upstreamTime)
	ce.Write(ex.accessFields[:]...)
	clear(ex.accessFields[:])
}
