package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/cli"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/lockedbuf"
	"github.com/envelope-proxy/envelope-proxy/internal/pgserver"
)

// The fleet tests' clients: acme gets the envelope, watcher is in shadow
// mode.
const (
	acmeKey    = "fleet-acme-key"
	watcherKey = "fleet-watcher-key"
)

// legacyAPI is the fleet tests' upstream: a success, the credits error the
// rules rewrite, and an error no rule maps.
func legacyAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/ok":
			io.WriteString(w, `{"id":1}`)
		case "/v1/credits":
			w.WriteHeader(403)
			io.WriteString(w, `{"error":"Insufficient credits","code":"insufficient_credits","details":{"credits":5,"required":9}}`)
		case "/v1/teapot":
			w.WriteHeader(418)
			io.WriteString(w, `{"error":"I am a teapot","code":"teapot"}`)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"Not found","code":"not_found"}`)
		}
	})
}

// replica is an envelope-proxy process of the fleet under test.
type replica struct {
	name          string
	cmd           *exec.Cmd
	client, admin string
	stderr        *lockedbuf.Buffer
	exited        chan struct{}
}

// startReplica runs this test binary as envelope-proxy (see TestMain) on a
// config sharing the evidence database at stateURL, and returns once it
// serves. It is stopped with SIGTERM when the test ends, unless it was
// killed.
func startReplica(t *testing.T, name, stateURL, upstream string) *replica {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := fmt.Sprintf(`listen: "127.0.0.1:0"
admin_listen: "127.0.0.1:0"
upstream: {url: %q}
state_url: %q
replica: %s
log: {level: info, access_log: false}
readiness: {min_requests: 5}
server: {shutdown_timeout: 5s}
routing:
  clients:
    - {name: acme, keys_sha256: [%q], mode: envelope}
    - {name: watcher, keys_sha256: [%q], mode: shadow}
