package transform

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzTransform checks the envelope's invariants for any legacy response:
// no panic; a rewritten or wrapped body is valid JSON with exactly the
// envelope's keys; success is true exactly for 2xx; errors is a list of
// one-key objects whose values are non-empty lists of strings; a wrapped
// 2xx body's data is byte-identical to the input.
func FuzzTransform(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.legacy.json"))
	for i, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		for _, status := range []uint16{200, 400, 401, 403, 422, 429, 500, 503} {
			cts := []string{"application/json", "text/html"}
			f.Add(status, cts[i%2], b)
		}
	}
	f.Add(uint16(200), "application/problem+json", []byte(`{"a":[1,2,{"b":null}]}`))
	f.Add(uint16(400), "application/json", []byte(`{"":[""],"x":[]}`))
	f.Add(uint16(422), "application/json", []byte(`{"detail":[{"loc":[],"msg":{"a":1}},{"loc":[1],"msg":"m"}]}`))
	tr, err := New([]Rule{{Match: Match{Status: 409}, Code: "{{error}}", Message: "{{details}} {{$message}} {{$field}}", Fields: FieldsBody}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rawStatus uint16, contentType string, body []byte) {
		status := 100 + int(rawStatus)%500
		h := http.Header{"Content-Type": {contentType}}
		newStatus, out, o := tr.Transform(nil, status, h, body)
		switch o.Action {
		case Pass:
			if !bytes.Equal(out, body) || newStatus != status {
				t.Fatalf("pass changed the response: %d %q", newStatus, out)
			}
			return
		case Wrap:
			checkEnvelope(t, out, []string{"data", "message", "success"}, true)
			data := out[len(successPrefix) : len(out)-len(successSuffix)]
			if !bytes.Equal(data, body) || !bytes.HasPrefix(out, []byte(successPrefix)) {
				t.Fatalf("data: got %q; want %q", data, body)
			}
			if status < 200 || status > 299 {
				t.Fatalf("wrapped a %d", status)
			}
		case Rewrite:
			checkEnvelope(t, out, []string{"data", "errors", "message", "success"}, false)
			if newStatus < 400 {
				t.Fatalf("error rewritten to %d", newStatus)
			}
		}
	})
}

func checkEnvelope(t *testing.T, out []byte, keys []string, success bool) {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(out, &env); err != nil {
		t.Fatalf("not valid JSON (%v): %q", err, out)
	}
	got := make([]string, 0, len(env))
	for k := range env {
		got = append(got, k)
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(keys, ",") {
		t.Fatalf("keys: got %q; want %q", got, keys)
	}
	var s bool
	if err := json.Unmarshal(env["success"], &s); err != nil || s != success {
		t.Fatalf("success: got %s; want %v", env["success"], success)
	}
	var msg string
	if err := json.Unmarshal(env["message"], &msg); err != nil {
		t.Fatalf("message is not a string: %s", env["message"])
	}
	if success {
		return
	}
	if string(env["data"]) != "null" {
		t.Fatalf("data: got %s; want null", env["data"])
	}
	var errs []map[string][]string
	if err := json.Unmarshal(env["errors"], &errs); err != nil {
		t.Fatalf("errors is not a list of {code: [strings]}: %v: %s", err, env["errors"])
	}
	if len(errs) == 0 {
		t.Fatalf("errors is empty")
	}
	for _, e := range errs {
		if len(e) != 1 {
			t.Fatalf("errors entry with %d keys: %v", len(e), e)
		}
		for _, msgs := range e {
			if len(msgs) == 0 {
				t.Fatalf("errors entry with no message: %v", e)
			}
		}
	}
	// Duplicate keys would hide entries from the map above: check the raw
	// list has as many objects as decoded.
	var raw []json.RawMessage
	json.Unmarshal(env["errors"], &raw)
	if len(raw) != len(errs) {
		t.Fatalf("errors: %d raw entries, %d decoded", len(raw), len(errs))
	}
}

// FuzzAppendString checks appendString, with its plain-ASCII fast path,
// against gjson.AppendJSONString, which it must match byte for byte.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", `Insufficient credits. Required: 120, available: 50`, `quote " here`,
		`back\slash`, "tab\there", "<b>&amp;</b>", "caf\u00e9", "\xff\xfe", "line\u2028sep", "ok\x00nul", "\x7f"} {
		f.Add("prefix", s)
	}
	f.Fuzz(func(t *testing.T, prefix, s string) {
		got := appendString([]byte(prefix), s)
		want := gjson.AppendJSONString([]byte(prefix), s)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q): got %q; want %q", s, got, want)
		}
	})
}
