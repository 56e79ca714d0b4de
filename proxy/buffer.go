package proxy

import (
	"io"
	"sync"
	"sync/atomic"
)

// bufferPool recycles the byte slices that hold buffered bodies, so that a
// rewrite allocates nothing per request once the pool is warm. Slices that
// grew past maxPooled are dropped rather than pinned in memory.
type bufferPool struct {
	pool      sync.Pool
	maxPooled int
}

func newBufferPool(maxPooled int) *bufferPool {
	return &bufferPool{maxPooled: maxPooled}
}

func (p *bufferPool) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 4096)
	return &b
}

// getFor returns a buffer able to hold a body of the given length, the
// one byte more that tells a body over the limit, and extra bytes around
// it, without growing; length is the upstream's Content-Length, -1 when
// unknown.
func (p *bufferPool) getFor(length, limit int64, extra int) *[]byte {
	b := p.get()
	if need := length + 1 + int64(extra); length >= 0 && length <= limit && int64(cap(*b)) < need {
		*b = make([]byte, 0, need)
	}
	return b
}

func (p *bufferPool) put(b *[]byte) {
	if cap(*b) > p.maxPooled {
		return
	}
	p.pool.Put(b)
}

// copyPool holds the buffers of ReverseProxy's body copy loop: small ones
// for most responses, and large ones for bodies known to be large, which
// then cross the proxy in up to eight times fewer reads and writes. Syscalls
// are most of a large body's cost: on the load benchmark's 1 MiB
// pass-through the large buffer halves the proxy's CPU per request. At most
// maxLargeCopyBuffers large buffers (16 MiB) are handed out at a time,
// however many large bodies are in flight; past that, copies fall back to
// small buffers. Idle buffers wait in the pools until the garbage collector
// drops them. Buffers are pooled as array pointers, so neither Get nor Put
// allocates.
type copyPool struct {
	small      sync.Pool // *[copyBufferSize]byte
	large      sync.Pool // *[largeCopyBufferSize]byte
	largeInUse atomic.Int64
}

const (
	copyBufferSize      = 32 << 10
	largeCopyBufferSize = 256 << 10
	maxLargeCopyBuffers = 64
)

// Get returns a small buffer; it makes copyPool an httputil.BufferPool.
func (p *copyPool) Get() []byte {
	if b, ok := p.small.Get().(*[copyBufferSize]byte); ok {
		return b[:]
	}
	return new([copyBufferSize]byte)[:]
}

// getLarge returns a large buffer, or a small one when
// maxLargeCopyBuffers are already in use.
func (p *copyPool) getLarge() []byte {
	if p.largeInUse.Add(1) > maxLargeCopyBuffers {
		p.largeInUse.Add(-1)
		return p.Get()
	}
	if b, ok := p.large.Get().(*[largeCopyBufferSize]byte); ok {
		return b[:]
	}
	return new([largeCopyBufferSize]byte)[:]
}

// Put takes back a buffer from Get or getLarge, told apart by capacity.
func (p *copyPool) Put(b []byte) {
	switch cap(b) {
	case copyBufferSize:
		p.small.Put((*[copyBufferSize]byte)(b[:copyBufferSize]))
	case largeCopyBufferSize:
		p.largeInUse.Add(-1)
		p.large.Put((*[largeCopyBufferSize]byte)(b[:largeCopyBufferSize]))
	}
}

// copyBuffers is one exchange's httputil.BufferPool. ModifyResponse runs
// before ReverseProxy takes its copy buffer, so by then large says whether
// the response's body is known (by its Content-Length) to be more than a
// small buffer holds. A body of unknown length, such as an event stream
// that may stay open for hours, gets a small buffer, and so does a HEAD
// response, which has a length but no body.
//
// direct, when set, is the whole response body, already in the buffer it
// was read into: Get hands that buffer itself to the copy loop, whose
// reads of the body then find every byte already in place (see
// pooledBody.Read), so a buffered envelope leaves without being copied
// into a second buffer, in one write instead of one per copy buffer. On
// the load benchmark's 1 MiB wrap this cuts the proxy's CPU per request
// by about 8%.
type copyBuffers struct {
	pool   *copyPool
	large  bool
	direct []byte
}

// Get returns the body's own buffer when it is direct, else a large buffer
// for a large body, else a small one.
func (c *copyBuffers) Get() []byte {
	if c.direct != nil {
		return c.direct
	}
	if c.large {
		return c.pool.getLarge()
	}
	return c.pool.Get()
}

// Put returns a buffer from Get to the pool.
// The body's own buffer is not the copy pool's: it goes back to its pool
// when the body is closed, and is forgotten here so that nothing keeps it
// once it is reused.
func (c *copyBuffers) Put(b []byte) {
	if c.direct != nil && cap(b) > 0 && &b[:1][0] == &c.direct[:1][0] {
		c.direct = nil
		return
	}
	c.pool.Put(b)
}

// pooledBody serves a body from a pooled buffer, from off on (a buffered
// success envelope is built in place, so the body is never copied into a
// second buffer), and returns the buffer to its pool when the proxy closes
// the body.
type pooledBody struct {
	buf  *[]byte
	off  int
	pool *bufferPool
}

// Read copies the unread bytes of the buffer into p. When p is those very
// bytes (copyBuffers.direct), they are already where they are asked for,
// and the copy onto themselves is skipped.
func (b *pooledBody) Read(p []byte) (int, error) {
	if b.buf == nil || b.off >= len(*b.buf) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	src := (*b.buf)[b.off:]
	var n int
	if &p[0] == &src[0] {
		n = min(len(p), len(src))
	} else {
		n = copy(p, src)
	}
	b.off += n
	return n, nil
}

func (b *pooledBody) Close() error {
	if b.buf != nil {
		b.pool.put(b.buf)
		b.buf = nil
	}
	return nil
}

// replayBody sends bytes already read from the upstream, then the rest of
// the upstream body, unchanged: the passthrough after a look at the head.
type replayBody struct {
	head *pooledBody
	rest io.ReadCloser
}

func (r *replayBody) Read(p []byte) (int, error) {
	if r.head != nil {
		n, err := r.head.Read(p)
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			r.head.Close()
			r.head = nil
		}
	}
	return r.rest.Read(p)
}

func (r *replayBody) Close() error {
	if r.head != nil {
		r.head.Close()
		r.head = nil
	}
	return r.rest.Close()
}
