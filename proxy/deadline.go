package proxy

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errUpstreamTimeout is the cause a client connection's context is
// cancelled with when the request it waits on has had no upstream response
// headers within upstream.timeout. It is a net.Error whose Timeout is true,
// so statusForError answers 504 and the metric counts a timeout.
var errUpstreamTimeout error = upstreamTimeoutError{}

type upstreamTimeoutError struct{}

func (upstreamTimeoutError) Error() string {
	return "no upstream response headers within upstream.timeout"
}
func (upstreamTimeoutError) Timeout() bool   { return true }
func (upstreamTimeoutError) Temporary() bool { return true }

// The low 48 bits of connWatch.word: the state of the connection's current
// request, or its upstream deadline in microseconds since the watchdog's
// epoch plus watchFirstDeadline. The high 16 bits hold the request's
// sequence number on the connection, so that a late arm from a finished
// request (a body the transport read to its end after the response came)
// cannot arm the connection's next request.
const (
	watchUnarmed       = 0
	watchDone          = 1
	watchFired         = 2
	watchFirstDeadline = 3
	watchStateBits     = 48
	watchStateMask     = 1<<watchStateBits - 1
)

// connWatch is a client connection's context, registered with the
// watchdog. It carries the upstream deadline of the request the connection
// waits on; cancelling it cancels that request's context, and so its
// upstream round trip.
type connWatch struct {
	context.Context
	cancel context.CancelCauseFunc
	// seq is the sequence number of the connection's current request. Only
	// the connection's handler goroutine touches it: an HTTP/1 connection
	// serves one request at a time.
	seq  uint64
	word atomic.Uint64
}

// connWatchKey finds a request's connWatch among its context's values.
type connWatchKey struct{}

// Value returns the connWatch itself for connWatchKey.
func (w *connWatch) Value(key any) any {
	if key == (connWatchKey{}) {
		return w
	}
	return w.Context.Value(key)
}

// begin starts a request on the connection and returns its sequence
// number, with no deadline armed yet.
func (w *connWatch) begin() uint64 {
	w.seq = (w.seq + 1) & (1<<(64-watchStateBits) - 1)
	w.word.Store(w.seq << watchStateBits)
	return w.seq
}

// arm sets the deadline (microseconds since the epoch) of request seq,
// unless that request is no longer current, already has one, or is done.
func (w *connWatch) arm(seq uint64, deadline int64) {
	// 2^48 microseconds is almost nine years of uptime; past that a
	// deadline saturates and never fires.
	d := min(uint64(max(deadline, 0))+watchFirstDeadline, watchStateMask)
	w.word.CompareAndSwap(seq<<watchStateBits, seq<<watchStateBits|d)
}

// disarm ends the wait of request seq and reports whether the watchdog had
// already cancelled it. It may be called more than once.
func (w *connWatch) disarm(seq uint64) (fired bool) {
	for {
		old := w.word.Load()
		if old>>watchStateBits != seq {
			return false
		}
		switch old & watchStateMask {
		case watchFired:
			return true
		case watchDone:
			return false
		}
		if w.word.CompareAndSwap(old, seq<<watchStateBits|watchDone) {
			return false
		}
	}
}

// expire cancels the connection's request if its deadline is at or before
// now (microseconds since the epoch).
func (w *connWatch) expire(now int64) {
	old := w.word.Load()
	d := old & watchStateMask
	if d < watchFirstDeadline || uint64(max(now, 0))+watchFirstDeadline < d {
		return
	}
	if w.word.CompareAndSwap(old, old&^watchStateMask|watchFired) {
		w.cancel(errUpstreamTimeout)
	}
}

// upstreamWait is one request's claim on its connection's deadline word.
// The zero value (a server not set up by ConfigureServer, or HTTP/2) does
// nothing. The exchange holds one; a request body holds a copy, because the
// transport may read the body after the pooled exchange is reused.
type upstreamWait struct {
	watch *connWatch
	seq   uint64
	snap  *snapshot
}

