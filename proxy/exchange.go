package proxy

import (
	"errors"
	"log"
	"net/http"
	"net/http/httputil"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"go.uber.org/zap"
)

// exchange is one request from arrival to its access log line: the state
// the ReverseProxy's hooks share, and the steps they take, as methods that
// read the settings through ex.snap. A request's path through the proxy is
// begin, then rewrite (Rewrite), then modifyResponse (ModifyResponse, in
// response.go) or handleError (ErrorHandler, in errors.go), then finish.
// Exchanges are pooled.
//
// Each exchange carries its own httputil.ReverseProxy whose hooks are the
// exchange's methods, bound once when the exchange is first made: the hooks
// reach their request's state directly instead of through a context value,
// which would cost a context and a copy of the request per request.
// ReverseProxy keeps no state of its own between calls, so a pooled one is
// as good as a shared one; only Transport changes with the snapshot.
type exchange struct {
	snap           *snapshot
	rp             httputil.ReverseProxy
	decision       Decision
	method         string
	path           string
	rawQuery       string
	start          time.Time
	upstreamStart  time.Time
	upstreamStatus int
	upstreamTime   time.Duration
	// upstreamError is the kind of upstream failure, "" when none, and
	// clientError the kind of the client's own, "" when none.
	upstreamError string
	clientError   string
	// buffered reports a request body read whole before the upstream was
	// dialled, and bufferedBody holds it when it was not empty, until
	// finish gives its buffer back.
	buffered     bool
	bufferedBody *bufferedBody
	// bodyErr is the error that cut a streamed body short, nil when none.
	bodyErr error
	// headAsGet reports an envelope client's HEAD sent upstream as a GET,
	// so that its answer is the GET's without the body. rangeSpec,
	// ifRange and ifNoneMatch are the envelope client's Range, If-Range
	// and If-None-Match, which the proxy answers for itself.
	headAsGet   bool
	rangeSpec   string
	ifRange     string
	ifNoneMatch string
	result      transform.Result
	w           clientWriter
	// respBody is the rewritten response's body (see body).
	respBody pooledBody
	// copyBufs is the ReverseProxy's BufferPool, told by modifyResponse
	// whether the body is large.
	copyBufs copyBuffers
	// accessFields and keyIDHex hold the access log line while it is
	// written: a variadic slice of 18 fields built per request would be a
	// 1 KiB allocation per request, as zap's Write keeps no reference.
	accessFields [18]zap.Field
	keyIDHex     [2 * len(Decision{}.KeyID)]byte
	// reqBody is the client's request body, nil when it had none. Unlike
	// respBody it is allocated per request: the transport may still read
	// or close it after ServeHTTP has returned and the exchange is reused.
	reqBody *requestBody
	shadow  shadowCapture
	// reqHeader is the client's request header, read only, and
	// contractEnvelope the envelope handed to the contract checks.
	reqHeader        http.Header
	contractEnvelope event.Envelope
	// record is the event handed to the dashboard's recorder;
	// unmappedCode is an unmapped error's legacy code and unmappedBody
	// the reused copy of its body.
	record            event.Request
	unmappedCode      string
	unmappedBody      []byte
	unmappedTruncated bool
}

// newExchange makes a pooled exchange and binds its ReverseProxy's hooks
// to it.
func newExchange(copies *copyPool, errorLog *log.Logger) *exchange {
	ex := new(exchange)
	ex.copyBufs.pool = copies
	ex.rp = httputil.ReverseProxy{
		Rewrite:        ex.rewrite,
		ModifyResponse: ex.modifyResponse,
		ErrorHandler:   ex.handleError,
		BufferPool:     &ex.copyBufs,
		// No flush timer: clientWriter flushes every body write, so a
		// passed-through body reaches the client as it arrives.
		// ReverseProxy still flushes at once (head included) for responses
		// of unknown length and event streams. FlushInterval -1 would also
		// push the head of every response ahead of its body, at the cost
		// of a timer per response: about 10% of the throughput on small
		// responses.
		FlushInterval: 0,
		ErrorLog:      errorLog,
	}
	return ex
}

// reset readies a pooled exchange for its next request: every field is
// zero but the ReverseProxy bound to it, its copy pool and the buffer kept
// for unmapped bodies. It clears the exchange in place: building the new
// value as a composite literal would put a 2.4 KiB temporary in
// ServeHTTP's frame, which stays on the stack of every request waiting for
// its upstream and, with 1,000 of them, doubles their stacks.
func (ex *exchange) reset() {
	rp, pool, unmapped := ex.rp, ex.copyBufs.pool, ex.unmappedBody[:0]
	*ex = exchange{}
	ex.rp, ex.copyBufs.pool, ex.unmappedBody = rp, pool, unmapped
}

// begin starts the exchange of r on snapshot s: the request is routed,
// once, and its body wrapped to be counted (and teed aside when shadowed).
func (ex *exchange) begin(s *snapshot, w http.ResponseWriter, r *http.Request) {
	ex.reset()
	ex.snap, ex.decision, ex.start = s, s.router.Route(r), time.Now()
	ex.method, ex.path, ex.rawQuery, ex.reqHeader = r.Method, r.URL.Path, r.URL.RawQuery, r.Header
	ex.rp.Transport = s.transport
	ex.w.ResponseWriter = w
	ex.w.flusher, _ = w.(http.Flusher)
	if ce := s.logger.Check(zap.DebugLevel, "routed"); ce != nil {
		ce.Write(zap.String("client", ex.decision.Client), zap.String("key_id", ex.decision.KeyIDString()),
			zap.String("mode", string(ex.decision.Mode)), zap.Bool("overridden", ex.decision.Overridden))
	}
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// net/http has already dropped any Content-Length that came with
		// Transfer-Encoding, so such a request cannot be told from a plain
		// chunked one here; RFC 9112 section 6.1 requires closing the
		// connection after it, so every chunked request closes it. The
		// upstream only ever sees the one unambiguous request.
		w.Header().Set("Connection", "close")
	}
	ex.admitShadow(r)
}

