package shadow

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"net/http/httptest"
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

// runOne compares one exchange with cfg and returns the finished report.
func runOne(t *testing.T, cfg Settings, ex *event.Capture) Report {
	t.Helper()
	c := New(cfg, Options{})
	c.Submit(ex)
	c.Close()
	return c.Report("")
}

// outcomeOf returns the one outcome a report recorded for client acme.
func outcomeOf(t *testing.T, rep Report) event.Outcome {
	t.Helper()
	for _, ct := range rep.Clients {
		if ct.Client != "acme" {
			continue
		}
		if ct.Total != 1 {
			t.Fatalf("acme has %d outcomes %v; want exactly 1", ct.Total, ct.Outcomes)
		}
		for o := range ct.Outcomes {
			return o
		}
	}
	t.Fatalf("no outcome for acme in %+v", rep.Clients)
	return ""
}

// onlyGroup returns the report's single group.
func onlyGroup(t *testing.T, rep Report) Group {
	t.Helper()
	if len(rep.Groups) != 1 {
		t.Fatalf("got %d groups; want 1: %+v", len(rep.Groups), rep.Groups)
	}
	return rep.Groups[0]
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
