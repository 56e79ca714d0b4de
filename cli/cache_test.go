//go:build linux

package cli

// End-to-end tests of "one format per client" with a real shared cache
// (Debian's nginx with proxy_cache, nginx_test.go) and real clients (curl,
// wget) in front of the proxy, over loopback only: formats and encodings
// kept apart by Vary alone through the cache, conditional requests across
// a mode flip and a rollback (curl --etag-save / --etag-compare), resumed
// downloads of a streamed envelope (curl -C -, wget -c) and HEAD (curl -I).

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// The legacy API's documents. docBody is a cacheable 200, missingBody a
// cacheable 404 in the legacy error format; bigBody (bigDoc) is larger than
// the default max_body_bytes (1 MiB), so the proxy wraps it while it
// streams, with a Content-Length.
const (
	docBody     = `{"id":7,"name":"doc","tags":["a","b"],"price":12.5}`
	missingBody = `{"error": "Not found", "code": "not_found"}`
	docTag      = `"doc-7"`    // the upstream's strong tag of the identity body
	docGzipTag  = `"doc-7-gz"` // and of the gzip body
	bigTag      = `"big-1"`
)

// The envelope's forms of the documents.
const (
	docEnvelope     = `{"data":` + docBody + `,"success":true,"message":"OK"}`
	missingEnvelope = `{"data":null,"success":false,"message":"Not found","errors":[{"not_found":["Not found"]}]}`
)

// envelopeTag matches an envelope client's tag for the document: the
// upstream's, marked with the rules' fingerprint, weak as the body is
// rewritten (proxy/validators.go).
var envelopeTag = regexp.MustCompile(`^W/"doc-7(-gz)?\.env-[0-9a-f]{8}"$`)

// docModified is the document's Last-Modified.
var docModified = time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)

