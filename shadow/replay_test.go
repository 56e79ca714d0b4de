package shadow

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
)

// seenRequests is a candidate that records what it receives and answers
// the envelope of {"ok":true}.
type seenRequests struct {
	mu   sync.Mutex
	reqs []recorded
}

func (s *seenRequests) server(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Clone()})
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":{"ok":true},"success":true,"message":"OK"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (s *seenRequests) all() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

func TestWriteReplay(t *testing.T) {
	t.Setenv("CANDIDATE_KEY", "test-tenant-key-0123")
	var seen seenRequests
	srv := seen.server(t)
	cfg := testConfig(srv.URL, func(c *Settings) {
		c.Shadow.Replay = []config.ReplayRoute{{Method: "POST", Route: "/v1/detect"}, {Method: "DELETE", Route: "/v1/jobs/{id}"}}
		c.Shadow.CandidateHeaders = map[string]string{"X-API-Key": "${CANDIDATE_KEY}", "X-Tenant": "shadow"}
	})
	start := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	write := func(method, path, idempotencyKey string, at time.Time) *event.Capture {
		ex := newExchange(t, method, path, 200, `{"ok":true}`)
		ex.Start, ex.Body = at, []byte(`{"frames":[1,2]}`)
		if idempotencyKey != "" {
			ex.Header.Set("Idempotency-Key", idempotencyKey)
		}
		return ex
	}
	t.Run("a listed write reaches the candidate, with the client's Idempotency-Key and the candidate headers", func(t *testing.T) {
		before := len(seen.all())
		if o := outcomeOf(t, runOne(t, cfg, write("POST", "/v1/detect", "client-key-1", start))); o != event.OutcomeMatch {
			t.Errorf("outcome: got %q; want match", o)
		}
		got := seen.all()[before:]
		if len(got) != 1 {
			t.Fatalf("the candidate got %d requests; want 1", len(got))
		}
		h := got[0].header
		for name, want := range map[string]string{
			IdempotencyKeyHeader: "client-key-1", "X-Api-Key": "test-tenant-key-0123", "X-Tenant": "shadow", ShadowRequestHeader: "1",
		} {
			if v := h.Get(name); v != want {
				t.Errorf("%s: got %q; want %q", name, v, want)
			}
		}
		if got[0].body != `{"frames":[1,2]}` {
			t.Errorf("body: got %q", got[0].body)
		}
	})
	t.Run("without one, the key is derived from the exchange", func(t *testing.T) {
		before := len(seen.all())
		first := write("DELETE", "/v1/jobs/7", "", start)
		runOne(t, cfg, first)
		runOne(t, cfg, first) // the same exchange replayed again
		runOne(t, cfg, write("DELETE", "/v1/jobs/7", "", start.Add(time.Millisecond)))
		got := seen.all()[before:]
		if len(got) != 3 {
			t.Fatalf("the candidate got %d requests; want 3", len(got))
		}
		a, b, c := got[0].header.Get(IdempotencyKeyHeader), got[1].header.Get(IdempotencyKeyHeader), got[2].header.Get(IdempotencyKeyHeader)
		if !strings.HasPrefix(a, "envelope-proxy-shadow-") || a != b {
			t.Errorf("the same exchange twice: got %q and %q; want one derived key", a, b)
		}
		if c == a || c == "" {
			t.Errorf("another exchange of the same content: got %q; want a key of its own", c)
		}
	})
	t.Run("a write not listed never reaches the candidate", func(t *testing.T) {
		before := len(seen.all())
		for _, ex := range []*event.Capture{
			write("POST", "/v1/keys", "", start),
			write("PUT", "/v1/detect", "", start),
			write("POST", "/v1/detect/extra", "", start),
		} {
			if o := outcomeOf(t, runOne(t, cfg, ex)); o != event.OutcomeSkippedMethod {
				t.Errorf("%s %s: got %q; want skipped_method", ex.Method, ex.Path, o)
			}
		}
		if got := seen.all()[before:]; len(got) != 0 {
			t.Errorf("the candidate got %+v; want nothing", got)
		}
	})
	t.Run("a write admitted as not replayed stays so after a reload", func(t *testing.T) {
		before := len(seen.all())
		ex := write("POST", "/v1/detect", "", start)
		ex.Body, ex.BodyNotCaptured = nil, true
		if o := outcomeOf(t, runOne(t, cfg, ex)); o != event.OutcomeSkippedMethod {
			t.Errorf("got %q; want skipped_method", o)
		}
		if got := seen.all()[before:]; len(got) != 0 {
			t.Errorf("the candidate got %+v; want nothing", got)
		}
	})
	t.Run("a safe request gets no Idempotency-Key", func(t *testing.T) {
		before := len(seen.all())
		runOne(t, cfg, newExchange(t, "GET", "/v1/jobs/7", 200, `{"ok":true}`))
		got := seen.all()[before:]
		if len(got) != 1 || got[0].header.Get(IdempotencyKeyHeader) != "" {
			t.Errorf("got %+v; want one GET without an Idempotency-Key", got)
		}
	})
}

