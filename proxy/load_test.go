package proxy

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// loadKind is one kind of upstream answer in the load test. Every body
// embeds the request's path and nonce, so a body served to the wrong
// request, or a buffer shared between two requests, shows as a mismatch.
type loadKind struct {
	name string
	// respond writes the upstream's answer.
	respond func(w http.ResponseWriter, path, nonce string)
	// legacy is what a legacy client gets: the upstream's status and bytes.
	legacy func(path, nonce string) (int, []byte)
	// envelope is what an envelope client gets, decoded when gzipped.
	envelope func(path, nonce string) (int, string)
	gzipped  bool
}

func loadError(code, msg string) string {
	q := strconv.Quote(msg) // the messages here are plain ASCII: JSON and Go quoting agree
	return `{"data":null,"success":false,"message":` + q + `,"errors":[{"` + code + `":[` + q + `]}]}`
}

// loadKinds returns the upstream answers of the load test.
func loadKinds() []loadKind {
	simple := func(name string, status int, ctype string, body func(path, nonce string) string, env func(path, nonce string) (int, string)) loadKind {
		return loadKind{
			name: name,
			respond: func(w http.ResponseWriter, path, nonce string) {
				if ctype != "" {
					w.Header().Set("Content-Type", ctype)
				}
				w.WriteHeader(status)
				io.WriteString(w, body(path, nonce))
			},
			legacy:   func(path, nonce string) (int, []byte) { return status, []byte(body(path, nonce)) },
			envelope: env,
		}
	}
	okBody := func(path, nonce string) string {
		return `{"path":"` + path + `","nonce":"` + nonce + `","big":9007199254740993,"u":"caf\u00e9","f":1.10}`
	}
	bigBody := func(path, nonce string) string {
		var b strings.Builder
		b.WriteString(`{"path":"` + path + `","nonce":"` + nonce + `","items":[`)
		for i := range 300 {
			fmt.Fprintf(&b, `{"i":%d,"n":"%s"},`, i, nonce)
		}
		b.WriteString(`{}]}`)
		return b.String()
	}
	wrap := func(body func(path, nonce string) string) func(path, nonce string) (int, string) {
		return func(path, nonce string) (int, string) { return 200, `{"data":` + body(path, nonce) + wrapSuffix }
	}
	credits := func(nonce string) (have, need int) {
		n, _ := strconv.ParseUint(nonce[:6], 16, 64)
		return int(n % 1000), int(n%1000) + 1 + int(n>>10%500)
	}
	gzErrBody := func(path, nonce string) []byte {
		return gzipBytes([]byte(`{"error":"boom ` + nonce + ` at ` + path + `"}`))
	}
	kinds := []loadKind{
		simple("ok", 200, "application/json", okBody, wrap(okBody)),
		simple("credits", 403, "application/json", func(path, nonce string) string {
			have, need := credits(nonce)
			return fmt.Sprintf(`{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": %d, "required": %d}, "path": %q}`, have, need, path)
		}, func(path, nonce string) (int, string) {
			have, need := credits(nonce)
			return 402, loadError("insufficient_credits", fmt.Sprintf("Insufficient credits. Required: %d, available: %d", need, have))
		}),
		simple("fields", 400, "application/json", func(path, nonce string) string {
			return `{"error":"Invalid payload","code":"invalid_payload","details":{"name":["bad ` + nonce + ` at ` + path + `"]}}`
		}, func(path, nonce string) (int, string) {
			m := "bad " + nonce + " at " + path
			return 400, `{"data":null,"success":false,"message":"name: ` + m + `","errors":[{"name":["` + m + `"]}]}`
		}),
		simple("auth", 401, "application/json", func(path, nonce string) string {
			return `{"detail":"Invalid key ` + nonce + ` at ` + path + `"}`
		}, func(path, nonce string) (int, string) {
			return 401, loadError("invalid_key", "Invalid key "+nonce+" at "+path)
		}),
		simple("rate", 429, "application/json", func(path, nonce string) string {
			return `{"error":"Slow down ` + nonce + ` at ` + path + `"}`
		}, func(path, nonce string) (int, string) {
			return 429, loadError("rate_limit_exceeded", "Slow down "+nonce+" at "+path)
		}),
		simple("gone", 410, "application/json", func(path, nonce string) string {
			return `{"error":"Gone ` + nonce + ` at ` + path + `","code":"gone_for_good"}`
		}, func(path, nonce string) (int, string) {
			return 410, loadError("gone_for_good", "Gone "+nonce+" at "+path)
		}),
		simple("html", 502, "text/html", func(path, nonce string) string {
			return "<html><body>502 " + nonce + " " + path + "</body></html>"
		}, func(path, nonce string) (int, string) {
			return 502, loadError("bad_gateway", "Bad Gateway")
		}),
		simple("csv", 200, "text/csv", func(path, nonce string) string {
			return "path,nonce\n" + path + "," + nonce + "\n"
		}, func(path, nonce string) (int, string) {
			return 200, "path,nonce\n" + path + "," + nonce + "\n"
		}),
		simple("no content", 204, "", func(path, nonce string) string { return "" },
			func(path, nonce string) (int, string) { return 204, "" }),
		{
			name: "big with length",
			respond: func(w http.ResponseWriter, path, nonce string) {
				b := bigBody(path, nonce)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Length", itoa(len(b)))
				io.WriteString(w, b)
			},
			legacy:   func(path, nonce string) (int, []byte) { return 200, []byte(bigBody(path, nonce)) },
			envelope: wrap(bigBody),
		},
		{
			name: "big chunked",
			respond: func(w http.ResponseWriter, path, nonce string) {
				b := bigBody(path, nonce)
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, b[:len(b)/3])
				w.(http.Flusher).Flush()
				io.WriteString(w, b[len(b)/3:])
			},
			legacy:   func(path, nonce string) (int, []byte) { return 200, []byte(bigBody(path, nonce)) },
			envelope: wrap(bigBody),
		},
		{
			name: "gzip error",
			respond: func(w http.ResponseWriter, path, nonce string) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Content-Encoding", "gzip")
				w.WriteHeader(500)
				w.Write(gzErrBody(path, nonce))
			},
			legacy: func(path, nonce string) (int, []byte) { return 500, gzErrBody(path, nonce) },
			envelope: func(path, nonce string) (int, string) {
				return 500, loadError("internal_error", "boom "+nonce+" at "+path)
			},
			gzipped: true,
		},
	}
	return kinds
}

