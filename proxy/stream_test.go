package proxy

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// TestLargeSuccessStreams checks bodies larger than max_body_bytes: they are
// wrapped while streaming, with Content-Length upstream + overhead when the
// upstream sent one, and the connection is aborted, never finished as a
// well-formed envelope, when the body turns out not to be one JSON value.
func TestLargeSuccessStreams(t *testing.T) {
	valid := `{"items": [` + strings.Repeat(`{"id": 9007199254740993, "s": "\u00e9\"x"},`, 3000) + `{}]}`
	invalidTail := valid[:len(valid)-1] + `,` // still JSON-like until the end
	invalidHead := `not json at all ` + valid
	tests := []struct {
		name      string
		body      string
		length    bool
		want      string // full expected body when the response completes
		wantAbort bool
	}{
		{"with length", valid, true, `{"data":` + valid + `,"success":true,"message":"OK"}`, false},
		{"chunked", valid, false, `{"data":` + valid + `,"success":true,"message":"OK"}`, false},
		{"invalid tail with length aborts", invalidTail, true, "", true},
		{"invalid tail chunked aborts", invalidTail, false, "", true},
		{"invalid head chunked passes unchanged", invalidHead, false, invalidHead, false},
		{"two values abort", valid + " {}", true, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				if tc.length {
					w.Header().Set("Content-Length", itoa(len(tc.body)))
				}
				w.WriteHeader(200)
				for b := tc.body; b != ""; {
					n := min(len(b), 7000)
					io.WriteString(w, b[:n])
					w.(http.Flusher).Flush()
					b = b[n:]
				}
			})
			url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = 4096 })
			got := do(t, "GET", url+"/big", envelopeKey, nil)
			if tc.wantAbort {
				if got.err == nil {
					t.Fatalf("got a complete response of %d bytes; want the connection aborted", len(got.body))
				}
				if bytes.HasSuffix(got.body, []byte(`"success":true,"message":"OK"}`)) {
					t.Errorf("aborted response ends like a complete envelope")
				}
				return
			}
			if got.err != nil {
				t.Fatalf("read: %v", got.err)
			}
			if string(got.body) != tc.want {
				t.Errorf("body: got %d bytes %.80q...; want %d bytes", len(got.body), got.body, len(tc.want))
			}
			if tc.length {
				if g := got.header.Get("Content-Length"); g != itoa(len(tc.want)) {
					t.Errorf("Content-Length: got %q; want %d", g, len(tc.want))
				}
			}
		})
	}
}
