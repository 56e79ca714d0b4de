package shadow

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/event"
)

// ShadowRequestHeader marks every request replayed to the candidate, so
// that it can tell mirrored traffic from real traffic (and, for instance,
// skip side effects or billing).
const ShadowRequestHeader = "X-Shadow-Request"

// candidate replays shadowed requests to the new service. Its client and
// transport are its own, never the upstream's: a slow candidate must not
// take connections the clients' traffic needs. It is immutable and shared
// by every comparison of one candidate URL and timeout.
type candidate struct {
	base      *url.URL
	timeout   time.Duration
	client    *http.Client
	transport *http.Transport
}

// candidateResponse is what the candidate answered.
type candidateResponse struct {
	status int
	// body is decoded: Go's transport negotiates and decodes gzip, and any
	// other Content-Encoding the candidate sends anyway is decoded with
	// the codec set.
	body []byte
	// latency runs from sending the request to the end of the body.
	latency time.Duration
}

// newCandidate builds the candidate's client. maxConns sizes the idle pool
// to the comparisons that may run at once.
func newCandidate(rawURL string, timeout time.Duration, maxConns int) (*candidate, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parsing candidate.url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("candidate.url %q: want an http or https URL with a host", rawURL)
	}
	setup := min(timeout, 5*time.Second)
	d := &net.Dialer{Timeout: setup, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		// Mirrored traffic goes straight to the candidate, never through
		// an environment proxy, as the upstream traffic does.
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    setup,
		ResponseHeaderTimeout:  timeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           max(maxConns, 16),
		MaxIdleConnsPerHost:    max(maxConns, 16),
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Compression stays on: with no Accept-Encoding forwarded, the
		// transport asks for gzip and decodes it.
		DisableCompression: false,
	}
	c := &http.Client{
		Transport: t,
		// A redirect is an answer to compare, not one to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &candidate{base: u, timeout: timeout, client: c, transport: t}, nil
}

// close releases the candidate's idle connections; requests in flight
// finish on theirs.
func (cd *candidate) close() {
	cd.transport.CloseIdleConnections()
}

// hopHeaders are meaningful for one connection only and are never
// replayed; Accept-Encoding is left to the transport, and Content-Length
// is set from the replayed body.
var hopHeaders = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Accept-Encoding", "Content-Length", "Expect",
	"Host", ShadowRequestHeader,
}

// IdempotencyKeyHeader carries, on a replayed write, the client's own key
// when it sent one, else one derived from the exchange, so that the
// candidate can recognise a retried replay.
const IdempotencyKeyHeader = "Idempotency-Key"

// request builds the replayed request: the client's method, path (under
// the candidate URL's own path), query, end-to-end headers (the key
// included: the candidate authenticates the client like the legacy API
// does) and body, plus X-Shadow-Request: 1, with the configured
// candidate_headers set over the client's. A write (any method but GET,
// HEAD and OPTIONS) carries an Idempotency-Key.
func (cd *candidate) request(ctx context.Context, ex *event.Capture, extra http.Header) (*http.Request, error) {
	u := *cd.base
	path := ex.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u.Path = strings.TrimSuffix(cd.base.Path, "/") + path
	u.RawPath = ""
	u.RawQuery = ex.RawQuery
	u.Fragment = ""
	var body io.Reader
	if len(ex.Body) > 0 {
		body = bytes.NewReader(ex.Body)
	}
	req, err := http.NewRequestWithContext(ctx, ex.Method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building candidate request: %w", err)
	}
	h := ex.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	for _, f := range h.Values("Connection") {
		for _, name := range strings.Split(f, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	for name, vs := range extra {
		h[name] = vs
	}
	h.Set(ShadowRequestHeader, "1")
	if !safeMethod(ex.Method) && h.Get(IdempotencyKeyHeader) == "" {
		h.Set(IdempotencyKeyHeader, derivedIdempotencyKey(ex))
	}
	req.Header = h
	return req, nil
}

// derivedIdempotencyKey names one exchange: a digest of its client, arrival
// time and request, the same however often the exchange is replayed, and
// different for two requests of the same content.
func derivedIdempotencyKey(ex *event.Capture) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%x\n%d\n%s %s?%s\n", ex.Client, ex.KeyHash, ex.Start.UnixNano(), ex.Method, ex.Path, ex.RawQuery)
	h.Write(ex.Body)
	return "envelope-proxy-shadow-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// replay sends ex to the candidate with its own timeout, on ctx (the
// Comparator's, never the client's), and reads the answer up to maxBody
// decoded bytes. On failure it returns the outcome that names it:
// candidate_timeout, candidate_error or skipped_too_large.
func (cd *candidate) replay(ctx context.Context, ex *event.Capture, codecs *codec.Set, maxBody int64, extra http.Header) (candidateResponse, event.Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, cd.timeout)
	defer cancel()
	req, err := cd.request(ctx, ex, extra)
	if err != nil {
		return candidateResponse{}, event.OutcomeCandidateError, err
	}
	start := time.Now()
	resp, err := cd.client.Do(req)
	if err != nil {
		return candidateResponse{}, failureOutcome(err), fmt.Errorf("candidate request: %w", err)
	}
	defer resp.Body.Close()
	if req.Method != http.MethodHead && resp.ContentLength > maxBody && resp.Header.Get("Content-Encoding") == "" {
		return candidateResponse{status: resp.StatusCode}, event.OutcomeSkippedTooLarge, nil
	}
	var raw []byte
	complete, err := codec.ReadUpTo(resp.Body, &raw, maxBody)
	if err != nil {
		return candidateResponse{status: resp.StatusCode}, failureOutcome(err), fmt.Errorf("reading candidate body: %w", err)
	}
	if !complete {
		return candidateResponse{status: resp.StatusCode}, event.OutcomeSkippedTooLarge, nil
	}
	latency := time.Since(start)
	body := raw
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !resp.Uncompressed {
		c, err := codecs.Lookup(ce)
		if err != nil {
			return candidateResponse{status: resp.StatusCode}, event.OutcomeCandidateError, fmt.Errorf("candidate body: %w", err)
		}
		if c != nil {
			body = nil
			fit, err := codec.DecodeAll(c, raw, &body, maxBody)
			if err != nil {
				return candidateResponse{status: resp.StatusCode}, event.OutcomeCandidateError, fmt.Errorf("decoding candidate body: %w", err)
			}
			if !fit {
				return candidateResponse{status: resp.StatusCode}, event.OutcomeSkippedTooLarge, nil
			}
		}
	}
	return candidateResponse{status: resp.StatusCode, body: body, latency: latency}, "", nil
}

// failureOutcome classifies a failed exchange with the candidate: a
// deadline or a network timeout is candidate_timeout, anything else
// (refused, reset, canceled at shutdown) candidate_error.
func failureOutcome(err error) event.Outcome {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return event.OutcomeCandidateTimeout
	}
	return event.OutcomeCandidateError
}
