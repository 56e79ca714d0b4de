package cli

import (
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/proxy"
	"github.com/envelope-proxy/envelope-proxy/shadow"
	"github.com/envelope-proxy/envelope-proxy/verdict"
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
		},
		Retention: rd.Retention,
		Samples:   cfg.Dashboard.Samples,
		Redact:    cfg.Dashboard.Redact.Paths,
		Targets:   cfg.Routing.Targets(),
	}
}
