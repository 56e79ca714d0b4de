package transform

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

var update = flag.Bool("update", false, "rewrite the golden .envelope.json files")

// goldenCase is one legacy response under testdata/, with the status the
// envelope must carry.
type goldenCase struct {
	name        string
	status      int
	contentType string
	wantStatus  int
	wantCode    string // Result.Code
	wantRule    string // Result.Rule, "" for the fallback
	wantAction  Action
}

// goldenCases lists every example of the legacy spec (first block) and
// every row of the mapping table, with edge cases after.
var goldenCases = []goldenCase{
	// The legacy spec's examples, in its order.
	{name: "missing_api_key", status: 401, wantStatus: 401, wantCode: "invalid_key", wantRule: "invalid_key", wantAction: Rewrite},
	{name: "invalid_api_key", status: 401, wantStatus: 401, wantCode: "invalid_key", wantRule: "invalid_key", wantAction: Rewrite},
	{name: "expired_api_key", status: 401, wantStatus: 401, wantCode: "invalid_key", wantRule: "invalid_key", wantAction: Rewrite},
	{name: "missing_scope", status: 403, wantStatus: 403, wantCode: "insufficient_scope", wantRule: "insufficient_scope", wantAction: Rewrite},
	{name: "key_limit_reached", status: 403, wantStatus: 403, wantCode: "key_limit_reached", wantRule: "key_limit_reached", wantAction: Rewrite},
	{name: "invalid_payload", status: 400, wantStatus: 400, wantCode: "invalid_payload", wantRule: "invalid_payload", wantAction: Rewrite},
	{name: "insufficient_credits", status: 403, wantStatus: 402, wantCode: "insufficient_credits", wantRule: "insufficient_credits", wantAction: Rewrite},
	{name: "credits_exhausted", status: 403, wantStatus: 402, wantCode: "insufficient_credits", wantRule: "credits_exhausted", wantAction: Rewrite},
	{name: "trial_expired", status: 403, wantStatus: 402, wantCode: "trial_expired", wantRule: "trial_expired", wantAction: Rewrite},
	{name: "rate_limit_throttled", status: 429, wantStatus: 429, wantCode: "rate_limit_exceeded", wantRule: "rate_limit_exceeded", wantAction: Rewrite},
	{name: "too_many_pending_jobs", status: 429, wantStatus: 429, wantCode: "too_many_pending_jobs", wantRule: "too_many_pending_jobs", wantAction: Rewrite},
	{name: "service_unavailable", status: 503, wantStatus: 503, wantCode: "service_unavailable", wantRule: "service_unavailable", wantAction: Rewrite},
	// The rest of the mapping table.
	{name: "rate_limit_empty", status: 429, wantStatus: 429, wantCode: "rate_limit_exceeded", wantRule: "rate_limit_exceeded", wantAction: Rewrite},
	{name: "serializer_fields", status: 400, wantStatus: 400, wantCode: "validation_error", wantRule: "serializer_fields", wantAction: Rewrite},
	{name: "serializer_non_field", status: 400, wantStatus: 400, wantCode: "validation_error", wantRule: "serializer_fields", wantAction: Rewrite},
	{name: "pydantic_validation", status: 422, wantStatus: 400, wantCode: "validation_error", wantRule: "pydantic_validation", wantAction: Rewrite},
	{name: "unprocessable_plain", status: 422, wantStatus: 400, wantCode: "validation_error", wantRule: "unprocessable", wantAction: Rewrite},
	{name: "internal_error", status: 500, wantStatus: 500, wantCode: "internal_error", wantRule: "internal_error", wantAction: Rewrite},
	{name: "internal_error_empty", status: 500, wantStatus: 500, wantCode: "internal_error", wantRule: "internal_error", wantAction: Rewrite},
	{name: "internal_error_html", status: 500, contentType: "text/html", wantStatus: 500, wantCode: "internal_error", wantRule: "internal_error", wantAction: Rewrite},
	{name: "bad_gateway_html", status: 502, contentType: "text/html", wantStatus: 502, wantCode: "bad_gateway", wantAction: Rewrite},
	{name: "not_found_with_code", status: 404, wantStatus: 404, wantCode: "other", wantAction: Rewrite},
	{name: "not_found_detail", status: 404, wantStatus: 404, wantCode: "not_found", wantAction: Rewrite},
	{name: "method_not_allowed", status: 405, wantStatus: 405, wantCode: "method_not_allowed", wantAction: Rewrite},
	{name: "conflict_message", status: 409, wantStatus: 409, wantCode: "conflict", wantAction: Rewrite},
	{name: "teapot", status: 418, wantStatus: 418, wantCode: "http_418", wantAction: Rewrite},
	{name: "unmapped_403", status: 403, wantStatus: 403, wantCode: "other", wantAction: Rewrite},
	// Hostile and odd bodies.
	{name: "malformed_json", status: 401, wantStatus: 401, wantCode: "invalid_key", wantRule: "invalid_key", wantAction: Rewrite},
	{name: "escapes_in_message", status: 400, wantStatus: 400, wantCode: "bad_request", wantAction: Rewrite},
	{name: "invalid_utf8", status: 409, wantStatus: 409, wantCode: "other", wantAction: Rewrite},
	// Success bodies are wrapped byte for byte.
	{name: "success_object", status: 200, wantStatus: 200, wantAction: Wrap},
	{name: "success_array", status: 202, contentType: "application/vnd.api+json", wantStatus: 202, wantAction: Wrap},
	{name: "success_scalar", status: 201, wantStatus: 201, wantAction: Wrap},
	// Already in envelope form: passed as it is.
	{name: "already_envelope_error", status: 401, wantStatus: 401, wantAction: Pass},
}

