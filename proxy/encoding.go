package proxy

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

// codec decodes and re-encodes one Content-Encoding, so that a rewritten
// body goes back to the client in the encoding it was sent in.
type codec interface {
	// newReader decodes r.
	newReader(r io.Reader) (io.ReadCloser, error)
	// newWriter encodes into w; Close flushes the encoding's trailer.
	newWriter(w io.Writer) io.WriteCloser
}

var errUnsupportedEncoding = errors.New("unsupported content encoding")

// codecs holds one codec per supported encoding; the codecs keep only
// pools of reusable encoders, which are safe for concurrent use.
type codecs struct {
	gzip    gzipCodec
	deflate deflateCodec
	br      brotliCodec
	zstd    zstdCodec
}

// lookup returns the codec for a Content-Encoding header value, nil for
// identity, or errUnsupportedEncoding for anything else, stacked
// encodings included.
func (c *codecs) lookup(contentEncoding string) (codec, error) {
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
	return nil, fmt.Errorf("%w: %q", errUnsupportedEncoding, contentEncoding)
}

type gzipCodec struct{ writers sync.Pool }

func (*gzipCodec) newReader(r io.Reader) (io.ReadCloser, error) {
	return gzip.NewReader(r)
}

func (c *gzipCodec) newWriter(w io.Writer) io.WriteCloser {
	if zw, ok := c.writers.Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return &pooledWriter{WriteCloser: zw, put: func() { c.writers.Put(zw) }}
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	return &pooledWriter{WriteCloser: zw, put: func() { c.writers.Put(zw) }}
}

// deflateCodec handles HTTP's "deflate", which is zlib-wrapped (RFC 9110).
// Raw deflate streams, which some servers send instead, are decoded too;
// every re-encoded body is zlib, the form the RFC defines.
type deflateCodec struct{}

func (*deflateCodec) newReader(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReader(r)
	head, err := br.Peek(2)
	if err == nil && len(head) == 2 && head[0]&0x0f == 8 && (uint16(head[0])<<8|uint16(head[1]))%31 == 0 {
		return zlib.NewReader(br)
	}
	return flate.NewReader(br), nil
}

func (*deflateCodec) newWriter(w io.Writer) io.WriteCloser {
	zw, _ := zlib.NewWriterLevel(w, zlib.DefaultCompression)
	return zw
}

type brotliCodec struct{}

func (*brotliCodec) newReader(r io.Reader) (io.ReadCloser, error) {
	return io.NopCloser(brotli.NewReader(r)), nil
}

func (*brotliCodec) newWriter(w io.Writer) io.WriteCloser {
	return brotli.NewWriterLevel(w, brotli.DefaultCompression)
}

type zstdCodec struct{ writers sync.Pool }

func (*zstdCodec) newReader(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

func (c *zstdCodec) newWriter(w io.Writer) io.WriteCloser {
	if zw, ok := c.writers.Get().(*zstd.Encoder); ok {
		zw.Reset(w)
		return &pooledWriter{WriteCloser: zw, put: func() { c.writers.Put(zw) }}
	}
	zw, _ := zstd.NewWriter(w, zstd.WithEncoderConcurrency(1))
	return &pooledWriter{WriteCloser: zw, put: func() { c.writers.Put(zw) }}
}

// pooledWriter returns its encoder to the pool once closed.
type pooledWriter struct {
	io.WriteCloser
	put func()
}

func (p *pooledWriter) Close() error {
	err := p.WriteCloser.Close()
	p.put()
	return err
}

// decodeAll decodes a complete encoded body, up to limit decoded bytes.
// It reports whether the decoded body fit.
func decodeAll(c codec, encoded []byte, dst *[]byte, limit int64) (fit bool, err error) {
	zr, err := c.newReader(bytes.NewReader(encoded))
	if err != nil {
		return false, err
	}
	defer zr.Close()
	return readUpTo(zr, dst, limit)
}

// encodeAll encodes body with c into dst.
func encodeAll(c codec, body []byte, dst *[]byte) error {
	w := appendWriter{buf: dst}
	zw := c.newWriter(&w)
	if _, err := zw.Write(body); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}

// appendWriter appends everything written to a byte slice.
type appendWriter struct{ buf *[]byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	*w.buf = append(*w.buf, p...)
	return len(p), nil
}
