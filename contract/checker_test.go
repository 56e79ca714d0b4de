package contract

import (
	"net/http"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recording is a Recorder that hands every check to the test.
type recording struct{ checks chan event.ContractCheck }

func newRecording() *recording { return &recording{checks: make(chan event.ContractCheck, 64)} }

func (r *recording) RecordContractCheck(c *event.ContractCheck) { r.checks <- *c }

func (r *recording) next(t *testing.T) event.ContractCheck {
	t.Helper()
	return await.Receive(t, "a contract check", r.checks)
}

// none reports that nothing was recorded (after what the test waited for).
func (r *recording) none(t *testing.T) {
	t.Helper()
	select {
	case c := <-r.checks:
		t.Errorf("recorded %+v; want nothing", c)
	default:
	}
}

const (
	credits       = `{"data":null,"success":false,"message":"Insufficient credits","errors":[{"insufficient_credits":["Insufficient credits"]}]}`
	trialExpired  = `{"data":null,"success":false,"message":"Trial expired","errors":[{"trial_expired":["Trial expired"]}]}`
	paymentFailed = `{"data":null,"success":false,"message":"Payment failed for key sk_live_0123456789","errors":[{"payment_required":["Payment failed"]}]}`
)

func envelope(status int, code, body string) *event.Envelope {
	return &event.Envelope{
		Client: "acme", KeyHash: 42, Source: event.SourceLive, Method: "POST", Path: "/v1/jobs/123",
		Status: status, Code: code, Body: []byte(body),
		Header: http.Header{"X-Api-Key": {"sk_live_0123456789"}},
	}
}

func testSettings(t *testing.T) Settings {
	t.Helper()
	return Settings{Document: builtinDoc(t), Sample: 1, MaxInFlight: 8, KeyHeader: "X-API-Key", Samples: true}
}

func TestCheckerRecordsEveryCheck(t *testing.T) {
	rec := newRecording()
	reg := prometheus.NewRegistry()
	c := NewChecker(testSettings(t), Options{Recorder: rec, Registerer: reg, Workers: 1})
	defer c.Close()
	tests := []struct {
		name      string
		e         *event.Envelope
		reason    string
		extension bool
		result    string
	}{
		{name: "documented", e: envelope(402, "insufficient_credits", credits), result: resultConforms},
		{name: "extension", e: envelope(402, "trial_expired", trialExpired), extension: true, result: resultExtension},
		{name: "undocumented code", e: envelope(402, "payment_required", paymentFailed), reason: ReasonUndocumentedCode, result: resultViolation},
		{name: "not JSON", e: envelope(200, "", `{"data":`), reason: ReasonNotJSON, result: resultViolation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := testutil.ToFloat64(c.metrics.checks.WithLabelValues("acme", "live", tt.result))
			c.Submit(tt.e)
			got := rec.next(t)
			if got.Reason != tt.reason {
				t.Errorf("reason: got %q (%s); want %q", got.Reason, got.Detail, tt.reason)
			}
			if (got.Extension != "") != tt.extension {
				t.Errorf("extension: got %q; want one: %v", got.Extension, tt.extension)
			}
			if got.Route != "POST /v1/jobs/{id}" || got.Client != "acme" || got.Source != event.SourceLive || got.Status != tt.e.Status || got.Code != tt.e.Code {
				t.Errorf("check: got %+v; want acme's live POST /v1/jobs/{id} %d %s", got, tt.e.Status, tt.e.Code)
			}
			if after := testutil.ToFloat64(c.metrics.checks.WithLabelValues("acme", "live", tt.result)); after != before+1 {
				t.Errorf("envelope_proxy_contract_checks_total{result=%q}: got %v; want %v", tt.result, after, before+1)
			}
		})
	}
	if got := testutil.ToFloat64(c.metrics.violations.WithLabelValues("acme", "402", "payment_required", ReasonUndocumentedCode)); got != 1 {
		t.Errorf("envelope_proxy_contract_violations_total{status=402,code=payment_required}: got %v; want 1", got)
	}
	if got := testutil.ToFloat64(c.metrics.violations.WithLabelValues("acme", "200", "none", ReasonNotJSON)); got != 1 {
		t.Errorf("envelope_proxy_contract_violations_total{status=200,code=none}: got %v; want 1", got)
	}
}

