package cli

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/envelope-proxy/envelope-proxy/admin"
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/contract"
	"github.com/envelope-proxy/envelope-proxy/dashboard"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/gcfloor"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"github.com/envelope-proxy/envelope-proxy/shadow"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Serve runs the proxy: SIGHUP or a change of the config file reloads the
// config; SIGINT or SIGTERM drains and stops it.
func Serve(args []string, env Env) int {
	fset := newFlagSet("envelope-proxy", env)
	path := fset.String("config", "config.yaml", "config file (the embedded defaults when absent and not given)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	cfg, source, loaded, err := loadConfig(fset, *path, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	logs, err := newLogs(cfg.Log, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer logs.sync()
	signals, stop := processSignals(env, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if err := serve(cfg, source, loaded, logs, signals, env.Ready); err != nil {
		logs.logger.Error("stopped", zap.Error(err))
		return 1
	}
	logs.logger.Info("stopped")
	return 0
}

// serve runs the client and admin listeners until a stop signal. source is
// the config file and loaded its bytes; source is "" for the embedded
// defaults, and then nothing is watched.
func serve(cfg *config.Config, source string, loaded []byte, logs *logs, signals <-chan os.Signal, ready func(client, admin string)) error {
	logger := logs.logger
	gcfloor.Set(cfg.GCHeapFloorBytes)
	defer gcfloor.Set(0)
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	)
	// The recorder closes last: the comparison and the proxy feed it
	// until they stop.
	rec := evidence.New(evidenceSettings(cfg), evidenceOptions(cfg, source, logger.Named("evidence")))
	defer func() {
		if err := rec.Close(); err != nil {
			logger.Error("writing the last dashboard evidence", zap.Error(err))
		}
	}()
	cs, err := contractSettings(cfg, source)
	if err != nil {
		return err
	}
	// The checks close after the comparison and the proxy, which feed
	// them, and before the recorder they feed.
	checker := contract.NewChecker(cs, contract.Options{Logger: logger.Named("contract"), Registerer: reg, Recorder: rec})
	defer checker.Close()
	comparator := shadow.New(shadowSettings(cfg), shadow.Options{Logger: logger.Named("shadow"), Registerer: reg, Recorder: rec, Contract: checker, Noise: rec})
	defer comparator.Close()
	h, err := proxy.New(proxySettings(cfg), proxy.Options{Logger: logger, AccessLog: logs.access, Metrics: proxy.NewMetrics(reg), Shadow: comparator, Recorder: rec, Contract: checker})
	if err != nil {
		return err
	}
	// current is the config in force, for the admin listener (/config,
	// the token, the upstream probe) and the drain.
	var current atomic.Pointer[config.Config]
	current.Store(cfg)
	handlers := map[string]http.Handler{}
	for path, hd := range dashboard.New(rec, dashboard.Options{Logger: logger.Named("dashboard"), CandidateConfigured: comparator.CandidateConfigured}).Routes() {
		handlers[path] = hd
	}
	adm := admin.New(admin.Options{Gatherer: reg, Config: current.Load, Handlers: handlers, Status: func() string { return evidenceStatus(rec.State()) }})

	srv := newServer(cfg, h, logger)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	adminSrv := &http.Server{Handler: adm, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute, ErrorLog: zap.NewStdLog(logger.Named("admin"))}
	adminLn, err := net.Listen("tcp", cfg.AdminListen)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin listen: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- adminSrv.Serve(adminLn) }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	if source != "" {
		reloader := config.NewReloader(source, loaded, func(c *config.Config) error {
			old := current.Load()
			if c.Listen != old.Listen || c.AdminListen != old.AdminListen || c.StateDir != old.StateDir || c.StateURL != old.StateURL ||
				c.Replica != old.Replica || c.Readiness.MaxStateBytes != old.Readiness.MaxStateBytes {
				logger.Warn("listen, admin_listen, state_dir, state_url, replica and readiness.max_state_bytes changes take effect on restart",
					zap.String("listen", old.Listen), zap.String("admin_listen", old.AdminListen), zap.String("state_dir", old.StateDir))
			}
			cs, err := contractSettings(c, source)
			if err != nil {
				return err
			}
			if err := h.Swap(proxySettings(c)); err != nil {
				return err
			}
			checker.Swap(cs)
			comparator.Swap(shadowSettings(c))
			rec.Swap(evidenceSettings(c))
			gcfloor.Set(c.GCHeapFloorBytes)
			logs.setLevel(c.Log.Level)
			current.Store(c)
			return nil
		}, logger, reg)
		// The watch is in place before ready is reported. Its loop has
		// stopped before the deferred closes above run (defers run last
		// first), so no reload applies to a comparator, recorder or GC
		// floor already torn down.
		stopped, err := reloader.Watch(ctx, hup)
		if err != nil {
			logger.Error("config file changes are not watched; SIGHUP still reloads", zap.Error(err))
		}
		defer func() {
			cancel()
			<-stopped
		}()
	}
	logger.Info("serving", zap.String("listen", ln.Addr().String()), zap.String("admin_listen", adminLn.Addr().String()),
		zap.String("config", displaySource(source)), zap.String("upstream", cfg.Upstream.URL), zap.String("version", Version()))
	if ready != nil {
		ready(ln.Addr().String(), adminLn.Addr().String())
	}

	for {
		select {
		case err := <-errc:
			return err
		case sig := <-signals:
			if sig == syscall.SIGHUP {
				if source == "" {
					logger.Warn("SIGHUP ignored: running on the embedded defaults, no file to reload")
					continue
				}
				select {
				case hup <- sig:
				default: // a reload is already pending
				}
				continue
			}
			return drain(current.Load(), srv, adminSrv, adm, logger, sig)
		}
	}
}

