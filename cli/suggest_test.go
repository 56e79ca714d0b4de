package cli

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"go.yaml.in/yaml/v3"
)

const watcherKey = "sk_live_watcher_0123456789"

// suspendedLegacy is the legacy error no built-in rule maps.
const suspendedLegacy = `{"error": "Your account is suspended", "code": "account_suspended"}`

// zeroConfigUpstreams are a legacy API and a candidate for the journey
// from "shadow mode on" to a config with nothing left to suggest. The
// legacy API refuses writes with account_suspended, which the candidate
// answers as a 402; both answer GET /v1/jobs/7 alike but for a request id
// and a timestamp the candidate makes fresh on every call.
type zeroConfigUpstreams struct {
	legacy, candidate *httptest.Server
	mu                sync.Mutex
	writes            []http.Header // the candidate's POSTs, by path order
	paths             []string
	calls             atomic.Int64
}

func newZeroConfigUpstreams(t *testing.T) *zeroConfigUpstreams {
	u := &zeroConfigUpstreams{}
	u.legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, suspendedLegacy)
			return
		}
		io.WriteString(w, `{"name": "job", "request_id": "r-legacy", "at": "2026-01-01T00:00:00Z"}`)
	}))
	u.candidate = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			u.mu.Lock()
			u.writes, u.paths = append(u.writes, r.Header.Clone()), append(u.paths, r.URL.Path)
			u.mu.Unlock()
			w.WriteHeader(http.StatusPaymentRequired)
			io.WriteString(w, `{"data":null,"success":false,"message":"Your account is suspended","errors":[{"account_suspended":["Your account is suspended"]}]}`)
			return
		}
		fmt.Fprintf(w, `{"data":{"name":"job","request_id":"6f1c%08x-0000-4000-8000-000000000000","at":"2026-12-07T12:%02d:00Z"},"success":true,"message":"OK"}`, n, n%60)
	}))
	t.Cleanup(u.legacy.Close)
	t.Cleanup(u.candidate.Close)
	return u
}

func (u *zeroConfigUpstreams) replayedWrites() ([]string, []http.Header) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.paths...), append([]http.Header(nil), u.writes...)
}

func zeroConfig(u *zeroConfigUpstreams, extra string) string {
	return clientsYAML(u.legacy.URL, []testClient{{"watcher", watcherKey, "shadow"}},
		fmt.Sprintf("candidate: {url: %q}\nreadiness: {min_requests: 1}\nlog: {level: info, access_log: false}\n", u.candidate.URL)+extra)
}

func (in *instance) do(method, path string, header ...string) int {
	in.t.Helper()
	req, _ := http.NewRequest(method, in.client+path, strings.NewReader(`{"frames": [1, 2, 3]}`))
	req.Header.Set("X-API-Key", watcherKey)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, _ := await.Do(in.t, req)
	return resp.StatusCode
}

func (in *instance) suggestions() evidence.Suggestions {
	in.t.Helper()
	var sg evidence.Suggestions
	if code := in.getJSON("/api/suggestions", &sg); code != http.StatusOK {
		in.t.Fatalf("GET /api/suggestions: got %d", code)
	}
	return sg
}

