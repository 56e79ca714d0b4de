package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// modifyResponse rewrites the upstream response of ex as its snapshot's
// config says. Every mode gets the Vary header; only envelope mode has its
// body touched. Returning an error sends the client a 502 in its format.
func (s *snapshot) modifyResponse(resp *http.Response, ex *exchange) error {
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
	if ex.decision.Mode != config.ModeEnvelope || resp.Request.Method == http.MethodHead {
		ex.outcome = transform.Outcome{Action: transform.Pass, Status: resp.StatusCode}
		return nil
	}
	action, reason := transform.Decide(resp.StatusCode, resp.Header.Get("Content-Type"))
	if action == transform.Wrap && s.migrated(ex.path) {
		action, reason = transform.Pass, transform.ReasonMigrated
	}
	var err error
	switch action {
	case transform.Rewrite:
		err = s.rewriteError(resp, ex)
	case transform.Wrap:
		err = s.wrapSuccess(resp, ex)
	default:
		ex.outcome = transform.Outcome{Action: transform.Pass, Reason: reason, Status: resp.StatusCode}
	}
	return err
}

// migrated reports whether path is under a prefix whose success responses
// are already envelopes.
func (s *snapshot) migrated(path string) bool {
	for _, p := range s.migratedPrefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// rewriteError buffers an error body (bounded by max_body_bytes), decodes
// it if compressed, rewrites it and re-encodes it. A body that is too
// large, in an unknown encoding, or already an envelope passes unchanged.
func (s *snapshot) rewriteError(resp *http.Response, ex *exchange) error {
	pass := func(reason transform.Reason) {
		ex.outcome = transform.Outcome{Action: transform.Pass, Reason: reason, Status: resp.StatusCode}
	}
	c, err := s.codecs.Lookup(resp.Header.Get("Content-Encoding"))
	if err != nil {
		pass(transform.ReasonEncoding)
		return nil
	}
	if resp.ContentLength > s.maxBody {
		pass(transform.ReasonOversize)
		return nil
	}
	raw, complete, err := s.readHead(resp, "")
	if err != nil {
		return fmt.Errorf("reading upstream error body: %w", err)
	}
	if !complete {
		resp.Body = &replayBody{head: ex.body(raw, 0), rest: resp.Body}
		pass(transform.ReasonOversize)
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
			// A corrupt encoding is rewritten like any other unreadable
			// body: an envelope with the status-derived code.
			*body = (*body)[:0]
		case !fit:
			resp.Body = ex.body(raw, 0)
			pass(transform.ReasonOversize)
			return nil
		}
	}
	out := s.buffers.get()
	*out, ex.outcome = s.transformer.AppendError(*out, resp.StatusCode, *body)
	if ex.outcome.Unmapped && s.evidence {
		ex.noteUnmapped(*body, resp.Request, s.keyHeader, s.samples)
	}
	if ex.outcome.Action == transform.Pass {
		s.buffers.put(out)
		resp.Body = ex.body(raw, 0)
		return nil
	}
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
	resp.StatusCode = ex.outcome.Status
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
func (s *snapshot) readHead(resp *http.Response, prefix string) (raw *[]byte, complete bool, err error) {
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
func (s *snapshot) wrapSuccess(resp *http.Response, ex *exchange) error {
	c, err := s.codecs.Lookup(resp.Header.Get("Content-Encoding"))
	if err != nil {
		ex.outcome = transform.Outcome{Action: transform.Pass, Reason: transform.ReasonEncoding, Status: resp.StatusCode}
		return nil
	}
	ex.outcome = transform.Outcome{Action: transform.Wrap, Status: resp.StatusCode}
	if c == nil && resp.ContentLength > s.maxBody {
		return s.streamWrap(resp, ex, nil, nil, resp.Body, resp.ContentLength)
	}
	// An identity body is read in after the envelope's prefix, so that a
	// valid one becomes the envelope where it lies.
	var prefix string
	if c == nil {
		prefix = transform.SuccessPrefix()
	}
	raw, complete, err := s.readHead(resp, prefix)
	if err != nil {
		return fmt.Errorf("reading upstream body: %w", err)
	}
	if !complete {
		return s.streamWrap(resp, ex, c, raw, resp.Body, -1)
	}
	resp.Body.Close()
	if c == nil {
		if !transform.Valid((*raw)[len(prefix):]) {
			resp.Body = ex.body(raw, len(prefix))
			ex.outcome = transform.Outcome{Action: transform.Pass, Reason: transform.ReasonNotJSON, Status: resp.StatusCode}
			return nil
		}
		*raw = append(*raw, transform.SuccessSuffix()...)
		ex.setBody(resp, raw)
		ex.copyBufs.direct = *raw
		return nil
	}
	plain := s.buffers.get()
	defer s.buffers.put(plain)
	fit, err := codec.DecodeAll(c, *raw, plain, s.maxBody)
	if err != nil {
		// Corrupt or truncated encoding: the client gets the bytes
		// exactly as sent, never a wrong envelope.
		resp.Body = ex.body(raw, 0)
		ex.outcome = transform.Outcome{Action: transform.Pass, Reason: transform.ReasonEncoding, Status: resp.StatusCode}
		return nil
	}
	if !fit {
		return s.streamWrap(resp, ex, c, raw, http.NoBody, -1)
	}
	if !transform.Valid(*plain) {
		resp.Body = ex.body(raw, 0)
		ex.outcome = transform.Outcome{Action: transform.Pass, Reason: transform.ReasonNotJSON, Status: resp.StatusCode}
		return nil
	}
	// Encoded: wrap the decoded bytes, then encode the whole envelope.
	out := s.buffers.get()
	*out = transform.AppendSuccess(*out, *plain)
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

// streamWrap wraps a body too large to buffer. head, when not nil, holds
// bytes already read from the upstream by readHead: still encoded when c is
// set, and after the envelope's prefix when not. rest is the remainder.
// length is the upstream's Content-Length when known and not encoded, else
// -1.
func (s *snapshot) streamWrap(resp *http.Response, ex *exchange, c codec.Codec, head *[]byte, rest io.Reader, length int64) error {
	upstream := resp.Body
	var w *wrapReader
	if c == nil {
		// Identity: the head is checked before anything is sent, so an
		// invalid head still passes unchanged instead of aborting.
		skip := len(transform.SuccessPrefix())
		var read []byte
		if head != nil {
			read = (*head)[skip:]
		}
		var err error
		w, err = newWrapReader(read, rest, upstream)
		if err != nil {
			if head != nil {
				resp.Body = &replayBody{head: ex.body(head, skip), rest: upstream}
			}
			ex.outcome = transform.Outcome{Action: transform.Pass, Reason: transform.ReasonNotJSON, Status: resp.StatusCode}
			return nil
		}
		if head != nil {
			s.buffers.put(head)
		}
	} else {
		// Encoded: the head is still compressed; decode head and rest as
		// one stream and check it as it goes.
		var src io.Reader = rest
		if head != nil {
			h := append([]byte(nil), *head...)
			s.buffers.put(head)
			src = io.MultiReader(&byteReader{b: h}, rest)
		}
		zr, err := c.NewReader(src)
		if err != nil {
			return fmt.Errorf("decoding upstream body: %w", err)
		}
		if w, err = newWrapReader(nil, zr, multiCloser{zr, upstream}); err != nil {
			return err
		}
	}
	var body io.ReadCloser = w
	if c != nil {
		body = newEncodeReader(c, w)
		length = -1
	}
	resp.Body = body
	if length >= 0 {
		length += int64(transform.WrapOverhead)
	}
	resp.ContentLength = length
	transform.SetRewrittenHeaders(resp.Header, int(length))
	if length < 0 {
		resp.Header.Del("Content-Length")
	} else {
		resp.Header.Set("Content-Length", strconv.FormatInt(length, 10))
	}
	return nil
}

// byteReader reads a byte slice; unlike bytes.Reader it keeps no seek state.
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// addVary adds the routing headers to Vary, so a shared cache keys the
// response by client, unless the upstream already said Vary: *. A response
// without Vary gets the snapshot's shared value slice, which nothing
// writes to (ReverseProxy copies it into the client's headers), so the
// common case allocates nothing.
func (s *snapshot) addVary(h http.Header) {
	vs, ok := h["Vary"]
	if !ok {
		h["Vary"] = s.varyValues
		return
	}
	for _, v := range vs {
		if strings.TrimSpace(v) == "*" {
			return
		}
	}
	h["Vary"] = append(vs, s.vary)
}
