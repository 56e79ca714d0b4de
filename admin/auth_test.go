package admin

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/prometheus/client_golang/prometheus"
)

const testToken = "admin-token-0123456789"

// serve serves the admin listener with cfg in force, a registry of its own
// and handlers, until the test ends, and returns its URL.
func serve(t *testing.T, cfg *config.Config, handlers map[string]http.Handler) string {
	srv := httptest.NewServer(New(Options{Gatherer: prometheus.NewRegistry(), Config: func() *config.Config { return cfg }, Handlers: handlers}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestToken(t *testing.T) {
	digest := sha256.Sum256([]byte(testToken))
	cfg := config.Default()
	cfg.Upstream.URL = "http://127.0.0.1:1" // /readyz answers 503, not 401
	cfg.Admin.TokenSHA256 = hex.EncodeToString(digest[:])
	url := serve(t, cfg, nil)
	tests := []struct {
		name, path string
		auth       func(*http.Request)
		want       int
	}{
		{"no token", "/metrics", func(*http.Request) {}, http.StatusUnauthorized},
		{"bearer", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testToken) }, http.StatusOK},
		{"bearer, scheme in lower case", "/config", func(r *http.Request) { r.Header.Set("Authorization", "bearer "+testToken) }, http.StatusOK},
		{"basic password", "/config", func(r *http.Request) { r.SetBasicAuth("anyone", testToken) }, http.StatusOK},
		{"wrong bearer", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, http.StatusUnauthorized},
		{"wrong basic", "/metrics", func(r *http.Request) { r.SetBasicAuth(testToken, "nope") }, http.StatusUnauthorized},
		{"digest as token", "/metrics", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+cfg.Admin.TokenSHA256) }, http.StatusUnauthorized},
		{"pprof needs it too", "/debug/pprof/", func(*http.Request) {}, http.StatusUnauthorized},
		{"healthz is open", "/healthz", func(*http.Request) {}, http.StatusOK},
		{"readyz is open", "/readyz", func(*http.Request) {}, http.StatusServiceUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+tc.path, nil)
			tc.auth(req)
			resp, _ := await.Do(t, req)
			if resp.StatusCode != tc.want {
				t.Errorf("got %d; want %d", resp.StatusCode, tc.want)
			}
			if resp.StatusCode == http.StatusUnauthorized && len(resp.Header.Values("WWW-Authenticate")) != 2 {
				t.Errorf("WWW-Authenticate: got %q; want Basic and Bearer challenges", resp.Header.Values("WWW-Authenticate"))
			}
		})
	}
}

func TestNoTokenConfigured(t *testing.T) {
	resp, _ := await.Get(t, serve(t, config.Default(), nil)+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Errorf("got %d; want 200 without admin.token_sha256", resp.StatusCode)
	}
}

func TestLoopbackAnswersOnlyLocalNames(t *testing.T) {
	cfg := config.Default()
	url := serve(t, cfg, nil)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // the test server's 127.0.0.1:port
		{"localhost:9901", http.StatusOK},
		{"LOCALHOST", http.StatusOK},
		{"[::1]:9901", http.StatusOK},
		{"10.1.2.3:9901", http.StatusOK},
		{"evil.example:9901", http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.host, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+"/metrics", nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, _ := await.Do(t, req)
			if resp.StatusCode != tc.want {
				t.Errorf("got %d; want %d", resp.StatusCode, tc.want)
			}
		})
	}
	t.Run("with a token the name does not matter", func(t *testing.T) {
		digest := sha256.Sum256([]byte(testToken))
		withToken := *cfg
		withToken.Admin.TokenSHA256 = hex.EncodeToString(digest[:])
		req, _ := http.NewRequest("GET", serve(t, &withToken, nil)+"/metrics", nil)
		req.Host = "proxy.internal:9901"
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, _ := await.Do(t, req)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("got %d; want 200", resp.StatusCode)
		}
	})
}

// TestNosniffEverywhere checks that every admin response, the handlers it
// is given and its refusals included, tells browsers not to sniff: the
// report and the API hold text that came from traffic.
func TestNosniffEverywhere(t *testing.T) {
	cfg := config.Default()
	cfg.Admin.TokenSHA256 = ""
	report := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"groups":[]}`))
	})
	url := serve(t, cfg, map[string]http.Handler{"/shadow/report": report})
	for _, path := range []string{"/shadow/report", "/healthz", "/metrics", "/config", "/nowhere"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := await.Get(t, url+path)
			if g := resp.Header.Get("X-Content-Type-Options"); g != "nosniff" {
				t.Errorf("X-Content-Type-Options: got %q; want %q", g, "nosniff")
			}
		})
	}
}
