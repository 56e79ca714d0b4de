package proxy

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
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
