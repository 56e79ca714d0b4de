// Package demo is a built-in legacy backend that answers every example of
// the legacy spec at a path of its own, so that a newcomer can watch the
// proxy rewrite real responses with one command: "envelope-proxy demo".
package demo

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Example is one legacy response the demo backend serves.
type Example struct {
	// Name is the path segment under /examples/ and the name of the golden
	// files in transform/testdata.
	Name        string
	Status      int
	ContentType string
	Note        string
	Body        string
}

// Path returns the URL path the backend serves the example at.
func (e Example) Path() string { return "/examples/" + e.Name }

// Backend returns the demo legacy backend: GET /examples/<name> answers
// that example, /examples lists them, anything else is a legacy 404.
func Backend() http.Handler {
	byPath := make(map[string]Example, len(Examples))
	for _, e := range Examples {
		byPath[e.Path()] = e
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, ok := byPath[strings.TrimSuffix(r.URL.Path, "/")]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error": "Not found."}`)
			return
		}
		w.Header().Set("Content-Type", e.ContentType)
		w.Header().Set("Content-Length", strconv.Itoa(len(e.Body)))
		if e.Status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "30")
		}
		w.WriteHeader(e.Status)
		io.WriteString(w, e.Body)
	})
}
