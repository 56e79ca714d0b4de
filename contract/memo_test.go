package contract

import (
	"fmt"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// TestMemoCountsARepeatAsItsCheck checks that an envelope the memo knows is
// counted and recorded exactly as its check was, with no check queued.
func TestMemoCountsARepeatAsItsCheck(t *testing.T) {
	for _, tc := range []struct{ name, code, body string }{
		{"documented", "insufficient_credits", credits},
		{"extension", "trial_expired", trialExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecording()
			c := NewChecker(testSettings(t), Options{Recorder: rec, Workers: 1})
			defer c.Close()
			c.Submit(envelope(402, tc.code, tc.body))
			first := rec.next(t)
			// The worker lets its job go after recording it.
			await.Until(t, "the first check's release", func() bool { return c.inflight.Load() == 0 })
			e := envelope(402, tc.code, tc.body)
			e.Path = "/v1/jobs/456"
			c.Submit(e)
			// A remembered envelope is recorded before Submit returns.
			select {
			case second := <-rec.checks:
				first.Time = second.Time
				if second != first {
					t.Errorf("repeat: got %+v; want %+v", second, first)
				}
			default:
				t.Fatal("the repeat was not counted on the request path")
			}
			if n := c.inflight.Load(); n != 0 {
				t.Errorf("checks in flight after the repeat: %d; want 0", n)
			}
		})
	}
}

// TestMemoNeverRemembersAViolation: each violation is checked, with its own
// sample.
func TestMemoNeverRemembersAViolation(t *testing.T) {
	rec := newRecording()
	c := NewChecker(testSettings(t), Options{Recorder: rec, Workers: 1})
	defer c.Close()
	for range 2 {
		c.Submit(envelope(402, "payment_required", paymentFailed))
		if got := rec.next(t); got.Reason != ReasonUndocumentedCode || got.Sample == "" {
			t.Errorf("got %+v; want an undocumented_code violation with its sample", got)
		}
	}
	if _, ok := c.cur.Load().memo.lookup(envelope(402, "payment_required", paymentFailed)); ok {
		t.Error("the memo remembers a violation")
	}
}

// TestMemoKey checks what tells two envelopes apart: the body, status and
// field flag always; the method and path only when the document describes
// paths.
func TestMemoKey(t *testing.T) {
	builtin := testSettings(t).Document
	jobs, err := Load("testdata/jobs.openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	base := envelope(402, "insufficient_credits", credits)
	variants := []struct {
		name string
		edit func(*event.Envelope)
		// same says whether the variant shares base's entry, without
		// paths and with them.
		same, samePaths bool
	}{
		{"another client and key", func(e *event.Envelope) { e.Client, e.KeyHash = "other", 7 }, true, true},
		{"another path", func(e *event.Envelope) { e.Path = "/v1/jobs/456" }, true, false},
		{"another method", func(e *event.Envelope) { e.Method = "GET" }, true, false},
		{"another status", func(e *event.Envelope) { e.Status = 403 }, false, false},
		{"fields", func(e *event.Envelope) { e.Fields = true }, false, false},
		{"another body", func(e *event.Envelope) { e.Body = []byte(strings.Replace(credits, "Insufficient", "No", 1)) }, false, false},
	}
	for _, doc := range []*Document{builtin, jobs} {
		m := newMemo(doc)
		m.remember(base, Finding{})
		for _, v := range variants {
			e := *base
			v.edit(&e)
			want := v.same
			if m.paths {
				want = v.samePaths
			}
			if _, got := m.lookup(&e); got != want {
				t.Errorf("%s, paths %v: remembered %v; want %v", v.name, m.paths, got, want)
			}
		}
	}
}

// TestMemoBounds: a large body is not remembered, and a full memo starts
// again.
func TestMemoBounds(t *testing.T) {
	m := newMemo(testSettings(t).Document)
	large := envelope(200, "", `{"data":"`+strings.Repeat("x", maxMemoBody)+`","success":true,"message":"OK"}`)
	m.remember(large, Finding{})
	if _, ok := m.lookup(large); ok {
		t.Error("a body over maxMemoBody was remembered")
	}
	for i := range maxMemoEntries + 10 {
		m.remember(envelope(200, "", fmt.Sprintf(`{"data":%d,"success":true,"message":"OK"}`, i)), Finding{})
	}
	if n := len(m.entries); n > maxMemoEntries {
		t.Errorf("entries: %d; want at most %d", n, maxMemoEntries)
	}
}

// TestSwapStartsAnEmptyMemo: a reloaded document is not answered with the
// old one's findings.
func TestSwapStartsAnEmptyMemo(t *testing.T) {
	c := newChecker(testSettings(t), Options{})
	defer c.Close()
	e := envelope(402, "insufficient_credits", credits)
	c.cur.Load().memo.remember(e, Finding{})
	c.Swap(testSettings(t))
	if _, ok := c.cur.Load().memo.lookup(e); ok {
		t.Error("the new settings' memo knows the old document's finding")
	}
}

// BenchmarkSubmit measures the request path's hand-over of an envelope:
// one the memo knows (counted at once), one it does not (copied and
// queued; the queue is drained without checking), and a 1 MiB wrapped
// success, counted as its remembered stand-in.
func BenchmarkSubmit(b *testing.B) {
	doc, err := Builtin()
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"remembered", "queued", "1MiB-wrap"} {
		b.Run(name, func(b *testing.B) {
			c := newChecker(Settings{Document: doc, Sample: 1, MaxInFlight: 8}, Options{})
			defer c.Close()
			e := envelope(402, "insufficient_credits", credits)
			switch name {
			case "remembered":
				c.check(c.cur.Load(), e)
			case "1MiB-wrap":
				e = wrapped("[" + strings.Repeat(`{"id":1,"name":"item"},`, 1<<20/23) + "{}]")
				c.Submit(e)
				c.run(<-c.queue)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Submit(e)
				if name == "queued" {
					j := <-c.queue
					c.put(j)
					c.release()
				}
			}
		})
	}
}

// TestSubmitOfARememberedEnvelopeAllocatesNothing: counting a repeat on
// the request path costs it no allocation.
func TestSubmitOfARememberedEnvelopeAllocatesNothing(t *testing.T) {
	rec := newRecording()
	c := newChecker(testSettings(t), Options{Recorder: rec})
	defer c.Close()
	e := envelope(402, "insufficient_credits", credits)
	c.check(c.cur.Load(), e)
	<-rec.checks
	if n := testing.AllocsPerRun(100, func() {
		c.Submit(e)
		<-rec.checks
	}); n != 0 {
		t.Errorf("Submit: got %v allocations; want 0", n)
	}
}
