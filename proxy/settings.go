package proxy

import (
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Settings are what the proxy takes from one config. Swap puts a new set in
// force for the requests that arrive from then on.
type Settings struct {
	// Upstream is the legacy backend and its transport.
	Upstream config.Upstream
	// Routing chooses each request's mode.
	Routing config.Routing
	// Rules are tried before the built-in rules.
	Rules []transform.Rule
	// MigratedPrefixes are path prefixes whose success responses are
	// already envelopes.
	MigratedPrefixes []string
	// MaxBodyBytes bounds the bodies buffered for a rewrite.
	MaxBodyBytes int64
	// RequestBuffering is the largest request body read whole before the
	// upstream is dialled (server.request_buffering); 0 streams them all.
	RequestBuffering int64
	// AccessLog writes one line per request.
	AccessLog bool
	// Samples keeps a copy of each unmapped error's body for the evidence
	// (dashboard.samples).
	Samples bool
	// ShadowMaxRequestBytes and ShadowMaxBodyBytes bound what a shadowed
	// exchange tees aside (shadow.max_request_bytes and
	// shadow.max_body_bytes).
	ShadowMaxRequestBytes int64
	ShadowMaxBodyBytes    int64
	// RetireAfter is how long a replaced upstream transport keeps its idle
	// connections, so that requests still running on it finish first
	// (server.shutdown_timeout, the longest a request is waited for).
	RetireAfter time.Duration
}
