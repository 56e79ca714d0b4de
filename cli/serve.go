package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"go.uber.org/zap"
)

// Serve runs the proxy until SIGINT or SIGTERM, then drains it.
func Serve(args []string, env Env) int {
	fset := flag.NewFlagSet("envelope-proxy", flag.ContinueOnError)
	fset.SetOutput(env.Stderr)
	path := fset.String("config", "config.yaml", "config file (the embedded defaults when absent and not given)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	cfg, source, err := loadConfig(fset, *path, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	logger, err := newLogger(cfg.Log, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer logger.Sync()
	if source == "" {
		source = "(embedded defaults)"
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err = runProxy(ctx, cfg, logger, func(addr string) {
		logger.Info("serving", zap.String("listen", addr), zap.String("config", source),
			zap.String("upstream", cfg.Upstream.URL), zap.String("version", Version()))
	})
	if err != nil {
		logger.Error("stopped", zap.Error(err))
		return 1
	}
	logger.Info("stopped")
	return 0
}

// runProxy serves cfg on its listen address until ctx ends, then shuts
// down gracefully: the listener stops accepting and requests in flight,
// streams included, get up to server.shutdown_timeout to complete.
func runProxy(ctx context.Context, cfg *config.Config, logger *zap.Logger, ready func(addr string)) error {
	h, err := proxy.New(cfg, logger)
	if err != nil {
		return err
	}
	srv := newServer(cfg, h, logger)
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	ready(ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
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
