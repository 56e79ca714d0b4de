package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// paymentRule maps the legacy 403 payment_failed to a 402 code the new
// API's documentation does not have, with an example.
const paymentRule = `rules:
  - name: payment
    match: {status: 403, code: payment_failed}
    status: 402
    code: payment_required
    examples:
      - body: '{"error": "Payment failed", "code": "payment_failed"}'
`

// jobsOpenAPI is a user's OpenAPI document: /v1/jobs/{id} has its own
// success schema (an integer id); every other route gets the envelope's
// success and error responses.
const jobsOpenAPI = `openapi: 3.0.3
info: {title: jobs, version: "1"}
servers: [{url: "https://api.example.com/v1"}]
paths:
  /jobs/{id}:
    get:
      parameters: [{name: id, in: path, required: true, schema: {type: string}}]
      responses:
        "200":
          description: A job.
          content:
            application/json:
              schema:
                type: object
                required: [data, success, message]
                properties:
                  data: {type: object, required: [id], properties: {id: {type: integer}}}
                  success: {type: boolean}
                  message: {type: string}
components:
  responses:
    "200":
      description: Any success.
      content:
        application/json:
          schema: {type: object, required: [data, success, message]}
    default:
      description: Any error.
      content:
        application/json:
          schema: {type: object, required: [data, success, message, errors]}
`

// writeBeside writes name with content in dir and returns its path.
func writeBeside(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestContractCommand(t *testing.T) {
	dir := t.TempDir()
	writeBeside(t, dir, "jobs.yaml", jobsOpenAPI)
	writeBeside(t, dir, "broken.yaml", "openapi: 3.0.3\ninfo: {title: x}\npaths: {/x: {get: {responses: {\"200\": {}}}}}\n")
	tests := []struct {
		name     string
		config   string
		args     []string
		wantCode int
		want     []string
		notWant  []string
	}{
		{name: "the defaults pass their own contract", config: "{}", wantCode: 0,
			want:    []string{"contract: built-in envelope contract", "extensions:", "402 trial_expired (built-in rule trial_expired, example 0)", "503 service_unavailable", "0 violations, 9 extensions"},
			notWant: []string{"violations:"}},
		{name: "a rule emitting an undocumented code", config: paymentRule, wantCode: 1,
			want: []string{"violations: envelopes the contract does not allow (1)", `rules[0] (payment), example 0: 402 payment_required: undocumented_code: status 402 documents codes insufficient_credits, account_suspended, trial_expired, not "payment_required"`}},
		{name: "a user's document from the config, beside it", config: "contract: {openapi: jobs.yaml}\n", wantCode: 0,
			want: []string{"contract: " + filepath.Join(dir, "jobs.yaml"), "0 violations"}},
		{name: "-openapi instead of the config's", config: "{}", args: []string{"-openapi", "../contract/testdata/jobs.openapi.yaml"}, wantCode: 1,
			want: []string{"built-in rule invalid_key, example 0: 401 invalid_key: undocumented_status"}},
		{name: "a malformed document", config: "contract: {openapi: broken.yaml}\n", wantCode: 1,
			want: []string{"contract.openapi: ", "broken.yaml"}},
		{name: "a missing document", config: "contract: {openapi: missing.yaml}\n", wantCode: 1,
			want: []string{"contract.openapi: ", "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeBeside(t, dir, "config.yaml", tc.config)
			code, out, errOut := run(t, "", append([]string{"contract", "-config", path}, tc.args...)...)
			if code != tc.wantCode {
				t.Errorf("exit: got %d; want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output %q; want it to contain %q", out+errOut, w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out+errOut, w) {
					t.Errorf("output %q; want it without %q", out+errOut, w)
				}
			}
		})
	}
}

func TestValidateHoldsTheRulesToTheContract(t *testing.T) {
	dir := t.TempDir()
	writeBeside(t, dir, "broken.yaml", "not: [an, openapi document")
	tests := []struct {
		name     string
		config   string
		wantCode int
		want     []string
	}{
		{"an undocumented code is a warning", paymentRule, 0, []string{"warning: rules[0] (payment), example 0: 402 payment_required is not allowed by built-in envelope contract: undocumented_code", ": OK"}},
		{"a malformed document is a problem", "contract: {openapi: broken.yaml}\n", 1, []string{"1 problem(s)", "contract.openapi: "}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "", "validate", "-config", writeBeside(t, dir, "config.yaml", tc.config))
			if code != tc.wantCode {
				t.Errorf("exit: got %d; want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output %q; want it to contain %q", out+errOut, w)
				}
			}
		})
	}
}

