package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/cli"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
)

// conformanceCases is every example of the legacy spec, then every other
// row of the mapping table, as golden pairs in transform/testdata: the
// legacy status the stub upstream answers with and the status the
// envelope client must get.
var conformanceCases = []struct {
	name        string
	status      int
	contentType string
	wantStatus  int
}{
	{"missing_api_key", 401, "", 401},
	{"invalid_api_key", 401, "", 401},
	{"expired_api_key", 401, "", 401},
	{"missing_scope", 403, "", 403},
	{"key_limit_reached", 403, "", 403},
	{"invalid_payload", 400, "", 400},
	{"insufficient_credits", 403, "", 402},
	{"credits_exhausted", 403, "", 402},
	{"trial_expired", 403, "", 402},
	{"rate_limit_throttled", 429, "", 429},
	{"too_many_pending_jobs", 429, "", 429},
	{"service_unavailable", 503, "", 503},
	{"rate_limit_empty", 429, "", 429},
	{"serializer_fields", 400, "", 400},
	{"serializer_non_field", 400, "", 400},
	{"pydantic_validation", 422, "", 400},
	{"unprocessable_plain", 422, "", 400},
	{"internal_error", 500, "", 500},
	{"internal_error_empty", 500, "", 500},
	{"internal_error_html", 500, "text/html", 500},
	{"bad_gateway_html", 502, "text/html", 502},
	{"not_found_with_code", 404, "", 404},
	{"not_found_detail", 404, "", 404},
	{"method_not_allowed", 405, "", 405},
	{"conflict_message", 409, "", 409},
	{"teapot", 418, "", 418},
	{"unmapped_403", 403, "", 403},
	{"malformed_json", 401, "", 401},
	{"escapes_in_message", 400, "", 400},
	{"invalid_utf8", 409, "", 409},
	{"success_object", 200, "", 200},
	{"success_array", 202, "application/vnd.api+json", 202},
	{"success_scalar", 201, "", 201},
}

// TestConformance runs the product as its binary does (main's command,
// a config file, the serve command's wiring) in front of a stub legacy
// upstream, and sends every golden legacy response through it over real
// listeners: a listed envelope client gets the golden envelope, and a
// legacy client the legacy bytes.
func TestConformance(t *testing.T) {
	const envelopeKey, legacyKey = "conformance-envelope", "conformance-legacy"
	testdata := filepath.Join("transform", "testdata")
	bodies := map[string][]byte{}
	for _, tc := range conformanceCases {
		b, err := os.ReadFile(filepath.Join(testdata, tc.name+".legacy.json"))
		if err != nil {
			t.Fatal(err)
		}
		bodies[tc.name] = b
	}
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, tc := range conformanceCases {
			if r.URL.Path == "/"+tc.name {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				w.Write(bodies[tc.name])
				return
			}
		}
		http.NotFound(w, r)
	}))
	defer upstream.Close()

	proxyURL := serve(t, fmt.Sprintf(`listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
upstream: {url: %q}
state_dir: ""
log: {level: error, access_log: false}
routing:
  clients:
    - {name: env, keys_sha256: [%q], mode: envelope}
    - {name: leg, keys_sha256: [%q], mode: legacy}
`, upstream.URL, hexSHA256(envelopeKey), hexSHA256(legacyKey)))

	get := func(t *testing.T, path, key string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", proxyURL+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, body := await.Do(t, req)
		return resp.StatusCode, body
	}
	for _, tc := range conformanceCases {
		t.Run(tc.name, func(t *testing.T) {
			want, err := os.ReadFile(filepath.Join(testdata, tc.name+".envelope.json"))
			if err != nil {
				t.Fatal(err)
			}
			want = bytes.TrimSuffix(want, []byte("\n"))
			status, body := get(t, "/"+tc.name, envelopeKey)
			if status != tc.wantStatus || !bytes.Equal(body, want) {
				t.Errorf("envelope client: got %d %q; want %d %q", status, body, tc.wantStatus, want)
			}
			status, body = get(t, "/"+tc.name, legacyKey)
			if status != tc.status || !bytes.Equal(body, bodies[tc.name]) {
				t.Errorf("legacy client: got %d %q; want %d %q", status, body, tc.status, bodies[tc.name])
			}
		})
	}
}

// serve runs the binary's command with the config doc, as `envelope-proxy
// -config FILE` does, until the test ends, and returns the client
// listener's URL.
func serve(t *testing.T, doc string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	signals := make(chan os.Signal, 1)
	ready := make(chan string, 1)
	exited := make(chan int, 1)
	env := cli.DefaultEnv(defaultConfig)
	env.Stderr = io.Discard
	env.Signals = signals
	env.Ready = func(client, _ string) { ready <- client }
	go func() { exited <- cli.Run([]string{"-config", path}, env) }()
	select {
	case addr := <-ready:
		t.Cleanup(func() {
			signals <- syscall.SIGTERM
			if code := await.Receive(t, "the proxy's exit after SIGTERM", exited); code != 0 {
				t.Errorf("exit code: got %d; want 0", code)
			}
		})
		return "http://" + addr
	case code := <-exited:
		t.Fatalf("the proxy exited with %d before serving", code)
	case <-time.After(await.Patience):
		t.Fatalf("the proxy was not serving after %v", await.Patience)
	}
	return ""
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
