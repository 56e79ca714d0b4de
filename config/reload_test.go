package config

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
)

// patience bounds the waits below for something that must happen; reaching
// it means it never will.
const patience = 30 * time.Second

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
		select {
		case <-stopped:
		case <-time.After(patience):
			t.Errorf("Watch's loop still running %v after its context ended", patience)
		}
	})
	return applied, hup, r, err
}

// failures reads the count of failed reloads.
func failures(r *Reloader) float64 {
	var m dto.Metric
	r.reloads.WithLabelValues("failure").Write(&m)
	return m.GetCounter().GetValue()
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
			select {
			case c := <-applied:
				if c.Routing.Default != ModeEnvelope {
					t.Errorf("applied routing.default: got %q; want %q", c.Routing.Default, ModeEnvelope)
				}
			case <-time.After(patience):
				t.Fatalf("the change was never applied")
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
	deadline := time.Now().Add(patience)
	for failures(r) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("failed reloads after SIGHUP: got %v; want 1 (the file is missing)", failures(r))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