// arm starts the wait for the response headers at start.
func (u upstreamWait) arm(start time.Time) {
	if u.watch != nil {
		u.watch.arm(u.seq, u.snap.watchdog.deadline(start, u.snap.timeout))
	}
}

// disarm ends the wait and reports whether the watchdog had already
// cancelled the request. It may be called more than once.
func (u upstreamWait) disarm() (fired bool) {
	return u.watch != nil && u.watch.disarm(u.seq)
}

// watchdog enforces upstream.timeout on the connections of a server set
// up by Handler.ConfigureServer without a timer per request: each
// connection holds its request's deadline in one atomic word, and one
// goroutine, running while any connection is open, checks them every
// sixteenth of the timeout (between 1 ms and 1 s) and cancels the
// connection whose deadline has passed. A timeout is therefore never early
// and late by at most one tick. http.Transport's ResponseHeaderTimeout
// costs a timer with its channel, four allocations in all, per request;
// this costs two atomic operations.
type watchdog struct {
	epoch   time.Time
	timeout func() time.Duration
	mu      sync.Mutex
	conns   map[net.Conn]*connWatch
	running bool
	// wake ends the goroutine's wait early once the last connection
	// closes, so that it does not outlive the server by a tick.
	wake chan struct{}
}

func newWatchdog(timeout func() time.Duration) *watchdog {
	return &watchdog{epoch: time.Now(), timeout: timeout, conns: make(map[net.Conn]*connWatch), wake: make(chan struct{}, 1)}
}

// since returns t in microseconds since the epoch.
func (d *watchdog) since(t time.Time) int64 { return t.Sub(d.epoch).Microseconds() }

// deadline returns the deadline, in microseconds since the epoch, of a
// wait that started at start.
func (d *watchdog) deadline(start time.Time, timeout time.Duration) int64 {
	return d.since(start) + (timeout + time.Microsecond - 1).Microseconds()
}

// connContext is the server's ConnContext: it registers the connection.
func (d *watchdog) connContext(ctx context.Context, c net.Conn) context.Context {
	cctx, cancel := context.WithCancelCause(ctx)
	w := &connWatch{Context: cctx, cancel: cancel}
	d.mu.Lock()
	d.conns[c] = w
	if !d.running {
		d.running = true
		go d.run()
	}
	d.mu.Unlock()
	return w
}

// connState is the server's ConnState: it forgets closed and hijacked
// connections. A hijacked connection's context is not cancelled: an
// upgraded (WebSocket) exchange ends with it.
func (d *watchdog) connState(c net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	d.mu.Lock()
	delete(d.conns, c)
	empty := len(d.conns) == 0
	d.mu.Unlock()
	if empty {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
}

// tick is how often run checks the deadlines.
func (d *watchdog) tick() time.Duration {
	return min(max(d.timeout()/16, time.Millisecond), time.Second)
}

// run checks every connection's deadline each tick, and returns once no
// connection is left.
func (d *watchdog) run() {
	t := time.NewTimer(d.tick())
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-d.wake:
		}
		d.mu.Lock()
		if len(d.conns) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		now := d.since(time.Now())
		for _, w := range d.conns {
			w.expire(now)
		}
		d.mu.Unlock()
		t.Reset(d.tick())
	}
}

// ConfigureServer sets srv up to carry each client connection's upstream
// deadline, keeping any ConnContext and ConnState srv already has. Call it
// before srv starts serving. On a server set up this way upstream.timeout
// costs no timer per HTTP/1 request; HTTP/2 requests, and every request on
// a server not set up this way, have the transport's ResponseHeaderTimeout
// enforce it. Either way, the wait starts once the request, body included,
// has been handed to the upstream, and ends with the response headers.
func (h *Handler) ConfigureServer(srv *http.Server) {
	prevContext, prevState := srv.ConnContext, srv.ConnState
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevContext != nil {
			ctx = prevContext(ctx, c)
		}
		return h.services.watchdog.connContext(ctx, c)
	}
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		h.services.watchdog.connState(c, state)
		if prevState != nil {
			prevState(c, state)
		}
	}
}
