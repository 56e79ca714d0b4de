// Package pgserver starts a real PostgreSQL server for a test, so that code
// speaking to PostgreSQL is tested against the server itself and not a fake
// whose behaviour could drift from it.
//
// Each server is its own: a cluster made by initdb in a fresh temporary
// directory, listening only on a free port of 127.0.0.1, stopped by the PID
// of the process this package started and removed when the test ends. No
// system service is used or touched. PostgreSQL refuses to run as root, so
// under root the server runs as the postgres system user (or nobody). The
// tests skip when no PostgreSQL is installed, except under CI=true, where a
// missing server is a broken CI machine and fails them instead: .ci/run
// installs Debian's postgresql package.
//
// Starting a server takes most of a second, nearly all of it initdb, so the
// tests of a package may share one (started by a parent test, the others
// its subtests), each test with a database of its own from CreateDatabase.
//
// The package needs no Go driver: it talks to the server with psql, which
// comes with the server's binaries.
package pgserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/envelope-proxy/envelope-proxy/internal/child"
	"github.com/envelope-proxy/envelope-proxy/internal/loopback"
)

// Superuser is the role initdb makes and every URL connects as. Trust
// authentication lets it in without a password; the server listens on
// loopback only, so only this machine can reach it.
const Superuser = "envelope"

// BinDirEnv names the environment variable that, when set, is the only
// directory searched for initdb, postgres and psql: for machines whose
// PostgreSQL is not laid out as Debian's, and to see the tests skip.
const BinDirEnv = "PGSERVER_BINDIR"

// bindAttempts bounds the tries at a free port: another process may take
// the port between the moment it is found free and the server's bind.
const bindAttempts = 5

// Server is one PostgreSQL server started for a test.
type Server struct {
	bin  string              // directory of initdb and postgres
	psql string              // the psql client
	dir  string              // the temporary directory: data, socket, log
	cred *syscall.Credential // whom the server runs as; nil: as this process
	log  string              // the server's output, initdb's included

	mu   sync.Mutex
	port int
	proc *process // the running postmaster; nil while stopped
	// crashed is set by Kill and cleared by a successful Restart: the
	// killed server left its shared memory segment behind.
	crashed bool
}

// process is a postmaster this package started, with its end.
type process struct {
	cmd  *exec.Cmd
	done <-chan struct{} // closed once the process has exited and been reaped
}

// Start starts a PostgreSQL server for the test and returns it. The server
// is stopped by its PID, and its files removed, when the test ends. Start
// skips the test when PostgreSQL is not installed, unless CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBinDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("postgresql binaries missing; .ci/run installs them: %v", err)
		}
		t.Skipf("PostgreSQL not installed (%v): install Debian's postgresql package or set %s", err, BinDirEnv)
	}
	s := &Server{bin: bin, psql: filepath.Join(bin, "psql")}
	if _, err := os.Stat(s.psql); err != nil {
		p, err := exec.LookPath("psql")
		if err != nil {
			t.Fatalf("pgserver: psql neither in %s nor on PATH: %v", bin, err)
		}
		s.psql = p
	}
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		s.cred, err = unprivileged()
		if err != nil {
			t.Fatalf("pgserver: PostgreSQL refuses to run as root and no user to run it as: %v", err)
		}
		uid, gid = int(s.cred.Uid), int(s.cred.Gid)
	}
	// t.TempDir is root's alone under root; this directory is made for the
	// server's user instead, and removed by the cleanup below.
	s.dir, err = os.MkdirTemp("", "pgserver-")
	if err != nil {
		t.Fatalf("pgserver: %v", err)
	}
	s.log = filepath.Join(s.dir, "postgres.log")
	t.Cleanup(func() { s.cleanup(t) })
	if uid >= 0 {
		if err := os.Chown(s.dir, uid, gid); err != nil {
			t.Fatalf("pgserver: giving %s to the server's user: %v", s.dir, err)
		}
	}

	began := time.Now()
	// -N skips initdb's fsync of the new cluster: the files live only as
	// long as the test.
	if err := s.run("initdb", "-D", s.data(), "-A", "trust", "-U", Superuser,
		"-E", "UTF8", "--locale=C", "-N"); err != nil {
		s.fatalf(t, "initdb: %v", err)
	}
	initdb := time.Since(began)

	for attempt := 1; ; attempt++ {
		port, err := loopback.FreePort()
		if err != nil {
			t.Fatalf("pgserver: %v", err)
		}
		retry, err := s.start(t, port)
		if err == nil {
			break
		}
		if !retry || attempt == bindAttempts {
			s.fatalf(t, "starting PostgreSQL on 127.0.0.1:%d: %v", port, err)
		}
	}
	t.Logf("pgserver: PostgreSQL from %s on 127.0.0.1:%d in %v (initdb %v)",
		bin, s.port, time.Since(began).Round(time.Millisecond), initdb.Round(time.Millisecond))
	return s
}

