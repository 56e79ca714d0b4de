package proxy

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// TestRangesOfTheEnvelope checks that an envelope client's Range is served
// from the envelope itself, never from the upstream's legacy bytes: a
// satisfiable single range gets a 206 slice of exactly what a GET gets
// whole, anything else the whole envelope, and resuming a streamed wrap
// (the curl -C - and wget -c case) puts together a valid envelope.
func TestRangesOfTheEnvelope(t *testing.T) {
	large := `[` + strings.Repeat(`{"id":12345,"name":"item"},`, 2000) + `{}]`
	ranges := make(chan string, 100)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ranges <- r.Header.Get("Range")
		switch r.URL.Path {
		case "/small":
			w.Header().Set("Etag", `"s1"`)
			fixed(200, jsonHeader, `{"id":1,"name":"small"}`).ServeHTTP(w, r)
		case "/large":
			w.Header().Set("Content-Length", itoa(len(large)))
			fixed(200, jsonHeader, large).ServeHTTP(w, r)
		case "/file":
			w.Header().Set("Etag", `"f1"`)
			fixed(200, http.Header{"Content-Type": {"application/octet-stream"}}, "0123456789").ServeHTTP(w, r)
		}
	})
	url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = 4 << 10 })
	whole := map[string][]byte{}
	for _, path := range []string{"/small", "/large", "/file"} {
		whole[path] = do(t, "GET", url+path, envelopeKey, nil).body
		<-ranges
	}
	fileTag := marked(`"f1"`)
	tests := []struct {
		name, path  string
		header      http.Header
		wantStatus  int
		first, last int // the slice of the whole body expected; -1 for all
	}{
		{"first bytes", "/small", http.Header{"Range": {"bytes=0-7"}}, 206, 0, 7},
		{"open ended", "/small", http.Header{"Range": {"bytes=10-"}}, 206, 10, -1},
		{"suffix", "/small", http.Header{"Range": {"bytes=-5"}}, 206, -5, -1},
		{"past the end is cut", "/small", http.Header{"Range": {"bytes=3-100000"}}, 206, 3, -1},
		{"unsatisfiable gets all", "/small", http.Header{"Range": {"bytes=100000-"}}, 200, -1, -1},
		{"several ranges get all", "/small", http.Header{"Range": {"bytes=0-1,4-5"}}, 200, -1, -1},
		{"not bytes gets all", "/small", http.Header{"Range": {"items=0-1"}}, 200, -1, -1},
		{"weak If-Range gets all", "/small", http.Header{"Range": {"bytes=0-7"}, "If-Range": {marked(`W/"s1"`)}}, 200, -1, -1},
		{"legacy If-Range gets all", "/small", http.Header{"Range": {"bytes=0-7"}, "If-Range": {`"s1"`}}, 200, -1, -1},
		{"resume a streamed wrap", "/large", http.Header{"Range": {"bytes=1000-"}}, 206, 1000, -1},
		{"file, matching If-Range", "/file", http.Header{"Range": {"bytes=2-4"}, "If-Range": {fileTag}}, 206, 2, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			full := whole[tc.path]
			got := do(t, "GET", url+tc.path, envelopeKey, tc.header)
			if r := <-ranges; r != "" {
				t.Errorf("the upstream got Range %q; want none", r)
			}
			if got.status != tc.wantStatus {
				t.Fatalf("status: got %d; want %d", got.status, tc.wantStatus)
			}
			if tc.wantStatus == 200 {
				if string(got.body) != string(full) || got.header.Get("Content-Range") != "" {
					t.Errorf("got %q (Content-Range %q); want the whole body %q", got.body, got.header.Get("Content-Range"), full)
				}
				return
			}
			first, last := tc.first, tc.last
			if first < 0 {
				first += len(full)
			}
			if last < 0 {
				last = len(full) - 1
			}
			if want := full[first : last+1]; string(got.body) != string(want) {
				t.Errorf("body: got %q; want %q", got.body, want)
			}
			if g, w := got.header.Get("Content-Range"), "bytes "+itoa(first)+"-"+itoa(last)+"/"+itoa(len(full)); g != w {
				t.Errorf("Content-Range: got %q; want %q", g, w)
			}
			if g := got.header.Get("Content-Length"); g != itoa(len(got.body)) {
				t.Errorf("Content-Length: got %q; want %d", g, len(got.body))
			}
			if tc.path == "/large" && !json.Valid(append(full[:first:first], got.body...)) {
				t.Errorf("the resumed download is not one JSON value")
			}
		})
	}
}
