package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const digestA = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b" // sha256("secret")

func TestParseDefaults(t *testing.T) {
	for _, doc := range []string{"", "# only a comment\n", "{}"} {
		c, err := Parse([]byte(doc))
		if err != nil {
			t.Fatalf("Parse(%q): %v", doc, err)
		}
		if c.Listen != DefaultListen || c.Upstream.Timeout != DefaultUpstreamTimeout || c.Routing.Default != ModeLegacy || c.Routing.OverrideHeader != "" {
			t.Errorf("Parse(%q): got %+v; want the defaults", doc, c)
		}
	}
}

func TestParseFull(t *testing.T) {
	doc := `
listen: "127.0.0.1:8081"
upstream: {url: "http://10.0.0.1:9000", timeout: 5s}
max_body_bytes: 2048
routing:
  header: Authorization-Key
  default: shadow
  override_header: X-Response-Format
  clients:
    - {name: acme, keys_sha256: ["` + digestA + `"], mode: envelope}
  rollout:
    - {percent: 12.5, mode: envelope}
migrated_prefixes: [/v2/]
rules:
  - name: suspended
    match: {status: 403, code: account_suspended}
    status: 402
    code: account_suspended
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if c.Upstream.Timeout != 5*time.Second || c.Upstream.DialTimeout != 5*time.Second {
		t.Errorf("upstream: got %+v; want timeout 5s and the default dial timeout", c.Upstream)
	}
	if got := c.Routing.Clients[0]; got.Name != "acme" || got.Mode != ModeEnvelope {
		t.Errorf("client: got %+v", got)
	}
	if got := c.Routing.CohortName(0); got != "rollout-0-envelope" {
		t.Errorf("cohort name: got %q; want %q", got, "rollout-0-envelope")
	}
	if len(c.Rules) != 1 || c.Rules[0].Status != 402 {
		t.Errorf("rules: got %+v", c.Rules)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"unknown top-level key", "lisen: :80\n", []string{"lisen: unknown key"}},
		{"unknown nested key", "routing:\n  clients:\n    - name: a\n      keys_sha256: [\"" + digestA + "\"]\n      mode: envelope\n    - name: b\n      mdoe: envelope\n", []string{"routing.clients[1].mdoe: unknown key"}},
		{"bad mode", "routing:\n  clients:\n    - {name: a, keys_sha256: [\"" + digestA + "\"], mode: envelope}\n    - {name: b, keys_sha256: [\"" + strings.Repeat("b", 64) + "\"], mode: envlope}\n",
			[]string{`routing.clients[1].mode: "envlope" is not one of legacy, envelope, shadow`}},
		{"bad default", "routing: {default: json}\n", []string{`routing.default: "json" is not one of`}},
		{"bad hex", "routing:\n  clients:\n    - {name: a, keys_sha256: [\"zz\"], mode: envelope}\n", []string{`routing.clients[0].keys_sha256[0]: "zz" is not a hex SHA-256`}},
		{"plaintext key is not echoed", "routing:\n  clients:\n    - {name: a, keys_sha256: [\"sk_live_abcdefghijklmnop\"], mode: envelope}\n", []string{`routing.clients[0].keys_sha256[0]: "sk_l…(24 chars)" is not a hex`}},
		{"duplicate digest", "routing:\n  clients:\n    - {name: a, keys_sha256: [\"" + digestA + "\"], mode: envelope}\n    - {name: b, keys_sha256: [\"" + strings.ToUpper(digestA) + "\"], mode: legacy}\n",
			[]string{"routing.clients[1].keys_sha256[0]: digest already listed at routing.clients[0].keys_sha256[0]"}},
		{"duplicate name", "routing:\n  clients:\n    - {name: a, keys_sha256: [\"" + digestA + "\"], mode: envelope}\n  rollout:\n    - {name: a, percent: 5, mode: envelope}\n",
			[]string{`routing.rollout[0].name: "a" is already the name of routing.clients[0].name`}},
		{"no keys", "routing:\n  clients:\n    - {name: a, mode: envelope}\n", []string{"routing.clients[0].keys_sha256: must list at least one"}},
		{"percent over", "routing:\n  rollout:\n    - {percent: 60, mode: envelope}\n    - {percent: 50, mode: shadow}\n", []string{"routing.rollout: percentages add up to 110"}},
		{"percent zero", "routing:\n  rollout:\n    - {percent: 0, mode: envelope}\n", []string{"routing.rollout[0].percent: 0 is not in (0, 100]"}},
		{"bad url", "upstream: {url: \"ftp://x\"}\n", []string{`upstream.url: "ftp://x" is not an http(s) URL`}},
		{"url without host", "upstream: {url: \"http://\"}\n", []string{"upstream.url:"}},
		{"bad duration", "upstream: {timeout: soon}\n", []string{"upstream.timeout: cannot unmarshal"}},
		{"negative timeout", "upstream: {timeout: -1s}\n", []string{"upstream.timeout: must be positive"}},
		{"zero body", "max_body_bytes: 0\n", []string{"max_body_bytes: must be positive"}},
		{"negative gc floor", "gc_heap_floor_bytes: -1\n", []string{"gc_heap_floor_bytes: must not be negative"}},
		{"huge gc floor", "gc_heap_floor_bytes: 1099511627777\n", []string{"gc_heap_floor_bytes: must be at most 1099511627776 (1 TiB)"}},
		{"bad status in rule", "rules:\n  - match: {status: 1000}\n", []string{"rules[0].match.status: 1000 is not an HTTP status"}},
		{"bad regexp in rule", "rules:\n  - {name: ok}\n  - match: {message: \"(\"}\n", []string{"rules[1].match.message: error parsing regexp"}},
		{"bad header", "routing: {header: \"X Key\"}\n", []string{`routing.header: "X Key" is not a header name`}},
		{"override equals header", "routing: {override_header: x-api-key}\n", []string{"routing.override_header: must differ from routing.header"}},
		{"bad override mode", "routing: {override_modes: [legacy, json]}\n", []string{`routing.override_modes[1]: "json" is not one of`}},
		{"bad listen", "listen: nowhere\n", []string{`listen: "nowhere" is not a host:port`}},
		{"same listeners", "listen: \"127.0.0.1:1\"\nadmin_listen: \"127.0.0.1:1\"\n", []string{"admin_listen: must differ from listen"}},
		{"migrated prefix", "migrated_prefixes: [v2]\n", []string{`migrated_prefixes[0]: "v2" must start with /`}},
		{"log level", "log: {level: loud}\n", []string{`log.level: "loud" is not one of`}},
		{"reserved name", "routing:\n  clients:\n    - {name: default, keys_sha256: [\"" + digestA + "\"], mode: envelope}\n", []string{`routing.clients[0].name: "default" is reserved`}},
		{"every problem at once", "listen: nowhere\nrouting: {default: json}\nmax_body_bytes: -1\n", []string{"listen:", "routing.default:", "max_body_bytes:"}},
		{"bad redact pointer", "dashboard:\n  redact:\n    - /data/email\n    - data/token\n", []string{`dashboard.redact[1]: redact path "data/token": must be "" or start with "/"`}},
		{"bad redact escape", "dashboard: {redact: [\"/data/a~2\"]}\n", []string{`dashboard.redact`, `"~" must be followed by "0" or "1"`}},
		{"state_url not postgres", "state_url: \"mysql://u:secret@db/x\"\n", []string{"state_url: is not a PostgreSQL URL"}},
		{"state_url from an unset variable", "state_url: \"${ENVELOPE_PROXY_TEST_UNSET}\"\n", []string{"state_url: is empty once its environment variables are expanded"}},
		{"bad replica name", "replica: \"pod 1\"\n", []string{`replica: "pod 1" may hold only`}},
		{"two documents", "listen: \":1\"\n---\nlisten: \":2\"\n", []string{"more than one YAML document"}},
		{"bad replay method", "shadow: {replay: [{method: post, route: /v1/detect}]}\n", []string{`shadow.replay[0].method: "post" is not an upper-case HTTP method`}},
		{"replay route without a slash", "shadow: {replay: [{method: POST, route: v1/detect}]}\n", []string{`shadow.replay[0].route: "v1/detect" must start with /`}},
		{"CONNECT replayed", "shadow: {replay: [{method: CONNECT, route: /x}]}\n", []string{"shadow.replay[0].method: CONNECT is never replayed"}},
		{"candidate header the proxy sets", "shadow: {candidate_headers: {Idempotency-Key: x}}\n", []string{"shadow.candidate_headers.Idempotency-Key: Idempotency-Key is set by the proxy"}},
		{"candidate header value not echoed", "shadow: {candidate_headers: {X-Key: \"secret\\nvalue\"}}\n", []string{"shadow.candidate_headers.X-Key: the value holds a character"}},
		{"learn_sample over 1", "shadow: {learn_sample: 2}\n", []string{"shadow.learn_sample: 2 is not in [0, 1]"}},
		{"number tolerance of 1", "shadow: {tolerances: {numbers: 1}}\n", []string{"shadow.tolerances.numbers: 1 is not in [0, 1)"}},
		{"set without a pointer", "shadow: {tolerances: {sets: {data/items: id}}}\n", []string{`shadow.tolerances.sets: "data/items" is not a JSON Pointer`}},
		{"set without a key", "shadow: {tolerances: {sets: {/data/items: \"\"}}}\n", []string{"shadow.tolerances.sets./data/items: names no key field"}},
		{"not yaml", "listen: [\n", []string{"parsing YAML"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc))
			if err == nil {
				t.Fatalf("got no error; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q; want it to contain %q", err.Error(), w)
				}
			}
		})
	}
}

// TestErrorsInStableOrder checks that the same config always lists its
// problems in the same order, so that a diff of two validate runs shows
// only what changed.
func TestErrorsInStableOrder(t *testing.T) {
	doc := []byte("upstream: {max_idle_conns_per_host: -1, max_conns_per_host: -1, timeout: 0s, dial_timeout: 0s}\n" +
		"server: {read_timeout: -1s, drain_delay: -1s, idle_timeout: 0s}\ngc_heap_floor_bytes: -1\nmax_body_bytes: 0\n")
	_, first := Parse(doc)
	if first == nil {
		t.Fatal("got no error; want several")
	}
	for range 50 {
		if _, err := Parse(doc); err.Error() != first.Error() {
			t.Fatalf("got %q; want the same order as %q", err, first)
		}
	}
}

func TestErrorsListEveryProblem(t *testing.T) {
	_, err := Parse([]byte("listen: nowhere\nrouting: {default: json}\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("got %v; want 2 field errors", err)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(p, []byte("routing: {default: envelope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil || c.Routing.Default != ModeEnvelope {
		t.Fatalf("got %v, %v; want envelope default", c, err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "loading config") {
		t.Errorf("got %v; want a loading error", err)
	}
}

func TestStateURLNeverEchoed(t *testing.T) {
	_, err := Parse([]byte("state_url: \"mysql://u:secret@db/x\"\n"))
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("got %v; want an error without the password", err)
	}
}

func TestCandidateHeaderValueNeverEchoed(t *testing.T) {
	_, err := Parse([]byte("shadow: {candidate_headers: {X-Key: \"sk_secret\\r\\nX: y\"}}\n"))
	if err == nil || strings.Contains(err.Error(), "sk_secret") {
		t.Errorf("got %v; want an error without the value", err)
	}
}

func TestExpand(t *testing.T) {
	t.Setenv("ENVELOPE_PROXY_TEST_URL", "postgres://e:p$w@db/x")
	tests := []struct{ in, want string }{
		{"${ENVELOPE_PROXY_TEST_URL}", "postgres://e:p$w@db/x"},
		{"pre-${ENVELOPE_PROXY_TEST_URL}-post", "pre-postgres://e:p$w@db/x-post"},
		{"postgres://e:p$w@db/x", "postgres://e:p$w@db/x"},
		{"${UNCLOSED", "${UNCLOSED"},
		{"${ENVELOPE_PROXY_TEST_UNSET}", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			if got := Expand(tc.in); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}