// URL returns the URL of database db on the server, connecting as
// Superuser without a password and without TLS.
func (s *Server) URL(db string) string {
	s.mu.Lock()
	port := s.port
	s.mu.Unlock()
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(Superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/" + db,
		RawPath:  "/" + url.PathEscape(db),
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// CreateDatabase creates database name and returns its URL, so that each
// test has a database of its own and no state leaks between tests sharing
// a server. The name is quoted, so any name PostgreSQL keeps whole will do.
func (s *Server) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	// PostgreSQL cuts longer names to 63 bytes, and the URL returned would
	// then name another database.
	if name == "" || len(name) > 63 || strings.ContainsRune(name, 0) {
		t.Fatalf("pgserver: database name %q: want 1 to 63 bytes, no NUL", name)
	}
	s.Exec(t, "postgres", "CREATE DATABASE "+quoteIdent(name))
	return s.URL(name)
}

// Exec runs sql on database db through psql and returns what it printed,
// unaligned and without headers (a row per line, columns separated by |),
// failing the test if psql fails.
func (s *Server) Exec(t testing.TB, db, sql string) string {
	t.Helper()
	out, err := s.exec(db, sql)
	if err != nil {
		t.Fatalf("pgserver: psql %s: %v", s.URL(db), err)
	}
	return out
}

// Stop shuts the server down the way `pg_ctl stop -m fast` does, ending the
// sessions and writing a checkpoint, for tests that take the database away
// mid-run. Restart brings it back.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		t.Fatal("pgserver: Stop: the server is not running")
	}
	if err := s.stop(); err != nil {
		s.fatalf(t, "stopping PostgreSQL: %v", err)
	}
}

// Kill ends the server by SIGKILL to its postmaster, an immediate crash
// without shutdown or checkpoint. Its sessions see the connection drop;
// Restart recovers from the crash, as a restarted server in production
// does.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		t.Fatal("pgserver: Kill: the server is not running")
	}
	p := s.proc
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("pgserver: killing the postmaster: %v", err)
	}
	await.Receive(t, "the killed postmaster to exit", p.done)
	s.proc = nil
	s.crashed = true
}

