package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

var errEmptyReload = errors.New("config file is empty: not applied (a file being written? the defaults are not reloaded from an empty file)")

// Reloader reloads a config file on demand (SIGHUP) and when the file
// changes. A config that fails to load or validate is never applied: the
// old one keeps serving, every problem is logged, and the failure counted.
type Reloader struct {
	path    string
	apply   func(*Config) error
	logger  *zap.Logger
	reloads *prometheus.CounterVec

	mu   sync.Mutex // serialises reloads
	last []byte     // the bytes of the last file read, applied or not
}

// NewReloader returns a Reloader for the file at path, which calls apply
// with every new valid config. loaded is the content already in force.
func NewReloader(path string, loaded []byte, apply func(*Config) error, logger *zap.Logger, reg prometheus.Registerer) *Reloader {
	r := &Reloader{
		path:   path,
		apply:  apply,
		logger: logger,
		last:   loaded,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_config_reloads_total",
			Help: "Config reloads, by result (success or failure).",
		}, []string{"result"}),
	}
	reg.MustRegister(r.reloads)
	r.reloads.WithLabelValues("success")
	r.reloads.WithLabelValues("failure")
	return r
}

// Reload reads the file and applies it if it is valid.
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := os.ReadFile(r.path)
	if err == nil {
		r.last = b
	}
	return r.load(b, err)
}

// reloadIfChanged reloads only when the file's bytes differ from the last
// ones read, so that the many events of one save apply it once.
func (r *Reloader) reloadIfChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := os.ReadFile(r.path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// Mid-swap (an editor's rename, a ConfigMap's symlink flip):
			// the next event brings the new file.
			return
		}
		r.load(nil, err)
		return
	}
	if bytes.Equal(b, r.last) {
		return
	}
	r.last = b
	r.load(b, nil)
}

func (r *Reloader) load(b []byte, readErr error) error {
	fail := func(err error) error {
		r.reloads.WithLabelValues("failure").Inc()
		var errs Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				r.logger.Error("config reload rejected; the previous config stays in force", zap.String("file", r.path), zap.String("field", e.Path), zap.String("problem", e.Msg))
			}
		} else {
			r.logger.Error("config reload rejected; the previous config stays in force", zap.String("file", r.path), zap.Error(err))
		}
		return err
	}
	if readErr != nil {
		return fail(fmt.Errorf("reading config: %w", readErr))
	}
	if len(bytes.TrimSpace(b)) == 0 {
		// An empty document would parse as the defaults and silently drop
		// every client and rule; on a reload it is almost always a file
		// caught mid-write, whose next event brings the real content.
		return fail(errEmptyReload)
	}
	c, err := Parse(b)
	if err != nil {
		return fail(err)
	}
	if err := r.apply(c); err != nil {
		return fail(err)
	}
	r.reloads.WithLabelValues("success").Inc()
	r.logger.Info("config reloaded", zap.String("file", r.path))
	return nil
}

// Watch reloads on every signal from hup and whenever the file changes,
// until ctx ends. It watches the file's directory rather than the file, so
// that replacements by rename and Kubernetes ConfigMap symlink swaps are
// seen; events are debounced and compared by content.
//
// The watch is in place when Watch returns, so that a change made after a
// caller reports ready is never missed; the reloads run on a goroutine of
// their own, and the returned channel is closed once it has stopped, after
// ctx ends: a caller that tears down what apply touches waits for it first.
// If the directory cannot be watched, Watch says so and still reloads on
// every signal from hup.
func (r *Reloader) Watch(ctx context.Context, hup <-chan os.Signal) (stopped <-chan struct{}, err error) {
	done := make(chan struct{})
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err = w.Add(filepath.Dir(r.path)); err != nil {
			w.Close()
		}
	}
	if err != nil {
		go r.loop(ctx, hup, nil, done)
		return done, fmt.Errorf("watching config directory: %w", err)
	}
	go r.loop(ctx, hup, w, done)
	return done, nil
}

// loop is Watch's goroutine; w is nil when only hup can ask for reloads
// (receiving from its nil channels would block forever).
func (r *Reloader) loop(ctx context.Context, hup <-chan os.Signal, w *fsnotify.Watcher, done chan<- struct{}) {
	defer close(done)
	var events <-chan fsnotify.Event
	var errs <-chan error
	const debounce = 100 * time.Millisecond
	timer := time.NewTimer(debounce)
	if w != nil {
		defer w.Close()
		events, errs = w.Events, w.Errors
		// The timer starts armed: a change between the caller's read of
		// the file and the watch being added sent no event.
	} else {
		timer.Stop()
	}
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-hup:
			if !ok {
				hup = nil
				continue
			}
			if ctx.Err() == nil { // select picks at random among ready cases
				r.Reload()
			}
		case _, ok := <-events:
			if !ok {
				r.logger.Warn("config watcher stopped; SIGHUP still reloads", zap.String("file", r.path))
				events, errs = nil, nil
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			r.logger.Warn("config watcher", zap.Error(err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce) // events were lost: look at the file
			}
		case <-timer.C:
			if ctx.Err() == nil {
				r.reloadIfChanged()
			}
		}
	}
}