// drain stops the proxy gracefully: /readyz turns unready, the listener
// keeps accepting for drain_delay so load balancers notice, then closes;
// requests in flight (long streams included) get shutdown_timeout to end.
func drain(cfg *config.Config, srv, adminSrv *http.Server, adm *admin.Server, logger *zap.Logger, sig os.Signal) error {
	adm.SetDraining()
	logger.Info("draining", zap.String("signal", sig.String()), zap.Duration("drain_delay", cfg.Server.DrainDelay), zap.Duration("shutdown_timeout", cfg.Server.ShutdownTimeout))
	time.Sleep(cfg.Server.DrainDelay)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	adminSrv.Close()
	if err != nil {
		return fmt.Errorf("shutdown: requests still in flight after %s: %w", cfg.Server.ShutdownTimeout, err)
	}
	return nil
}

// processSignals returns env's signals, or else the process's sigs and
// the function that stops their delivery.
func processSignals(env Env, sigs ...os.Signal) (<-chan os.Signal, func()) {
	if env.Signals != nil {
		return env.Signals, func() {}
	}
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, sigs...)
	return ch, func() { signal.Stop(ch) }
}

// evidenceStatus is the evidence's line in /readyz's body: where it is kept,
// or why it is in memory. A store that cannot be reached does not make the
// proxy unready: requests never wait on it.
func evidenceStatus(st evidence.StateInfo) string {
	switch {
	case st.Error != "":
		return fmt.Sprintf("evidence: %s (%s) in memory, %d buckets (one per client and minute) not yet written: %s", st.Kind, st.Location, st.Pending, st.Error)
	case st.Persistent:
		return fmt.Sprintf("evidence: %s %s, replica %s", st.Kind, st.Location, st.Replica)
	}
	return "evidence: memory only"
}

// besideConfig resolves a relative path the config names (state_dir,
// contract.openapi) against the config file's directory, so that what
// belongs to a config sits beside it whatever the working directory; with
// the embedded defaults it is relative to the working directory.
func besideConfig(source, path string) string {
	if path == "" || source == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(filepath.Dir(source), path)
}

func displaySource(source string) string {
	if source == "" {
		return "(embedded defaults)"
	}
	return source
}

// buildInfo is the envelope_proxy_build_info gauge, always 1, whose labels
// say what is running.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "envelope_proxy_build_info",
		Help: "Build information of the running binary; always 1.",
	}, []string{"version", "goversion"})
	g.WithLabelValues(Version(), runtime.Version()).Set(1)
	return g
}

// newServer builds the client listener's server. There is no WriteTimeout:
// it would cut long streams; ReadHeaderTimeout and IdleTimeout bound slow
// and idle clients instead.
func newServer(cfg *config.Config, h http.Handler, logger *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.Server.ReadHeaderTimeout,
		ReadTimeout:       cfg.Server.ReadTimeout,
		IdleTimeout:       cfg.Server.IdleTimeout,
		MaxHeaderBytes:    cfg.Server.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(logger.Named("http")),
	}
}

// logs are the operational logger and the access logger. The access log is
// buffered (flushed every second and at exit) so that a line per request
// costs no write system call per request.
type logs struct {
	logger *zap.Logger
	access *zap.Logger
	level  zap.AtomicLevel
	buffer *zapcore.BufferedWriteSyncer
}

func (l *logs) sync() {
	l.logger.Sync()
	l.buffer.Stop()
}

func (l *logs) setLevel(level string) {
	if lv, err := zapcore.ParseLevel(level); err == nil {
		l.level.SetLevel(lv)
	}
}
