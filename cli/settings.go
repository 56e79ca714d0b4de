package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/contract"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"github.com/envelope-proxy/envelope-proxy/shadow"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/verdict"
	"go.uber.org/zap"
)

// proxySettings is the proxy's part of cfg.
func proxySettings(cfg *config.Config) proxy.Settings {
	return proxy.Settings{
		Upstream:              cfg.Upstream,
		Routing:               cfg.Routing,
		Rules:                 cfg.Rules,
		MigratedPrefixes:      cfg.MigratedPrefixes,
		MaxBodyBytes:          cfg.MaxBodyBytes,
		RequestBuffering:      cfg.Server.RequestBuffering,
		AccessLog:             cfg.Log.AccessLog,
		Samples:               cfg.Dashboard.Samples,
		ShadowMaxRequestBytes: cfg.Shadow.MaxRequestBytes,
		ShadowMaxBodyBytes:    cfg.Shadow.MaxBodyBytes,
		RetireAfter:           cfg.Server.ShutdownTimeout,
	}
}

// shadowSettings is the shadow comparison's part of cfg.
func shadowSettings(cfg *config.Config) shadow.Settings {
	return shadow.Settings{
		Shadow:          cfg.Shadow,
		Candidate:       cfg.Candidate,
		EnvelopeMaxBody: cfg.MaxBodyBytes,
		KeyHeader:       cfg.Routing.Header,
		Samples:         cfg.Dashboard.Samples,
		Redact:          cfg.Dashboard.Redact.Paths,
	}
}

// contractSettings is the contract checks' part of cfg, with the OpenAPI
// document contract.openapi names (relative to the config file source)
// read and checked, or the built-in contract.
func contractSettings(cfg *config.Config, source string) (contract.Settings, error) {
	doc, err := contractDocument(cfg, source)
	if err != nil {
		return contract.Settings{}, err
	}
	return contract.Settings{
		Document:    doc,
		Sample:      cfg.Contract.Sample,
		MaxInFlight: cfg.Contract.MaxInFlight,
		Routes:      cfg.Shadow.Routes,
		KeyHeader:   cfg.Routing.Header,
		Samples:     cfg.Dashboard.Samples,
		Redact:      cfg.Dashboard.Redact.Paths,
	}, nil
}

// contractDocument reads the document contract.openapi names, relative to
// the config file source, or the built-in contract when it is empty. The
// error names the setting.
func contractDocument(cfg *config.Config, source string) (*contract.Document, error) {
	if cfg.Contract.OpenAPI == "" {
		return contract.Builtin()
	}
	doc, err := contract.Load(besideConfig(source, cfg.Contract.OpenAPI))
	if err != nil {
		return nil, fmt.Errorf("contract.openapi: %w", err)
	}
	return doc, nil
}

// evidenceSettings is the evidence's part of cfg.
func evidenceSettings(cfg *config.Config) evidence.Settings {
	rd := &cfg.Readiness
	return evidence.Settings{
		Thresholds: verdict.Thresholds{
			Window:                  rd.Window,
			MinRequests:             rd.MinRequests,
			MaxMismatchRatio:        rd.MaxMismatchRatio,
			MaxUnmapped:             rd.MaxUnmapped,
			MaxCandidateErrorsRatio: rd.MaxCandidateErrorsRatio,
			MaxUpstreamErrorsRatio:  rd.MaxUpstreamErrorsRatio,
			MaxContractViolations:   rd.MaxContractViolations,
		},
		Retention: rd.Retention,
		Samples:   cfg.Dashboard.Samples,
		Redact:    cfg.Dashboard.Redact.Paths,
		Targets:   cfg.Routing.Targets(),
		Rules:     cfg.Rules,
		Ignore:    cfg.Shadow.Ignore,
	}
}

// evidenceOptions says where the evidence is kept: the PostgreSQL database
// in state_url, shared by the fleet; else the SQLite file in state_dir
// (relative to the config file source); else memory only. The replica is
// named by replica, else by the host name.
func evidenceOptions(cfg *config.Config, source string, logger *zap.Logger) evidence.Options {
	o := evidence.Options{Replica: replicaName(cfg.Replica), Logger: logger}
	switch {
	case cfg.StateURL != "":
		url := config.Expand(cfg.StateURL)
		o.Kind = "postgres"
		o.Open = func(ctx context.Context) (store.Store, error) { return store.OpenPostgres(ctx, url) }
	case cfg.StateDir != "":
		dir, opts := besideConfig(source, cfg.StateDir), store.SQLiteOptions{MaxBytes: cfg.Readiness.MaxStateBytes, Replica: o.Replica}
		o.Kind = "sqlite"
		o.Open = func(context.Context) (store.Store, error) { return store.OpenSQLite(dir, opts) }
	default:
		o.MemoryReason = "state_dir and state_url are empty: evidence is kept in memory only and lost on restart"
	}
	return o
}

// replicaName is name, or else the host name with any character a name
// may not hold replaced by '-'.
func replicaName(name string) string {
	if name != "" {
		return name
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "local"
	}
	b := []byte(host)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b[:min(len(b), 63)])
}
