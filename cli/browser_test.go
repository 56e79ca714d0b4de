package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/envelope-proxy/envelope-proxy/internal/headless"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// TestBrowserOverARealProxy drives Debian's chromium over the dashboard of
// a running proxy fed by real traffic (the four clients of
// TestDashboardVerdictsOverARealProxy), where the dashboard package's own
// browser test uses a fixture: the verdicts, the mismatching client's
// highlighted path and sample, no external request, no console error.
func TestBrowserOverARealProxy(t *testing.T) {
	b := headless.Start(t)
	legacy, candidate := evidenceUpstreams(t)
	in := startServe(t, evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5"))
	sendEvidenceTraffic(t, in, 6)
	in.waitFor("every request recorded and every shadow exchange compared", recorded(6))

	b.Do(t, "loading the dashboard", chromedp.Navigate(in.admin+"/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-client="mismatching"]`)))
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
			got := b.Eval(t, "reading the verdict", fmt.Sprintf(`[...document.querySelectorAll('tr[data-client=%q] [data-verdict]')].map(e => e.dataset.verdict)`, tc.client))
			if len(got) != 1 || got[0] != string(tc.state) {
				t.Errorf("got %q; want [%q]", got, tc.state)
			}
		})
	}

	b.Do(t, "opening the mismatching client",
		chromedp.Navigate(in.admin+"/dashboard/#client=mismatching"),
		chromedp.WaitVisible(chromedp.CSS(`#detail .diff`)))
	diff := b.Eval(t, "reading the highlighted lines", `[...document.querySelectorAll('#detail .diff')].map(e => e.textContent.trim())`)
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
	page := b.Eval(t, "reading the page", `[document.getElementById('detail').textContent]`)
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
	b.Check(t, in.admin)
}
