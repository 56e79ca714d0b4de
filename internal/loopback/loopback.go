// Package loopback provides loopback network fixtures for tests, kept in one
// place because the proxy, shadow and command tests and the PostgreSQL
// server of the tests all need them.
package loopback

import (
	"fmt"
	"net"
	"syscall"
	"testing"
)

// RefusedURL returns the http URL of a loopback port that refuses
// connections until the test ends. A socket bound to the port without
// listening holds it: a port merely closed could be handed to the next
// listener of any process, the proxy under test included, which would then
// proxy to itself instead of meeting a refused connection (on a loaded
// machine, a refused-upstream test once got a 504 after 30 s while a
// listener in its process ran out of file descriptors).
func RefusedURL(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
}

// FreePort returns a port of 127.0.0.1 that was free a moment ago, for a
// server in another process (nginx, PostgreSQL) that must be told its port
// before it listens. Another listener may take the port meanwhile, so the
// caller retries with another port when the server cannot bind it.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
