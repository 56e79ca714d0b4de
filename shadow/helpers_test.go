package shadow

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// The legacy and envelope bodies of the migration's flagship example.
const (
	creditsLegacy   = `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`
	creditsEnvelope = `{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50","errors":[{"insufficient_credits":["Insufficient credits. Required: 120, available: 50"]}]}`
)

// testConfig returns the default settings with a candidate at url (none
// when ""), edited by mod.
func testConfig(url string, mod func(*Settings)) Settings {
	d := config.Default()
	s := Settings{
		Shadow:          d.Shadow,
		Candidate:       config.Candidate{URL: url, Timeout: 5 * time.Second},
		EnvelopeMaxBody: d.MaxBodyBytes,
		KeyHeader:       d.Routing.Header,
		Samples:         d.Dashboard.Samples,
	}
	if mod != nil {
		mod(&s)
	}
	return s
}

// testTransformer is the built-in rule set, as the proxy hands it over.
func testTransformer(t *testing.T) *transform.Transformer {
	t.Helper()
	tr, err := transform.New(nil)
	if err != nil {
		t.Fatalf("transform.New: %v", err)
	}
	return tr
}

// newExchange returns a GET exchange of client acme with a JSON legacy
// response.
func newExchange(t *testing.T, method, path string, status int, body string) *event.Capture {
	t.Helper()
	return &event.Capture{
		Client:        "acme",
		KeyHash:       keyHash("acme-key"),
		Method:        method,
		Path:          path,
		Header:        http.Header{"X-Api-Key": {"acme-key"}, "Accept": {"application/json"}},
		LegacyStatus:  status,
		LegacyHeader:  http.Header{"Content-Type": {"application/json"}},
		LegacyBody:    []byte(body),
		LegacyLatency: 12 * time.Millisecond,
		Transformer:   testTransformer(t),
	}
}

// keyHash places a key as routing does: the first 8 bytes of its SHA-256.
func keyHash(key string) uint64 {
	sum := sha256.Sum256([]byte(key))
	return binary.BigEndian.Uint64(sum[:8])
}

// jsonServer starts a candidate that answers status and body to every
// request.
func jsonServer(t *testing.T, status int, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// recorder is a fake evidence: it keeps every comparison handed over, in
// the order they came.
type recorder struct {
	mu  sync.Mutex
	evs []event.Comparison
}

// RecordComparison keeps ev.
func (r *recorder) RecordComparison(ev event.Comparison) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// all returns a copy of the comparisons handed over so far.
func (r *recorder) all() []event.Comparison {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

// outcomes counts the comparisons of client handed over so far by outcome.
func (r *recorder) outcomes(client string) map[event.Outcome]uint64 {
	out := map[event.Outcome]uint64{}
	for _, ev := range r.all() {
		if ev.Client == client {
			out[ev.Outcome]++
		}
	}
	return out
}

// routes returns the distinct routes of the comparisons handed over so
// far, sorted, leaving out the outcomes decided before a route.
func (r *recorder) routes() []string {
	var out []string
	for _, ev := range r.all() {
		if ev.Route != "" && !slices.Contains(out, ev.Route) {
			out = append(out, ev.Route)
		}
	}
	slices.Sort(out)
	return out
}

// runOne compares one exchange with cfg and returns the comparisons handed
// over once the comparator is closed.
func runOne(t *testing.T, cfg Settings, ex *event.Capture) []event.Comparison {
	t.Helper()
	rec := &recorder{}
	c := New(cfg, Options{Recorder: rec})
	c.Submit(ex)
	c.Close()
	return rec.all()
}

// onlyComparison returns the one comparison handed over for client acme.
func onlyComparison(t *testing.T, evs []event.Comparison) event.Comparison {
	t.Helper()
	var mine []event.Comparison
	for _, ev := range evs {
		if ev.Client == "acme" {
			mine = append(mine, ev)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("acme has %d comparisons %+v; want exactly 1", len(mine), mine)
	}
	return mine[0]
}

// outcomeOf returns the outcome of the one comparison of client acme.
func outcomeOf(t *testing.T, evs []event.Comparison) event.Outcome {
	t.Helper()
	return onlyComparison(t, evs).Outcome
}

// gzipped compresses s.
func gzipped(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compareNow runs one comparison synchronously, as a worker would.
func (c *Comparator) compareNow(ex *event.Capture) {
	c.inflight.Add(1)
	c.run(c.cur.Load(), c.clients.get(ex.Client), ex)
}
