// Package await bounds the tests' waits for something that must happen: a
// value on a channel, a condition to hold, an HTTP answer.
//
// Every wait is bounded by Patience, far above what any of them takes on a
// loaded machine. Reaching the bound means the awaited event is never
// coming, and the test fails naming it, instead of hanging until go test's
// own timeout, whose report is only a dump of every goroutine's stack. The
// bound is no timing assertion: a test that checks how long something takes
// says so with its own figure. (t.Context is no bound either: it is
// canceled only after the test returns.)
package await

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Patience bounds every wait of the tests for something that must happen.
const Patience = 30 * time.Second

// pollInterval is how often Until checks its condition: short beside
// anything a test waits for, long enough not to busy the machine.
const pollInterval = 10 * time.Millisecond

// Client is the tests' HTTP client: a request that gets no answer fails
// after Patience instead of hanging the test.
var Client = &http.Client{Timeout: Patience}

// Do sends req with Client and returns the response with its body read
// whole and closed, failing the test when no whole answer comes within
// Patience. (Client's errors name the method and URL.)
func Do(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := Client.Do(req)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return resp, body
}

// Get is Do for a GET of url.
func Get(t testing.TB, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return Do(t, req)
}

// Receive returns the next value from ch, failing the test, with what named
// as the awaited event, if none comes within Patience.
func Receive[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	return receive(t, what, ch, Patience)
}

// Until polls cond until it holds, failing the test, with what named as the
// awaited event, if it does not hold within Patience.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	until(t, what, cond, Patience)
}

// receive is Receive with its bound given, so that the package's own test
// need not wait Patience to see a wait give up.
func receive[T any](t testing.TB, what string, ch <-chan T, bound time.Duration) T {
	t.Helper()
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("gave up waiting for %s after %v", what, bound)
	}
	var zero T
	return zero
}

// until is Until with its bound given, for the same reason as receive.
func until(t testing.TB, what string, cond func() bool, bound time.Duration) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s after %v", what, bound)
		}
		time.Sleep(pollInterval)
	}
}
