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