`, upstream, stateURL, name, hexSHA256(acmeKey), hexSHA256(watcherKey))
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &replica{name: name, stderr: &lockedbuf.Buffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(os.Args[0], "-config", path)
	r.cmd.Env = append(os.Environ(), asBinary+"=1")
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
			return
		default:
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		await.Receive(t, "replica "+name+" to exit after SIGTERM", r.exited)
		if t.Failed() {
			t.Logf("replica %s's log:\n%s", name, r.stderr.String())
		}
	})
	await.Until(t, "replica "+name+" to serve", func() bool {
		select {
		case <-r.exited:
			t.Fatalf("replica %s exited before serving:\n%s", name, r.stderr.String())
		default:
		}
		sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
		for sc.Scan() {
			var line struct{ Msg, Listen, AdminListen string }
			var raw map[string]any
			if json.Unmarshal(sc.Bytes(), &raw) == nil && raw["msg"] == "serving" {
				line.Listen, _ = raw["listen"].(string)
				line.AdminListen, _ = raw["admin_listen"].(string)
				r.client, r.admin = "http://"+line.Listen, "http://"+line.AdminListen
				return true
			}
		}
		return false
	})
	return r
}

// kill ends the replica with SIGKILL: no clean shutdown, no last write.
func (r *replica) kill(t *testing.T) {
	t.Helper()
	r.cmd.Process.Signal(syscall.SIGKILL)
	await.Receive(t, "replica "+r.name+" to die", r.exited)
}

// send sends n requests for path with key to the replica, and fails the
// test on any that does not get an answer from the proxy.
func (r *replica) send(t *testing.T, n int, path, key string) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest("GET", r.client+path, nil)
		req.Header.Set("X-API-Key", key)
		resp, err := await.Client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.name, path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s: got %d; want the upstream's answer", r.name, path, resp.StatusCode)
		}
	}
}

// overview is the replica's GET /api/clients.
func (r *replica) overview(t *testing.T) evidence.Overview {
	t.Helper()
	var ov evidence.Overview
	r.getJSON(t, "/api/clients", &ov)
	return ov
}

func (r *replica) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := await.Client.Get(r.admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", r.name, path, err)
	}
}

// summaryOf returns client's row of ov.
func summaryOf(ov evidence.Overview, client string) evidence.ClientSummary {
	for _, c := range ov.Clients {
		if c.Name == client {
			return c
		}
	}
	return evidence.ClientSummary{}
}

// ready runs `envelope-proxy ready` against the replica, as a rollout
// pipeline would, and returns its exit code and output.
func (r *replica) ready(client string) (int, string) {
	var out bytes.Buffer
	code := cli.Run([]string{"ready", "-admin", r.admin, "-client", client}, cli.Env{Stdout: &out, Stderr: &out})
	return code, out.String()
}

// startFleet starts a PostgreSQL server with database db, a legacyAPI
// upstream and a replica of each name over them, all started at the same
// moment, and returns the server (for the tests that take it away) and the
// replicas, in the order of names.
func startFleet(t *testing.T, db string, names ...string) (*pgserver.Server, []*replica) {
	t.Helper()
	pg := pgserver.Start(t)
	url := pg.CreateDatabase(t, db)
	up := httptest.NewServer(legacyAPI())
	t.Cleanup(up.Close)
	reps := make([]*replica, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { reps[i] = startReplica(t, name, url, up.URL) })
	}
	wg.Wait()
	// A replica that failed to start ended only its own goroutine.
	if t.Failed() {
		t.FailNow()
	}
	return pg, reps
}

// TestFleetAgrees runs three replicas against one database, started at the
// same moment on the empty database, and sends each different traffic for
// the same clients: every replica must then give the same counts, samples,
// verdicts and `ready` answers, those of all the traffic together.
func TestFleetAgrees(t *testing.T) {
	_, reps := startFleet(t, "agrees", "r1", "r2", "r3")
	reps[0].send(t, 10, "/v1/ok", acmeKey)
	reps[0].send(t, 3, "/v1/teapot", acmeKey)
	reps[1].send(t, 20, "/v1/credits", acmeKey)
	reps[2].send(t, 5, "/v1/ok", acmeKey)
	reps[2].send(t, 4, "/v1/ok", watcherKey)
	const acmeTotal, watcherTotal = 38, 4
	for _, r := range reps {
		await.Until(t, r.name+" to count the fleet's traffic", func() bool {
			ov := r.overview(t)
			return summaryOf(ov, "acme").Requests == acmeTotal && summaryOf(ov, "watcher").Requests == watcherTotal
		})
	}
	var first []byte
	for i, r := range reps {
		ov := r.overview(t)
		if ov.State.Error != "" || !ov.State.Persistent || ov.State.Kind != "postgres" {
			t.Errorf("%s: state %+v; want postgres, written, no error", r.name, ov.State)
		}
		if len(ov.Replicas) != 3 || ov.FleetWarning != "" {
			t.Errorf("%s: replicas %+v, warning %q; want the three, no warning", r.name, ov.Replicas, ov.FleetWarning)
		}
		acme := summaryOf(ov, "acme")
		acme.Share = 0 // the share of the window's total, equal on all
		row, _ := json.Marshal(struct {
			Acme    evidence.ClientSummary
			Watcher evidence.ClientSummary
		}{acme, summaryOf(ov, "watcher")})
		if i == 0 {
			first = row
		} else if !bytes.Equal(row, first) {
			t.Errorf("%s's rows differ from %s's:\n got %s\nwant %s", r.name, reps[0].name, row, first)
		}
		if acme.Rewritten != 23 || acme.Wrapped != 15 || acme.Unmapped != 3 {
			t.Errorf("%s: acme rewritten %d, wrapped %d, unmapped %d; want 23, 15, 3", r.name, acme.Rewritten, acme.Wrapped, acme.Unmapped)
		}
		var d evidence.ClientDetail
		r.getJSON(t, "/api/clients/acme", &d)
		if len(d.UnmappedCodes) != 1 || d.UnmappedCodes[0].Code != "teapot" || d.UnmappedCodes[0].Sample == "" {
			t.Errorf("%s: unmapped codes %+v; want teapot with r1's sample", r.name, d.UnmappedCodes)
		}
		var only evidence.ClientDetail
		r.getJSON(t, "/api/clients/acme?replica=r2", &only)
		if only.Requests != 20 || only.Replica != "r2" {
			t.Errorf("%s: acme on r2 alone: %d requests (%q); want 20", r.name, only.Requests, only.Replica)
		}
		code, out := r.ready("acme")
		if code != 1 {
			t.Errorf("%s: ready acme exited %d; want 1 (not ready: unmapped teapot): %s", r.name, code, out)
		}
	}
}

// TestFleetKilledReplica kills a replica with SIGKILL in the middle of its
// traffic: the others keep everything it wrote before its last batch, and
// show it silent while they write.
func TestFleetKilledReplica(t *testing.T) {
	_, reps := startFleet(t, "killed", "r1", "r2")
	r1, r2 := reps[0], reps[1]
	r2.send(t, 10, "/v1/ok", acmeKey)
	await.Until(t, "r1 to see r2's first 10 requests", func() bool { return summaryOf(r1.overview(t), "acme").Requests == 10 })
	r2.send(t, 5, "/v1/ok", acmeKey)
	r2.kill(t)
	r1.send(t, 1, "/v1/ok", acmeKey)
	await.Until(t, "r1 to show r2 silent", func() bool {
		ov := r1.overview(t)
		for _, rs := range ov.Replicas {
			if rs.Name == "r2" && rs.State == evidence.ReplicaSilent {
				return ov.FleetWarning != "" && strings.Contains(ov.FleetWarning, "r2")
			}
		}
		return false
	})
	// r2 wrote every 5 seconds: at most the batch it had not yet written
	// (the last 5 requests) is lost.
	if got := summaryOf(r1.overview(t), "acme").Requests; got < 11 || got > 16 {
		t.Errorf("acme's requests on r1 after r2 was killed: got %d; want 11 to 16", got)
	}
}

// TestFleetDatabaseOutage stops the database while replicas serve: no
// request fails, the page and /readyz say where the evidence is, and once
// the database is back nothing counted meanwhile is lost.
func TestFleetDatabaseOutage(t *testing.T) {
	pg, reps := startFleet(t, "outage", "r1", "r2")
	r1, r2 := reps[0], reps[1]
	r1.send(t, 10, "/v1/ok", acmeKey)
	await.Until(t, "r2 to see r1's requests", func() bool { return summaryOf(r2.overview(t), "acme").Requests == 10 })
	pg.Stop(t)
	r1.send(t, 7, "/v1/credits", acmeKey)
	r2.send(t, 3, "/v1/ok", acmeKey)
	await.Until(t, "r1 to report the database gone", func() bool { return r1.overview(t).State.Error != "" })
	resp, body := await.Get(t, r1.admin+"/readyz")
	if resp.StatusCode != 200 || !strings.Contains(string(body), "evidence:") || !strings.Contains(string(body), "in memory") {
		t.Errorf("/readyz with the database gone: got %d %q; want 200, saying the evidence is in memory", resp.StatusCode, body)
	}
	if got := summaryOf(r1.overview(t), "acme").Requests; got < 17 {
		t.Errorf("r1's own count during the outage: got %d; want at least its 17", got)
	}
	pg.Restart(t)
	for _, r := range []*replica{r1, r2} {
		await.Until(t, r.name+" to count all 20 requests once the database is back", func() bool {
			ov := r.overview(t)
			return summaryOf(ov, "acme").Requests == 20 && ov.State.Error == ""
		})
	}
}