func readGolden(t *testing.T, name, kind string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+"."+kind+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newDefault(t testing.TB) *Transformer {
	t.Helper()
	tr, err := New(nil)
	if err != nil {
		t.Fatalf("New(nil): %v", err)
	}
	return tr
}

func TestTransformGolden(t *testing.T) {
	tr := newDefault(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			legacy := readGolden(t, tc.name, "legacy")
			ct := tc.contentType
			if ct == "" {
				ct = "application/json"
			}
			h := http.Header{"Content-Type": {ct}, "Etag": {`"abc"`}, "Content-Md5": {"x"}, "Retry-After": {"30"}}
			status, body, o := tr.Transform(nil, tc.status, h, legacy)
			if status != tc.wantStatus {
				t.Errorf("status: got %d; want %d", status, tc.wantStatus)
			}
			if o.Action != tc.wantAction || o.Code != tc.wantCode || o.Rule != tc.wantRule {
				t.Errorf("outcome: got action=%v code=%q rule=%q; want action=%v code=%q rule=%q",
					o.Action, o.Code, o.Rule, tc.wantAction, tc.wantCode, tc.wantRule)
			}
			if o.Unmapped != (tc.wantAction == Rewrite && tc.wantRule == "") {
				t.Errorf("unmapped: got %v; want %v", o.Unmapped, !o.Unmapped)
			}
			if tc.wantAction == Pass {
				if !bytes.Equal(body, legacy) {
					t.Errorf("passed body changed: got %q; want %q", body, legacy)
				}
				return
			}
			if !json.Valid(body) {
				t.Fatalf("output is not valid JSON: %q", body)
			}
			if got := h.Get("Content-Length"); got != itoa(len(body)) {
				t.Errorf("Content-Length: got %q; want %q", got, itoa(len(body)))
			}
			if got := h.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type: got %q; want %q", got, "application/json")
			}
			if got := h.Get("Etag"); got != `W/"abc"` {
				t.Errorf("ETag: got %q; want %q", got, `W/"abc"`)
			}
			if got := h.Get("Content-Md5"); got != "" {
				t.Errorf("Content-MD5: got %q; want it dropped", got)
			}
			if got := h.Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After: got %q; want %q", got, "30")
			}
			golden := filepath.Join("testdata", tc.name+".envelope.json")
			if *update {
				if err := os.WriteFile(golden, append(body, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := bytes.TrimSuffix(readGolden(t, tc.name, "envelope"), []byte("\n"))
			if !bytes.Equal(body, want) {
				t.Errorf("body:\n got %s\nwant %s", body, want)
			}
		})
	}
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

func TestLegacyCode(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes
	for _, tc := range []struct {
		name, body, want string
	}{
		{"string code", `{"error":"x","code":"teapot_error"}`, "teapot_error"},
		{"numeric code", `{"error":"x","code":42}`, ""},
		{"no code", `{"detail":"x"}`, ""},
		{"not JSON", `<html>`, ""},
		{"array", `[{"code":"x"}]`, ""},
		{"long code cut on a character", `{"code":"` + long + `"}`, strings.Repeat("é", 32)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			got := LegacyCode(body)
			if got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
			for i := range body {
				body[i] = 'X'
			}
			if got != tc.want {
				t.Errorf("after the body changed: got %q; want %q (a view, not a copy)", got, tc.want)
			}
		})
	}
}

// TestGetPathCache checks that reads through a body's path cache find what
// gjson finds, for repeated paths and past the cache's capacity.
func TestGetPathCache(t *testing.T) {
	body := `{"error":"e","code":"c","details":{"a":1,"b":"two","c":[3],"d":null,"e":{"f":true}}}`
	paths := []string{"details.a", "details.b", "details.a", "missing", "details.c.0", "details.d", "details.e.f", "details.b", "code", "missing"}
	lb := legacyBody{json: body, paths: &pathCache{}}
	for i, p := range paths {
		got, want := getPath(&lb, p), gjson.Get(body, p)
		if got.Raw != want.Raw || got.Exists() != want.Exists() || got.Type != want.Type {
			t.Errorf("read %d of %q: got %q (exists %v); want %q (exists %v)", i, p, got.Raw, got.Exists(), want.Raw, want.Exists())
		}
	}
	if lb.paths.n != len(lb.paths.paths) {
		t.Errorf("cached paths: got %d; want %d (the cache full)", lb.paths.n, len(lb.paths.paths))
	}
}
