package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(args, Env{DefaultConfig: []byte("{}"), Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		wantCode int
		want     []string
	}{
		{"valid", "routing: {default: envelope}\n", 0, []string{": OK"}},
		{"every problem listed", "listen: nowhere\nrouting:\n  clients:\n    - {name: a, keys_sha256: [\"" + strings.Repeat("a", 64) + "\"], mode: envlope}\n", 1,
			[]string{"2 problem(s)", `listen: "nowhere" is not a host:port address`, `routing.clients[0].mode: "envlope" is not one of legacy, envelope, shadow`}},
		{"unknown key", "upstream: {ur: x}\n", 1, []string{"upstream.ur: unknown key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, "", "validate", "-config", writeFile(t, tc.config))
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
	if code, _, _ := run(t, "", "validate", "-config", "/does/not/exist.yaml"); code != 1 {
		t.Errorf("missing file: got exit %d; want 1", code)
	}
}

// resp formats what the transform command prints for a JSON body.
func resp(statusLine, body string) string {
	return statusLine + "\nContent-Length: " + strconv.Itoa(len(body)) + "\nContent-Type: application/json\n\n" + body + "\n"
}

func TestTransformCommand(t *testing.T) {
	rules := writeFile(t, "rules:\n  - {name: suspended, match: {status: 403, code: account_suspended}, status: 402, code: account_suspended}\n")
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"credits", []string{"-status", "403"}, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`,
			resp("HTTP/1.1 402 Payment Required", `{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50","errors":[{"insufficient_credits":["Insufficient credits. Required: 120, available: 50"]}]}`)},
		{"success wrap", []string{"-status", "200"}, `{"id":1}`,
			resp("HTTP/1.1 200 OK", `{"data":{"id":1},"success":true,"message":"OK"}`)},
		{"html error with header", []string{"-status", "502", "-header", "Content-Type: text/html"}, `<html>down</html>`,
			resp("HTTP/1.1 502 Bad Gateway", `{"data":null,"success":false,"message":"Bad Gateway","errors":[{"bad_gateway":["Bad Gateway"]}]}`)},
		{"config rules", []string{"-config", rules, "-status", "403"}, `{"error":"Suspended","code":"account_suspended"}`,
			resp("HTTP/1.1 402 Payment Required", `{"data":null,"success":false,"message":"Suspended","errors":[{"account_suspended":["Suspended"]}]}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := run(t, tc.stdin, append([]string{"transform"}, tc.args...)...)
			if code != 0 || out != tc.want {
				t.Errorf("got %d %q (stderr %q); want 0 %q", code, out, errOut, tc.want)
			}
		})
	}
	if code, _, _ := run(t, "", "transform"); code != 2 {
		t.Errorf("no -status: got exit %d; want 2", code)
	}
}

func TestDemoExit(t *testing.T) {
	code, out, errOut := run(t, "", "demo", "-exit", "-listen", "127.0.0.1:0")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, w := range []string{
		"== /examples/insufficient_credits",
		`   legacy   403 {"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`,
		`   envelope 402 {"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50"`,
		"curl -i -H 'X-API-Key: demo-envelope-key'",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q", w)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, errOut := run(t, "", "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("got %d %q; want 2 and a usage message", code, errOut)
	}
	if code, out, _ := run(t, "", "version"); code != 0 || !strings.HasPrefix(out, "envelope-proxy ") {
		t.Errorf("version: got %d %q", code, out)
	}
}
