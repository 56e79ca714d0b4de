package proxy

import (
	"fmt"
	"net/http"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// rewriteResponse notes the upstream's answer and, for an envelope client,
// decides what to do with it: rewrite an error, wrap a success, or pass.
func (ex *exchange) rewriteResponse(resp *http.Response) error {
	s := ex.snap
	ex.upstreamStatus = resp.StatusCode
	if !ex.upstreamStart.IsZero() {
		ex.upstreamTime = time.Since(ex.upstreamStart)
		s.metrics.upstreamDuration.Observe(ex.upstreamTime.Seconds())
	}
	if s.vary != "" {
		s.addVary(resp.Header)
	}
	if ex.shadow.active {
		ex.shadow.respHeader = resp.Header.Clone()
		resp.Body = &teeBody{ReadCloser: resp.Body, c: &ex.shadow}
	}
	if !ex.envelope() {
		ex.result = transform.Result{Action: transform.Pass, Status: resp.StatusCode}
		return nil
	}
	action, reason := transform.Decide(resp.StatusCode, resp.Header.Get("Content-Type"))
	if action == transform.Wrap && s.migrated(ex.path) {
		action, reason = transform.Pass, transform.ReasonMigrated
	}
	var err error
	switch action {
	case transform.Rewrite:
		err = ex.rewriteError(resp)
	case transform.Wrap:
		err = ex.wrapSuccess(resp)
	default:
		ex.pass(resp, reason)
	}
	if err != nil {
		return err
	}
	ex.markValidators(resp)
	if ex.rangeSpec != "" {
		ex.serveRange(resp)
	}
	if ex.headAsGet {
		// The client asked for HEAD: it gets the GET's status and headers,
		// Content-Length included, and no body, which is not read further
		// than the rewrite needed.
		resp.Body.Close()
		resp.Body, ex.copyBufs.direct = http.NoBody, nil
	}
	return nil
}

// pass notes that the response goes to the client unchanged, and why.
func (ex *exchange) pass(resp *http.Response, reason transform.Reason) {
	ex.result = transform.Result{Action: transform.Pass, Reason: reason, Status: resp.StatusCode}
}

// rewriteError buffers an error body (bounded by max_body_bytes), decodes
// it if compressed, rewrites it and re-encodes it. A body that is too
// large, in an unknown encoding, or already an envelope passes unchanged.
func (ex *exchange) rewriteError(resp *http.Response) error {
	s := ex.snap
	c, err := s.codecs.Lookup(resp.Header.Get("Content-Encoding"))
	if err != nil {
		ex.pass(resp, transform.ReasonEncoding)
		return nil
	}
	if resp.ContentLength > s.maxBody {
		ex.pass(resp, transform.ReasonOversize)
		return nil
	}
	raw, complete, err := ex.readHead(resp, "")
	if err != nil {
		return fmt.Errorf("reading upstream error body: %w", err)
	}
	if !complete {
		resp.Body = &replayBody{head: ex.body(raw, 0), rest: resp.Body}
		ex.pass(resp, transform.ReasonOversize)
		return nil
	}
	resp.Body.Close()
	body := raw
	if c != nil {
		body = s.buffers.get()
		defer s.buffers.put(body)
		fit, err := codec.DecodeAll(c, *raw, body, s.maxBody)
		switch {
		case err != nil:
			// The upstream's body does not decode as it says it is
			// encoded: there is no telling what it said, so the client
			// gets the proxy's 502, not a guess at the envelope.
			s.buffers.put(raw)
			return badEncoding(err)
		case !fit:
			resp.Body = ex.body(raw, 0)
			ex.pass(resp, transform.ReasonOversize)
			return nil
		}
	}
	out := s.buffers.get()
	*out, ex.result = s.transformer.AppendError(*out, resp.StatusCode, *body)
	if ex.result.Unmapped && s.recording {
		ex.noteUnmapped(*body, resp.Request)
	}
	if ex.result.Action == transform.Pass {
		s.buffers.put(out)
		resp.Body = ex.body(raw, 0)
		return nil
	}
	ex.checkContract(*out, false, false)
	if c != nil {
		enc := s.buffers.get()
		if err := codec.EncodeAll(c, *out, enc); err != nil {
			s.buffers.put(enc)
			s.buffers.put(out)
			s.buffers.put(raw)
			return fmt.Errorf("re-encoding rewritten body: %w", err)
		}
		s.buffers.put(out)
		out = enc
	}
	s.buffers.put(raw)
	resp.StatusCode = ex.result.Status
	resp.Status = ""
	ex.setBody(resp, out)
	return nil
}

// readHead reads the upstream body into a pooled buffer, up to
// max_body_bytes (one byte more tells a larger body), after the given
// prefix: the body starts at (*raw)[len(prefix):]. complete reports that
// the whole body fit; on an error the buffer is already back in the pool.
// The buffer has room for the success suffix after a body of the announced
// length, so that an envelope can be completed in place.
func (ex *exchange) readHead(resp *http.Response, prefix string) (raw *[]byte, complete bool, err error) {
	s := ex.snap
	raw = s.buffers.getFor(resp.ContentLength, s.maxBody, transform.WrapOverhead)
	*raw = append(*raw, prefix...)
	complete, err = codec.ReadUpTo(resp.Body, raw, s.maxBody+int64(len(prefix)))
	if err != nil {
		s.buffers.put(raw)
		return nil, false, err
	}
	return raw, complete, nil
}

// setBody replaces resp's body with a pooled buffer and fixes its headers.
func (ex *exchange) setBody(resp *http.Response, out *[]byte) {
	resp.Body = ex.body(out, 0)
	resp.ContentLength = int64(len(*out))
	transform.SetRewrittenHeaders(resp.Header, len(*out))
	resp.TransferEncoding = nil
}

// wrapSuccess puts a 2xx JSON body into the success envelope. A body that
// fits in max_body_bytes is buffered and checked to be exactly one JSON
// value (else it passes unchanged); a larger one is wrapped while it
// streams, checked incrementally, and aborted if it turns out invalid.
func (ex *exchange) wrapSuccess(resp *http.Response) error {
	s := ex.snap
	c, err := s.codecs.Lookup(resp.Header.Get("Content-Encoding"))
	if err != nil {
		ex.pass(resp, transform.ReasonEncoding)
		return nil
	}
	ex.result = transform.Result{Action: transform.Wrap, Status: resp.StatusCode}
	if c == nil && resp.ContentLength > s.maxBody {
		return ex.streamWrap(resp, nil, nil, resp.Body, resp.ContentLength)
	}
	// An identity body is read in after the envelope's prefix, so that a
	// valid one becomes the envelope where it lies.
	var prefix string
	if c == nil {
		prefix = transform.SuccessPrefix()
	}
	raw, complete, err := ex.readHead(resp, prefix)
	if err != nil {
		return fmt.Errorf("reading upstream body: %w", err)
	}
	if !complete {
		return ex.streamWrap(resp, c, raw, resp.Body, -1)
	}
	resp.Body.Close()
	if c == nil {
		if !transform.Valid((*raw)[len(prefix):]) {
			resp.Body = ex.body(raw, len(prefix))
			ex.pass(resp, transform.ReasonNotJSON)
			return nil
		}
		*raw = append(*raw, transform.SuccessSuffix()...)
		ex.checkContract(*raw, false, true)
		ex.setBody(resp, raw)
		ex.copyBufs.direct = *raw
		return nil
	}
	plain := s.buffers.get()
	defer s.buffers.put(plain)
	fit, err := codec.DecodeAll(c, *raw, plain, s.maxBody)
	if err != nil {
		// Corrupt or truncated encoding: the client gets the proxy's
		// 502, never a wrong envelope nor bytes labelled as what they
		// are not.
		s.buffers.put(raw)
		return badEncoding(err)
	}
	if !fit {
		return ex.streamWrap(resp, c, raw, http.NoBody, -1)
	}
	if !transform.Valid(*plain) {
		resp.Body = ex.body(raw, 0)
		ex.pass(resp, transform.ReasonNotJSON)
		return nil
	}
	// Encoded: wrap the decoded bytes, then encode the whole envelope.
	out := s.buffers.get()
	*out = transform.AppendSuccess(*out, *plain)
	ex.checkContract(*out, false, true)
	enc := s.buffers.get()
	err = codec.EncodeAll(c, *out, enc)
	s.buffers.put(out)
	s.buffers.put(raw)
	if err != nil {
		s.buffers.put(enc)
		return fmt.Errorf("re-encoding wrapped body: %w", err)
	}
	ex.setBody(resp, enc)
	return nil
}
