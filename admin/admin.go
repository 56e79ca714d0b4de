// Package admin serves envelope-proxy's admin listener: Prometheus metrics,
// liveness and readiness, the effective config, profiles, and the handlers
// it is given (the shadow report, the migration dashboard). It is a
// separate listener from the clients' and defaults to loopback; with
// admin.token_sha256 set, everything but the probes needs the token.
package admin

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.yaml.in/yaml/v3"
)

// Options are what the admin handler serves.
type Options struct {
	// Gatherer is the registry exposed at /metrics.
	Gatherer prometheus.Gatherer
	// Config returns the config in force; it is read on every request, so
	// /config and /readyz follow reloads.
	Config func() *config.Config
	// ProbeTimeout bounds the upstream check of /readyz.
	ProbeTimeout time.Duration
	// Handlers are further GET endpoints by path, such as the shadow
	// comparison's /shadow/report.
	Handlers map[string]http.Handler
	// Status, when set, adds a line to /readyz's body that does not
	// decide readiness (where the evidence is kept).
	Status func() string
}

// Server is the admin handler, with the draining state that /readyz
// reports.
type Server struct {
	opts     Options
	mux      *http.ServeMux
	draining atomic.Bool
}

// New builds the admin handler.
func New(opts Options) *Server {
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = time.Second
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /config", s.config)
	// Profiles, for finding where the time goes in production.
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	for path, h := range opts.Handlers {
		s.mux.Handle("GET "+path, h)
	}
	return s
}

// ServeHTTP serves the admin endpoints, behind the token of the config in
// force when admin.token_sha256 is set. Every response, refusals included,
// says nosniff: the report, the config and the API hold text that came from
// traffic, which a browser must never take for markup or script.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	token := s.opts.Config().Admin.TokenSHA256
	if rebound(r, token) {
		http.Error(w, "misdirected request: without admin.token_sha256 the admin listener answers only to localhost and IP addresses", http.StatusMisdirectedRequest)
		return
	}
	if !unauthenticated(r.URL.Path) && !authorized(r, token) {
		challenge(w)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// SetDraining makes /readyz answer 503 from now on, so load balancers stop
// sending traffic before the client listener closes.
func (s *Server) SetDraining() { s.draining.Store(true) }

// readyz is ready when the proxy is not draining and the upstream accepts
// a TCP connection within the probe timeout.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	cfg := s.opts.Config()
	if err := dialUpstream(r.Context(), cfg.Upstream.URL, s.opts.ProbeTimeout); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "upstream unreachable: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ready")
	if s.opts.Status != nil {
		fmt.Fprintln(w, s.opts.Status())
	}
}

func dialUpstream(ctx context.Context, rawURL string, timeout time.Duration) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	return conn.Close()
}

// config writes the effective config as YAML without its secrets: each key
// digest cut to its first 8 characters (enough to recognise a client,
// useless to anyone trying to match keys), state_url's password and the
// values of shadow.candidate_headers masked.
func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	in := s.opts.Config()
	c := *in
	c.StateURL = redact.URLPassword(c.StateURL)
	if len(in.Shadow.CandidateHeaders) > 0 {
		c.Shadow.CandidateHeaders = make(map[string]string, len(in.Shadow.CandidateHeaders))
		for name, v := range in.Shadow.CandidateHeaders {
			c.Shadow.CandidateHeaders[name] = redact.Value(v)
		}
	}
	c.Routing.Clients = make([]config.Client, len(in.Routing.Clients))
	for i, cl := range in.Routing.Clients {
		short := make([]string, len(cl.KeysSHA256))
		for j, k := range cl.KeysSHA256 {
			short[j] = k[:min(8, len(k))]
		}
		cl.KeysSHA256 = short
		c.Routing.Clients[i] = cl
	}
	b, err := yaml.Marshal(&c)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Write(b)
}
