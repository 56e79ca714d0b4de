// Package proxy is envelope-proxy's HTTP side: an httputil.ReverseProxy in
// front of the legacy backend whose ModifyResponse rewrites responses for
// the clients that get the envelope.
//
// A request's mode is decided once, when it arrives, from the snapshot of
// the settings current at that moment; the snapshot (router, rules,
// transport) is immutable and is replaced atomically on reload, so a
// request in flight finishes on the settings it started with. Everything a
// request does happens in one exchange (exchange.go), from routing to the
// access log line, in the order the file reads.
package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Handler is the client-facing http.Handler.
type Handler struct {
	current   atomic.Pointer[snapshot]
	services  *services
	exchanges sync.Pool
}

// services are the Handler's collaborators: the same for every snapshot,
// and reached by a request through its snapshot.
type services struct {
	logger    *zap.Logger
	accessLog *zap.Logger
	metrics   *Metrics
	shadow    Shadower
	recorder  RequestRecorder
	contract  ContractChecker
	codecs    *codec.Set
	buffers   *bufferPool
	// requestBuffers hold the request bodies read whole before the
	// upstream is dialled (server.request_buffering), apart from the
	// response bodies' buffers: a pool shared with small error bodies
	// would hand a 1 MiB upload a 4 KiB buffer as often as not.
	requestBuffers *bufferPool
	copies         *copyPool
}

// Shadower is what the proxy needs of the shadow comparison: a cheap
// admission check on the request path, which also says whether the
// request may be replayed to the candidate (and so needs its body
// captured), and a hand-over that never blocks. Nothing flows back: the
// proxy never waits on a comparison.
type Shadower interface {
	Admit(client, method, path string, keyHash uint64) (admitted, replayable bool)
	Submit(c *event.Capture)
}

// ContractChecker is what the proxy needs of the contract checks: a
// hand-over of each envelope it sends that never blocks and copies what it
// keeps. Nothing flows back: the client never waits on a check.
type ContractChecker interface {
	Submit(e *event.Envelope)
}

// RequestRecorder is what the proxy needs of the migration dashboard's
// evidence: one call per finished request that never blocks on storage and
// keeps nothing of the event it is handed. Nothing flows back.
type RequestRecorder interface {
	RecordRequest(r *event.Request)
}

// Options are the Handler's collaborators. Nil fields are replaced by
// no-op ones.
type Options struct {
	// Logger receives operational logs.
	Logger *zap.Logger
	// AccessLog receives one line per request when Settings.AccessLog is
	// set.
	AccessLog *zap.Logger
	// Metrics are updated for every request.
	Metrics *Metrics
	// Shadow receives shadow-mode exchanges; nil makes shadow mode
	// behave exactly as legacy mode, with no capture.
	Shadow Shadower
	// Recorder receives every finished request for the migration
	// dashboard; nil records nothing.
	Recorder RequestRecorder
	// Contract receives every envelope sent to an envelope client, to be
	// held to the new API's contract; nil checks nothing.
	Contract ContractChecker
}

// New builds a Handler serving s, which must come from a valid config.
func New(s Settings, opts Options) (*Handler, error) {
	sv := &services{
		logger:    opts.Logger,
		accessLog: opts.AccessLog,
		metrics:   opts.Metrics,
		shadow:    opts.Shadow,
		recorder:  opts.Recorder,
		contract:  opts.Contract,
		codecs:    &codec.Set{},
		buffers:   newBufferPool(int(s.MaxBodyBytes) * 2),
		// Twice the setting at start: a reload may raise it a little
		// without every buffer being dropped.
		requestBuffers: newBufferPool(int(max(s.RequestBuffering, config.DefaultRequestBuffering)) * 2),
		copies:         &copyPool{},
	}
	if sv.logger == nil {
		sv.logger = zap.NewNop()
	}
	if sv.accessLog == nil {
		sv.accessLog = zap.NewNop()
	}
	if sv.metrics == nil {
		sv.metrics = NewMetrics(prometheus.NewRegistry())
	}
	h := &Handler{services: sv}
	errorLog := zap.NewStdLog(sv.logger.Named("reverseproxy"))
	h.exchanges.New = func() any { return newExchange(sv.copies, errorLog) }
	if err := h.Swap(s); err != nil {
		return nil, err
	}
	return h, nil
}

// Swap makes s the settings of every request that arrives from now on.
// Requests in flight finish on the snapshot they started with. The old
// transport's idle connections are closed once it is replaced.
func (h *Handler) Swap(s Settings) error {
	old := h.current.Load()
	snap, err := newSnapshot(s, old, h.services)
	if err != nil {
		return err
	}
	h.current.Store(snap)
	h.services.metrics.setModes(s.Routing.Targets())
	if old != nil && old.transport != snap.transport {
		// Give requests still on the old transports time to finish before
		// their idle connections are closed.
		time.AfterFunc(old.retireAfter, old.transport.CloseIdleConnections)
	}
	return nil
}

// ServeHTTP serves one request as one exchange: routed once, handed to the
// exchange's ReverseProxy, then recorded.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := h.exchanges.Get().(*exchange)
	ex.begin(h.current.Load(), w, r)
	defer h.release(ex)
	if err := ex.readRequest(r); err != nil {
		ex.answerClientError(&ex.w, r, err)
		return
	}
	ex.rp.ServeHTTP(&ex.w, r)
}

// release finishes the exchange and pools it. It runs even when the copy
// was aborted, so an aborted stream is counted and logged too.
func (h *Handler) release(ex *exchange) {
	ex.finish()
	h.exchanges.Put(ex)
}