// bigDoc is a JSON document of about 2 MiB.
var bigDoc = func() []byte {
	var b bytes.Buffer
	b.WriteString(`{"items":[`)
	for i := 0; b.Len() < 2<<20; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"i":%d,"name":"item %d","pad":"%s"}`, i, i, strings.Repeat("x", 40+i%17))
	}
	b.WriteString(`]}`)
	return b.Bytes()
}()

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

// cacheUpstream is the legacy API: /doc, the cacheable 200 (gzip to a
// client that accepts it, each encoding with a strong tag of its own);
// /missing, the cacheable 404 (gzip likewise); /big, the 2 MiB document.
// Conditional requests (If-None-Match with weak comparison, then
// If-Modified-Since) and ranges are answered by http.ServeContent, as a
// standard server does: 304s, and 206 slices of the legacy bytes, which an
// envelope client must never get.
func cacheUpstream() *httptest.Server {
	docGzip, missingGzip := gzipped(docBody), gzipped(missingBody)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		gz := strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")
		switch r.URL.Path {
		case "/doc":
			h.Set("Cache-Control", "public, max-age=60")
			h.Set("Vary", "Accept-Encoding")
			body, tag := []byte(docBody), docTag
			if gz {
				body, tag = docGzip, docGzipTag
				h.Set("Content-Encoding", "gzip")
			}
			h.Set("Etag", tag)
			http.ServeContent(w, r, "", docModified, bytes.NewReader(body))
		case "/missing":
			h.Set("Cache-Control", "public, max-age=60")
			h.Set("Vary", "Accept-Encoding")
			body := []byte(missingBody)
			if gz {
				body = missingGzip
				h.Set("Content-Encoding", "gzip")
			}
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusNotFound)
			w.Write(body)
		case "/big":
			h.Set("Etag", bigTag)
			http.ServeContent(w, r, "", docModified, bytes.NewReader(bigDoc))
		default:
			http.NotFound(w, r)
		}
	}))
}

// cacheConfig has acme's key in envelope mode, other's in otherMode, and
// keyless requests in legacy mode (routing.default); max_body_bytes is the
// default, 1 MiB.
func cacheConfig(upstream, otherMode string) string {
	return clientsYAML(upstream, []testClient{{"acme", acmeKey, "envelope"}, {"other", otherKey, otherMode}}, "")
}

// rawClient is a Go client that takes bodies as they come: it sends
// Accept-Encoding only when the test sets it, and never decodes.
var rawClient = &http.Client{
	Timeout:   await.Patience,
	Transport: &http.Transport{Proxy: nil, DisableCompression: true},
}

type fetched struct {
	status int
	header http.Header
	body   []byte
}

// fetchRaw sends method to url with the key (none when "") and the header
// pairs given.
func fetchRaw(t testing.TB, method, url, key string, header ...string) fetched {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return fetched{resp.StatusCode, resp.Header, b}
}

// cacheClient is one kind of client of the cache tests.
type cacheClient struct {
	name     string
	key      string
	envelope bool // the format the client must get
}

var cacheClients = []cacheClient{
	{"envelope key", acmeKey, true},
	{"legacy key", otherKey, false},
	{"keyless", "", false},
}

// acceptEncodings are the clients' Accept-Encoding: gzip, explicit
// identity, and none at all; only the first may get a gzip body.
var acceptEncodings = []string{"gzip", "identity", ""}

// cachePath is a path of the cache tests with what each format gets.
type cachePath struct {
	path                    string
	legacyStatus, envStatus int
	legacy, envelope        string
}

var cachePaths = []cachePath{
	{"/doc", 200, 200, docBody, docEnvelope},
	{"/missing", 404, 404, missingBody, missingEnvelope},
}

// checkFormat checks that a response is exactly what the client must get
// on p: status, body in its format and encoding, and the validators of its
// format. It returns the problems found, "" when none.
func checkFormat(p cachePath, c cacheClient, acceptEncoding string, r fetched) string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	wantStatus, want, format := p.legacyStatus, p.legacy, "legacy"
	if c.envelope {
		wantStatus, want, format = p.envStatus, p.envelope, "envelope"
	}
	if r.status != wantStatus {
		bad("status: got %d; want %d (%s)", r.status, wantStatus, format)
	}
	body := r.body
	ce := r.header.Get("Content-Encoding")
	if acceptEncoding == "gzip" {
		if ce != "gzip" {
			bad("Content-Encoding: got %q; want %q", ce, "gzip")
		} else {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err == nil {
				body, err = io.ReadAll(zr)
			}
			if err != nil {
				bad("the gzip body does not decode: %v", err)
			}
		}
	} else {
		if ce != "" {
			bad("Content-Encoding: got %q; want none (the client sent Accept-Encoding %q)", ce, acceptEncoding)
		}
		if bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
			bad("a gzip body to a client that did not accept gzip")
		}
	}
	if string(body) != want {
		bad("body: got %q; want %q (%s)", body, want, format)
	}
	if cl := r.header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(r.body)) {
		bad("Content-Length: got %s; want %d, the length of the body", cl, len(r.body))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		bad("Content-Type: got %q; want %q", ct, "application/json")
	}
	if p.path == "/doc" {
		etag, lm := r.header.Get("Etag"), r.header.Get("Last-Modified")
		legacyTag := docTag
		if acceptEncoding == "gzip" {
			legacyTag = docGzipTag
		}
		if c.envelope {
			if !envelopeTag.MatchString(etag) || strings.Contains(etag, "-gz.") != (acceptEncoding == "gzip") {
				bad("ETag: got %q; want the envelope's tag of %s, W/\"<tag>.env-<fingerprint>\"", etag, legacyTag)
			}
			if lm != "" {
				bad("Last-Modified: got %q; want none for an envelope", lm)
			}
		} else {
			if etag != legacyTag {
				bad("ETag: got %q; want %q", etag, legacyTag)
			}
			if want := docModified.Format(http.TimeFormat); lm != want {
				bad("Last-Modified: got %q; want %q", lm, want)
			}
		}
	}
	return strings.Join(problems, "; ")
}

// TestCacheKeepsFormatsApartThroughNginx alternates envelope, legacy and
// keyless clients, each with gzip, identity and no Accept-Encoding, on a
// cacheable 200 and a cacheable 404 through nginx's proxy_cache, whose key
// is the same for all of them: only the proxy's Vary keeps the formats and
// encodings apart. Every response must be exactly the client's format and
// encoding, and the cache must have answered some of them (HIT).
func TestCacheKeepsFormatsApartThroughNginx(t *testing.T) {
	up := cacheUpstream()
	defer up.Close()
	in := startServe(t, cacheConfig(up.URL, "legacy"))

	// Vary from the proxy itself: nginx 1.22 keys its cache on one Vary
	// line only (the last it receives: with Accept-Encoding and X-Api-Key
	// on two lines, it served gzip bodies to identity clients), so the
	// proxy must send one.
	t.Run("proxy sends one Vary", func(t *testing.T) {
		for _, p := range cachePaths {
			for _, c := range cacheClients {
				for _, ae := range acceptEncodings {
					t.Run(fmt.Sprintf("%s %s ae=%q", p.path, c.name, ae), func(t *testing.T) {
						r := fetchRaw(t, "GET", in.client+p.path, c.key, "Accept-Encoding", ae)
						if problem := checkFormat(p, c, ae, r); problem != "" {
							t.Errorf("direct from the proxy: %s", problem)
						}
						vary := r.header.Values("Vary")
						if len(vary) != 1 {
							t.Fatalf("Vary lines: got %q; want one", vary)
						}
						seen := map[string]int{}
						for _, tok := range strings.Split(vary[0], ",") {
							seen[strings.ToLower(strings.TrimSpace(tok))]++
						}
						for _, want := range []string{"accept-encoding", "x-api-key"} {
							if seen[want] != 1 {
								t.Errorf("Vary: got %q; want %s exactly once", vary[0], want)
							}
						}
					})
				}
			}
		}
	})

	ngx := startNginx(t, strings.TrimPrefix(in.client, "http://"))
	const rounds = 3
	hits := map[string]int{}
	xcache := map[string][]string{}
	for round := 1; round <= rounds; round++ {
		for _, p := range cachePaths {
			for _, c := range cacheClients {
				for _, ae := range acceptEncodings {
					t.Run(fmt.Sprintf("round %d %s %s ae=%q", round, p.path, c.name, ae), func(t *testing.T) {
						r := fetchRaw(t, "GET", ngx.URL+p.path, c.key, "Accept-Encoding", ae)
						x := r.header.Get("X-Cache")
						xcache[p.path] = append(xcache[p.path], x)
						if x == "HIT" {
							hits[p.path]++
						}
						if problem := checkFormat(p, c, ae, r); problem != "" {
							t.Errorf("through nginx (X-Cache: %s): %s\nresponse headers: %v\nnginx access log:\n%s",
								x, problem, r.header, ngx.accessLog())
						}
					})
				}
			}
		}
	}
	for _, p := range cachePaths {
		t.Logf("%s: X-Cache %v", p.path, xcache[p.path])
		if hits[p.path] == 0 {
			t.Errorf("%s: no response came from nginx's cache (X-Cache %v); want at least one HIT", p.path, xcache[p.path])
		}
	}
}

// runTool runs a real client (curl, wget) to completion in dir, with an
// environment of its own: no proxy variables, no user configuration.
func runTool(t testing.TB, dir, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), await.Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir, "LC_ALL=C"}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// curlResult is what one curl run got.
type curlResult struct {
	status int
	header http.Header
	body   string
	etag   string // what --etag-save wrote, "" when not asked
}

// curl runs curl on url with the key and the extra arguments, saving the
// body, the headers, and, when etagSave is set, the entity tag to files
// named after name in dir.
func curl(t testing.TB, bin, dir, name, url, key, etagSave string, extra ...string) curlResult {
	t.Helper()
	bodyFile, headerFile := filepath.Join(dir, name+".body"), filepath.Join(dir, name+".headers")
	// -q first: no .curlrc.
	args := []string{"-q", "-sS", "-o", bodyFile, "-D", headerFile, "-w", "%{http_code}"}
	if key != "" {
		args = append(args, "-H", "X-API-Key: "+key)
	}
	if etagSave != "" {
		args = append(args, "--etag-save", etagSave)
	}
	args = append(append(args, extra...), url)
	stdout, stderr, err := runTool(t, dir, bin, args...)
	if err != nil {
		t.Fatalf("curl %q: %v: %s", args, err, stderr)
	}
	status, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("curl %q: status %q: %v", args, stdout, err)
	}
	raw, err := os.ReadFile(headerFile)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(raw)), &http.Request{Method: "HEAD"})
	if err != nil {
		t.Fatalf("curl %q: the headers do not parse: %v\n%s", args, err, raw)
	}
	body, _ := os.ReadFile(bodyFile)
	r := curlResult{status: status, header: resp.Header, body: string(body)}
	if etagSave != "" {
		b, _ := os.ReadFile(etagSave)
		r.etag = strings.TrimSpace(string(b))
	}
	return r
}

// flipOther rewrites the config with other's key in mode, and waits until
// the proxy has applied it.
func flipOther(t testing.TB, in *instance, upstream, mode string) {
	t.Helper()
	reloads := func() float64 {
		return counter(in.metrics(), "envelope_proxy_config_reloads_total", map[string]string{"result": "success"})
	}
	before := reloads()
	in.write(cacheConfig(upstream, mode))
	await.Until(t, "the reload putting other in "+mode+" mode", func() bool { return reloads() > before })
	// The reload is counted once it is applied: other's format from the
	// proxy itself (no cache) says so too.
	want := missingBody
	if mode == "envelope" {
		want = missingEnvelope
	}
	if _, body := in.get("/missing", otherKey); body != want {
		t.Fatalf("after the reload to %s: got %q; want %q", mode, body, want)
	}
}

// TestCurlETagFlip saves a body and its entity tag with curl --etag-save as
// a legacy client, flips the client to envelope by a config reload, and
// revalidates with curl --etag-compare: the envelope must come back with a
// 200, never a 304 confirming the legacy copy. Then the steady state (the
// envelope client's own tag gets 304), and the rollback (envelope saved,
// flipped back to legacy, revalidated: 200 with the legacy body).
//
// Through nginx, the revalidations that follow a flip carry Cache-Control:
// no-cache, which this nginx turns into a cache bypass (nginx ignores a
// client's no-cache otherwise): the cache cannot know of the flip, so
// without it nginx would serve the entry it holds for that key until its
// max-age ends, which is the cache doing its job. nginx never forwards a
// client's If-None-Match when it caches; it compares it with the response
// itself, so there the marked tags are what keeps the formats apart.
// Directly against the proxy, the client's If-None-Match reaches the proxy,
// which must drop a tag of the other format.
func TestCurlETagFlip(t *testing.T) {
	bin := requireTool(t, "curl")
	for _, viaNginx := range []bool{false, true} {
		name := "direct to the proxy"
		if viaNginx {
			name = "through nginx"
		}
		t.Run(name, func(t *testing.T) {
			up := cacheUpstream()
			defer up.Close()
			in := startServe(t, cacheConfig(up.URL, "legacy"))
			target := in.client
			var ngx *nginxServer
			var noCache []string
			if viaNginx {
				ngx = startNginx(t, strings.TrimPrefix(in.client, "http://"))
				target = ngx.URL
				noCache = []string{"-H", "Cache-Control: no-cache"}
			}
			dir := t.TempDir()
			etagFile := func(name string) string { return filepath.Join(dir, name+".etag") }
			// check compares a curl result with what it must be.
			check := func(step string, r curlResult, wantStatus int, wantBody, wantXCache string) {
				t.Helper()
				x := r.header.Get("X-Cache")
				var problems []string
				if r.status != wantStatus {
					problems = append(problems, fmt.Sprintf("status: got %d; want %d", r.status, wantStatus))
				}
				if wantStatus == 200 && r.body != wantBody {
					problems = append(problems, fmt.Sprintf("body: got %q; want %q", r.body, wantBody))
				}
				if viaNginx && wantXCache != "" && x != wantXCache {
					problems = append(problems, fmt.Sprintf("X-Cache: got %q; want %q", x, wantXCache))
				}
				if len(problems) > 0 {
					msg := fmt.Sprintf("%s: %s\nresponse headers: %v", step, strings.Join(problems, "; "), r.header)
					if viaNginx {
						msg += "\nnginx access log:\n" + ngx.accessLog()
					}
					t.Error(msg)
				}
			}

			// flip flips the client to mode and revalidates the tag saved
			// as the other format (saved) bypassing a cache, saving the
			// new tag as saveAs: the whole body of mode must come back.
			flip := func(mode, step, saved, saveAs, wantBody string) curlResult {
				t.Helper()
				flipOther(t, in, up.URL, mode)
				r := curl(t, bin, dir, saveAs, target+"/doc", otherKey, etagFile(saveAs),
					append([]string{"--etag-compare", etagFile(saved)}, noCache...)...)
				check(step, r, 200, wantBody, "BYPASS")
				return r
			}

			// The legacy client saves the body and its tag.
			r := curl(t, bin, dir, "legacy", target+"/doc", otherKey, etagFile("legacy"))
			check("legacy GET", r, 200, docBody, "")
			if r.etag != docTag {
				t.Fatalf("--etag-save as legacy: got %q; want %q", r.etag, docTag)
			}
			// Unflipped, the legacy copy is confirmed.
			r = curl(t, bin, dir, "legacy-again", target+"/doc", otherKey, "", "--etag-compare", etagFile("legacy"))
			check("legacy revalidates its own tag", r, 304, "", "")

			r = flip("envelope", "flipped to envelope, revalidating the legacy tag", "legacy", "flipped", docEnvelope)
			if !envelopeTag.MatchString(r.etag) {
				t.Fatalf("--etag-save after the flip: got %q; want the envelope's W/\"doc-7.env-<fingerprint>\"", r.etag)
			}

			// Steady state: the envelope client's own tag is confirmed,
			// by the proxy, and through nginx both from the upstream
			// (bypass) and from the cache.
			r = curl(t, bin, dir, "steady", target+"/doc", otherKey, "",
				append([]string{"--etag-compare", etagFile("flipped")}, noCache...)...)
			check("envelope revalidates its own tag", r, 304, "", "BYPASS")
			if got, saved := r.header.Get("Etag"), readTrim(etagFile("flipped")); got != saved {
				t.Errorf("the 304's ETag: got %q; want the client's %q", got, saved)
			}
			if viaNginx {
				r = curl(t, bin, dir, "steady-cached", target+"/doc", otherKey, "", "--etag-compare", etagFile("flipped"))
				check("envelope revalidates its own tag from the cache", r, 304, "", "HIT")
			}

			// Rollback: the envelope copy must not be confirmed for the
			// legacy client.
			r = flip("legacy", "rolled back to legacy, revalidating the envelope tag", "flipped", "rolled-back", docBody)
			if r.etag != docTag {
				t.Errorf("--etag-save after the rollback: got %q; want %q", r.etag, docTag)
			}
		})
	}
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// TestCurlWgetResume resumes a download of the 2 MiB document with curl -C -
// and wget -c after a partial first download (its first bytes written to
// the file here, taken from a whole GET): the file must end up exactly the
// whole body of the client's format, which for an envelope client is valid
// JSON. This is done directly against the proxy, not through nginx: nginx
// answers ranges from its own cached copy, and the proxy's ranges of the
// envelope are what is under test.
func TestCurlWgetResume(t *testing.T) {
	up := cacheUpstream()
	defer up.Close()
	in := startServe(t, cacheConfig(up.URL, "legacy"))
	wholes := map[bool][]byte{}
	for _, envelope := range []bool{true, false} {
		key, want := otherKey, bigDoc
		if envelope {
			key, want = acmeKey, []byte(`{"data":`+string(bigDoc)+`,"success":true,"message":"OK"}`)
		}
		r := fetchRaw(t, "GET", in.client+"/big", key)
		if r.status != 200 || !bytes.Equal(r.body, want) {
			t.Fatalf("whole GET (envelope %v): got %d, %d bytes; want 200, %d bytes of the client's format", envelope, r.status, len(r.body), len(want))
		}
		if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			t.Errorf("whole GET (envelope %v): Content-Length: got %q; want %d", envelope, cl, len(want))
		}
		wholes[envelope] = r.body
	}
	if !json.Valid(wholes[true]) {
		t.Fatal("the whole envelope is not valid JSON")
	}

	type tool struct {
		name string
		args func(file, url, key string) []string
	}
	tools := []tool{
		{"curl", func(file, url, key string) []string {
			return []string{"-q", "-sS", "-C", "-", "-o", file, "-w", "curl got %{http_code} %header{content-range}\n", "-H", "X-API-Key: " + key, url}
		}},
		{"wget", func(file, url, key string) []string {
			return []string{"--no-config", "-q", "-S", "--no-proxy", "-c", "-O", file, "--header", "X-API-Key: " + key, url}
		}},
	}
	for _, tl := range tools {
		t.Run(tl.name, func(t *testing.T) {
			bin := requireTool(t, tl.name)
			for _, c := range cacheClients[:2] {
				whole := wholes[c.envelope]
				for _, have := range []int{5, len(whole) / 3} {
					t.Run(fmt.Sprintf("%s after %d bytes", c.name, have), func(t *testing.T) {
						dir := t.TempDir()
						file := filepath.Join(dir, "big.json")
						if err := os.WriteFile(file, whole[:have], 0o600); err != nil {
							t.Fatal(err)
						}
						// curl's -w and wget's -S say what the proxy
						// answered, for the failure messages.
						stdout, stderr, err := runTool(t, dir, bin, tl.args(file, in.client+"/big", c.key)...)
						if err != nil {
							t.Fatalf("%s: %v\n%s%s", tl.name, err, stdout, stderr)
						}
						got, err := os.ReadFile(file)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, whole) {
							t.Errorf("resumed file: got %d bytes (%s); want the whole %d bytes of the %s\n%s%s", len(got), bodyEnds(got), len(whole), formatName(c.envelope), stdout, stderr)
						}
						if !json.Valid(got) {
							t.Errorf("resumed file is not valid JSON (%s)", bodyEnds(got))
						}
					})
				}
			}
		})
	}
}

func formatName(envelope bool) string {
	if envelope {
		return "envelope"
	}
	return "legacy body"
}

// ends shows the two ends of a large body.
func bodyEnds(b []byte) string {
	if len(b) <= 80 {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q ... %q", b[:40], b[len(b)-40:])
}

// TestCurlHEADIsGETWithoutBody checks with curl -I, directly against the
// proxy, that a HEAD gets the GET's status, Content-Length, Content-Type
// and ETag in every client's format: for an envelope client, the 404
// envelope's length and status, not the legacy body's.
func TestCurlHEADIsGETWithoutBody(t *testing.T) {
	bin := requireTool(t, "curl")
	up := cacheUpstream()
	defer up.Close()
	in := startServe(t, cacheConfig(up.URL, "legacy"))
	dir := t.TempDir()
	for _, p := range cachePaths {
		for _, c := range cacheClients {
			t.Run(p.path+" "+c.name, func(t *testing.T) {
				get := fetchRaw(t, "GET", in.client+p.path, c.key)
				if problem := checkFormat(p, c, "", get); problem != "" {
					t.Fatalf("GET: %s", problem)
				}
				args := []string{"-q", "-sS", "-I"}
				if c.key != "" {
					args = append(args, "-H", "X-API-Key: "+c.key)
				}
				stdout, stderr, err := runTool(t, dir, bin, append(args, in.client+p.path)...)
				if err != nil {
					t.Fatalf("curl -I: %v: %s", err, stderr)
				}
				head, err := http.ReadResponse(bufio.NewReader(strings.NewReader(stdout)), &http.Request{Method: "HEAD"})
				if err != nil {
					t.Fatalf("curl -I output does not parse: %v\n%s", err, stdout)
				}
				head.Body.Close()
				if head.StatusCode != get.status {
					t.Errorf("status: got %d; want %d, the GET's", head.StatusCode, get.status)
				}
				if got, want := head.Header.Get("Content-Length"), strconv.Itoa(len(get.body)); got != want {
					t.Errorf("Content-Length: got %q; want %q, the GET's body length", got, want)
				}
				for _, name := range []string{"Content-Type", "Etag", "Last-Modified", "Vary", "Cache-Control"} {
					if got, want := head.Header.Values(name), get.header.Values(name); strings.Join(got, "\n") != strings.Join(want, "\n") {
						t.Errorf("%s: got %q; want %q, the GET's", name, got, want)
					}
				}
			})
		}
	}
}