const (
	liveKey = "sk_live_contract_live_0123"
	dryKey  = "sk_live_contract_dry_0123"
)

// contractUpstream is the legacy API: /v1/pay fails with payment_failed,
// /v1/jobs/7 answers a job whose id is a string, anything else a plain
// object.
func contractUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/pay":
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error": "Payment failed for `+r.Header.Get("X-API-Key")+`", "code": "payment_failed"}`)
		case "/v1/jobs/7":
			io.WriteString(w, `{"id": "7"}`)
		default:
			io.WriteString(w, `{"name": "x"}`)
		}
	}))
	t.Cleanup(up.Close)
	return up
}

func contractConfig(upstream, extra string) string {
	return clientsYAML(upstream, []testClient{{"live", liveKey, "envelope"}, {"dry", dryKey, "shadow"}},
		"shadow: {methods: [GET]}\nreadiness: {min_requests: 1}\nlog: {level: info, access_log: false}\n"+extra)
}

// TestContractViolationsOverARealProxy: a rule that emits an undocumented
// code is counted for an envelope client (live) and a shadow client (dry
// run), in the metrics, the evidence with a redacted sample, and the
// verdict.
func TestContractViolationsOverARealProxy(t *testing.T) {
	up := contractUpstream(t)
	in := startServe(t, contractConfig(up.URL, paymentRule))
	const n = 3
	for range n {
		for _, key := range []string{liveKey, dryKey} {
			in.get("/v1/pay", key)
			in.get("/v1/profile", key)
		}
	}
	rows := in.waitFor("the checks counted", func(rows map[string]evidence.ClientSummary) bool {
		return rows["live"].Contract != nil && rows["live"].Contract.Checked == 2*n && rows["dry"].Contract != nil && rows["dry"].Contract.Checked == 2*n
	})
	for _, tc := range []struct{ client, key, source string }{{"live", liveKey, "live"}, {"dry", dryKey, "dry_run"}} {
		t.Run(tc.client, func(t *testing.T) {
			row := rows[tc.client]
			if row.Contract.Violations != n {
				t.Errorf("violations: got %d; want %d", row.Contract.Violations, n)
			}
			if got := counter(in.metrics(), "envelope_proxy_contract_violations_total", map[string]string{"client": tc.client, "status": "402", "code": "payment_required", "reason": "undocumented_code"}); got != n {
				t.Errorf("envelope_proxy_contract_violations_total: got %v; want %d", got, n)
			}
			if row.Verdict.State != "not_ready" || !strings.Contains(strings.Join(row.Verdict.Reasons, "; "), "contract violations 3 > 0 over 24h (402 payment_required (undocumented_code))") {
				t.Errorf("verdict: got %+v; want not_ready for the contract violations", row.Verdict)
			}
			var d evidence.ClientDetail
			if code := in.getJSON("/api/clients/"+tc.client, &d); code != http.StatusOK {
				t.Fatalf("GET /api/clients/%s: got %d", tc.client, code)
			}
			if len(d.Violations) != 1 {
				t.Fatalf("violations: got %+v; want one kind", d.Violations)
			}
			v := d.Violations[0]
			if v.Source != tc.source || v.Route != "GET /v1/pay" || v.Status != 402 || v.Code != "payment_required" || v.Reason != "undocumented_code" || v.Count != n {
				t.Errorf("violation: got %+v; want %s GET /v1/pay 402 payment_required undocumented_code ×%d", v, tc.source, n)
			}
			if !strings.Contains(v.Sample, `"payment_required"`) || strings.Contains(v.Sample, tc.key) {
				t.Errorf("sample: got %q; want the envelope, without the key", v.Sample)
			}
		})
	}
}

