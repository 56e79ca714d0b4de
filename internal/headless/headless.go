// Package headless drives a headless Chromium for the browser tests of the
// dashboard, and notes everything a page must never do: fetch from another
// origin, log an error, throw, or break its Content-Security-Policy.
//
// The dashboard package's test drives the page over a fixture and the
// command's test drives it over a running proxy fed by real traffic; both
// need the same browser, started the same way and watched for the same
// problems, so they share this harness. The tests skip when no Chromium is
// found, except under CI=true, where a missing browser is a broken CI image
// and fails them instead: CI installs Debian's chromium package.
package headless

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// Browser is one tab of a headless Chromium, with what its pages did wrong.
type Browser struct {
	ctx context.Context // the tab's; every step runs on a child bounded by await.Patience

	mu       sync.Mutex
	requests []string // every URL the pages requested
	problems []string // errors, exceptions and CSP violations, as read
	// expected are the URLs a test makes fail on purpose: the browser logs
	// their status as an error, which is then no problem.
	expected map[string]bool
}

// find returns the Chromium to drive: $CHROMIUM_PATH, else the first of the
// usual names on $PATH, else "".
func find() string {
	if p := os.Getenv("CHROMIUM_PATH"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts a headless Chromium with one tab of 1280×900, in English and
// without scrollbars, so that screenshots are the same on every machine,
// and listens to the tab before any page loads. The browser stops when the
// test ends. Start skips the test when no Chromium is found, and fails it
// under CI=true.
func Start(t testing.TB) *Browser {
	t.Helper()
	path := find()
	if path == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found under CI=true: install Debian's chromium package or set CHROMIUM_PATH")
		}
		t.Skip("no Chromium found: install chromium or set CHROMIUM_PATH to run the browser test")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", "en-US"),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	b := &Browser{ctx: ctx, expected: map[string]bool{}}
	// The first run starts the browser and binds its life to its context,
	// so it runs on the tab's own context, unbounded, and the wait for it
	// is bounded instead; a browser that never starts is stopped by the
	// cleanups above.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	if err := await.Receive(t, path+" to start", started); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	if err := chromedp.Listen(ctx, b.note); err != nil {
		t.Fatalf("listening to %s: %v", path, err)
	}
	return b
}

// Do runs steps in the tab, failing the test, with what named as the step,
// on their first error or if they have not ended within await.Patience.
func (b *Browser) Do(t testing.TB, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	Run(t, b, what, chromedp.Steps(steps...))
}

// Eval evaluates js, an expression whose value is an array of strings, in
// the tab's page, failing the test as Do does.
func (b *Browser) Eval(t testing.TB, what, js string) []string {
	t.Helper()
	return Run(t, b, what, chromedp.Evaluate[[]string](js))
}

// Run runs the action a in b's tab and returns its value, failing the test
// as Do does. It is a function, not a method, as methods take no type
// parameters.
func Run[T any](t testing.TB, b *Browser, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, await.Patience)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// ExpectFailure tells b that url fails on purpose, so that the error the
// browser logs for its status is no problem. It is safe to call from the
// test server's handlers.
func (b *Browser) ExpectFailure(url string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.expected[url] = true
}

// Problems returns what the pages did wrong so far: each request outside
// origin (an http URL without its path, like httptest.Server.URL) other
// than a data: URL, console errors and failed assertions, uncaught
// exceptions, and log entries that are errors or Content-Security-Policy
// violations.
func (b *Browser) Problems(origin string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, u := range b.requests {
		if !strings.HasPrefix(u, origin+"/") && !strings.HasPrefix(u, "data:") {
			out = append(out, "request to "+u)
		}
	}
	return append(out, b.problems...)
}

// Check fails the test for each of Problems(origin), and if the pages made
// no request at all, which would mean the listener saw nothing.
func (b *Browser) Check(t testing.TB, origin string) {
	t.Helper()
	for _, p := range b.Problems(origin) {
		t.Errorf("page problem: %s", p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Error("saw no network request: the listener is not working")
	}
}

// note is the tab's listener. It runs on chromedp's goroutine.
func (b *Browser) note(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			b.problems = append(b.problems, "console."+string(ev.Type)+": "+strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		b.problems = append(b.problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, text))
	case *log.EventEntryAdded:
		if ev.Entry.Source == log.EntrySourceNetwork && b.expected[ev.Entry.URL] {
			return
		}
		if ev.Entry.Level == log.EntryLevelError || strings.Contains(ev.Entry.Text, "Content Security Policy") {
			b.problems = append(b.problems, fmt.Sprintf("log %s/%s: %s (%s)", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text, ev.Entry.URL))
		}
	}
}
