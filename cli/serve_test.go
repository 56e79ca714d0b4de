package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/gcfloor"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/lockedbuf"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const (
	acmeKey  = "sk_live_acme_0123456789"
	otherKey = "sk_live_other_9876543210"
)

func sum(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

// instance is a running "envelope-proxy serve" with its config file.
type instance struct {
	t       testing.TB
	path    string
	client  string // http://addr
	admin   string
	signals chan os.Signal
	done    chan struct{} // closed when Serve has returned
	code    int           // Serve's exit code, once done is closed
	stderr  *lockedbuf.Buffer
}

// testClient is one client of a test config: its name, key and mode.
type testClient struct{ name, key, mode string }

// clientsYAML is a test config listening on free loopback ports in front
// of upstream, with clients, and extra after them (top-level keys).
func clientsYAML(upstream string, clients []testClient, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: \"127.0.0.1:0\"\nadmin_listen: \"127.0.0.1:0\"\nupstream: {url: %q, timeout: 5s}\nserver: {shutdown_timeout: 10s}\nrouting:\n  clients:\n", upstream)
	for _, c := range clients {
		fmt.Fprintf(&b, "    - {name: %s, keys_sha256: [%q], mode: %s}\n", c.name, sum(c.key), c.mode)
	}
	b.WriteString(extra)
	return b.String()
}

// configYAML is a test config in front of upstream, with acme in mode.
func configYAML(upstream, mode string, extra string) string {
	return clientsYAML(upstream, []testClient{{"acme", acmeKey, mode}}, "max_body_bytes: 1024\nmigrated_prefixes: [/v2/]\n"+extra)
}

// startServe runs Serve in the background on a config file.
func startServe(t testing.TB, yaml string) *instance {
	t.Helper()
	return startServeAt(t, filepath.Join(t.TempDir(), "config.yaml"), yaml)
}

// startServeAt runs Serve in the background on the config file at path,
// written with yaml; its state_dir is relative to path's directory.
func startServeAt(t testing.TB, path, yaml string) *instance {
	t.Helper()
	in := &instance{t: t, path: path, signals: make(chan os.Signal, 4), done: make(chan struct{}), stderr: &lockedbuf.Buffer{}}
	if err := os.WriteFile(in.path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	// The cleanup is registered before the wait for ready, so that a serve
	// that never becomes ready is stopped too.
	t.Cleanup(func() {
		select {
		case <-in.done:
		default:
			in.signals <- syscall.SIGTERM
			select {
			case <-in.done:
			case <-time.After(await.Patience):
				t.Errorf("serve did not stop within %v of SIGTERM: %s", await.Patience, in.stderr.String())
			}
		}
	})
	env := Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: in.stderr, Signals: in.signals,
		Ready: func(c, a string) { in.client, in.admin = "http://"+c, "http://"+a; close(ready) }}
	go func() {
		defer close(in.done)
		in.code = Serve([]string{"-config", in.path}, env)
	}()
	select {
	case <-ready:
	case <-in.done:
		t.Fatalf("serve exited with %d: %s", in.code, in.stderr.String())
	case <-time.After(await.Patience):
		t.Fatalf("serve not ready after %v: %s", await.Patience, in.stderr.String())
	}
	return in
}

// write replaces the config file atomically (a new file renamed over the
// old), as Kubernetes and careful editors do, so that the watcher never
// reads it half-written.
func (in *instance) write(yaml string) {
	in.t.Helper()
	tmp := in.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o600); err != nil {
		in.t.Fatal(err)
	}
	if err := os.Rename(tmp, in.path); err != nil {
		in.t.Fatal(err)
	}
}

func (in *instance) stop() int {
	in.t.Helper()
	in.signals <- syscall.SIGTERM
	await.Receive(in.t, "serve to stop", in.done)
	return in.code
}

func (in *instance) get(path, key string, header ...string) (int, string) {
	in.t.Helper()
	req, _ := http.NewRequest("GET", in.client+path, nil)
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, b := await.Do(in.t, req)
	return resp.StatusCode, string(b)
}

// metrics scrapes the admin listener.
func (in *instance) metrics() map[string]*dto.MetricFamily {
	in.t.Helper()
	resp, err := await.Client.Get(in.admin + "/metrics")
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		in.t.Fatal(err)
	}
	return mf
}