// loadClient is one kind of client in the load test.
type loadClient struct {
	name     string
	key      string // "unlisted" gets a fresh key per request
	override string
	envelope bool
}

var loadClients = []loadClient{
	{"envelope", envelopeKey, "", true},
	{"legacy", legacyKey, "", false},
	{"shadow", shadowKey, "", false},
	{"unlisted", "unlisted", "", false},
	{"no key", "", "", false},
	{"legacy overridden to envelope", legacyKey, "envelope", true},
	{"envelope overridden to legacy", envelopeKey, "legacy", false},
}

// TestLoadMixedClients drives thousands of concurrent requests of every
// kind from every kind of client through one proxy and checks each answer
// byte for byte against its own request: the right format for its client,
// the right body for its path and nonce. Run with -race, it also checks the
// pooled buffers, encoders and exchanges are never shared by two requests.
func TestLoadMixedClients(t *testing.T) {
	total, workers := 3000, 64
	if testing.Short() {
		total = 700
	}
	kinds := loadKinds()
	var upstreamFaults atomic.Int64
	var upstreamFault atomic.Value
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nonce := r.Header.Get("X-Nonce")
		if v := r.Header.Get("X-Response-Format"); v != "" {
			upstreamFaults.Add(1)
			upstreamFault.Store("the override header reached the upstream: " + v)
		}
		parts := strings.Split(r.URL.Path, "/")
		k, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || k < 0 || k >= len(kinds) || len(nonce) != 16 {
			upstreamFaults.Add(1)
			upstreamFault.Store(fmt.Sprintf("unexpected request %s nonce %q", r.URL.Path, nonce))
			w.WriteHeader(418)
			return
		}
		kinds[k].respond(w, r.URL.Path, nonce)
	})
	url := startProxy(t, up, func(c *config.Config) {
		c.MaxBodyBytes = 4096
		c.Routing.OverrideHeader = "X-Response-Format"
	})
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: workers}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	var failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	jobs := make(chan int, total)
	for i := range total {
		jobs <- i
	}
	close(jobs)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			for i := range jobs {
				if t.Context().Err() != nil {
					return
				}
				kind, cl := kinds[i%len(kinds)], loadClients[i%len(loadClients)]
				path := fmt.Sprintf("/v1/%s/%d/%d", strings.ReplaceAll(kind.name, " ", "-"), i%len(kinds), i)
				nonce := fmt.Sprintf("%016x", rng.Uint64())
				req, err := http.NewRequestWithContext(t.Context(), "GET", url+path, nil)
				if err != nil {
					fail("%s: %v", path, err)
					continue
				}
				req.Header.Set("X-Nonce", nonce)
				switch cl.key {
				case "":
				case "unlisted":
					req.Header.Set("X-API-Key", "unlisted-"+nonce)
				default:
					req.Header.Set("X-API-Key", cl.key)
				}
				if cl.override != "" {
					req.Header.Set("X-Response-Format", cl.override)
				}
				resp, err := client.Do(req)
				if err != nil {
					fail("%s (%s, %s): %v", path, kind.name, cl.name, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					fail("%s (%s, %s): read: %v", path, kind.name, cl.name, err)
					continue
				}
				if h := resp.Header.Get("Content-Length"); h != "" && h != itoa(len(body)) {
					fail("%s (%s, %s): Content-Length: got %q; want %d", path, kind.name, cl.name, h, len(body))
				}
				var wantStatus int
				var want []byte
				if cl.envelope {
					var s string
					wantStatus, s = kind.envelope(path, nonce)
					want = []byte(s)
					if kind.gzipped && resp.StatusCode == wantStatus {
						zr, err := gzip.NewReader(bytes.NewReader(body))
						if err != nil {
							fail("%s (%s, %s): the body is not gzip: %v", path, kind.name, cl.name, err)
							continue
						}
						if body, err = io.ReadAll(zr); err != nil {
							fail("%s (%s, %s): the body is not valid gzip: %v", path, kind.name, cl.name, err)
							continue
						}
					}
				} else {
					wantStatus, want = kind.legacy(path, nonce)
				}
				if resp.StatusCode != wantStatus || !bytes.Equal(body, want) {
					fail("%s (%s, %s): got %d %.300q; want %d %.300q", path, kind.name, cl.name, resp.StatusCode, body, wantStatus, want)
				}
				if g := resp.Header.Get("Vary"); g != "X-Api-Key, X-Response-Format" {
					fail("%s (%s, %s): Vary: got %q; want %q", path, kind.name, cl.name, g, "X-Api-Key, X-Response-Format")
				}
			}
		})
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests got a wrong answer", n, total)
	}
	if n := upstreamFaults.Load(); n > 0 {
		t.Errorf("%d requests reached the upstream wrong; the last: %v", n, upstreamFault.Load())
	}
}
