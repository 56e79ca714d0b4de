//go:build linux

package cli

// A real nginx with proxy_cache for the cache tests, started the way
// internal/pgserver starts PostgreSQL: Debian's binary, a temporary
// directory holding everything the server writes (configuration, PID,
// logs, cache, temporary files), a free port of 127.0.0.1 only, stopped by
// the PID of the process started here. Tests skip where nginx is not
// installed, except under CI=true, where .ci/run installs it and a missing
// nginx is a broken CI machine. The real clients the tests run (curl,
// wget) are found the same way.

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/child"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
)

// nginxBinary is Debian's nginx; PATH is searched when it is not there.
const nginxBinary = "/usr/sbin/nginx"

// nginxBindAttempts bounds the tries at a free port: another process may
// take the port between the moment it is found free and nginx's bind.
const nginxBindAttempts = 5

// nginxServer is one nginx started for a test.
type nginxServer struct {
	URL string // http://127.0.0.1:port
	dir string // configuration, PID, logs, cache and temporary files

	cmd  *exec.Cmd
	done <-chan struct{} // closed once the master has exited and been reaped
}

// requireTool returns the path of a program the test needs, skipping the
// test when it is missing, except under CI=true, where it fails it.
func requireTool(t testing.TB, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s missing under CI=true (.ci/run must install it): %v", name, err)
	}
	t.Skipf("%s not installed (%v): install Debian's %s package", name, err, name)
	return ""
}

// nginxConf is the whole configuration: a cache in front of upstream
// (host:port) whose entries live as long as the upstream's Cache-Control
// says (no proxy_cache_valid), keyed by nginx's default key, so that only
// Vary keeps the formats apart. A request carrying Cache-Control bypasses
// the cache (nginx ignores a client's no-cache otherwise): the response is
// then fetched from the upstream, and stored. X-Cache reports the cache
// status on every response, errors included (always).
const nginxConf = `# written by cli/nginx_test.go
%[1]s
daemon off;
master_process on;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 128; }
http {
	log_format cache '$status $upstream_cache_status "$request" ae="$http_accept_encoding" cc="$http_cache_control" inm="$http_if_none_match"';
	access_log %[2]s/access.log cache;
	client_body_temp_path %[2]s/client_body;
	proxy_temp_path %[2]s/proxy_temp;
	fastcgi_temp_path %[2]s/fastcgi_temp;
	uwsgi_temp_path %[2]s/uwsgi_temp;
	scgi_temp_path %[2]s/scgi_temp;
	proxy_cache_path %[2]s/cache levels=1:2 keys_zone=envelope:1m max_size=64m inactive=10m use_temp_path=off;
	upstream envelope_proxy {
		server %[3]s;
		keepalive 8;
	}
	server {
		listen 127.0.0.1:%[4]d;
		location = /nginx-ready { return 204; }
		location / {
			proxy_pass http://envelope_proxy;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_cache envelope;
			proxy_cache_key "$scheme$proxy_host$request_uri";
			proxy_cache_revalidate on;
			proxy_cache_bypass $http_cache_control;
			add_header X-Cache $upstream_cache_status always;
		}
	}
}
`

// startNginx starts nginx with proxy_cache in front of upstream (host:port)
// and returns it once it answers. It is stopped when the test ends.
func startNginx(t testing.TB, upstream string) *nginxServer {
	t.Helper()
	bin := requireTool(t, "nginx", nginxBinary)
	n := &nginxServer{dir: t.TempDir()}
	// Under root the workers would run as nobody, who cannot write to
	// the test's directory: they run as root too (nginx allows it).
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;"
	}
	t.Cleanup(func() { n.cleanup(t) })
	for attempt := 1; ; attempt++ {
		port, err := loopback.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		conf := filepath.Join(n.dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, user, n.dir, upstream, port)), 0o600); err != nil {
			t.Fatal(err)
		}
		retry, err := n.start(t, bin, conf, port)
		if err == nil {
			t.Logf("nginx: %s on %s (files in %s)", bin, n.URL, n.dir)
			return n
		}
		if !retry || attempt == nginxBindAttempts {
			n.fatalf(t, "starting nginx on 127.0.0.1:%d: %v", port, err)
		}
	}
}