// counter returns the value of the series of name with exactly labels.
func counter(mf map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := mf[name]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		if m.Counter != nil {
			return m.Counter.GetValue()
		}
		if m.Gauge != nil {
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// serveLegacy runs Serve on configYAML(mode, extra) in front of a
// legacyUpstream that lives until the test ends, and returns the instance
// and the upstream's URL, for the configs the test reloads.
func serveLegacy(t *testing.T, mode, extra string) (*instance, string) {
	t.Helper()
	up := httptest.NewServer(legacyUpstream())
	t.Cleanup(up.Close)
	return startServe(t, configYAML(up.URL, mode, extra)), up.URL
}

// legacyUpstream answers by path, like the legacy API would.
func legacyUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/credits":
			w.WriteHeader(403)
			io.WriteString(w, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`)
		case "/teapot":
			w.WriteHeader(418)
			io.WriteString(w, `{"error":"short and stout"}`)
		case "/oversize":
			w.WriteHeader(500)
			io.WriteString(w, `{"error":"`+strings.Repeat("x", 2048)+`"}`)
		case "/ndjson":
			io.WriteString(w, "{}\n{}\n")
		case "/v2/ok":
			io.WriteString(w, `{"data":1,"success":true,"message":"OK"}`)
		case "/compress":
			w.Header().Set("Content-Encoding", "compress")
			io.WriteString(w, "\x1f\x9d")
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	})
}

func TestMetricsMoveForEachKind(t *testing.T) {
	in, _ := serveLegacy(t, "envelope", "")
	for _, p := range []string{"/credits", "/teapot", "/oversize", "/ndjson", "/v2/ok", "/compress", "/ok"} {
		in.get(p, acmeKey)
	}
	in.get("/credits", otherKey) // legacy: no rewrite
	// An exchange is recorded just after its response is sent: wait until
	// all eight are.
	var mf map[string]*dto.MetricFamily
	await.Until(t, "8 requests in the metrics", func() bool {
		mf = in.metrics()
		total := 0.0
		for _, m := range mf["envelope_proxy_requests_total"].GetMetric() {
			total += m.GetCounter().GetValue()
		}
		return total == 8
	})
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"envelope_proxy_rewrites_total", map[string]string{"legacy_status": "403", "legacy_code": "insufficient_credits", "status": "402", "code": "insufficient_credits"}, 1},
		{"envelope_proxy_rewrites_total", map[string]string{"legacy_status": "418", "legacy_code": "", "status": "418", "code": "http_418"}, 1},
		{"envelope_proxy_rewrites_total", map[string]string{"legacy_status": "200", "legacy_code": "", "status": "200", "code": ""}, 1},
		{"envelope_proxy_unmapped_total", map[string]string{"client": "acme", "legacy_status": "418"}, 1},
		{"envelope_proxy_client_mode", map[string]string{"client": "acme", "mode": "envelope"}, 1},
		{"envelope_proxy_client_mode", map[string]string{"client": "default", "mode": "legacy"}, 1},
		{"envelope_proxy_passthrough_total", map[string]string{"reason": "oversize"}, 1},
		{"envelope_proxy_passthrough_total", map[string]string{"reason": "not_json"}, 1},
		{"envelope_proxy_passthrough_total", map[string]string{"reason": "migrated"}, 1},
		{"envelope_proxy_passthrough_total", map[string]string{"reason": "encoding"}, 1},
		{"envelope_proxy_requests_total", map[string]string{"client": "acme", "mode": "envelope", "code_class": "4xx"}, 2},
		{"envelope_proxy_requests_total", map[string]string{"client": "default", "mode": "legacy", "code_class": "4xx"}, 1},
		{"envelope_proxy_config_reloads_total", map[string]string{"result": "failure"}, 0},
		{"envelope_proxy_build_info", map[string]string{"version": Version(), "goversion": runtimeVersion()}, 1},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.name, tc.labels), func(t *testing.T) {
			if got := counter(mf, tc.name, tc.labels); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
	for _, name := range []string{"envelope_proxy_request_duration_seconds", "envelope_proxy_upstream_duration_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if mf[name] == nil {
			t.Errorf("metric %s is missing", name)
		}
	}
}

func TestUpstreamErrorMetrics(t *testing.T) {
	in := startServe(t, configYAML(loopback.RefusedURL(t), "envelope", ""))
	status, body := in.get("/x", acmeKey)
	if status != 502 || !strings.Contains(body, "bad_gateway") {
		t.Errorf("got %d %q; want a 502 envelope", status, body)
	}
	if got := counter(in.metrics(), "envelope_proxy_upstream_errors_total", map[string]string{"client": "acme", "kind": "refused"}); got != 1 {
		t.Errorf("refused: got %v; want 1", got)
	}
	// The upstream is down, so the proxy is not ready.
	resp, _ := await.Get(t, in.admin+"/readyz")
	if resp.StatusCode != 503 {
		t.Errorf("/readyz with the upstream down: got %d; want 503", resp.StatusCode)
	}
}

func TestReload(t *testing.T) {
	in, upURL := serveLegacy(t, "legacy", "")
	reloads := func(result string) float64 {
		return counter(in.metrics(), "envelope_proxy_config_reloads_total", map[string]string{"result": result})
	}
	if status, _ := in.get("/credits", acmeKey); status != 403 {
		t.Fatalf("before reload: got %d; want 403 (legacy)", status)
	}

	t.Run("file change, valid", func(t *testing.T) {
		in.write(configYAML(upURL, "envelope", ""))
		await.Until(t, "the reload", func() bool { return reloads("success") == 1 })
		if status, body := in.get("/credits", acmeKey); status != 402 {
			t.Errorf("after reload: got %d %q; want 402 (envelope)", status, body)
		}
	})
	t.Run("file change, invalid", func(t *testing.T) {
		in.write(configYAML(upURL, "envlope", ""))
		await.Until(t, "the rejected reload", func() bool { return reloads("failure") == 1 })
		if status, _ := in.get("/credits", acmeKey); status != 402 {
			t.Errorf("after a rejected reload: got %d; want 402 (the old config)", status)
		}
		if log := in.stderr.String(); !strings.Contains(log, `"field":"routing.clients[0].mode"`) {
			t.Errorf("the log does not name the bad field: %s", log)
		}
	})
	t.Run("SIGHUP, valid", func(t *testing.T) {
		in.write(configYAML(upURL, "legacy", ""))
		await.Until(t, "the file reload", func() bool { return reloads("success") == 2 })
		in.signals <- syscall.SIGHUP
		await.Until(t, "the SIGHUP reload", func() bool { return reloads("success") == 3 })
		if status, _ := in.get("/credits", acmeKey); status != 403 {
			t.Errorf("got %d; want 403 (legacy again)", status)
		}
	})
	t.Run("empty file is not applied", func(t *testing.T) {
		before := reloads("failure")
		os.WriteFile(in.path, nil, 0o600)
		in.signals <- syscall.SIGHUP
		await.Until(t, "the rejected empty reload", func() bool { return reloads("failure") > before })
		if status, _ := in.get("/credits", acmeKey); status != 403 {
			t.Errorf("got %d; want 403 (the config in force, not the defaults)", status)
		}
	})
	t.Run("SIGHUP, unreadable", func(t *testing.T) {
		os.Remove(in.path)
		before := reloads("failure")
		in.signals <- syscall.SIGHUP
		// The watcher may still count the empty file above as a failure;
		// only SIGHUP's reload logs the missing file (the watcher waits
		// for the next event on a file mid-swap).
		await.Until(t, "the failed SIGHUP reload", func() bool {
			return reloads("failure") > before && strings.Contains(in.stderr.String(), "no such file or directory")
		})
		if status, _ := in.get("/credits", acmeKey); status != 403 {
			t.Errorf("got %d; want 403 (the config in force)", status)
		}
	})
}

// TestGCFloorFollowsConfig checks that serve applies gc_heap_floor_bytes
// at start and on reload, and removes the floor when it stops.
func TestGCFloorFollowsConfig(t *testing.T) {
	base := gcfloor.Percent()
	in, upURL := serveLegacy(t, "legacy", "gc_heap_floor_bytes: 268435456\n")
	if got := gcfloor.Percent(); got <= base {
		t.Errorf("GC percent with a 256 MiB floor: got %d; want above %d", got, base)
	}
	// The file watcher would reload too; SIGHUP does it without its debounce.
	reload := func(floor string) {
		in.write(configYAML(upURL, "legacy", "gc_heap_floor_bytes: "+floor+"\n"))
		in.signals <- syscall.SIGHUP
	}
	reload("0")
	await.Until(t, "the floor removed", func() bool { return gcfloor.Percent() == base })
	reload("268435456")
	await.Until(t, "the floor back", func() bool { return gcfloor.Percent() > base })
	if code := in.stop(); code != 0 {
		t.Fatalf("exit code: got %d; want 0", code)
	}
	if got := gcfloor.Percent(); got != base {
		t.Errorf("GC percent after serve stopped: got %d; want %d", got, base)
	}
}

// TestReloadUnderLoad flips a client between legacy and envelope while
// requests run: every single request must succeed and be well-formed in
// one format or the other.
func TestReloadUnderLoad(t *testing.T) {
	in, upURL := serveLegacy(t, "legacy", "")
	const workers, perWorker = 8, 250
	var wg sync.WaitGroup
	errs := make(chan string, workers*perWorker)
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				req, _ := http.NewRequest("GET", in.client+"/credits", nil)
				req.Header.Set("X-API-Key", acmeKey)
				resp, err := await.Client.Do(req)
				if err != nil {
					errs <- err.Error()
					continue
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				legacy := resp.StatusCode == 403 && string(b) == `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":50,"required":120}}`
				envelope := resp.StatusCode == 402 && strings.HasPrefix(string(b), `{"data":null,"success":false,"message":"Insufficient credits. Required: 120, available: 50"`)
				if err != nil || !(legacy || envelope) {
					errs <- fmt.Sprintf("%d %q %v", resp.StatusCode, b, err)
				}
			}
		}()
	}
	flips := 0
	go func() {
		defer close(stop)
		for i := 0; i < 20; i++ {
			mode := []string{"envelope", "legacy"}[i%2]
			in.write(configYAML(upURL, mode, ""))
			in.signals <- syscall.SIGHUP
			flips++
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Wait()
	await.Receive(t, "the reloads to end", stop)
	close(errs)
	n := 0
	for e := range errs {
		if n < 5 {
			t.Errorf("failed request: %s", e)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d requests failed during %d reloads", n, workers*perWorker, flips)
	}
	if got := counter(in.metrics(), "envelope_proxy_config_reloads_total", map[string]string{"result": "failure"}); got != 0 {
		t.Errorf("failed reloads: got %v; want 0", got)
	}
}

// TestGracefulShutdown sends SIGTERM while a slow request is in flight: the
// proxy turns unready, lets the request complete, then exits 0.
func TestGracefulShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(200)
		io.WriteString(w, `{"part":`)
		w.(http.Flusher).Flush()
		close(arrived)
		<-release
		io.WriteString(w, `1}`)
	}))
	defer up.Close()
	// Deferred after up.Close, so run before it: if the test fails first,
	// the handler is released and Close does not wait for it forever.
	defer releaseOnce()
	in := startServe(t, configYAML(up.URL, "legacy", ""))
	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := await.Client.Get(in.client + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- result{resp.StatusCode, string(b), err}
	}()
	await.Receive(t, "the slow request at the upstream", arrived)
	in.signals <- syscall.SIGTERM
	await.Until(t, "/readyz to turn unready", func() bool {
		resp, err := await.Client.Get(in.admin + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 503
	})
	select {
	case <-in.done:
		t.Fatalf("exited with %d while a request was in flight", in.code)
	default:
	}
	releaseOnce()
	r := await.Receive(t, "the in-flight response", got)
	if r.err != nil || r.status != 200 || r.body != `{"part":1}` {
		t.Errorf("in-flight request: got %d %q %v; want 200 {\"part\":1}", r.status, r.body, r.err)
	}
	await.Receive(t, "serve to exit", in.done)
	if in.code != 0 {
		t.Errorf("exit code: got %d; want 0", in.code)
	}
}

