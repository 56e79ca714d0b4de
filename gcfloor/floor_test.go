package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

// heapGoal returns the runtime's current heap goal.
func heapGoal() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// withPercent runs the test with the GC percent set to p, restoring the
// percent in force before.
func withPercent(t *testing.T, p int) {
	old := debug.SetGCPercent(p)
	t.Cleanup(func() { debug.SetGCPercent(old) })
}

func TestFloor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name  string
		base  int
		floor int64
		// wantGoalAtLeast is the least heap goal after a collection; 0
		// when the floor must leave the percent at the base.
		wantGoalAtLeast uint64
	}{
		{"floor above the live heap", 100, 256 * mib, 256 * mib},
		{"floor with a higher base", 300, 128 * mib, 128 * mib},
		{"no floor", 100, 0, 0},
		{"floor below the live heap", 100, 1, 0},
		{"GOGC off", -1, 256 * mib, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withPercent(t, tc.base)
			runtime.GC()
			f := Start(tc.floor)
			defer f.Stop()
			runtime.GC()
			if tc.wantGoalAtLeast == 0 {
				if got := f.Percent(); got != tc.base {
					t.Errorf("percent: got %d; want the base %d", got, tc.base)
				}
				return
			}
			if got := f.Percent(); got <= tc.base {
				t.Errorf("percent: got %d; want above the base %d", got, tc.base)
			}
			// The goal reaches the floor and does not overshoot it by much:
			// the test's live heap is far below the floor.
			if got := heapGoal(); got < tc.wantGoalAtLeast || got > tc.wantGoalAtLeast*3/2 {
				t.Errorf("heap goal: got %d; want from %d to %d", got, tc.wantGoalAtLeast, tc.wantGoalAtLeast*3/2)
			}
		})
	}
}

// TestFloorFollowsCollections checks that the floor is re-applied after
// collections: a floor set, then the live heap grown past it, must bring
// the percent back to the base after the next collections.
func TestFloorFollowsCollections(t *testing.T) {
	withPercent(t, 100)
	runtime.GC()
	f := Start(64 << 20)
	defer f.Stop()
	if got := f.Percent(); got <= 100 {
		t.Fatalf("percent with a small heap: got %d; want above 100", got)
	}
	// 96 MiB live, above the floor.
	live := make([][]byte, 96)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	// The floor retunes on the cleanup goroutine after each collection;
	// collect until it has (bounded: this is not a timing assertion, only
	// a guard against waiting forever).
	deadline := time.Now().Add(30 * time.Second)
	for f.Percent() != 100 && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := f.Percent(); got != 100 {
		t.Errorf("percent with a live heap above the floor: got %d; want 100", got)
	}
	runtime.KeepAlive(live)
}

func TestSetAndStop(t *testing.T) {
	withPercent(t, 100)
	runtime.GC()
	f := Start(0)
	if got := f.Percent(); got != 100 {
		t.Fatalf("percent with no floor: got %d; want 100", got)
	}
	f.Set(256 << 20)
	if got := f.Percent(); got <= 100 {
		t.Errorf("percent after Set: got %d; want above 100", got)
	}
	if got := debug.SetGCPercent(100); got != f.Percent() {
		t.Errorf("runtime percent: got %d; want %d", got, f.Percent())
	}
	debug.SetGCPercent(f.Percent())
	f.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("runtime percent after Stop: got %d; want 100", got)
	}
	f.Set(256 << 20)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("runtime percent after Set on a stopped floor: got %d; want 100", got)
	}
}
