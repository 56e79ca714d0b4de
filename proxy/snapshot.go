package proxy

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// snapshot is everything a request needs from one set of Settings, built
// once per load, with the Handler's services. It is never modified once
// built.
type snapshot struct {
	*services
	settings    Settings
	router      *Router
	transformer *transform.Transformer
	target      *url.URL
	// transport reaches the upstream; its ResponseHeaderTimeout is
	// upstream.timeout, counted from when the whole request is sent.
	transport   *http.Transport
	retireAfter time.Duration
	// overrideHeader is the canonical override header, removed before
	// the request goes upstream; "" when overrides are off.
	overrideHeader string
	// vary is the Vary value added to every response ("" for none),
	// varyValues the same as a header value slice, shared read-only by
	// the responses that had no Vary of their own, and varyTokens its
	// header names, merged into the Vary the upstream sent.
	vary       string
	varyValues []string
	varyTokens []string
	// tagSuffix marks the entity tags of envelope clients' responses
	// (validators.go).
	tagSuffix string
	maxBody   int64
	// recording is set when the dashboard records evidence, samples when
	// it keeps sample bodies, and keyHeader names the header whose value
	// is scrubbed from them.
	recording bool
	samples   bool
	keyHeader string
}

// newSnapshot builds the snapshot of s. The transports are old's when the
// upstream settings did not change, so that a reload keeps the warm
// upstream connections.
func newSnapshot(s Settings, old *snapshot, sv *services) (*snapshot, error) {
	target, err := url.Parse(s.Upstream.URL)
	if err != nil {
		return nil, fmt.Errorf("upstream.url: %w", err)
	}
	tr, err := transform.New(s.Rules)
	if err != nil {
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	snap := &snapshot{
		services:    sv,
		settings:    s,
		router:      NewRouter(&s.Routing),
		transformer: tr,
		target:      target,
		retireAfter: s.RetireAfter,
		maxBody:     s.MaxBodyBytes,
		recording:   sv.recorder != nil,
		samples:     s.Samples,
		keyHeader:   s.Routing.Header,
		tagSuffix:   tagMarker + rulesFingerprint(s.Rules),
	}
	snap.vary = snap.router.Vary()
	if snap.vary != "" {
		snap.varyValues = []string{snap.vary}
		snap.varyTokens = varyTokens(nil, snap.vary)
	}
	if old != nil && old.settings.Upstream == s.Upstream {
		snap.transport = old.transport
	} else {
		snap.transport = newTransport(&s.Upstream)
	}
	if s.Routing.OverrideHeader != "" {
		snap.overrideHeader = http.CanonicalHeaderKey(s.Routing.OverrideHeader)
	}
	return snap, nil
}

// newTransport builds the upstream transport from config. Compression is
// left to the client and the upstream: the proxy forwards Accept-Encoding
// as it is and decodes only the bodies it rewrites. upstream.timeout is
// the transport's ResponseHeaderTimeout, which waits for the response head
// from when the whole request, body included, has been written; it never
// cuts a slow upload or a streaming body.
func newTransport(u *config.Upstream) *http.Transport {
	d := &net.Dialer{Timeout: u.DialTimeout, KeepAlive: u.KeepAlive}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		TLSHandshakeTimeout:    u.TLSHandshakeTimeout,
		ResponseHeaderTimeout:  u.Timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           u.MaxIdleConns,
		MaxIdleConnsPerHost:    u.MaxIdleConnsPerHost,
		MaxConnsPerHost:        u.MaxConnsPerHost,
		IdleConnTimeout:        u.IdleConnTimeout,
		MaxResponseHeaderBytes: u.MaxResponseHeaderBytes,
		DisableCompression:     true,
	}
}

// migrated reports whether path is under a prefix whose success responses
// are already envelopes.
func (s *snapshot) migrated(path string) bool {
	for _, p := range s.settings.MigratedPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// addVary adds the routing headers to Vary, so a shared cache keys the
// response by client. They are merged into one field value with what the
// upstream sent, each header name once (compared case-insensitively):
// nginx's cache keys on one Vary line only, and would otherwise serve a
// gzip body to a client that never asked for one. Vary: * is left alone. A
// response without Vary gets the snapshot's shared value slice, which
// nothing writes to (ReverseProxy copies it into the client's headers), so
// the common case allocates nothing.
func (s *snapshot) addVary(h http.Header) {
	vs, ok := h["Vary"]
	if !ok {
		h["Vary"] = s.varyValues
		return
	}
	var tokens []string
	for _, v := range vs {
		tokens = varyTokens(tokens, v)
	}
	if slices.Contains(tokens, "*") {
		return
	}
	for _, t := range s.varyTokens {
		if !slices.ContainsFunc(tokens, func(u string) bool { return strings.EqualFold(t, u) }) {
			tokens = append(tokens, t)
		}
	}
	h["Vary"] = []string{strings.Join(tokens, ", ")}
}

// varyTokens appends the header names of one Vary field value to dst, each
// once (compared case-insensitively), in the order given.
func varyTokens(dst []string, v string) []string {
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if t != "" && !slices.ContainsFunc(dst, func(u string) bool { return strings.EqualFold(t, u) }) {
			dst = append(dst, t)
		}
	}
	return dst
}