// TestAccessLogHasNoSecrets checks the access log names clients without
// ever writing a key, an Authorization or Cookie value, or a query string.
func TestAccessLogHasNoSecrets(t *testing.T) {
	in, _ := serveLegacy(t, "envelope", "")
	in.get("/credits?api_key="+acmeKey, acmeKey, "Authorization", "Bearer tok_secret_1", "Cookie", "session=cookie_secret_2")
	in.get("/ok", otherKey)
	in.get("/ok", "")
	if code := in.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	log := in.stderr.String()
	for _, secret := range []string{acmeKey, otherKey, "tok_secret_1", "cookie_secret_2", "api_key"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log contains %q", secret)
		}
	}
	for _, want := range []string{
		`"client":"acme","key_id":"` + sum(acmeKey)[:8] + `","mode":"envelope","upstream_status":403,"status":402`,
		`"client":"default","key_id":"` + sum(otherKey)[:8] + `"`,
		`"path":"/credits"`, `"legacy_code":"insufficient_credits","code":"insufficient_credits"`, `"bytes_out":`, `"duration":`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the access log lacks %s:\n%s", want, log)
		}
	}
}

func TestAdminEndpoints(t *testing.T) {
	in, _ := serveLegacy(t, "envelope", "")
	tests := []struct {
		path       string
		wantStatus int
		want       string
		notWant    string
	}{
		{"/healthz", 200, "ok", ""},
		{"/readyz", 200, "ready", ""},
		{"/config", 200, "- " + sum(acmeKey)[:8] + "\n", sum(acmeKey)},
		{"/metrics", 200, "envelope_proxy_build_info", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, b := await.Get(t, in.admin+tc.path)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(b), tc.want) {
				t.Errorf("got %d %q; want %d containing %q", resp.StatusCode, b, tc.wantStatus, tc.want)
			}
			if tc.notWant != "" && strings.Contains(string(b), tc.notWant) {
				t.Errorf("%s shows a full key digest", tc.path)
			}
		})
	}
	// The admin endpoints are not on the client listener.
	if status, body := in.get("/metrics", ""); strings.Contains(body, "envelope_proxy") {
		t.Errorf("client listener served metrics: %d", status)
	}
}

func runtimeVersion() string { return runtime.Version() }
