package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
	"github.com/envelope-proxy/envelope-proxy/store"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// The dashboard test's four clients, one per kind of evidence.
const (
	cleanKey    = "sk_live_clean_0123456789"    // envelope, clean rewrites
	unmappedKey = "sk_live_unmapped_0123456789" // envelope, an error no rule knows
	matchKey    = "sk_live_match_0123456789"    // shadow, the candidate agrees
	mismatchKey = "sk_live_mismatch_0123456789" // shadow, the candidate differs at /data/price
)

// Personal data the legacy API sends, which dashboard.redact must keep out
// of the evidence file.
const (
	profileBody = `{"id":7,"price":10,"email":"alice@example.com"}`
	teapotBody  = `{"error":"I'm a teapot","code":"teapot_error","email":"bob@example.com"}`
)

// evidenceUpstreams starts the legacy API and a candidate that answers
// every client's /v1/profile in the envelope, except the mismatching
// client's, whose price it sends as a string.
func evidenceUpstreams(t *testing.T) (legacy, candidate *httptest.Server) {
	legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/teapot":
			w.WriteHeader(http.StatusTeapot)
			io.WriteString(w, teapotBody)
		case "/v1/credits":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`)
		default:
			io.WriteString(w, profileBody)
		}
	}))
	candidate = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		data := profileBody
		if r.Header.Get("X-API-Key") == mismatchKey {
			data = strings.Replace(data, `"price":10`, `"price":"10"`, 1)
		}
		io.WriteString(w, transform.SuccessPrefix()+data+transform.SuccessSuffix())
	}))
	t.Cleanup(legacy.Close)
	t.Cleanup(candidate.Close)
	return legacy, candidate
}

func evidenceConfig(legacy, candidate, readiness string) string {
	return clientsYAML(legacy, []testClient{
		{"clean", cleanKey, "envelope"}, {"unmapped", unmappedKey, "envelope"}, {"matching", matchKey, "shadow"}, {"mismatching", mismatchKey, "shadow"},
	}, fmt.Sprintf("candidate: {url: %q}\nreadiness: {%s}\ndashboard: {redact: [/data/email]}\nlog: {level: error, access_log: false}\n", candidate, readiness))
}

// getJSON decodes an admin API answer into v and returns its status.
func (in *instance) getJSON(path string, v any) int {
	in.t.Helper()
	resp, err := await.Client.Get(in.admin + path)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			in.t.Fatalf("decoding %s: %v", path, err)
		}
	}
	return resp.StatusCode
}

// overview returns GET /api/clients as rows by name.
func (in *instance) overview() (evidence.Overview, map[string]evidence.ClientSummary) {
	in.t.Helper()
	var ov evidence.Overview
	if code := in.getJSON("/api/clients", &ov); code != http.StatusOK {
		in.t.Fatalf("GET /api/clients: got %d; want 200", code)
	}
	rows := map[string]evidence.ClientSummary{}
	for _, c := range ov.Clients {
		rows[c.Name] = c
	}
	return ov, rows
}

// waitFor polls the overview until cond holds; the comparisons run after
// the responses, on their own goroutines. If the rows never satisfy cond,
// it logs the last ones, which say how far the evidence got.
func (in *instance) waitFor(what string, cond func(map[string]evidence.ClientSummary) bool) map[string]evidence.ClientSummary {
	in.t.Helper()
	var rows map[string]evidence.ClientSummary
	held := false
	defer func() {
		if !held {
			in.t.Logf("last rows: %+v", rows)
		}
	}()
	await.Until(in.t, what, func() bool {
		_, rows = in.overview()
		return cond(rows)
	})
	held = true
	return rows
}

// sendEvidenceTraffic sends n requests for each client.
func sendEvidenceTraffic(t *testing.T, in *instance, n int) {
	t.Helper()
	for range n {
		for _, r := range []struct{ path, key string }{
			{"/v1/profile", cleanKey}, {"/v1/credits", cleanKey},
			{"/v1/profile", unmappedKey}, {"/v1/teapot", unmappedKey},
			{"/v1/profile", matchKey}, {"/v1/profile", mismatchKey},
		} {
			if status, body := in.get(r.path, r.key); status >= 500 {
				t.Fatalf("GET %s: got %d %q", r.path, status, body)
			}
		}
	}
}

// recorded reports when the n rounds of sendEvidenceTraffic are all in
// the evidence: each request is recorded once its response is sent, and
// each shadow exchange once it is compared.
func recorded(n uint64) func(map[string]evidence.ClientSummary) bool {
	return func(rows map[string]evidence.ClientSummary) bool {
		if rows["clean"].Requests != 2*n || rows["unmapped"].Requests != 2*n {
			return false
		}
		for _, name := range []string{"matching", "mismatching"} {
			if s := rows[name].Shadow; rows[name].Requests != n || s == nil || s.Compared != n {
				return false
			}
		}
		return true
	}
}

func TestDashboardVerdictsOverARealProxy(t *testing.T) {
	legacy, candidate := evidenceUpstreams(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	in := startServeAt(t, path, evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5"))
	sendEvidenceTraffic(t, in, 6)
	rows := in.waitFor("every request recorded and every shadow exchange compared", recorded(6))

	tests := []struct {
		client string
		state  verdict.State
		reason string
	}{
		{"clean", verdict.Ready, "unmapped 0 ≤ 0 over 24h"},
		{"unmapped", verdict.NotReady, "unmapped 6 > 0 (teapot_error) over 24h"},
		{"matching", verdict.Ready, "unmapped 0 ≤ 0 over 24h"},
		{"mismatching", verdict.NotReady, "mismatch 100% > 0.1% over 24h, 6 compared"},
		{"default", verdict.InsufficientEvidence, "mode legacy: nothing is rewritten or compared (0 requests over 24h); switch it to shadow to gather evidence"},
	}
	for _, tc := range tests {
		t.Run(tc.client, func(t *testing.T) {
			got := rows[tc.client]
			if got.Verdict.State != tc.state || len(got.Verdict.Reasons) == 0 || got.Verdict.Reasons[0] != tc.reason {
				t.Errorf("got %s %q; want %s with first reason %q", got.Verdict.State, got.Verdict.Reasons, tc.state, tc.reason)
			}
		})
	}
	if c := rows["clean"]; c.Requests != 12 || c.Rewritten != 6 || c.Wrapped != 6 || c.Classes["4xx"] != 6 {
		t.Errorf("clean: got %+v; want 12 requests: 6 rewritten, 6 wrapped", c)
	}

	var d evidence.ClientDetail
	if code := in.getJSON("/api/clients/mismatching", &d); code != http.StatusOK {
		t.Fatalf("GET /api/clients/mismatching: got %d", code)
	}
	if len(d.Paths) == 0 || d.Paths[0].Path != "/data/price" || d.Paths[0].Count != 6 {
		t.Errorf("paths: got %+v; want /data/price ×6 first", d.Paths)
	}
	if len(d.Routes) != 1 || d.Routes[0].Route != "GET /v1/profile" || d.Routes[0].Mismatches != 6 {
		t.Errorf("routes: got %+v; want GET /v1/profile with 6 mismatches", d.Routes)
	}
	if len(d.Samples) == 0 {
		t.Fatalf("samples: got none; want the mismatches side by side")
	}
	smp := d.Samples[0]
	if !strings.Contains(smp.CandidateBody, `"price":"10"`) || !strings.Contains(smp.EnvelopeBody, `"price":10`) || len(smp.Diff) != 1 || smp.Diff[0].Path != "/data/price" {
		t.Errorf("sample: got %+v", smp)
	}
	for _, body := range []string{smp.LegacyBody, smp.EnvelopeBody, smp.CandidateBody} {
		if strings.Contains(body, "alice@example.com") || !strings.Contains(body, `"email":"[redacted]"`) {
			t.Errorf("sample body: got %q; want the email masked", body)
		}
	}
	if strings.Contains(fmt.Sprint(smp), mismatchKey) {
		t.Errorf("sample holds the API key: %+v", smp)
	}
	var u evidence.ClientDetail
	in.getJSON("/api/clients/unmapped", &u)
	if len(u.UnmappedCodes) != 1 || u.UnmappedCodes[0].Code != "teapot_error" || !strings.Contains(u.UnmappedCodes[0].Sample, `"email":"[redacted]"`) {
		t.Errorf("unmapped codes: got %+v; want teapot_error with a masked sample", u.UnmappedCodes)
	}
	if code := in.getJSON("/api/clients/nobody", &d); code != http.StatusNotFound {
		t.Errorf("GET /api/clients/nobody: got %d; want 404", code)
	}

	t.Run("ready command", func(t *testing.T) {
		dead := loopback.RefusedURL(t)
		for _, tc := range []struct {
			name, admin, client string
			want                int
		}{
			{"ready", in.admin, "clean", 0},
			{"not ready", in.admin, "mismatching", 1},
			{"insufficient evidence", in.admin, "default", 2},
			{"unknown client", in.admin, "nobody", 3},
			{"unreachable", dead, "clean", 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out, errOut bytes.Buffer
				got := Run([]string{"ready", "-admin", tc.admin, "-client", tc.client, "-timeout", "5s"}, Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
				if got != tc.want {
					t.Errorf("exit: got %d; want %d (stdout %q, stderr %q)", got, tc.want, out.String(), errOut.String())
				}
				if tc.want < 3 && !strings.Contains(out.String(), "  - ") {
					t.Errorf("stdout: got %q; want the verdict with its reasons", out.String())
				}
			})
		}
	})

	t.Run("thresholds reload", func(t *testing.T) {
		in.write(evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5, max_unmapped: 10, max_mismatch_ratio: 1"))
		in.waitFor("the reloaded thresholds", func(rows map[string]evidence.ClientSummary) bool {
			return rows["unmapped"].Verdict.State == verdict.Ready && rows["mismatching"].Verdict.State == verdict.Ready
		})
		in.write(evidenceConfig(legacy.URL, candidate.URL, "min_requests: 100"))
		rows := in.waitFor("the raised min_requests", func(rows map[string]evidence.ClientSummary) bool {
			return rows["clean"].Verdict.State == verdict.InsufficientEvidence
		})
		if got, want := rows["clean"].Verdict.Reasons[0], "12 requests < 100 needed over 24h"; got != want {
			t.Errorf("reason: got %q; want %q", got, want)
		}
	})

	if code := in.stop(); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, in.stderr.String())
	}

	t.Run("redacted paths never reach the database", func(t *testing.T) {
		files, _ := filepath.Glob(filepath.Join(dir, "state", store.FileName+"*"))
		if len(files) == 0 {
			t.Fatalf("no evidence file in %s/state", dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"alice@example.com", "bob@example.com", mismatchKey, unmappedKey} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds %q", filepath.Base(f), secret)
				}
			}
		}
	})

	t.Run("a restart keeps the counts", func(t *testing.T) {
		again := startServeAt(t, path, evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5"))
		ov, after := again.overview()
		if !ov.State.Persistent {
			t.Errorf("state: got %+v; want persistent", ov.State)
		}
		for _, name := range []string{"clean", "unmapped", "matching", "mismatching"} {
			if after[name].Requests != rows[name].Requests || after[name].Verdict.State != rows[name].Verdict.State {
				t.Errorf("%s after restart: got %d requests, %s; want %d, %s", name, after[name].Requests, after[name].Verdict.State, rows[name].Requests, rows[name].Verdict.State)
			}
		}
		if s := after["mismatching"].Shadow; s == nil || s.Compared != rows["mismatching"].Shadow.Compared {
			t.Errorf("mismatching shadow after restart: got %+v; want %+v", s, rows["mismatching"].Shadow)
		}
		again.stop()
	})

	t.Run("a corrupt database does not fail requests", func(t *testing.T) {
		state := filepath.Join(dir, "state")
		os.Remove(filepath.Join(state, store.FileName+"-wal"))
		os.Remove(filepath.Join(state, store.FileName+"-shm"))
		if err := os.WriteFile(filepath.Join(state, store.FileName), bytes.Repeat([]byte("garbage!"), 4096), 0o600); err != nil {
			t.Fatal(err)
		}
		broken := startServeAt(t, path, evidenceConfig(legacy.URL, candidate.URL, "min_requests: 5"))
		for range 5 {
			if status, body := broken.get("/v1/credits", cleanKey); status != http.StatusPaymentRequired {
				t.Fatalf("GET /v1/credits: got %d %q; want 402", status, body)
			}
		}
		broken.waitFor("the five requests counted in memory", func(rows map[string]evidence.ClientSummary) bool {
			return rows["clean"].Requests == 5
		})
		if ov, _ := broken.overview(); ov.State.Persistent || !strings.Contains(ov.State.Error, "kept in memory") || !strings.Contains(ov.State.Error, "not a database") {
			t.Errorf("state: got %+v; want evidence kept in memory, with the reason", ov.State)
		}
		broken.stop()
	})
}
