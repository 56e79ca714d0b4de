package config

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/internal/await"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

// startReloader watches the config file at path, which holds loaded, and
// returns the channel of applied configs, the SIGHUP channel and the
// reload counter, with Watch's error.
func startReloader(t *testing.T, path string, loaded []byte) (<-chan *Config, chan<- os.Signal, *Reloader, error) {
	t.Helper()
	applied := make(chan *Config, 8)
	r := NewReloader(path, loaded, func(c *Config) error { applied <- c; return nil }, zap.NewNop(), prometheus.NewRegistry())
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	stopped, err := r.Watch(ctx, hup)
	t.Cleanup(func() {
		cancel()
		await.Receive(t, "Watch's loop to end with its context", stopped)
	})
	return applied, hup, r, err
}

// failures reads the count of failed reloads.
func failures(r *Reloader) float64 {
	return testutil.ToFloat64(r.reloads.WithLabelValues("failure"))
}

// TestWatchIsInPlaceWhenItReturns writes the file the moment Watch returns,
// as a deploy script does right after the proxy reports ready: the change
// must be applied, not lost to a watch still being set up. A change made
// after the caller read the file but before Watch (no event will come for
// it) must be applied too.
func TestWatchIsInPlaceWhenItReturns(t *testing.T) {
	inPlace := func(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }
	renamedOver := func(path string, b []byte) error {
		if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
			return err
		}
		return os.Rename(path+".tmp", path)
	}
	tests := []struct {
		name        string
		write       func(path string, b []byte) error
		beforeWatch bool
	}{
		{"in place", inPlace, false},
		{"renamed over", renamedOver, false},
		{"in place before Watch", inPlace, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.yaml")
			loaded := []byte("routing: {default: legacy}\n")
			if err := os.WriteFile(path, loaded, 0o600); err != nil {
				t.Fatal(err)
			}
			changed := []byte("routing: {default: envelope}\n")
			if tc.beforeWatch {
				if err := tc.write(path, changed); err != nil {
					t.Fatal(err)
				}
			}
			applied, _, _, err := startReloader(t, path, loaded)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.beforeWatch {
				if err := tc.write(path, changed); err != nil {
					t.Fatal(err)
				}
			}
			c := await.Receive(t, "the change to be applied", applied)
			if c.Routing.Default != ModeEnvelope {
				t.Errorf("applied routing.default: got %q; want %q", c.Routing.Default, ModeEnvelope)
			}
		})
	}
}

// TestWatchFailureKeepsSIGHUP checks that a directory that cannot be watched
// leaves reloads on SIGHUP working, and that Watch reports the failure.
func TestWatchFailureKeepsSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "config.yaml")
	_, hup, r, err := startReloader(t, path, nil)
	if err == nil {
		t.Fatalf("Watch on a missing directory: got nil; want an error")
	}
	hup <- syscall.SIGHUP
	await.Until(t, "the SIGHUP reload to fail on the missing file", func() bool { return failures(r) == 1 })
}