func TestViolationSample(t *testing.T) {
	paths, err := redact.Compile([]string{"/data/email"})
	if err != nil {
		t.Fatal(err)
	}
	jobs := jobsDoc(t)
	tests := []struct {
		name       string
		samples    bool
		doc        *Document
		e          *event.Envelope
		wantSample []string // substrings
		notSample  []string
		wantDetail string
	}{
		{
			name: "the key is scrubbed", samples: true, e: envelope(402, "payment_required", paymentFailed),
			wantSample: []string{"Payment failed for key " + redact.Mask}, notSample: []string{"sk_live_0123456789"},
			wantDetail: `not "payment_required"`,
		},
		{
			name: "redacted paths are masked, and a reason about them withheld", samples: true, doc: jobs,
			e: &event.Envelope{Client: "acme", Source: event.SourceDryRun, Method: "GET", Path: "/v1/jobs/7", Status: 200,
				Body: []byte(`{"data":{"id":7,"state":"lost","email":"jo@example.com"},"success":true,"message":"OK"}`)},
			wantSample: []string{`"state":"lost"`}, notSample: []string{"jo@example.com"},
			wantDetail: "at /data/state: value must be one of",
		},
		{
			name: "no samples, no detail", samples: false, e: envelope(402, "payment_required", paymentFailed),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecording()
			s := testSettings(t)
			s.Samples, s.Redact = tt.samples, paths
			if tt.doc != nil {
				s.Document = tt.doc
			}
			c := NewChecker(s, Options{Recorder: rec, Workers: 1})
			defer c.Close()
			c.Submit(tt.e)
			got := rec.next(t)
			if got.Reason == "" {
				t.Fatalf("no violation: %+v", got)
			}
			if !tt.samples && (got.Sample != "" || got.Detail != "") {
				t.Errorf("samples off: got sample %q, detail %q; want neither", got.Sample, got.Detail)
			}
			for _, s := range tt.wantSample {
				if !strings.Contains(got.Sample, s) {
					t.Errorf("sample: got %q; want it to hold %q", got.Sample, s)
				}
			}
			for _, s := range tt.notSample {
				if strings.Contains(got.Sample, s) || strings.Contains(got.Detail, s) {
					t.Errorf("sample %q, detail %q: hold %q", got.Sample, got.Detail, s)
				}
			}
			if !strings.Contains(got.Detail, tt.wantDetail) {
				t.Errorf("detail: got %q; want it to hold %q", got.Detail, tt.wantDetail)
			}
		})
	}
	t.Run("a reason about a masked value is withheld", func(t *testing.T) {
		rec := newRecording()
		s := testSettings(t)
		s.Document = jobs
		s.Redact, _ = redact.Compile([]string{"/data/state"})
		c := NewChecker(s, Options{Recorder: rec, Workers: 1})
		defer c.Close()
		c.Submit(&event.Envelope{Client: "acme", Method: "GET", Path: "/v1/jobs/7", Status: 200,
			Body: []byte(`{"data":{"id":7,"state":"secret-state"},"success":true,"message":"OK"}`)})
		got := rec.next(t)
		if strings.Contains(got.Detail+got.Sample, "secret-state") || !strings.Contains(got.Detail, "withheld") {
			t.Errorf("got detail %q, sample %q; want the state withheld from both", got.Detail, got.Sample)
		}
	})
}

