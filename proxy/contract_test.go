package proxy

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// handedOver is a ContractChecker that keeps what it is handed.
type handedOver struct {
	mu        sync.Mutex
	envelopes []event.Envelope
}

func (h *handedOver) Submit(e *event.Envelope) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := *e
	c.Body = bytes.Clone(e.Body)
	h.envelopes = append(h.envelopes, c)
}

// TestContractHandOver checks what the checks are told of each envelope:
// a buffered success, identity or encoded, is marked Wrapped (its body is
// the prefix, one JSON value transform.Valid passed and the suffix); a
// rewritten error is not; a streamed wrap is Streamed, without a body.
func TestContractHandOver(t *testing.T) {
	small := `{"id":1,"name":"caf\u00e9"}`
	large := `[` + strings.Repeat(`{"id":1},`, 10_000) + `{}]` // above max_body_bytes: streamed
	gz := encodings[0]
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/small":
			w.Write([]byte(small))
		case "/gzip":
			w.Header().Set("Content-Encoding", gz.name)
			w.Write(gz.encode([]byte(small)))
		case "/large":
			w.Header().Set("Content-Length", itoa(len(large)))
			w.Write([]byte(large))
		case "/credits":
			w.WriteHeader(403)
			w.Write([]byte(`{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`))
		}
	})
	upstream := httptest.NewServer(up)
	defer upstream.Close()
	cfg := testConfig(upstream.URL)
	cfg.MaxBodyBytes = config.DefaultMaxBodyBytes
	if len(large) <= int(cfg.MaxBodyBytes) {
		cfg.MaxBodyBytes = int64(len(large) / 2)
	}
	checks := &handedOver{}
	h, err := New(settingsOf(cfg), Options{Contract: checks})
	if err != nil {
		t.Fatal(err)
	}
	px := serveProxy(t, h)
	wrap := string(transform.AppendSuccess(nil, []byte(small)))
	for _, tc := range []struct {
		path              string
		body              string
		wrapped, streamed bool
	}{
		{"/small", wrap, true, false},
		{"/gzip", wrap, true, false},
		{"/credits", "", false, false},
		{"/large", "", false, true},
	} {
		checks.envelopes = nil
		if r := do(t, "GET", px.URL+tc.path, envelopeKey, nil); r.err != nil || r.status >= 500 {
			t.Fatalf("%s: status %d, %v", tc.path, r.status, r.err)
		}
		if len(checks.envelopes) != 1 {
			t.Fatalf("%s: %d envelopes handed over; want 1", tc.path, len(checks.envelopes))
		}
		e := checks.envelopes[0]
		if e.Wrapped != tc.wrapped || e.Streamed != tc.streamed {
			t.Errorf("%s: wrapped %v, streamed %v; want %v, %v", tc.path, e.Wrapped, e.Streamed, tc.wrapped, tc.streamed)
		}
		if tc.body != "" && string(e.Body) != tc.body {
			t.Errorf("%s: body %q; want %q", tc.path, e.Body, tc.body)
		}
	}
}
