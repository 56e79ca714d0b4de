package headless

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
)

// pages are the test's pages: one that does nothing wrong (its image is a
// data: URL, which is allowed, as the dashboard uses them), and one that
// does each wrong thing the harness must notice.
var pages = map[string]string{
	"/clean": `<!doctype html><title>clean</title><link rel="icon" href="data:,"><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<p id="done">done</p>`,
	"/bad": `<!doctype html><title>bad</title><link rel="icon" href="data:,">
<img src="{{elsewhere}}/elsewhere.png">
<script>document.title = "inline scripts break the policy"</script>
<script src="/bad.js"></script>`,
	"/bad.js": `console.error("boom");
console.assert(false, "asserted");
setTimeout(() => { throw new Error("kaboom"); }, 0);
fetch("/expected-failure").then(() => fetch("/unexpected-failure")).then(() => { const p = document.createElement("p"); p.id = "fetched"; document.body.append(p); });`,
}

// server serves pages, with a Content-Security-Policy that allows scripts
// from the origin only, as the dashboard's does. It answers
// /expected-failure and /unexpected-failure with 503, telling b that the
// first fails on purpose. The bad page's image is at elsewhere, another
// origin.
func server(t *testing.T, b *Browser, elsewhere string) *httptest.Server {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/expected-failure" {
			b.ExpectFailure("http://" + r.Host + r.URL.RequestURI())
			http.Error(w, "failing on purpose", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path == "/unexpected-failure" {
			http.Error(w, "failing by surprise", http.StatusServiceUnavailable)
			return
		}
		page, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: "+elsewhere)
		if strings.HasSuffix(r.URL.Path, ".js") {
			w.Header().Set("Content-Type", "text/javascript")
		} else {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
		}
		io.WriteString(w, strings.ReplaceAll(page, "{{elsewhere}}", elsewhere))
	}))
	t.Cleanup(ts.Close)
	return ts
}

// TestBrowserNotesProblems loads a clean page, which must leave no problem,
// then a page that does every wrong thing, each of which must be noted,
// and fetches a URL expected to fail, which must not be. The bad page
// fetches the unexpected failure after the expected one, so that once the
// first is noted, the second would have been too.
func TestBrowserNotesProblems(t *testing.T) {
	b := Start(t)
	elsewhere := loopback.RefusedURL(t)
	ts := server(t, b, elsewhere)

	b.Do(t, "loading the clean page", chromedp.Navigate(ts.URL+"/clean"), chromedp.WaitVisible(chromedp.ID("done")))
	b.Check(t, ts.URL)

	b.Do(t, "loading the bad page", chromedp.Navigate(ts.URL+"/bad"), chromedp.WaitVisible(chromedp.ID("fetched")))
	tests := []struct {
		name string
		want string // a problem must contain it
	}{
		{"request elsewhere", "request to " + elsewhere + "/elsewhere.png"},
		{"console error", `console.error: "boom"`},
		{"failed assertion", `console.assert: "asserted"`},
		{"exception", "exception at " + ts.URL + "/bad.js"},
		{"CSP violation", "log security/error: Executing inline script violates the following Content Security Policy directive"},
		{"failed fetch", "log network/error: Failed to load resource: the server responded with a status of 503 (Service Unavailable) (" + ts.URL + "/unexpected-failure)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			await.Until(t, tc.want, func() bool {
				return slices.ContainsFunc(b.Problems(ts.URL), func(p string) bool { return strings.Contains(p, tc.want) })
			})
		})
	}
	for _, p := range b.Problems(ts.URL) {
		if strings.Contains(p, ts.URL+"/expected-failure") {
			t.Errorf("got problem %q; want none for a URL expected to fail", p)
		}
	}
	if t.Failed() {
		t.Logf("problems: %q", b.Problems(ts.URL))
	}
}
