package proxy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// streamWrap wraps a body too large to buffer. head, when not nil, holds
// bytes already read from the upstream by readHead: still encoded when c is
// set, and after the envelope's prefix when not. rest is the remainder.
// length is the upstream's Content-Length when known and not encoded, else
// -1.
func (ex *exchange) streamWrap(resp *http.Response, c codec.Codec, head *[]byte, rest io.Reader, length int64) error {
	s := ex.snap
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
			ex.pass(resp, transform.ReasonNotJSON)
			return nil
		}
		if head != nil {
			s.buffers.put(head)
		}
	} else {
		// Encoded: the head is still compressed; decode head and rest as
		// one stream and check it as it goes.
		source := &sourceReader{r: rest}
		var src io.Reader = source
		if head != nil {
			h := append([]byte(nil), *head...)
			s.buffers.put(head)
			src = io.MultiReader(&byteReader{b: h}, source)
		}
		zr, err := c.NewReader(src)
		if err != nil {
			if source.err != nil {
				return fmt.Errorf("reading upstream body: %w", source.err)
			}
			return badEncoding(err)
		}
		if w, err = newWrapReader(nil, zr, multiCloser{zr, upstream}); err != nil {
			return err
		}
		w.source = source
	}
	w.failed = &ex.bodyErr
	ex.checkContract(nil, true, false)
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

// errInvalidStream aborts a streamed wrap whose body turned out not to be
// one JSON value: the client's connection is cut rather than finished as a
// well-formed but wrong envelope.
var errInvalidStream = errors.New("upstream body is not a single JSON value")

// wrapReader streams a success body inside the envelope: the prefix, the
// upstream bytes as they arrive (checked by an incremental scanner), then
// the suffix once the scanner has seen exactly one complete JSON value.
// Memory stays constant whatever the body's size.
type wrapReader struct {
	head    []byte // prefix and bytes already read, still to send
	src     io.Reader
	closer  io.Closer
	scanner transform.Scanner
	tail    string // the suffix, sent once src ends validly
	done    bool
	err     error
	// source is the upstream body under a decoder (nil when src is the
	// upstream body itself), so that an error of the decoder's own is told
	// from one of the upstream's; failed, when set, receives the error that
	// ends the stream, for the exchange's record.
	source *sourceReader
	failed *error
}

// newWrapReader starts a streamed wrap. read holds bytes already taken from
// src (at most max_body_bytes, so a small copy); they are checked before
// any byte is sent, so an invalid head is reported here and the caller can
// still pass the body unchanged.
func newWrapReader(read []byte, src io.Reader, closer io.Closer) (*wrapReader, error) {
	w := &wrapReader{src: src, closer: closer, tail: transform.SuccessSuffix()}
	if _, err := w.scanner.Write(read); err != nil {
		return nil, err
	}
	w.head = make([]byte, 0, len(transform.SuccessPrefix())+len(read))
	w.head = append(w.head, transform.SuccessPrefix()...)
	w.head = append(w.head, read...)
	return w, nil
}

func (w *wrapReader) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if len(w.head) > 0 {
		n := copy(p, w.head)
		w.head = w.head[n:]
		return n, nil
	}
	if w.done {
		if w.tail == "" {
			return 0, io.EOF
		}
		n := copy(p, w.tail)
		w.tail = w.tail[n:]
		return n, nil
	}
	n, err := w.src.Read(p)
	if n > 0 {
		if _, serr := w.scanner.Write(p[:n]); serr != nil {
			w.err = fmt.Errorf("%w: %v", errInvalidStream, serr)
			return 0, w.err
		}
	}
	switch {
	case err == io.EOF:
		if serr := w.scanner.Close(); serr != nil {
			w.err = fmt.Errorf("%w: %v", errInvalidStream, serr)
			return 0, w.err
		}
		w.done = true
		return n, nil
	case err != nil:
		if w.source != nil && w.source.err == nil {
			err = badEncoding(err)
		}
		w.err = err
		if w.failed != nil {
			*w.failed = err
		}
		return n, err
	}
	return n, nil
}

// sourceReader reads the upstream body under a decoder and keeps the
// upstream's own read error.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (w *wrapReader) Close() error { return w.closer.Close() }

// encodeReader re-encodes a stream: it reads plain bytes from src and
// serves them compressed with the response's original Content-Encoding.
type encodeReader struct {
	src    io.ReadCloser
	zw     io.WriteCloser
	out    []byte // encoded bytes not yet returned
	outBuf *[]byte
	in     []byte
	closed bool
	err    error
}

func newEncodeReader(c codec.Codec, src io.ReadCloser) *encodeReader {
	e := &encodeReader{src: src, in: make([]byte, copyBufferSize)}
	buf := make([]byte, 0, copyBufferSize)
	e.outBuf = &buf
	e.zw = c.NewWriter(&codec.AppendWriter{Buf: e.outBuf})
	return e
}

func (e *encodeReader) Read(p []byte) (int, error) {
	for {
		if len(e.out) > 0 {
			n := copy(p, e.out)
			e.out = e.out[n:]
			return n, nil
		}
		if e.err != nil {
			return 0, e.err
		}
		*e.outBuf = (*e.outBuf)[:0]
		n, err := e.src.Read(e.in)
		if n > 0 {
			if _, werr := e.zw.Write(e.in[:n]); werr != nil {
				e.err = werr
			}
		}
		switch {
		case err == io.EOF:
			if cerr := e.zw.Close(); cerr != nil {
				e.err = cerr
			} else {
				e.err = io.EOF
			}
			e.closed = true
		case err != nil:
			e.err = err
		}
		e.out = *e.outBuf
	}
}

func (e *encodeReader) Close() error {
	if !e.closed {
		e.closed = true
		e.zw.Close()
	}
	return e.src.Close()
}

// multiCloser closes the decoder and the upstream body together.
type multiCloser []io.Closer

func (m multiCloser) Close() error {
	var first error
	for _, c := range m {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
