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

// TestPooledBody checks that a pooled buffer reads back exactly from its
// offset, whatever the reader's buffer size, and in one Read when it fits.
func TestPooledBody(t *testing.T) {
	pool := newBufferPool(1 << 20)
	tests := []struct {
		name string
		buf  string
		off  int
	}{
		{"envelope built in place", `{"data":{"id":1},"success":true,"message":"OK"}`, 0},
		{"after a prefix", `{"data":0123456789`, len(`{"data":`)},
		{"empty buffer", "", 0},
		{"all skipped", "<>", 2},
		{"large", "[" + strings.Repeat("x", 100000) + "]", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.buf[tc.off:]
			mk := func() *pooledBody {
				b := pool.get()
				*b = append(*b, tc.buf...)
				return &pooledBody{buf: b, off: tc.off, pool: pool}
			}
			if err := iotest.TestReader(mk(), []byte(want)); err != nil {
				t.Error(err)
			}
			if len(want) < copyBufferSize {
				p := make([]byte, copyBufferSize)
				n, err := mk().Read(p)
				if want == "" {
					if n != 0 || err != io.EOF {
						t.Errorf("one Read: got %d %v; want 0 EOF", n, err)
					}
				} else if n != len(want) || err != nil || string(p[:n]) != want {
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
	h, err := New(settingsOf(testConfig("http://127.0.0.1:1")), Options{}) // max_body_bytes: 64 KiB
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
		large    bool  // a large copy buffer
		direct   bool  // the body copied from its own buffer
	}{
		{"legacy large", config.ModeLegacy, "GET", jsonArray(40 << 10), "", 0, true, false},
		{"legacy small", config.ModeLegacy, "GET", jsonArray(1000), "", 0, false, false},
		{"legacy unknown length", config.ModeLegacy, "GET", jsonArray(40 << 10), "", -1, false, false},
		{"legacy HEAD", config.ModeLegacy, "HEAD", nil, "", 1 << 20, false, false},
		{"envelope buffered wrap", config.ModeEnvelope, "GET", jsonArray(40 << 10), "", 0, true, true},
		{"envelope small buffered wrap", config.ModeEnvelope, "GET", jsonArray(1000), "", 0, false, true},
		{"envelope buffered wrap of unknown length", config.ModeEnvelope, "GET", jsonArray(40 << 10), "", -1, true, true},
		{"envelope invalid body passes", config.ModeEnvelope, "GET", append(jsonArray(40<<10), ','), "", 0, true, false},
		{"envelope streamed wrap", config.ModeEnvelope, "GET", jsonArray(100 << 10), "", 0, true, false},
		{"envelope buffered gzip wrap", config.ModeEnvelope, "GET", encodings[0].encode(jsonArray(1000)), "gzip", 0, false, false},
		{"envelope re-encoded stream", config.ModeEnvelope, "GET", gzipped, "gzip", 0, false, false},
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
			if ex.copyBufs.large != tc.large {
				t.Errorf("large copy buffer: got %v; want %v (Content-Length sent: %d)", ex.copyBufs.large, tc.large, resp.ContentLength)
			}
			if got := ex.copyBufs.direct != nil; got != tc.direct {
				t.Fatalf("copied from its own buffer: got %v; want %v", got, tc.direct)
			}
			if !tc.direct {
				return
			}
			// The copy loop's one Read into the buffer Get gives finds the
			// whole envelope already there.
			buf := ex.copyBufs.Get()
			n, err := resp.Body.Read(buf)
			want := `{"data":` + string(tc.body) + `,"success":true,"message":"OK"}`
			if err != nil || string(buf[:n]) != want {
				t.Errorf("one Read: got %d bytes %.40q, %v; want %d bytes %.40q", n, buf[:n], err, len(want), want)
			}
			if n, err := resp.Body.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("Read after the body: got %d, %v; want 0, EOF", n, err)
			}
			if resp.ContentLength != int64(len(want)) {
				t.Errorf("ContentLength: got %d; want %d", resp.ContentLength, len(want))
			}
			ex.copyBufs.Put(buf)
		})
	}
}

// TestCopyBuffersDirectNotPooled checks that the body's own buffer, handed
// to the copy loop, is not taken into the copy pool when the loop gives it
// back, even when its capacity is exactly a pooled buffer's: it is the
// body's, and goes back to its own pool when the body is closed.
func TestCopyBuffersDirectNotPooled(t *testing.T) {
	for _, size := range []int{copyBufferSize, largeCopyBufferSize, 1000} {
		t.Run(itoa(size), func(t *testing.T) {
			var p copyPool
			c := &copyBuffers{pool: &p, large: true, direct: make([]byte, size)}
			b := c.Get()
			if &b[0] != &c.direct[0] || len(b) != size {
				t.Fatalf("Get: got %d bytes elsewhere; want the body's own %d", len(b), size)
			}
			c.Put(b)
			if c.direct != nil {
				t.Errorf("direct after Put: still set; want forgotten")
			}
			if got := p.largeInUse.Load(); got != 0 {
				t.Errorf("large buffers in use: got %d; want 0", got)
			}
			for range 4 {
				if g := p.Get(); &g[0] == &b[0] {
					t.Fatalf("the copy pool handed out the body's buffer")
				}
				if g := p.getLarge(); &g[0] == &b[0] {
					t.Fatalf("the copy pool handed out the body's buffer as a large one")
				}
			}
		})
	}
}