// readRequest buffers the request's body (bufferRequest) and wraps it to be
// counted, and teed aside when shadowed, as the upstream reads it. An error
// is the client's: its body could not be read.
func (ex *exchange) readRequest(r *http.Request) error {
	if err := ex.bufferRequest(r); err != nil {
		return err
	}
	if r.Body != nil && r.Body != http.NoBody {
		ex.reqBody = &requestBody{ReadCloser: r.Body}
		if ex.shadow.replayable {
			ex.reqBody.limit, ex.reqBody.capturing = ex.shadow.maxRequestBytes, true
		}
		r.Body = ex.reqBody
	}
	return nil
}

// rewrite is the ReverseProxy's Rewrite: the upstream URL, X-Forwarded-*,
// and the override header removed. An envelope client's request is made
// one the upstream can answer without knowing the envelope exists: its
// HEAD goes as a GET, so that the answer is what its GET would get, and
// its validators and ranges, which name envelope bytes, are translated or
// kept for the proxy to answer (validators.go, ranges.go).
func (ex *exchange) rewrite(pr *httputil.ProxyRequest) {
	s := ex.snap
	pr.SetURL(s.target)
	pr.SetXForwarded()
	if s.overrideHeader != "" {
		pr.Out.Header.Del(s.overrideHeader)
	}
	if ex.envelope() {
		h := pr.Out.Header
		if pr.Out.Method == http.MethodHead {
			pr.Out.Method, ex.headAsGet = http.MethodGet, true
		}
		ex.rangeSpec, ex.ifRange = headerValue(h, "Range"), headerValue(h, "If-Range")
		ex.ifNoneMatch = strings.Join(h["If-None-Match"], ", ")
		s.translatePreconditions(h)
	}
	ex.upstreamStart = time.Now()
	if ex.buffered {
		// The body is here whole: no need to wait for the upstream's
		// 100 Continue before sending it.
		delete(pr.Out.Header, "Expect")
	}
	if ex.shadow.active {
		// ReverseProxy has already removed the hop-by-hop headers: what
		// is left is what the candidate gets.
		ex.shadow.reqHeader = pr.Out.Header.Clone()
	}
}

// modifyResponse is the ReverseProxy's ModifyResponse: it rewrites the
// upstream response as the client's mode says. Every mode gets the Vary
// header; only envelope mode has its body touched. Returning an error
// sends the client a 502 in its format.
func (ex *exchange) modifyResponse(resp *http.Response) error {
	err := ex.rewriteResponse(resp)
	// A HEAD response has a length but no body to copy.
	ex.copyBufs.large = resp.ContentLength > copyBufferSize && resp.Body != http.NoBody
	return err
}

// finish records the finished exchange: metrics, the access log, the shadow
// hand-over and the evidence, then lets go of what the pool must not keep.
func (ex *exchange) finish() {
	s := ex.snap
	elapsed := time.Since(ex.start)
	if errors.Is(ex.bodyErr, errBadEncoding) && ex.upstreamError == "" {
		// The client's connection was cut mid-body: the upstream sent
		// what it said was encoded and was not.
		ex.upstreamError = upstreamBadEncoding
		s.metrics.upstreamErrors.WithLabelValues(ex.decision.Client, upstreamBadEncoding).Inc()
	}
	ex.observe(elapsed)
	if s.settings.AccessLog {
		ex.logAccess(elapsed)
	}
	if ex.shadow.active {
		ex.submitShadow(elapsed)
	}
	if s.recording {
		ex.recordRequest(elapsed)
	}
	if ex.bufferedBody != nil {
		ex.bufferedBody.Close()
	}
	if cap(ex.unmappedBody) > maxUnmappedCapture {
		ex.unmappedBody = nil
	}
	ex.w.ResponseWriter, ex.w.flusher = nil, nil
	ex.reqBody, ex.snap, ex.rp.Transport, ex.reqHeader = nil, nil, nil, nil
}

// body returns the exchange's own pooledBody, set to send (*buf)[off:] and
// to return buf to the snapshot's pool on Close. An exchange carries one
// response, whose body the ReverseProxy closes before ServeHTTP returns, so
// the body needs no allocation of its own.
func (ex *exchange) body(buf *[]byte, off int) *pooledBody {
	ex.respBody = pooledBody{buf: buf, off: off, pool: ex.snap.buffers}
	return &ex.respBody
}

// bytesIn returns how many request body bytes the upstream has read.
func (ex *exchange) bytesIn() int64 {
	if ex.reqBody == nil {
		return 0
	}
	return ex.reqBody.n.Load()
}

// headerValue is h's first value of the canonical key, without the
// canonicalisation Header.Get pays for.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// envelope reports whether the client gets the envelope.
func (ex *exchange) envelope() bool { return ex.decision.Mode == config.ModeEnvelope }
