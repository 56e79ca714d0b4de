package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// heapGoal returns the runtime's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// runtimePercent returns the GC percent in force.
func runtimePercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// withBase runs the test as if the environment had set GOGC=base: the
// floor reads its base afresh. Afterwards the floor is removed and the
// percent in force before restored.
func withBase(t *testing.T, base int) {
	old := debug.SetGCPercent(base)
	state.mu.Lock()
	state.started = false
	state.mu.Unlock()
	t.Cleanup(func() {
		Set(0)
		state.mu.Lock()
		state.started = false
		state.mu.Unlock()
		debug.SetGCPercent(old)
	})
}

func TestSet(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		base  int
		floor int64
		// wantGoal is the heap goal, within [want, 1.5*want], after a
		// collection; 0 when the percent must stay the base.
		wantGoal uint64
	}{
		{"floor above the live heap", 100, 256 * mib, 256 * mib},
		{"floor with a higher base", 300, 128 * mib, 128 * mib},
		{"floor not a multiple of the heap minimum", 100, 17 * mib, 17 * mib},
		{"no floor", 100, 0, 0},
		{"floor below the live heap", 100, 1, 0},
		{"negative floor", 100, -5, 0},
		{"GOGC off", -1, 256 * mib, 0},
		{"floor beyond the bound", 100, 1 << 62, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withBase(t, tc.base)
			runtime.GC()
			Set(tc.floor)
			runtime.GC()
			if tc.floor == 1<<62 {
				// Clamped: the percent is the largest allowed, not a
				// wrapped-around product.
				if got := Percent(); got != maxPercent {
					t.Errorf("percent: got %d; want %d", got, maxPercent)
				}
				return
			}
			if tc.wantGoal == 0 {
				if got := Percent(); got != tc.base {
					t.Errorf("percent: got %d; want the base %d", got, tc.base)
				}
				if got := runtimePercent(); got != tc.base {
					t.Errorf("runtime percent: got %d; want the base %d", got, tc.base)
				}
				return
			}
			if got := Percent(); got <= tc.base || got != runtimePercent() {
				t.Errorf("percent: got %d (runtime %d); want above the base %d and in force", got, runtimePercent(), tc.base)
			}
			// The test's live heap is far below the floor: the goal
			// reaches the floor and does not overshoot it by much.
			if got := heapGoal(); got < tc.wantGoal || got > tc.wantGoal*3/2 {
				t.Errorf("heap goal: got %d; want from %d to %d", got, tc.wantGoal, tc.wantGoal*3/2)
			}
		})
	}
}

// TestFloorFollowsCollections checks that the floor is re-applied after
// collections: with the live heap grown past the floor, the percent must
// come back to the base; with the heap small again, it must rise again.
func TestFloorFollowsCollections(t *testing.T) {
	withBase(t, 100)
	runtime.GC()
	Set(64 << 20)
	if got := Percent(); got <= 100 {
		t.Fatalf("percent with a small heap: got %d; want above 100", got)
	}
	// The floor retunes on the cleanup goroutine after each collection;
	// collect until it has.
	collectUntil := func(what string, ok func(int) bool) {
		t.Helper()
		await.Until(t, what, func() bool {
			if ok(Percent()) {
				return true
			}
			runtime.GC()
			return false
		})
	}
	live := make([][]byte, 96) // 96 MiB, above the floor
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	collectUntil("the percent back to 100 with a live heap above the floor", func(p int) bool { return p == 100 })
	runtime.KeepAlive(live)
	live = nil
	collectUntil("the percent above 100 with the heap small again", func(p int) bool { return p > 100 })
}

func TestSetChangesAndRemovesTheFloor(t *testing.T) {
	withBase(t, 100)
	runtime.GC()
	Set(256 << 20)
	if got := runtimePercent(); got <= 100 {
		t.Fatalf("runtime percent with a floor: got %d; want above 100", got)
	}
	Set(32 << 20)
	if got, want := runtimePercent(), 800; got != want {
		t.Errorf("runtime percent with a 32 MiB floor: got %d; want %d", got, want)
	}
	Set(0)
	if got := runtimePercent(); got != 100 {
		t.Errorf("runtime percent with the floor removed: got %d; want 100", got)
	}
	// No cleanup keeps retuning once the floor is removed.
	runtime.GC()
	runtime.GC()
	if got := runtimePercent(); got != 100 {
		t.Errorf("runtime percent after collections: got %d; want 100", got)
	}
}
