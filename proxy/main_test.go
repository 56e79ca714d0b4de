package proxy

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: a
// stream never closed, an upstream read outliving its client, a transport
// or server goroutine nothing stops. (goleak checks only when every test
// passed: a failing test may legitimately leave goroutines behind.)
//
// No goroutine needs ignoring: every test closes its upstream and proxy
// servers with t.Cleanup, which also ends the keep-alive connections of
// the test clients and of each Handler's upstream transport, and the one
// goroutine Handler.Swap may start only runs when a reload changes the
// transport, which no test here does.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// patience bounds every wait in these tests for something that must
// happen. It is far above what any wait takes on a loaded machine: reaching
// it means the event is never coming, and the test fails naming it instead
// of hanging until go test's own timeout, whose report is a dump of stacks.
// (t.Context is no bound: it is canceled only after the test returns.)
const patience = 30 * time.Second

// await receives from ch, for at most patience.
func await[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("gave up waiting for %s after %v", what, patience)
	}
	var zero T
	return zero
}
