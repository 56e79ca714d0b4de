package loopback

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestRefusedURL checks that the port refuses connections and that no
// listener can be given it while the test runs.
func TestRefusedURL(t *testing.T) {
	addr := strings.TrimPrefix(RefusedURL(t), "http://")
	if c, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		if c != nil {
			c.Close()
		}
		t.Errorf("dial %s: got %v; want connection refused", addr, err)
	}
	if ln, err := net.Listen("tcp", addr); !errors.Is(err, syscall.EADDRINUSE) {
		if ln != nil {
			ln.Close()
		}
		t.Errorf("listen %s: got %v; want address in use", addr, err)
	}
}

// TestFreePort checks that a server can listen on the port returned.
func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", port, err)
	}
	ln.Close()
}