func TestCheckerSkips(t *testing.T) {
	t.Run("keys outside the sample are not checked", func(t *testing.T) {
		rec := newRecording()
		s := testSettings(t)
		s.Sample = 0.5
		c := NewChecker(s, Options{Recorder: rec, Workers: 1})
		defer c.Close()
		out := envelope(402, "insufficient_credits", credits)
		out.KeyHash = 1 << 63
		c.Submit(out)
		in := envelope(402, "insufficient_credits", credits)
		in.KeyHash = 1 << 60
		c.Submit(in)
		if got := rec.next(t); got.Reason != "" || got.Skipped != "" {
			t.Errorf("in the sample: got %+v; want a conforming check", got)
		}
		c.Close()
		rec.none(t)
	})
	t.Run("a streamed envelope is counted as too large", func(t *testing.T) {
		rec := newRecording()
		c := NewChecker(testSettings(t), Options{Recorder: rec, Workers: 1})
		defer c.Close()
		c.Submit(&event.Envelope{Client: "acme", Source: event.SourceLive, Status: 200, Streamed: true})
		if got := rec.next(t); got.Skipped != event.SkipTooLarge {
			t.Errorf("got %+v; want skipped too_large", got)
		}
	})
	t.Run("beyond max_in_flight envelopes are skipped, and the queued ones checked", func(t *testing.T) {
		rec := newRecording()
		s := testSettings(t)
		s.MaxInFlight = 2
		c := newChecker(s, Options{Recorder: rec})
		defer c.Close()
		for range 3 {
			c.Submit(envelope(402, "insufficient_credits", credits))
		}
		if got := rec.next(t); got.Skipped != event.SkipBusy {
			t.Errorf("third: got %+v; want skipped busy", got)
		}
		c.start(1)
		for i := range 2 {
			if got := rec.next(t); got.Skipped != "" || got.Reason != "" {
				t.Errorf("queued %d: got %+v; want checked, conforming", i, got)
			}
		}
	})
	t.Run("after Close envelopes are skipped", func(t *testing.T) {
		rec := newRecording()
		c := NewChecker(testSettings(t), Options{Recorder: rec, Workers: 1})
		c.Close()
		c.Submit(envelope(402, "insufficient_credits", credits))
		if got := rec.next(t); got.Skipped != event.SkipBusy {
			t.Errorf("got %+v; want skipped busy", got)
		}
	})
}

// TestSubmitCopiesTheBody checks that the proxy may reuse its buffer as
// soon as Submit returns.
func TestSubmitCopiesTheBody(t *testing.T) {
	rec := newRecording()
	c := newChecker(testSettings(t), Options{Recorder: rec})
	defer c.Close()
	buf := []byte(paymentFailed)
	c.Submit(envelope(402, "payment_required", string(buf)))
	e := envelope(402, "payment_required", "")
	e.Body = buf
	c.Submit(e)
	copy(buf, strings.Repeat("x", len(buf)))
	c.start(1)
	for range 2 {
		if got := rec.next(t); got.Reason != ReasonUndocumentedCode {
			t.Errorf("got %+v; want the original body's undocumented_code", got)
		}
	}
}

// TestSubmitAllocatesNothing: once the pool of jobs is warm, handing an
// envelope over costs the request path no allocation.
func TestSubmitAllocatesNothing(t *testing.T) {
	c := newChecker(testSettings(t), Options{})
	defer c.Close()
	e := envelope(402, "insufficient_credits", credits)
	drain := func() {
		j := <-c.queue
		c.put(j)
		c.release()
	}
	c.Submit(e)
	drain()
	if n := testing.AllocsPerRun(100, func() {
		c.Submit(e)
		drain()
	}); n != 0 {
		t.Errorf("Submit: got %v allocations; want 0", n)
	}
}

// TestSwapAppliesToTheNextSubmit checks a reload: a new document and
// sample apply at once.
func TestSwapAppliesToTheNextSubmit(t *testing.T) {
	rec := newRecording()
	c := NewChecker(testSettings(t), Options{Recorder: rec, Workers: 1})
	defer c.Close()
	s := testSettings(t)
	s.Document = jobsDoc(t)
	c.Swap(s)
	c.Submit(envelope(402, "insufficient_credits", credits))
	if got := rec.next(t); got.Reason != "" {
		t.Errorf("jobs document, 402 in components: got %+v; want conforming", got)
	}
	s.Sample = 0
	c.Swap(s)
	c.Submit(envelope(402, "insufficient_credits", credits))
	c.Close()
	rec.none(t)
}
