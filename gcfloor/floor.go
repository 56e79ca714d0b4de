// Package gcfloor keeps Go's garbage collector from running while the heap
// is small.
//
// With GOGC=100 the collector runs whenever the heap has grown by as much
// as the last cycle found live, and at least every 4 MiB. A proxy's live
// heap is a few MiB while every request allocates a few KiB that die with
// it, so at tens of thousands of requests per second it collects dozens of
// times a second, each cycle scanning every goroutine's stack: after the
// system calls, the largest cost of a small request. A floor lets the heap
// grow to a set size before a cycle runs; once the live heap is large
// enough that GOGC's own goal is above the floor, the floor changes
// nothing, so memory under heavy load is what GOGC alone would give.
// GOMEMLIMIT, when set, still caps the heap, and GOGC=off is left alone.
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

// maxPercent bounds the GC percent a floor may set, for a nearly empty
// heap.
const maxPercent = 100_000

// The runtime metrics the goal is computed from: the heap the last cycle
// found live, and the stacks and globals it scanned. Since Go 1.18 GOGC's
// goal is live + (live + stacks + globals) * GOGC/100, and never below
// the heap minimum, 4 MiB * GOGC/100.
var goalMetrics = [...]string{"/gc/heap/live:bytes", "/gc/scan/stack:bytes", "/gc/scan/globals:bytes"}

// Floor raises the GC percent after every collection so that the next
// goal is at least the floor, and lowers it back to the base percent once
// the live heap alone reaches it. It costs one runtime metrics read per
// collection and nothing per allocation.
type Floor struct {
	mu      sync.Mutex
	floor   uint64
	base    int
	percent int
	stopped bool
	sample  [len(goalMetrics)]metrics.Sample
}

// sentinel is allocated and dropped after every tuning; its cleanup runs
// after the next collection. It holds pointers so that it is never
// batched with other tiny objects, whose cleanups may never run.
type sentinel struct{ _, _ *byte }

// Start installs a floor of floor bytes (0 for none) over the GC percent
// in force now (GOGC, 100 by default). With GOGC=off it does nothing.
func Start(floor int64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	f := &Floor{base: base, percent: base}
	for i, name := range goalMetrics {
		f.sample[i].Name = name
	}
	if base < 0 {
		f.stopped = true
		return f
	}
	f.Set(floor)
	f.arm()
	return f
}

// Set changes the floor (0 for none); it applies at once.
func (f *Floor) Set(floor int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.floor = uint64(max(floor, 0))
	if !f.stopped {
		f.tune()
	}
}

// Percent returns the GC percent the floor last set.
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent
}

// Stop removes the floor and restores the base GC percent.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	if f.percent != f.base {
		debug.SetGCPercent(f.base)
		f.percent = f.base
	}
}

// arm asks for afterGC to run once the next collection has finished.
func (f *Floor) arm() {
	runtime.AddCleanup(new(sentinel), (*Floor).afterGC, f)
}

func (f *Floor) afterGC() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.tune()
	f.arm()
}

// tune sets the least percent whose goal is at least the floor, and never
// below the base. f.mu is held.
func (f *Floor) tune() {
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
	if live > 0 && f.floor > live {
		// The goal reaches the floor through the live heap's growth or
		// through the scaled heap minimum, whichever needs less.
		byGrowth := (f.floor-live)*100/scanned + 1
		byMinimum := (f.floor*100 + heapMinimum - 1) / heapMinimum
		percent = max(percent, int(min(byGrowth, byMinimum, maxPercent)))
	}
	if percent != f.percent {
		debug.SetGCPercent(percent)
		f.percent = percent
	}
}
