package proxy

import (
	"testing"

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