// TestContractPerRoute: a user's document with a route-specific schema is
// applied to that route only.
func TestContractPerRoute(t *testing.T) {
	up := contractUpstream(t)
	dir := t.TempDir()
	writeBeside(t, dir, "jobs.yaml", jobsOpenAPI)
	in := startServeAt(t, filepath.Join(dir, "config.yaml"), contractConfig(up.URL, "contract: {openapi: jobs.yaml}\n"))
	for range 2 {
		in.get("/v1/jobs/7", liveKey)
		in.get("/v1/things/7", liveKey)
	}
	in.waitFor("the checks counted", func(rows map[string]evidence.ClientSummary) bool {
		return rows["live"].Contract != nil && rows["live"].Contract.Checked == 4
	})
	var d evidence.ClientDetail
	in.getJSON("/api/clients/live", &d)
	if len(d.Violations) != 1 {
		t.Fatalf("violations: got %+v; want the job route's only", d.Violations)
	}
	if v := d.Violations[0]; v.Route != "GET /jobs/{id}" || v.Reason != "schema" || v.Count != 2 || !strings.Contains(v.Detail, "/data/id") {
		t.Errorf("violation: got %+v; want GET /jobs/{id} schema ×2 at /data/id", v)
	}
}

// TestMalformedContractIsRefused: a document that does not load stops the
// start, and a reload to it is refused with the old config kept.
func TestMalformedContractIsRefused(t *testing.T) {
	up := contractUpstream(t)
	dir := t.TempDir()
	writeBeside(t, dir, "broken.yaml", "openapi: 3.0.3\npaths: {/x: {get: {responses: {\"200\": {}}}}}\n")
	writeBeside(t, dir, "jobs.yaml", jobsOpenAPI)

	t.Run("at start", func(t *testing.T) {
		path := writeBeside(t, dir, "config.yaml", contractConfig(up.URL, "contract: {openapi: broken.yaml}\n"))
		code, _, errOut := run(t, "", "serve", "-config", path)
		if code != 1 || !strings.Contains(errOut, "contract.openapi: ") || !strings.Contains(errOut, "broken.yaml") {
			t.Errorf("got exit %d, %q; want 1 naming contract.openapi and the file", code, errOut)
		}
	})
	t.Run("on reload", func(t *testing.T) {
		in := startServeAt(t, filepath.Join(dir, "config.yaml"), contractConfig(up.URL, "contract: {openapi: jobs.yaml}\n"))
		reloads := func(result string) float64 {
			return counter(in.metrics(), "envelope_proxy_config_reloads_total", map[string]string{"result": result})
		}
		// The reload would also flip live to legacy: refused whole, it
		// leaves live on the envelope.
		in.write(strings.Replace(contractConfig(up.URL, "contract: {openapi: broken.yaml}\n"), "mode: envelope", "mode: legacy", 1))
		in.signals <- syscall.SIGHUP
		await.Until(t, "the rejected reload", func() bool { return reloads("failure") >= 1 })
		if status, body := in.get("/v1/profile", liveKey); status != 200 || !strings.HasPrefix(body, `{"data":`) {
			t.Errorf("after a rejected reload: got %d %q; want the envelope (the old config)", status, body)
		}
		if log := in.stderr.String(); !strings.Contains(log, "contract.openapi: ") {
			t.Errorf("the log does not name contract.openapi: %s", log)
		}
		if reloads("success") != 0 {
			t.Errorf("a reload succeeded")
		}
	})
}