// noisyCandidate answers every request with a fresh request id and
// timestamp, and the stable fields of the legacy answer.
func noisyCandidate(t *testing.T) *httptest.Server {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"data":{"name":"job","request_id":"00000000-0000-4000-8000-%012d","at":"2026-12-07T12:00:%02dZ","items":[{"id":1,"n":2}]},"success":true,"message":"OK"}`, i, i%60)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// learnedFrom is a NoiseSource that knows fixed pointers on every route.
type learnedFrom []string

func (l learnedFrom) LearnedIgnores(string) []string { return l }

func TestLearnedNoise(t *testing.T) {
	srv := noisyCandidate(t)
	legacy := `{"name":"job","request_id":"legacy-id","at":"2026-01-01T00:00:00Z","items":[{"id":1,"n":2}]}`
	t.Run("two answers to one request teach exactly the noisy paths", func(t *testing.T) {
		cfg := testConfig(srv.URL, func(c *Settings) { c.Shadow.LearnSample = 1 })
		ev := onlyComparison(t, runOne(t, cfg, newExchange(t, "GET", "/v1/jobs/7", 200, legacy)))
		if !ev.NoiseChecked {
			t.Fatalf("got %+v; want a noise check", ev)
		}
		slices.Sort(ev.Noise)
		if want := []string{"/data/at", "/data/request_id"}; !slices.Equal(ev.Noise, want) {
			t.Errorf("noise: got %q; want %q", ev.Noise, want)
		}
		if ev.Outcome != event.OutcomeMismatch {
			t.Errorf("outcome without learn_ignores: got %q; want mismatch", ev.Outcome)
		}
	})
	t.Run("no learning at learn_sample 0, nor for writes", func(t *testing.T) {
		cfg := testConfig(srv.URL, func(c *Settings) { c.Shadow.LearnSample = 0 })
		if ev := onlyComparison(t, runOne(t, cfg, newExchange(t, "GET", "/v1/jobs/7", 200, legacy))); ev.NoiseChecked {
			t.Errorf("learn_sample 0: got a noise check")
		}
		cfg = testConfig(srv.URL, func(c *Settings) { c.Shadow.LearnSample, c.Shadow.Methods = 1, []string{"GET", "POST"} })
		if ev := onlyComparison(t, runOne(t, cfg, newExchange(t, "POST", "/v1/jobs", 200, legacy))); ev.NoiseChecked {
			t.Errorf("a POST was replayed twice")
		}
	})
	tests := []struct {
		name    string
		learn   bool
		learned learnedFrom
		legacy  string
		want    event.Outcome
	}{
		{name: "learned paths applied", learn: true, learned: learnedFrom{"/data/at", "/data/request_id"}, legacy: legacy, want: event.OutcomeIgnoredLearned},
		{name: "learned paths known but not applied", learn: false, learned: learnedFrom{"/data/at", "/data/request_id"}, legacy: legacy, want: event.OutcomeMismatch},
		{name: "a real difference stays a mismatch", learn: true, learned: learnedFrom{"/data/at", "/data/request_id"},
			legacy: strings.Replace(legacy, `"name":"job"`, `"name":"task"`, 1), want: event.OutcomeMismatch},
		{name: "half the noise learned is not enough", learn: true, learned: learnedFrom{"/data/at"}, legacy: legacy, want: event.OutcomeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(srv.URL, func(c *Settings) { c.Shadow.LearnSample, c.Shadow.LearnIgnores = 0, tt.learn })
			rec := &recorder{}
			c := New(cfg, Options{Recorder: rec, Noise: tt.learned})
			c.Submit(newExchange(t, "GET", "/v1/jobs/7", 200, tt.legacy))
			c.Close()
			ev := onlyComparison(t, rec.all())
			if ev.Outcome != tt.want {
				t.Errorf("outcome: got %q (paths %q); want %q", ev.Outcome, ev.Paths, tt.want)
			}
			if tt.want == event.OutcomeMismatch && tt.learn && slices.ContainsFunc(ev.Paths, func(p string) bool { return slices.Contains(tt.learned, p) }) {
				t.Errorf("paths %q hold learned noise; want only the differences beyond it", ev.Paths)
			}
		})
	}
}
