// Package gcfloor keeps Go's garbage collector from collecting a small
// heap many times a second.
//
// With GOGC=100 the heap goal is twice what the last cycle found live, and
// never below a 4 MiB minimum. A proxy's live heap is about 1 MiB while
// every request allocates a few KiB that die with it, so under load the
// collector runs dozens of times a second, each cycle scanning every
// goroutine's stack: after the system calls, the largest cost of a small
// request. A floor raises the GC percent just enough that the heap goal is
// at least the floor; once GOGC's own goal is above the floor (a larger
// live heap, such as many open connections), the floor changes nothing, so
// memory under heavy load is what GOGC alone gives. GOMEMLIMIT, when set,
// still caps the heap, and GOGC=off is left alone.
//
// The GC percent is process-wide, so the floor is too: Set applies to the
// whole process, and the floor then owns the GC percent (set GOGC in the
// environment rather than with debug.SetGCPercent).
//
// Measured under bench/run.sh's small workload, in interleaved rounds: the
// default 16 MiB floor cuts collections from about 75 to about 11 a second
// and CPU per request by about 5% (27.2 against 28.7 µs with the floor at
// 0), for about 12 MiB more resident memory (35 against 24 MiB). On a
// machine whose noise band is wider than 5%, A/Bs of 0 and 64 MiB against
// 16 MiB cannot tell them apart (bench/README.md, "What was tried").
package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// heapMinimum is the runtime's heap minimum at GOGC=100 (the GC guide's
// "4 MiB"); it scales with GOGC.
const heapMinimum = 4 << 20

// maxFloor bounds the floor, so that the arithmetic below cannot overflow.
const maxFloor = 1 << 50

// maxPercent bounds the GC percent a floor may set, for a nearly empty
// heap.
const maxPercent = 100_000

// The runtime metrics the goal is computed from: the heap the last cycle
// found live, and the stacks and globals it scanned. Since Go 1.18 GOGC's
// goal is live + (live + stacks + globals) * GOGC/100, and never below the
// heap minimum, 4 MiB * GOGC/100.
var goalMetrics = [...]string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// state is the process's floor. The runtime's GC percent is one per
// process, so this is too.
var state floor

type floor struct {
	mu sync.Mutex
	// started is set once base has been read, before the floor first
	// changes the GC percent.
	started bool
	// base is the GC percent of the environment (GOGC, 100 by default);
	// -1 for GOGC=off, when the floor does nothing.
	base    int
	percent int
	bytes   uint64
	// armed is set while a collection is awaited to retune.
	armed  bool
	sample [len(goalMetrics)]metrics.Sample
}

// sentinel is allocated and dropped to learn that a collection ran: its
// cleanup runs after the next one. It holds pointers so that it is never
// batched with other tiny objects, whose cleanups may never run.
type sentinel struct{ _, _ *byte }

// Set makes bytes the heap floor of the process (0 for none), from now and
// after every collection, until the next Set.
func Set(bytes int64) {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.start()
	state.bytes = uint64(min(max(bytes, 0), maxFloor))
	if state.base < 0 {
		return
	}
	state.tune()
	if state.bytes > 0 && !state.armed {
		state.arm()
	}
}

// Percent returns the GC percent the floor set last, or the environment's
// when it has set none.
func Percent() int {
	state.mu.Lock()
	defer state.mu.Unlock()
	state.start()
	return state.percent
}

// start reads the environment's GC percent, once, before the floor
// changes it. f.mu is held.
func (f *floor) start() {
	if f.started {
		return
	}
	f.started = true
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	f.base = 100
	if s[0].Value.Kind() == metrics.KindUint64 {
		// GOGC=off, -1, reads as the largest uint64.
		if p := s[0].Value.Uint64(); p <= 1<<31 {
			f.base = int(p)
		} else {
			f.base = -1
		}
	}
	f.percent = f.base
	for i, name := range goalMetrics {
		f.sample[i].Name = name
	}
}

// arm asks for afterGC to run once the next collection has finished.
// f.mu is held.
func (f *floor) arm() {
	f.armed = true
	runtime.AddCleanup(new(sentinel), (*floor).afterGC, f)
}

// afterGC retunes after a collection, and waits for the next one while
// there is a floor.
func (f *floor) afterGC() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = false
	f.tune()
	if f.bytes > 0 {
		f.arm()
	}
}

// tune sets the least percent whose goal is at least the floor, and never
// below the base. f.mu is held.
func (f *floor) tune() {
	metrics.Read(f.sample[:])
	var v [len(goalMetrics)]uint64
	for i := range f.sample {
		if f.sample[i].Value.Kind() != metrics.KindUint64 {
			return
		}
		v[i] = f.sample[i].Value.Uint64()
	}
	live, scanned := v[0], v[0]+v[1]+v[2]
	percent := f.base
	if f.bytes > live {
		// The goal reaches the floor through the scaled heap minimum, or
		// through the live heap's growth, whichever needs less; before
		// the first collection the live heap is not known (0), and the
		// minimum alone decides. The floor is at most maxFloor, so
		// neither product overflows.
		need := (f.bytes*100 + heapMinimum - 1) / heapMinimum
		if live > 0 {
			need = min(need, (f.bytes-live)*100/scanned+1)
		}
		percent = max(percent, int(min(need, maxPercent)))
	}
	if percent != f.percent {
		debug.SetGCPercent(percent)
		f.percent = percent
	}
}
