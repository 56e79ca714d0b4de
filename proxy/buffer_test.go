package proxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// TestPooledBody checks that the envelope around a pooled buffer reads back
// exactly, whatever the reader's buffer size, and in one Read when it fits.
func TestPooledBody(t *testing.T) {
	pool := newBufferPool(1 << 20)
	tests := []struct{ name, head, buf, tail string }{
		{"envelope", `{"data":`, `{"id":1}`, `,"success":true,"message":"OK"}`},
		{"buffer only", "", "0123456789", ""},
		{"empty buffer", "<", "", ">"},
		{"large", "[", strings.Repeat("x", 100000), "]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.head + tc.buf + tc.tail
			mk := func() *pooledBody {
				b := pool.get()
				*b = append(*b, tc.buf...)
				return &pooledBody{head: tc.head, buf: b, tail: tc.tail, pool: pool}
			}
			if err := iotest.TestReader(mk(), []byte(want)); err != nil {
				t.Error(err)
			}
			if len(want) < copyBufferSize {
				p := make([]byte, copyBufferSize)
				n, err := mk().Read(p)
				if n != len(want) || err != nil || string(p[:n]) != want {
					t.Errorf("one Read: got %d %v %q; want %d", n, err, p[:n], len(want))
				}
			}
			got, err := io.ReadAll(iotest.OneByteReader(mk()))
			if err != nil || string(got) != want {
				t.Errorf("byte by byte: got %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestCopyPoolLargeLimit checks that at most maxLargeCopyBuffers large
// buffers are out at a time, that copies past the limit get small ones,
// and that returning a large buffer frees its place.
func TestCopyPoolLargeLimit(t *testing.T) {
	var p copyPool
	large := make([][]byte, 0, maxLargeCopyBuffers)
	for range maxLargeCopyBuffers {
		b := p.getLarge()
		if len(b) != largeCopyBufferSize {
			t.Fatalf("buffer %d under the limit: got %d bytes; want %d", len(large)+1, len(b), largeCopyBufferSize)
		}
		large = append(large, b)
	}
	over := p.getLarge()
	if len(over) != copyBufferSize {
		t.Errorf("buffer over the limit: got %d bytes; want %d", len(over), copyBufferSize)
	}
	p.Put(over)
	p.Put(large[0])
	if b := p.getLarge(); len(b) != largeCopyBufferSize {
		t.Errorf("buffer after one came back: got %d bytes; want %d", len(b), largeCopyBufferSize)
	} else {
		large[0] = b
	}
	for _, b := range large {
		p.Put(b)
	}
	p.Put(make([]byte, 1000)) // not the pool's: ignored
	if got := p.largeInUse.Load(); got != 0 {
		t.Errorf("large buffers in use after all came back: got %d; want 0", got)
	}
	if b := (&copyBuffers{pool: &p}).Get(); len(b) != copyBufferSize {
		t.Errorf("copyBuffers for a body of unknown length: got %d bytes; want %d", len(b), copyBufferSize)
	}
}

// TestCopyBufferChoice checks which responses ReverseProxy copies through a
// large buffer: those whose body is known, after the rewrite, to be more than
// a small buffer holds. A rewrite can change the length: a wrap keeps it
// known, a re-encoded stream makes it unknown.
func TestCopyBufferChoice(t *testing.T) {
	h, err := New(testConfig("http://127.0.0.1:1"), Options{}) // max_body_bytes: 64 KiB
	if err != nil {
		t.Fatal(err)
	}
	jsonArray := func(n int) []byte { // a JSON array of n bytes or a little more, hard to compress
		r := rand.New(rand.NewPCG(1, 2))
		b := []byte{'['}
		for len(b) < n {
			b = fmt.Appendf(b, `"%016x",`, r.Uint64())
		}
		b[len(b)-1] = ']'
		return b
	}
	gzipped := encodings[0].encode(jsonArray(200 << 10))
	tests := []struct {
		name     string
		mode     config.Mode
		method   string
		body     []byte
		encoding string
		length   int64 // the upstream's Content-Length; -1 unknown
		want     bool
	}{
		{"legacy large", config.ModeLegacy, "GET", jsonArray(40 << 10), "", 0, true},
		{"legacy small", config.ModeLegacy, "GET", jsonArray(1000), "", 0, false},
		{"legacy unknown length", config.ModeLegacy, "GET", jsonArray(40 << 10), "", -1, false},
		{"legacy HEAD", config.ModeLegacy, "HEAD", nil, "", 1 << 20, false},
		{"envelope buffered wrap", config.ModeEnvelope, "GET", jsonArray(40 << 10), "", 0, true},
		{"envelope streamed wrap", config.ModeEnvelope, "GET", jsonArray(100 << 10), "", 0, true},
		{"envelope re-encoded stream", config.ModeEnvelope, "GET", gzipped, "gzip", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ex := h.exchanges.Get().(*exchange)
			defer h.exchanges.Put(ex)
			ex.reset()
			ex.snap, ex.decision = h.current.Load(), Decision{Client: "acme", Mode: tc.mode}
			length := tc.length
			if length == 0 {
				length = int64(len(tc.body))
			}
			header := http.Header{"Content-Type": {"application/json"}}
			if length >= 0 {
				header.Set("Content-Length", itoa(int(length)))
			}
			if tc.encoding != "" {
				header.Set("Content-Encoding", tc.encoding)
			}
			var body io.ReadCloser = http.NoBody
			if tc.method != "HEAD" {
				body = io.NopCloser(bytes.NewReader(tc.body))
			}
			resp := &http.Response{StatusCode: 200, Header: header, Body: body, ContentLength: length,
				Request: httptest.NewRequest(tc.method, "/x", nil)}
			if err := ex.modifyResponse(resp); err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ex.copyBufs.large != tc.want {
				t.Errorf("large copy buffer: got %v; want %v (Content-Length sent: %d)", ex.copyBufs.large, tc.want, resp.ContentLength)
			}
		})
	}
}