// Restart starts the server again after Stop or Kill, on the same port and
// data directory, so URLs handed out before stay valid and data written
// before is there.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	port := s.port
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		t.Fatal("pgserver: Restart: the server is running")
	}
	// After Kill, the killed postmaster's sessions and helpers exit on
	// their own as they notice its death; until they all have, the new
	// postmaster refuses the shared memory they still hold.
	deadline := time.Now().Add(await.Patience)
	for {
		retry, err := s.start(t, port)
		if err == nil {
			break
		}
		if !retry || time.Now().After(deadline) {
			s.fatalf(t, "restarting PostgreSQL on 127.0.0.1:%d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.mu.Lock()
	s.crashed = false
	s.mu.Unlock()
}

// start starts the postmaster on port and waits until it answers a query.
// On failure, retry tells whether trying again may succeed: on another
// port for a port taken, or later for shared memory still held after Kill.
func (s *Server) start(t testing.TB, port int) (retry bool, err error) {
	t.Helper()
	logFile, err := os.OpenFile(s.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return false, err
	}
	defer logFile.Close()
	fi, err := logFile.Stat()
	if err != nil {
		return false, err
	}
	logStart := fi.Size()
	// fsync and full_page_writes off trade the files' safety from a crash
	// of the machine for speed: the cluster lives only as long as the
	// test, and Kill crashes the process, not the machine, so the
	// operating system still writes out everything the server wrote.
	// synchronous_commit stays on: off, a commit is acknowledged before
	// the server has written it, and Kill would lose it.
	// The postmaster outlives this call: Stop, Kill and the cleanup end it.
	cmd := s.command(context.Background(), "postgres", "-D", s.data(),
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off",
		"-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB",
		"-c", "max_connections=100",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := spawn(cmd)
	if err != nil {
		return false, fmt.Errorf("starting postgres: %w", err)
	}
	s.mu.Lock()
	s.port, s.proc = port, p
	s.mu.Unlock()

	// postmaster.pid's eighth line turns "ready" once the server accepts
	// connections: pg_ctl -w waits for the same. The PID must be this
	// process's, as a killed server leaves its own file saying "ready".
	pid := strconv.Itoa(cmd.Process.Pid)
	exited := false
	await.Until(t, fmt.Sprintf("PostgreSQL to accept connections on 127.0.0.1:%d (log: %s)", port, s.log), func() bool {
		select {
		case <-p.done:
			exited = true
			return true
		default:
		}
		lines := strings.Split(s.readFile(filepath.Join(s.data(), "postmaster.pid")), "\n")
		return len(lines) > 7 && lines[0] == pid && strings.TrimSpace(lines[7]) == "ready"
	})
	if exited {
		s.mu.Lock()
		s.proc = nil
		s.mu.Unlock()
		out := s.readFile(s.log)
		if int64(len(out)) >= logStart {
			out = out[logStart:]
		}
		retry = strings.Contains(out, "could not create any TCP/IP sockets") ||
			strings.Contains(out, "pre-existing shared memory block")
		return retry, fmt.Errorf("postgres exited: %v", p.cmd.ProcessState)
	}
	// The server's own word is not the client's: check that a client gets
	// in over TCP, as the tests' will.
	if _, err := s.exec("postgres", "SELECT 1"); err != nil {
		return false, err
	}
	return false, nil
}

// stop shuts the running postmaster down fast (SIGINT), or by SIGKILL if it
// does not exit within await.Patience. The caller holds s.mu.
func (s *Server) stop() error {
	p := s.proc
	s.proc = nil
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signalling the postmaster: %w", err)
	}
	timer := time.NewTimer(await.Patience)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	s.crashed = true
	return fmt.Errorf("the postmaster did not shut down within %v, killed it", await.Patience)
}

// cleanup stops the server if it runs, frees what a killed one left, and
// removes the directory; a failed test gets the end of the server's log.
func (s *Server) cleanup(t testing.TB) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		if err := s.stop(); err != nil {
			t.Errorf("pgserver: %v", err)
		}
	}
	if s.crashed {
		s.removeSharedMemory(t)
	}
	if t.Failed() {
		t.Logf("pgserver: the end of the PostgreSQL log:\n%s", s.logTail())
	}
	// Sessions of a killed server may still be exiting and writing.
	await.Until(t, "removal of "+s.dir, func() bool { return os.RemoveAll(s.dir) == nil })
}

