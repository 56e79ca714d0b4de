package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"

	"github.com/envelope-proxy/envelope-proxy/transform"
	"go.uber.org/zap"
)

// errBadEncoding is the cause of an upstream body that does not decode in
// the Content-Encoding it declares (bad CRC, garbage, truncated).
var errBadEncoding = errors.New("upstream body does not decode in its Content-Encoding")

// badEncoding wraps a decoder's error as errBadEncoding.
func badEncoding(err error) error { return fmt.Errorf("%w: %v", errBadEncoding, err) }

// upstreamErrorKind classifies a failure for the upstream error metric.
func upstreamErrorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errBadEncoding):
		return upstreamBadEncoding
	case errors.Is(err, syscall.ECONNREFUSED):
		return upstreamRefused
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return upstreamTimeout
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, syscall.EPIPE):
		return upstreamReset
	}
	return upstreamOther
}

// statusForError maps a failure to reach or read the upstream to the
// status the client gets: 504 for a timeout, 502 for everything else.
func statusForError(err error) int {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// handleError is the ReverseProxy's ErrorHandler: it answers the request
// the upstream could not serve, in the client's format: an envelope, or
// the legacy {"error", "code"}.
func (ex *exchange) handleError(w http.ResponseWriter, r *http.Request, err error) {
	s := ex.snap
	if ex.wait.disarm() {
		// The watchdog cancelled the connection's context, so the
		// connection cannot serve another request.
		w.Header().Set("Connection", "close")
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away (or half-closed its connection): there is
		// no one to answer, and returning would let net/http send an empty
		// 200 the upstream never gave. Abort the connection instead.
		if ce := s.logger.Check(zap.DebugLevel, "client canceled"); ce != nil {
			ce.Write(zap.String("path", r.URL.Path))
		}
		panic(http.ErrAbortHandler)
	}
	status := statusForError(err)
	kind := upstreamErrorKind(err)
	code := transform.StatusCode(status)
	msg := transform.StatusText(status)
	s.logger.Warn("upstream error", zap.Int("status", status), zap.String("kind", kind), zap.String("path", r.URL.Path), zap.Error(err))

	client := ex.decision.Client
	// Counted before the client is answered, so that a client that has
	// its answer finds the count already there.
	s.metrics.upstreamErrors.WithLabelValues(client, kind).Inc()
	buf := s.buffers.get()
	defer s.buffers.put(buf)
	if ex.envelope() {
		*buf = transform.AppendEnvelopeError(*buf, code, msg)
	} else {
		*buf = transform.AppendLegacyError(*buf, code, msg)
	}
	ex.upstreamError = kind
	ex.result = transform.Result{Action: transform.Rewrite, Status: status, Code: code}
	h := w.Header()
	if s.vary != "" {
		h.Set("Vary", s.vary)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(status)
	w.Write(*buf)
}
