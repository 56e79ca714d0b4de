package proxy

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/envelope-proxy/envelope-proxy/codec"
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
	// failed is set once reading the client's body failed: the client's
	// error, whatever the transport makes of it.
	failed atomic.Bool
}

func (b *requestBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	if err != nil && err != io.EOF {
		b.failed.Store(true)
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

// clientFailed reports whether reading the client's body failed.
func (b *requestBody) clientFailed() bool { return b.failed.Load() }

// take ends the capture and returns what it holds; reads after it are
// counted but not captured.
func (b *requestBody) take() (buf []byte, truncated bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capturing = false
	return b.buf, b.truncated
}

// bufferRequest reads the client's request body, up to
// server.request_buffering bytes, before the upstream is dialled, as
// nginx's proxy_request_buffering does: a client that trickles its body
// never holds an upstream connection, and a body the client cannot finish
// never reaches the upstream half sent (the error is returned, the
// client's). A body that fits goes upstream with its Content-Length, even
// if it came chunked; a larger one streams on from where the buffer ends.
// The buffer comes from the handler's pool and goes back to it when the
// exchange finishes (finish): without the pool, buffering a 1 MiB body cost
// it a fresh 1.1 MB and twice the time of streaming it
// (BenchmarkPostBuffering).
func (ex *exchange) bufferRequest(r *http.Request) error {
	limit := ex.snap.settings.RequestBuffering
	if limit <= 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength > limit {
		return nil
	}
	pool := ex.snap.requestBuffers
	buf := pool.getFor(r.ContentLength, limit, 0)
	complete, err := codec.ReadUpTo(r.Body, buf, limit)
	if err != nil {
		pool.put(buf)
		return err
	}
	if !complete {
		// The head goes on as the start of a streamed body; the buffer is
		// the request's from then on.
		r.Body = &replayReader{head: *buf, rest: r.Body}
		return nil
	}
	r.ContentLength, r.TransferEncoding = int64(len(*buf)), nil
	r.Body = http.NoBody
	if len(*buf) > 0 {
		ex.bufferedBody = &bufferedBody{pooledBody: pooledBody{buf: buf, pool: pool}}
		r.Body = ex.bufferedBody
	} else {
		pool.put(buf)
	}
	ex.buffered = true
	return nil
}

// bufferedBody is a request body read whole before the upstream was
// dialled, in a pooled buffer that goes back to the pool once the exchange
// finishes. ReverseProxy stops every read of the body once ServeHTTP
// returns (it wraps the body in a reader that refuses reads after its
// Close), but a read already in flight may still be running: the lock makes
// the release wait for it, and any read after the release finds nothing.
type bufferedBody struct {
	mu sync.Mutex
	pooledBody
}

func (b *bufferedBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pooledBody.Read(p)
}

func (b *bufferedBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pooledBody.Close()
}

// replayReader sends bytes already read from the client, then the rest of
// its body.
type replayReader struct {
	head []byte
	rest io.ReadCloser
}

func (r *replayReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	return r.rest.Read(p)
}

func (r *replayReader) Close() error { return r.rest.Close() }