// start starts the master and waits until it answers on port. On failure,
// retry tells whether another port may do (this one was taken).
func (n *nginxServer) start(t testing.TB, bin, conf string, port int) (retry bool, err error) {
	t.Helper()
	errLog := filepath.Join(n.dir, "error.log")
	logStart := int64(0)
	if fi, err := os.Stat(errLog); err == nil {
		logStart = fi.Size()
	}
	out, err := os.OpenFile(filepath.Join(n.dir, "stderr.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return false, err
	}
	defer out.Close()
	// -e: the error log before the configuration is read is the test's
	// too, not /var/log/nginx/error.log.
	cmd := exec.Command(bin, "-p", n.dir+"/", "-c", conf, "-e", errLog)
	cmd.Dir = n.dir
	cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin", "LC_ALL=C", "TZ=UTC"}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a master that must be killed takes
	// its worker with it; SIGTERM (nginx's fast shutdown) if the thread
	// that started it exits, as when go test's timeout ends the process
	// without running cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	done, err := child.Start(cmd)
	if err != nil {
		return false, fmt.Errorf("starting %s: %w", bin, err)
	}
	n.cmd, n.done = cmd, done
	n.URL = "http://127.0.0.1:" + strconv.Itoa(port)

	exited := false
	await.Until(t, "nginx to answer on "+n.URL, func() bool {
		select {
		case <-done:
			exited = true
			return true
		default:
		}
		resp, err := await.Client.Get(n.URL + "/nginx-ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	})
	if exited {
		n.cmd, n.done = nil, nil
		b, _ := os.ReadFile(errLog)
		if int64(len(b)) >= logStart {
			b = b[logStart:]
		}
		return strings.Contains(string(b), "Address already in use"),
			fmt.Errorf("nginx exited: %v", cmd.ProcessState)
	}
	return false, nil
}

// stop shuts nginx down gracefully (SIGQUIT to the master, by its PID),
// or kills its process group if it has not exited within await.Patience.
func (n *nginxServer) stop() error {
	if n.cmd == nil {
		return nil
	}
	cmd, done := n.cmd, n.done
	n.cmd, n.done = nil, nil
	if err := cmd.Process.Signal(syscall.SIGQUIT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling the nginx master %d: %w", cmd.Process.Pid, err)
	}
	timer := time.NewTimer(await.Patience)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-timer.C:
	}
	// The group is the master's own (Setpgid): its PID names it.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
	return fmt.Errorf("nginx master %d did not exit within %v of SIGQUIT, killed its process group", cmd.Process.Pid, await.Patience)
}

func (n *nginxServer) cleanup(t testing.TB) {
	if err := n.stop(); err != nil {
		t.Errorf("nginx: %v", err)
	}
	if t.Failed() {
		t.Logf("nginx: the end of the error log:\n%s\nthe end of the access log ($status $upstream_cache_status request headers):\n%s",
			logTail(filepath.Join(n.dir, "error.log"), 40), logTail(filepath.Join(n.dir, "access.log"), 80))
	}
}

// accessLog returns the end of the access log, for failure messages.
func (n *nginxServer) accessLog() string { return logTail(filepath.Join(n.dir, "access.log"), 20) }

// fatalf fails the test with the message and the end of nginx's logs.
func (n *nginxServer) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("nginx: %s\nstderr:\n%s\nthe end of the error log:\n%s", fmt.Sprintf(format, args...),
		logTail(filepath.Join(n.dir, "stderr.log"), 20), logTail(filepath.Join(n.dir, "error.log"), 40))
}

// logTail returns the last lines lines of the file at path.
func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	l := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}
