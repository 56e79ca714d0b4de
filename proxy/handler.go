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
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"go.uber.org/zap"
)

// Handler is the client-facing http.Handler.
type Handler struct {
	current   atomic.Pointer[snapshot]
	logger    *zap.Logger
	exchanges sync.Pool
	codecs    *codecs
	buffers   *bufferPool
	copyBufs  *copyPool
}

// snapshot is everything a request needs from one config, built once per
// load.
type snapshot struct {
	cfg              *config.Config
	router           *Router
	transformer      *transform.Transformer
	proxy            *httputil.ReverseProxy
	transport        *http.Transport
	migratedPrefixes []string
	vary             string
	maxBody          int64
	logger           *zap.Logger
	codecs           *codecs
	buffers          *bufferPool
}

// exchange is the per-request state shared by the hooks of one
// ReverseProxy call. It is pooled.
type exchange struct {
	decision       Decision
	path           string
	upstreamStatus int
	outcome        transform.Outcome
}

type exchangeKey struct{}

func exchangeFrom(ctx context.Context) *exchange {
	ex, _ := ctx.Value(exchangeKey{}).(*exchange)
	return ex
}

// New builds a Handler serving cfg, which must be valid.
func New(cfg *config.Config, logger *zap.Logger) (*Handler, error) {
	h := &Handler{
		logger:   logger,
		codecs:   &codecs{},
		buffers:  newBufferPool(int(cfg.MaxBodyBytes) * 2),
		copyBufs: &copyPool{},
	}
	h.exchanges.New = func() any { return new(exchange) }
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
	if old != nil && old.transport != s.transport {
		go func() {
			// Give requests still on the old transport time to finish
			// before its idle connections are closed.
			time.Sleep(old.cfg.Server.ShutdownTimeout)
			old.transport.CloseIdleConnections()
		}()
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
		logger:           h.logger,
		codecs:           h.codecs,
		buffers:          h.buffers,
	}
	s.vary = s.router.Vary()
	if old != nil && old.cfg.Upstream == cfg.Upstream {
		s.transport = old.transport
	} else {
		s.transport = newTransport(&cfg.Upstream)
	}
	overrideHeader := ""
	if cfg.Routing.OverrideHeader != "" {
		overrideHeader = http.CanonicalHeaderKey(cfg.Routing.OverrideHeader)
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.SetXForwarded()
			if overrideHeader != "" {
				pr.Out.Header.Del(overrideHeader)
			}
		},
		Transport:      s.transport,
		ModifyResponse: s.modifyResponse,
		ErrorHandler:   s.errorHandler,
		BufferPool:     h.copyBufs,
		// Flush every write: a passed-through body reaches the client as
		// it arrives, never held back until the body ends.
		FlushInterval: -1,
		ErrorLog:      zap.NewStdLog(h.logger.Named("reverseproxy")),
	}
	return s, nil
}

// newTransport builds the upstream transport from config. Compression is
// left to the client and the upstream: the proxy forwards Accept-Encoding
// as it is and decodes only the bodies it rewrites.
func newTransport(u *config.Upstream) *http.Transport {
	d := &net.Dialer{Timeout: u.DialTimeout, KeepAlive: u.KeepAlive}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		TLSHandshakeTimeout:   u.TLSHandshakeTimeout,
		ResponseHeaderTimeout: u.Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          u.MaxIdleConns,
		MaxIdleConnsPerHost:   u.MaxIdleConnsPerHost,
		MaxConnsPerHost:       u.MaxConnsPerHost,
		IdleConnTimeout:       u.IdleConnTimeout,
		DisableCompression:    true,
	}
}

// ServeHTTP routes the request once and hands it to the snapshot's
// ReverseProxy.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.current.Load()
	ex := h.exchanges.Get().(*exchange)
	*ex = exchange{decision: s.router.Route(r), path: r.URL.Path}
	if ce := h.logger.Check(zap.DebugLevel, "routed"); ce != nil {
		ce.Write(zap.String("client", ex.decision.Client), zap.String("key_id", ex.decision.KeyIDString()),
			zap.String("mode", string(ex.decision.Mode)), zap.Bool("overridden", ex.decision.Overridden))
	}
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, ex))
	s.proxy.ServeHTTP(w, r)
	h.exchanges.Put(ex)
}