// TestFromShadowToNothingToSuggest follows a platform team from "shadow
// mode on" to a config with no unmapped code and no noise mismatch, by
// pasting what the proxy suggests, over real listeners.
func TestFromShadowToNothingToSuggest(t *testing.T) {
	t.Setenv("SHADOW_TENANT", "tenant-for-tests")
	u := newZeroConfigUpstreams(t)
	shadowBlock := `shadow:
  replay: [{method: POST, route: /v1/detect}]
  candidate_headers: {X-Tenant: "${SHADOW_TENANT}"}
  learn_sample: 1
  learn_ignores: %v
`
	in := startServe(t, zeroConfig(u, fmt.Sprintf(shadowBlock, false)))
	reloads := func() float64 {
		return counter(in.metrics(), "envelope_proxy_config_reloads_total", map[string]string{"result": "success"})
	}

	for i := range 3 {
		in.do("POST", "/v1/detect", "Idempotency-Key", fmt.Sprintf("idem-%d", i))
		in.do("POST", "/v1/keys")
		in.do("GET", "/v1/jobs/7")
	}
	rows := in.waitFor("nine exchanges compared or dry-run", func(rows map[string]evidence.ClientSummary) bool {
		s := rows["watcher"].Shadow
		return s != nil && s.Outcomes[string(event.OutcomeSkippedMethod)] == 3 && s.Compared == 6
	})

	t.Run("every POST is dry-run, and its unmapped code reaches the verdict", func(t *testing.T) {
		w := rows["watcher"]
		if w.Unmapped != 6 || w.Verdict.State != "not_ready" || !strings.Contains(strings.Join(w.Verdict.Reasons, "; "), "unmapped 6 > 0 (account_suspended)") {
			t.Errorf("watcher: got unmapped %d, %+v; want 6 account_suspended, not ready", w.Unmapped, w.Verdict)
		}
	})
	t.Run("only the listed write reaches the candidate, with its keys", func(t *testing.T) {
		paths, headers := u.replayedWrites()
		if strings.Join(paths, " ") != "/v1/detect /v1/detect /v1/detect" {
			t.Fatalf("the candidate's writes: got %q; want /v1/detect three times", paths)
		}
		for i, h := range headers {
			if got, want := h.Get("Idempotency-Key"), fmt.Sprintf("idem-%d", i); got != want {
				t.Errorf("write %d: Idempotency-Key %q; want %q", i, got, want)
			}
			if got := h.Get("X-Tenant"); got != "tenant-for-tests" {
				t.Errorf("write %d: X-Tenant %q; want the environment's", i, got)
			}
			if h.Get("X-Shadow-Request") != "1" {
				t.Errorf("write %d: no X-Shadow-Request", i)
			}
		}
	})
	t.Run("exactly the fresh id and timestamp are learned", func(t *testing.T) {
		sg := in.suggestions()
		var got []string
		for _, is := range sg.Ignore {
			got = append(got, is.Pointer)
		}
		if strings.Join(got, " ") != "/data/at /data/request_id" && strings.Join(got, " ") != "/data/request_id /data/at" {
			t.Errorf("ignore suggestions: got %q; want /data/at and /data/request_id", got)
		}
		if len(sg.Rules) != 1 || sg.Rules[0].Kind != evidence.SuggestCandidate || sg.Rules[0].Rule.Status != 402 {
			t.Errorf("rules: got %+v; want the candidate's 402 for account_suspended", sg.Rules)
		}
	})
	t.Run("with learn_ignores, the noise stops counting as mismatches", func(t *testing.T) {
		before := shadowOutcomes(in.shadowReport("watcher"), "watcher", event.OutcomeMismatch)
		in.write(zeroConfig(u, fmt.Sprintf(shadowBlock, true)))
		await.Until(t, "the reload", func() bool { return reloads() >= 1 })
		in.do("GET", "/v1/jobs/7")
		await.Until(t, "an ignored_learned exchange", func() bool {
			return shadowOutcomes(in.shadowReport("watcher"), "watcher", event.OutcomeIgnoredLearned) == 1
		})
		if after := shadowOutcomes(in.shadowReport("watcher"), "watcher", event.OutcomeMismatch); after != before {
			t.Errorf("mismatches: got %d after; want %d, as before", after, before)
		}
	})
	t.Run("the suggestions pasted into the config leave nothing to suggest", func(t *testing.T) {
		code, suggested, errOut := run(t, "", "suggest", "-admin", in.admin)
		if code != 0 {
			t.Fatalf("suggest: exit %d: %s", code, errOut)
		}
		merged := pasted(t, zeroConfig(u, fmt.Sprintf(shadowBlock, false)), suggested)
		if code, out, errOut := run(t, "", "validate", "-config", writeFile(t, merged)); code != 0 {
			t.Fatalf("validate of the pasted config: exit %d: %s%s\n%s", code, out, errOut, merged)
		}
		in.write(merged)
		await.Until(t, "the reload", func() bool { return reloads() >= 2 })
		sg := in.suggestions()
		if len(sg.Rules) != 0 || len(sg.Ignore) != 0 {
			t.Errorf("suggestions after the paste: got %+v; want none", sg)
		}
		_, rows := in.overview()
		if w := rows["watcher"]; w.Unmapped != 0 || strings.Contains(strings.Join(w.Verdict.Reasons, "; "), "account_suspended") {
			t.Errorf("watcher after the paste: unmapped %d, %+v; want 0", w.Unmapped, w.Verdict)
		}
		in.do("GET", "/v1/jobs/7")
		await.Until(t, "an ignored exchange", func() bool {
			return shadowOutcomes(in.shadowReport("watcher"), "watcher", event.OutcomeIgnored) >= 1
		})
		in.do("POST", "/v1/detect")
		// The rule names the code now: the write's group is a new one,
		// and the candidate agrees with the dry run.
		await.Until(t, "a matching write", func() bool {
			for _, g := range in.shadowReport("watcher").Groups {
				if g.Route == "POST /v1/detect" && g.LegacyCode == "account_suspended" {
					return g.Outcomes[string(event.OutcomeMatch)] == 1
				}
			}
			return false
		})
	})
	in.signals <- syscall.SIGTERM
}

// pasted is base with the suggested YAML pasted in, as a person would: the
// rules added to base's, and shadow.ignore to its shadow block.
func pasted(t *testing.T, base, suggested string) string {
	t.Helper()
	var b, s map[string]any
	if err := yaml.Unmarshal([]byte(base), &b); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(suggested), &s); err != nil {
		t.Fatalf("the suggestion is not YAML: %v\n%s", err, suggested)
	}
	if rules, ok := s["rules"]; ok {
		b["rules"] = rules
	}
	if sh, ok := s["shadow"].(map[string]any); ok {
		bs, _ := b["shadow"].(map[string]any)
		bs["ignore"] = sh["ignore"]
	}
	out, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestCandidateHeadersAreNeverPrinted: a candidate header's literal value
// is a secret; /config shows it masked, and an environment reference as it
// is.
func TestCandidateHeadersAreNeverPrinted(t *testing.T) {
	in, _ := serveLegacy(t, "shadow", `shadow: {candidate_headers: {X-API-Key: "literal-secret-1234", X-Tenant: "${SHADOW_TENANT}"}}`+"\n")
	_, b := await.Get(t, in.admin+"/config")
	if strings.Contains(string(b), "literal-secret") || !strings.Contains(string(b), "X-API-Key: '[redacted]'") || !strings.Contains(string(b), "X-Tenant: ${SHADOW_TENANT}") {
		t.Errorf("/config: got\n%s\nwant the literal value masked, the reference as it is", b)
	}
}
