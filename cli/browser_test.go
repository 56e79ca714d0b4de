package cli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// TestBrowserOverARealProxy drives Debian's chromium over the dashboard of
// a running proxy fed by real traffic (the four clients of
// TestDashboardVerdictsOverARealProxy), where the dashboard package's own
// browser test uses a fixture: the verdicts, the mismatching client's
// highlighted path and sample, no external request, no console error.
func TestBrowserOverARealProxy(t *testing.T) {
	browser := os.Getenv("CHROMIUM_PATH")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if browser == "" {
			browser, _ = exec.LookPath(name)
		}
	}
	if browser == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium found (CI installs Debian's chromium)")
		}
		t.Skip("no Chromium found: install chromium or set CHROMIUM_PATH")
	}
	legacy, candidate := evidenceUpstreams(t)
	in := startServe(t, evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5"))
	sendEvidenceTraffic(t, in, 6)
	in.waitFor("every request recorded and every shadow exchange compared", recorded(6))

	var mu sync.Mutex
	var problems []string
	requests := 0
	note := func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests++
			if !strings.HasPrefix(ev.Request.URL, in.admin+"/") && !strings.HasPrefix(ev.Request.URL, "data:") {
				problems = append(problems, "request to "+ev.Request.URL)
			}
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				problems = append(problems, "console error")
			}
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				problems = append(problems, "log: "+ev.Entry.Text)
			}
		}
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.WindowSize(1280, 900))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	defer cancelTimeout()
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", browser, err)
	}
	if err := chromedp.Listen(ctx, note); err != nil {
		t.Fatal(err)
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	eval := func(what, js string) []string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](js))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}

	run("loading the dashboard", chromedp.Navigate(in.admin+"/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-client="mismatching"]`)))
	for _, tc := range []struct {
		client string
		state  verdict.State
	}{
		{"clean", verdict.Ready},
		{"unmapped", verdict.NotReady},
		{"matching", verdict.Ready},
		{"mismatching", verdict.NotReady},
		{"default", verdict.InsufficientEvidence},
	} {
		t.Run(tc.client, func(t *testing.T) {
			got := eval("reading the verdict", fmt.Sprintf(`[...document.querySelectorAll('tr[data-client=%q] [data-verdict]')].map(e => e.dataset.verdict)`, tc.client))
			if len(got) != 1 || got[0] != string(tc.state) {
				t.Errorf("got %q; want [%q]", got, tc.state)
			}
		})
	}

	run("opening the mismatching client",
		chromedp.Navigate(in.admin+"/dashboard/#client=mismatching"),
		chromedp.WaitVisible(chromedp.CSS(`#detail .diff`)))
	diff := eval("reading the highlighted lines", `[...document.querySelectorAll('#detail .diff')].map(e => e.textContent.trim())`)
	// Each of the six samples highlights the envelope's price, then the
	// candidate's.
	if len(diff) != 12 {
		t.Errorf("highlighted lines: got %d; want 12 (2 in each of 6 samples): %q", len(diff), diff)
	}
	for i, line := range diff {
		want := `"price": 10,`
		if i%2 == 1 {
			want = `"price": "10",`
		}
		if line != want {
			t.Errorf("highlighted line %d: got %q; want %q", i, line, want)
		}
	}
	page := eval("reading the page", `[document.getElementById('detail').textContent]`)
	for _, want := range []string{"mismatch 100% > 0.1% over 24h, 6 compared", "/data/price", "GET /v1/profile", `"[redacted]"`} {
		if !strings.Contains(page[0], want) {
			t.Errorf("detail: missing %q", want)
		}
	}
	for _, leak := range []string{"alice@example.com", mismatchKey} {
		if strings.Contains(page[0], leak) {
			t.Errorf("detail shows %q", leak)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range problems {
		t.Errorf("page problem: %s", p)
	}
	if requests == 0 {
		t.Error("saw no network request: the listener is not working")
	}
}
