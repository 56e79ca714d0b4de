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
	if ex.reqBody != nil && ex.reqBody.clientFailed() {
		// The transport stopped because the client's own body broke
		// off: the client's error, not the upstream's. It is answered
		// even when net/http has canceled the request's context: a client
		// that half-closed its connection after a short body cancels it
		// too, and still reads the answer.
		ex.answerClientError(w, r, err)
		return
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away: there is no one to answer, and returning
		// would let net/http send an empty 200 the upstream never gave.
		// Abort the connection instead.
		if ce := s.logger.Check(zap.DebugLevel, "client canceled"); ce != nil {
			ce.Write(zap.String("path", r.URL.Path))
		}
		panic(http.ErrAbortHandler)
	}
	status := statusForError(err)
	kind := upstreamErrorKind(err)
	s.logger.Warn("upstream error", zap.Int("status", status), zap.String("kind", kind), zap.String("path", r.URL.Path), zap.Error(err))
	// Counted before the client is answered, so that a client that has
	// its answer finds the count already there.
	s.metrics.upstreamErrors.WithLabelValues(ex.decision.Client, kind).Inc()
	ex.upstreamError = kind
	ex.answer(w, status)
}

// answerClientError answers a request whose body the client could not
// send whole (bad chunking, fewer bytes than its Content-Length, a client
// that stopped sending) with a 400 in its format, logged and counted as
// the client's error; when the client has gone, the write goes nowhere.
func (ex *exchange) answerClientError(w http.ResponseWriter, r *http.Request, err error) {
	s := ex.snap
	s.logger.Info("client request body error", zap.String("client", ex.decision.Client), zap.String("path", r.URL.Path), zap.Error(err))
	s.metrics.clientErrors.WithLabelValues(ex.decision.Client, clientRequestBody).Inc()
	ex.clientError = clientRequestBody
	// The rest of the body cannot be read: the connection is not reused.
	w.Header().Set("Connection", "close")
	ex.answer(w, http.StatusBadRequest)
}

// answer writes the proxy's own answer with status, in the client's
// format: an envelope, or the legacy {"error", "code"}.
func (ex *exchange) answer(w http.ResponseWriter, status int) {
	s := ex.snap
	code := transform.StatusCode(status)
	msg := transform.StatusText(status)
	buf := s.buffers.get()
	defer s.buffers.put(buf)
	ex.result = transform.Result{Action: transform.Rewrite, Status: status, Code: code}
	if ex.envelope() {
		*buf = transform.AppendEnvelopeError(*buf, code, msg)
		ex.checkContract(*buf, false, false)
	} else {
		*buf = transform.AppendLegacyError(*buf, code, msg)
	}
	h := w.Header()
	if s.vary != "" {
		h.Set("Vary", s.vary)
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(*buf)))
	w.WriteHeader(status)
	w.Write(*buf)
}
