package pgserver

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// hostPort returns the host:port of a URL that Server.URL made.
func hostPort(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

// refuses checks that nothing accepts connections at addr any more.
func refuses(t *testing.T, addr string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if c != nil {
		c.Close()
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s: got %v; want connection refused", addr, err)
	}
}

// TestServer checks the life of a server as the tests use it: separate
// databases, a query, a stop that takes the port away, and a restart on the
// same port that keeps the data.
func TestServer(t *testing.T) {
	s := Start(t)
	a := s.CreateDatabase(t, "a")
	b := s.CreateDatabase(t, `b "quoted"/name`)
	if !strings.HasPrefix(a, "postgres://"+Superuser+"@127.0.0.1:") || !strings.HasSuffix(a, "/a?sslmode=disable") {
		t.Errorf("URL of a = %s", a)
	}
	if got := s.Exec(t, `b "quoted"/name`, "SELECT current_database()"); got != `b "quoted"/name` {
		t.Errorf("current_database() through %s = %q", b, got)
	}
	if got := s.Exec(t, "a", "SELECT 1"); got != "1" {
		t.Errorf("SELECT 1 = %q; want 1", got)
	}
	s.Exec(t, "a", "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before the stop')")
	if got := s.Exec(t, `b "quoted"/name`, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept'"); got != "0" {
		t.Errorf("the table of database a is seen from database b (count %s)", got)
	}

	addr := hostPort(t, a)
	s.Stop(t)
	refuses(t, addr)
	s.Restart(t)
	if got := hostPort(t, s.URL("a")); got != addr {
		t.Errorf("restarted on %s; want %s", got, addr)
	}
	if got := s.Exec(t, "a", "SELECT v FROM kept"); got != "before the stop" {
		t.Errorf("after the restart, kept holds %q", got)
	}
}

// TestKill checks that a killed server refuses connections, and recovers
// on Restart what was committed before the crash.
func TestKill(t *testing.T) {
	s := Start(t)
	u := s.CreateDatabase(t, "k")
	s.Exec(t, "k", "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
	s.Kill(t)
	refuses(t, hostPort(t, u))
	s.Restart(t)
	if got := s.Exec(t, "k", "SELECT v FROM kept"); got != "42" {
		t.Errorf("after the crash, kept holds %q; want 42", got)
	}
}

// TestCleanup checks that the server is gone and its files removed once its
// test has ended, after a kill too.
func TestCleanup(t *testing.T) {
	for _, kill := range []bool{false, true} {
		var s *Server
		var addr string
		t.Run(map[bool]string{false: "running", true: "killed"}[kill], func(t *testing.T) {
			s = Start(t)
			addr = hostPort(t, s.URL("postgres"))
			if kill {
				s.Kill(t)
			}
		})
		if s == nil {
			continue // skipped
		}
		refuses(t, addr)
		if _, err := os.Stat(s.dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the server's directory %s is still there: %v", s.dir, err)
		}
	}
}

// TestSkipWithoutBinaries checks that a machine without PostgreSQL skips
// the tests, except under CI=true.
func TestSkipWithoutBinaries(t *testing.T) {
	if os.Getenv("CI") == "true" {
		t.Skip("under CI=true, a missing PostgreSQL fails the test instead")
	}
	t.Setenv(BinDirEnv, filepath.Join(t.TempDir(), "missing"))
	skipped := false
	t.Run("start", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Start(t)
	})
	if !skipped {
		t.Error("Start did not skip without PostgreSQL")
	}
}
