package contract

import (
	"bytes"
	"hash/maphash"
	"sync"

	"github.com/envelope-proxy/envelope-proxy/event"
)

// The memo's bounds.
const (
	// maxMemoBody is the largest envelope the memo keeps: errors and small
	// successes, which repeat; a large body seldom does, and would cost
	// its size in memory per entry.
	maxMemoBody = 4 << 10
	// maxMemoEntries bounds the memo (at most about 4 MiB of bodies);
	// when it is full it starts again empty.
	maxMemoEntries = 1024
)

// memo remembers the findings of envelopes that kept the contract, so that
// the same envelope sent again is counted at once on the request path,
// without the copy, the hand-over to a worker and the check. A check is a
// pure function of the document and of what memoKey holds, so a
// remembered finding is the finding the check would make. Clients are sent
// the same error envelope over and over (every 402 of one rule with the
// same numbers is the same bytes), so most error checks are repeats. On
// the load benchmark's credits workload (bench/README.md, "Where the time
// goes") the checks went from 15% of envelope-proxy's CPU profile to 2.5%,
// and its CPU per request from 81 to 59 µs, the same as with the checks
// off (60 µs), in interleaved runs. A remembered envelope costs the request
// path about 0.25 µs and no allocation (BenchmarkSubmit), where a check
// costs 5 to 14 µs and 37 to 47 allocations (BenchmarkCheck): the route it
// is counted under is remembered too, and the event handed to the
// recorder is pooled. A success body that differs every time still gets a
// full check: the memo helps the load benchmark's small workload, whose
// body never changes, more than it would help real traffic. Violations are
// never remembered: each one is checked, so that its sample and detail are
// its own.
//
// Each compiled Settings has its own memo, so a reload (a new document)
// starts an empty one.
type memo struct {
	seed maphash.Seed
	// paths is set when the document describes paths: the operation, and
	// so the finding, then depends on the request's method and path, which
	// are part of the key. Without paths (the built-in contract) every
	// route is held to components.responses, and they are left out, so
	// that the same error on /v1/jobs/1 and /v1/jobs/2 is one entry.
	paths   bool
	mu      sync.RWMutex
	entries map[uint64]*memoEntry
	// routes holds the event's route of each method, path and operation
	// seen, so that a remembered envelope is counted without building the
	// string again.
	routes map[routeKey]string
}

// routeKey is what an event's route is made of.
type routeKey struct{ method, path, operation string }

// memoEntry is one remembered envelope and its finding.
type memoEntry struct {
	key     memoKey
	finding Finding
}

// memoKey is everything a check reads of an envelope.
type memoKey struct {
	method, path string
	status       int
	fields       bool
	body         []byte
}

func newMemo(doc *Document) *memo {
	return &memo{seed: maphash.MakeSeed(), paths: doc != nil && doc.describesPaths(), entries: map[uint64]*memoEntry{}, routes: map[routeKey]string{}}
}

// route returns the event's route ("POST /v1/jobs/{id}") of a request, made
// by name when it is not known yet. It is bounded as the entries are.
func (m *memo) route(method, path, operation string, name func() string) string {
	k := routeKey{method, path, operation}
	m.mu.RLock()
	r, ok := m.routes[k]
	m.mu.RUnlock()
	if ok {
		return r
	}
	r = name()
	if len(path) <= maxMemoBody {
		m.mu.Lock()
		if len(m.routes) >= maxMemoEntries {
			clear(m.routes)
		}
		m.routes[k] = r
		m.mu.Unlock()
	}
	return r
}

// key is e's key and its hash; ok is false for a body too large to keep.
func (m *memo) key(e *event.Envelope) (k memoKey, h uint64, ok bool) {
	if len(e.Body) > maxMemoBody {
		return memoKey{}, 0, false
	}
	k = memoKey{status: e.Status, fields: e.Fields, body: e.Body}
	if m.paths {
		k.method, k.path = e.Method, e.Path
	}
	var mh maphash.Hash
	mh.SetSeed(m.seed)
	mh.WriteString(k.method)
	mh.WriteByte(0)
	mh.WriteString(k.path)
	mh.WriteByte(byte(k.status))
	mh.WriteByte(byte(k.status >> 8))
	if k.fields {
		mh.WriteByte(1)
	}
	mh.Write(k.body)
	return k, mh.Sum64(), true
}

// lookup returns the finding remembered for e.
func (m *memo) lookup(e *event.Envelope) (Finding, bool) {
	k, h, ok := m.key(e)
	if !ok {
		return Finding{}, false
	}
	m.mu.RLock()
	en := m.entries[h]
	m.mu.RUnlock()
	if en == nil || !en.key.equal(&k) {
		return Finding{}, false
	}
	return en.finding, true
}

// remember keeps f as e's finding, unless it is a violation or e is too
// large. It copies e's body.
func (m *memo) remember(e *event.Envelope, f Finding) {
	if f.Broken() {
		return
	}
	k, h, ok := m.key(e)
	if !ok {
		return
	}
	k.body = bytes.Clone(k.body)
	m.mu.Lock()
	if len(m.entries) >= maxMemoEntries {
		clear(m.entries)
	}
	m.entries[h] = &memoEntry{key: k, finding: f}
	m.mu.Unlock()
}

func (k *memoKey) equal(o *memoKey) bool {
	return k.status == o.status && k.fields == o.fields && k.method == o.method && k.path == o.path && bytes.Equal(k.body, o.body)
}
