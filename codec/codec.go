// Package codec decodes and re-encodes HTTP content codings (gzip, deflate,
// br, zstd), so that a rewritten body goes back to the client in the
// encoding it was sent in, and a shadowed body can be read after the fact.
package codec

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// Codec decodes and re-encodes one Content-Encoding.
type Codec interface {
	// NewReader decodes r.
	NewReader(r io.Reader) (io.ReadCloser, error)
	// NewWriter encodes into w; Close flushes the encoding's trailer.
	NewWriter(w io.Writer) io.WriteCloser
}

// ErrUnsupported reports a Content-Encoding the proxy cannot decode;
// callers pass such bodies unchanged.
var ErrUnsupported = errors.New("unsupported content encoding")

// Set holds one Codec per supported encoding. Its codecs keep only pools
// of reusable encoders, so a Set is safe for concurrent use and one is
// shared by the whole process.
type Set struct {
	gzip    gzipCodec
	deflate deflateCodec
	br      brotliCodec
	zstd    zstdCodec
}

// Lookup returns the Codec for a Content-Encoding header value, nil for
// identity, or ErrUnsupported for anything else, stacked encodings
// included.
func (c *Set) Lookup(contentEncoding string) (Codec, error) {
	switch strings.ToLower(strings.TrimSpace(contentEncoding)) {
	case "", "identity":
		return nil, nil
	case "gzip", "x-gzip":
		return &c.gzip, nil
	case "deflate":
		return &c.deflate, nil
	case "br":
		return &c.br, nil
	case "zstd":
		return &c.zstd, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupported, contentEncoding)
}

type gzipCodec struct{ writers sync.Pool }

func (*gzipCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return gzip.NewReader(r)
}

func (c *gzipCodec) NewWriter(w io.Writer) io.WriteCloser {
	return pooledEncoder(&c.writers, w, func(w io.Writer) *gzip.Writer {
		zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
		return zw
	})
}

// deflateCodec handles HTTP's "deflate", which is zlib-wrapped (RFC 9110).
// Raw deflate streams, which some servers send instead, are decoded too;
// every re-encoded body is zlib, the form the RFC defines.
type deflateCodec struct{ writers sync.Pool }

func (*deflateCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err == nil && len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

func (c *deflateCodec) NewWriter(w io.Writer) io.WriteCloser {
	return pooledEncoder(&c.writers, w, func(w io.Writer) *zlib.Writer {
		zw, _ := zlib.NewWriterLevel(w, zlib.DefaultCompression)
		return zw
	})
}

type brotliCodec struct{ writers sync.Pool }

func (*brotliCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(brotli.NewReader(r)), nil
}

func (c *brotliCodec) NewWriter(w io.Writer) io.WriteCloser {
	return pooledEncoder(&c.writers, w, func(w io.Writer) *brotli.Writer {
		return brotli.NewWriterLevel(w, brotli.DefaultCompression)
	})
}

type zstdCodec struct{ writers sync.Pool }

func (*zstdCodec) NewReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

func (c *zstdCodec) NewWriter(w io.Writer) io.WriteCloser {
	return pooledEncoder(&c.writers, w, func(w io.Writer) *zstd.Encoder {
		zw, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
		return zw
	})
}

// resettableEncoder is an encoder that can be pointed at a new
// destination, so that it can be pooled.
type resettableEncoder interface {
	io.WriteCloser
	Reset(io.Writer)
}

// pooledEncoder returns an encoder from pool writing to w, made by create
// when the pool has none; it goes back to the pool once closed.
func pooledEncoder[E resettableEncoder](pool *sync.Pool, w io.Writer, create func(io.Writer) E) io.WriteCloser {
	e, ok := pool.Get().(E)
	if ok {
		e.Reset(w)
	} else {
		e = create(w)
	}
	return &pooledWriter{WriteCloser: e, put: func() { pool.Put(e) }}
}

// pooledWriter returns its encoder to the pool once closed; a second Close
// does not return it twice.
type pooledWriter struct {
	io.WriteCloser
	put func()
}

func (p *pooledWriter) Close() error {
	if p.put == nil {
		return nil
	}
	err := p.WriteCloser.Close()
	p.put()
	p.put = nil
	return err
}

// DecodeAll decodes a complete encoded body, appending up to limit decoded
// bytes to *dst. It reports whether the decoded body fit.
func DecodeAll(c Codec, encoded []byte, dst *[]byte, limit int64) (fit bool, err error) {
	zr, err := c.NewReader(bytes.NewReader(encoded))
	if err != nil {
		return false, err
	}
	defer zr.Close()
	return ReadUpTo(zr, dst, limit)
}

// EncodeAll encodes body with c, appending to *dst.
func EncodeAll(c Codec, body []byte, dst *[]byte) error {
	w := AppendWriter{Buf: dst}
	zw := c.NewWriter(&w)
	if _, err := zw.Write(body); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// AppendWriter appends everything written to a byte slice.
type AppendWriter struct{ Buf *[]byte }

func (w *AppendWriter) Write(p []byte) (int, error) {
	*w.Buf = append(*w.Buf, p...)
	return len(p), nil
}