// removeSharedMemory removes the System V shared memory segment a killed
// postmaster leaves behind (postmaster.pid's seventh line names it): no
// later start on this data directory will reuse it, and without removal it
// would last until the machine reboots. The segment is marked for removal,
// which happens once the last of the killed server's sessions exits.
func (s *Server) removeSharedMemory(t testing.TB) {
	lines := strings.Split(s.readFile(filepath.Join(s.data(), "postmaster.pid")), "\n")
	if len(lines) < 7 {
		return
	}
	f := strings.Fields(lines[6])
	if len(f) != 2 {
		return
	}
	if _, err := strconv.ParseUint(f[1], 10, 31); err != nil {
		return
	}
	// ipcrm comes with util-linux, which every Debian has.
	if out, err := exec.Command("ipcrm", "-m", f[1]).CombinedOutput(); err != nil {
		t.Logf("pgserver: removing the killed server's shared memory segment %s: %v: %s", f[1], err, bytes.TrimSpace(out))
	}
}

// run runs one of the server's programs to completion as the server's
// user, its output going to the log.
func (s *Server) run(name string, args ...string) error {
	logFile, err := os.OpenFile(s.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	ctx, cancel := context.WithTimeout(context.Background(), await.Patience)
	defer cancel()
	cmd := s.command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// command returns the server's program name with args, to run as the
// server's user in its directory with a minimal environment.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = childEnv()
	cmd.SysProcAttr = s.sysProcAttr()
	return cmd
}

func (s *Server) sysProcAttr() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Credential: s.cred}
	setParentDeathSignal(attr)
	return attr
}

// exec runs sql on database db through psql, as this process's user: the
// client needs no privilege.
func (s *Server) exec(db, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), await.Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-d", s.URL(db), "-c", sql)
	// PG* variables of the caller's environment would override the URL's
	// settings or add their own (a password file, a service).
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PG") })
	cmd.Env = append(env, "PGCONNECT_TIMEOUT=10")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(errOut.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// readFile returns the file's content, or "" if it cannot be read yet.
func (s *Server) readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// logTail returns the last lines of the server's log.
func (s *Server) logTail() string {
	lines := strings.Split(strings.TrimRight(s.readFile(s.log), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}

// fatalf fails the test with the message and the end of the server's log,
// which says why the server would not start or stop.
func (s *Server) fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("pgserver: %s\nthe end of %s:\n%s", fmt.Sprintf(format, args...), s.log, s.logTail())
}

// spawn starts cmd, which ends with the test process (package child).
func spawn(cmd *exec.Cmd) (*process, error) {
	done, err := child.Start(cmd)
	if err != nil {
		return nil, err
	}
	return &process{cmd: cmd, done: done}, nil
}

// findBinDir returns the directory holding initdb and postgres: $BinDirEnv
// if set, else Debian's /usr/lib/postgresql/<major>/bin of the highest
// major installed, else the directory of initdb on $PATH.
func findBinDir() (string, error) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if !has(dir) {
			return "", fmt.Errorf("no initdb and postgres in %s=%s", BinDirEnv, dir)
		}
		return dir, nil
	}
	entries, _ := os.ReadDir("/usr/lib/postgresql")
	best, bestMajor := "", -1
	for _, e := range entries {
		major, err := strconv.Atoi(e.Name())
		dir := filepath.Join("/usr/lib/postgresql", e.Name(), "bin")
		if err == nil && major > bestMajor && has(dir) {
			best, bestMajor = dir, major
		}
	}
	if best != "" {
		return best, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Debian links initdb into PATH from the versioned directory;
		// postgres must be found beside the real one.
		if real, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", errors.New("no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH")
}

// unprivileged returns the credentials to run the server with under root:
// the postgres system user that Debian's package makes, else nobody.
// Supplementary groups are dropped: root's would give the server more.
func unprivileged() (*syscall.Credential, error) {
	var errs []error
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			errs = append(errs, fmt.Errorf("user %s: %w", name, err))
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.Join(errs...)
}

// childEnv is the server programs' whole environment: the caller's could
// set a locale whose messages the log checks would not recognise, or PG*
// variables that change what initdb makes.
func childEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "TZ=UTC"}
}

// quoteIdent quotes name as an SQL identifier.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
