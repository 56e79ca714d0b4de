package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzConfig checks that any input to the loader gives either a valid
// config or an error that says where: a field path, or for YAML that does
// not parse, the parser's line.
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile("../config.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"", "{}", "listen: nowhere\n", "routing:\n  clients:\n    - {name: a, keys_sha256: [zz], mode: envlope}\n",
		"rules:\n  - match: {status: 403, message: \"(\"}\n    message: \"{{x\"\n", "upstream: {timeout: soon}\n",
		"- 1\n- 2\n", "a: &a [*a]\n", "routing: {rollout: [{percent: 101, mode: shadow}]}\n", "---\n---\n",
		"max_body_bytes: 1e99\n", "listen: !!binary aGVsbG8=\n", "routing: {clients: [[]]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted a config Validate rejects: %v", verr)
			}
			return
		}
		var errs Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				if e.Path == "" || e.Msg == "" {
					t.Fatalf("field error without a path or message: %#v", e)
				}
			}
			return
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "parsing YAML: ") && msg != "config holds more than one YAML document" {
			t.Fatalf("error names no field and is not a YAML syntax error: %q", msg)
		}
	})
}
