package proxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// requestBody counts a request body's bytes as the upstream reads them
// and, for a shadowed exchange, tees them aside. It is allocated per
// request that has a body and never pooled: the transport may go on reading
// a request body after the handler has returned (when the upstream answers
// before reading it all), so nothing it touches may be recycled state.
type requestBody struct {
	io.ReadCloser
	n atomic.Int64
	// limit is 0 unless the exchange is shadowed; it never changes, so a
	// plain request never takes the lock.
	limit     int64
	mu        sync.Mutex
	capturing bool
	buf       []byte
	truncated bool
	// wait is armed once the body has been read to its end: the wait for
	// the response starts when the whole request has been handed over.
	wait upstreamWait
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err == io.EOF && b.wait.watch != nil {
		b.wait.arm(time.Now())
	}
	if n > 0 && b.limit > 0 {
		b.mu.Lock()
		if b.capturing && !b.truncated {
			if capture(&b.buf, p[:n], b.limit) {
				b.truncated, b.buf = true, nil
			}
		}
		b.mu.Unlock()
	}
	return n, err
}

// take ends the capture and returns what it holds; reads after it are
// counted but not captured.
func (b *requestBody) take() (buf []byte, truncated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capturing = false
	return b.buf, b.truncated
}
