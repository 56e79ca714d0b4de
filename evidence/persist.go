package evidence

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/store"
	"go.uber.org/zap"
)

// The sample kinds in the store.
const (
	kindUnmapped = "unmapped"
	kindMismatch = "mismatch"
)

// pruneEvery is how often retention and the size cap are enforced.
const pruneEvery = 10 * time.Minute

// loop writes changes every interval until Close.
func (r *Recorder) loop(interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	lastPrune := r.now()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			now := r.now()
			r.maintain(now)
			if err := r.Flush(); err != nil {
				r.logger.Warn("writing dashboard evidence", zap.Error(err))
			}
			if now.Sub(lastPrune) >= pruneEvery {
				lastPrune = now
				r.prune(now)
			}
		}
	}
}

// Close stops the background loop, writes what changed, and closes the
// store. It is safe to call more than once.
func (r *Recorder) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		r.maintain(r.now())
		err = r.Flush()
		r.storeMu.Lock()
		defer r.storeMu.Unlock()
		if r.store != nil {
			err = errors.Join(err, r.store.Close())
			r.store = nil
			r.persisting.Store(false)
		}
	})
	return err
}

// maintain rolls minutes older than the horizon into their hours and drops
// what the window no longer covers, in memory.
func (r *Recorder) maintain(now time.Time) {
	s := r.settings.Load()
	horizon := now.Unix() - minuteHorizon
	oldest := hourOf(now.Add(-s.window()).Unix())
	persist := r.persisting.Load()
	for name, cs := range *r.clients.Load() {
		cs.mu.Lock()
		cs.roll(horizon, oldest, persist)
		empty := len(cs.minutes) == 0 && len(cs.hours) == 0
		cs.mu.Unlock()
		if empty && !r.configured(s, name) {
			r.forget(name, cs)
		}
	}
}

// roll moves minute buckets older than horizon into their hours and drops
// hours before oldest and samples older than the window; the caller holds
// cs.mu. With persist, the rolled minutes' rows are queued for deletion
// (the hour row replaces them; the row of the hour's first minute is
// overwritten by it), and an hour is dropped only once it is written.
func (cs *clientState) roll(horizon, oldest int64, persist bool) {
	keep := cs.minutes[:0]
	for _, m := range cs.minutes {
		if m.start >= horizon {
			keep = append(keep, m)
			continue
		}
		h := cs.hour(hourOf(m.start))
		h.merge(m, true)
		h.dirty = true
		if persist && m.start != h.start {
			cs.rolled = append(cs.rolled, store.Range{Client: cs.name, From: m.start, To: m.start + minute})
		}
		if cs.cur == m {
			cs.cur = nil
		}
	}
	clear(cs.minutes[len(keep):])
	cs.minutes = keep
	hours := cs.hours[:0]
	for _, h := range cs.hours {
		if h.start >= oldest || (persist && h.dirty) {
			hours = append(hours, h)
		}
	}
	clear(cs.hours[len(hours):])
	cs.hours = hours
	for k, u := range cs.unmappedSamples {
		if u.time.Unix() < oldest {
			delete(cs.unmappedSamples, k)
		}
	}
	for len(cs.mismatches) > 0 && cs.mismatches[0].Time.Unix() < oldest {
		cs.mismatches = cs.mismatches[1:]
	}
}

// hour returns the hour bucket starting at start, creating it in order.
func (cs *clientState) hour(start int64) *bucket {
	for i, h := range cs.hours {
		if h.start == start {
			return h
		}
		if h.start > start {
			b := newBucket(start, hour)
			cs.hours = append(cs.hours[:i], append([]*bucket{b}, cs.hours[i:]...)...)
			return b
		}
	}
	b := newBucket(start, hour)
	cs.hours = append(cs.hours, b)
	return b
}

// configured reports whether name is a row of the config in force.
func (r *Recorder) configured(s *settings, name string) bool {
	for _, rw := range s.rows {
		if rw.name == name {
			return true
		}
	}
	return false
}

// forget drops a client no longer configured whose evidence has aged out.
func (r *Recorder) forget(name string, cs *clientState) {
	r.addMu.Lock()
	defer r.addMu.Unlock()
	cur := *r.clients.Load()
	if cur[name] != cs {
		return
	}
	next := make(map[string]*clientState, len(cur))
	for k, v := range cur {
		if k != name {
			next[k] = v
		}
	}
	r.clients.Store(&next)
}

// Flush writes every changed bucket and sample to the store in one
// transaction. Without a store it does nothing. When the write fails,
// everything it held is marked changed again for the next one.
func (r *Recorder) Flush() error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if r.store == nil {
		return nil
	}
	type taken struct {
		cs      *clientState
		buckets []*bucket
		rolled  []store.Range
		samples bool
	}
	var w store.Write
	var held []taken
	var encErr error
	w.ClearSamples = r.clearSamples.Load()
	for _, cs := range *r.clients.Load() {
		tk := taken{cs: cs}
		cs.mu.Lock()
		for _, list := range [][]*bucket{cs.hours, cs.minutes} {
			for _, b := range list {
				if !b.dirty {
					continue
				}
				data, err := b.encode()
				if err != nil {
					encErr = errors.Join(encErr, err)
					continue
				}
				b.dirty = false
				tk.buckets = append(tk.buckets, b)
				w.Buckets = append(w.Buckets, store.Bucket{Client: cs.name, Minute: b.start, Data: data})
			}
		}
		tk.rolled = cs.rolled
		w.Deletes = append(w.Deletes, cs.rolled...)
		cs.rolled = nil
		if cs.samplesDirty || w.ClearSamples {
			w.Samples = append(w.Samples, cs.storedSamples()...)
			cs.samplesDirty, tk.samples = false, true
		}
		cs.mu.Unlock()
		held = append(held, tk)
	}
	if len(w.Buckets) == 0 && len(w.Deletes) == 0 && len(w.Samples) == 0 && !w.ClearSamples {
		return encErr
	}
	if err := r.store.Apply(w); err != nil {
		for _, tk := range held {
			tk.cs.mu.Lock()
			for _, b := range tk.buckets {
				b.dirty = true
			}
			tk.cs.rolled = append(tk.rolled, tk.cs.rolled...)
			tk.cs.samplesDirty = tk.cs.samplesDirty || tk.samples
			tk.cs.mu.Unlock()
		}
		r.setStateErr("writing to the store failed, recent evidence is in memory only until a write succeeds: " + err.Error())
		return errors.Join(encErr, fmt.Errorf("writing evidence: %w", err))
	}
	if w.ClearSamples {
		r.clearSamples.Store(false)
	}
	r.setStateErr("")
	return encErr
}

// storedSamples returns the client's samples in stored form; the caller
// holds cs.mu.
func (cs *clientState) storedSamples() []store.Sample {
	var out []store.Sample
	for k, u := range cs.unmappedSamples {
		data, err := json.Marshal(u.body)
		if err != nil {
			continue
		}
		out = append(out, store.Sample{Client: cs.name, Kind: kindUnmapped, Key: strconv.Itoa(k.Status) + " " + k.Code, Time: u.time.UnixNano(), Data: data})
	}
	for i, m := range cs.mismatches {
		data, err := json.Marshal(m)
		if err != nil {
			continue
		}
		out = append(out, store.Sample{Client: cs.name, Kind: kindMismatch, Key: strconv.Itoa(i), Time: m.Time.UnixNano(), Data: data})
	}
	return out
}

// prune enforces the retention and the size cap on the store.
func (r *Recorder) prune(now time.Time) {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if r.store == nil {
		return
	}
	s := r.settings.Load()
	before := now.Add(-s.Retention).Unix()
	if err := r.store.Prune(before - before%minute); err != nil {
		r.logger.Warn("pruning dashboard evidence", zap.Error(err))
	}
}

// load reads the window's evidence from the store.
func (r *Recorder) load(window time.Duration) error {
	now := r.now()
	return r.loadRange(now.Add(-window), now.Add(time.Minute))
}

// loadRange merges the stored buckets starting in [from, to) into memory,
// and the samples seen in that time. An hour memory already holds is
// skipped whole: its stored rows are in it already (a window made longer
// again before the old hours were dropped). Rows that do not decode are
// skipped and reported.
func (r *Recorder) loadRange(from, to time.Time) error {
	r.storeMu.Lock()
	defer r.storeMu.Unlock()
	if r.store == nil {
		return nil
	}
	rows, err := r.store.LoadBuckets(hourOf(from.Unix()))
	if err != nil {
		return fmt.Errorf("loading buckets: %w", err)
	}
	horizon := r.now().Unix() - minuteHorizon
	held := map[*clientState]map[int64]bool{}
	var bad []string
	for _, row := range rows {
		if row.Minute >= to.Unix() {
			continue
		}
		b, err := decodeBucket(row.Minute, row.Data)
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		cs := r.client(row.Client)
		cs.mu.Lock()
		hours, ok := held[cs]
		if !ok {
			hours = cs.heldHours()
			held[cs] = hours
		}
		if hours[hourOf(b.start)] {
			cs.mu.Unlock()
			continue
		}
		switch {
		case b.span == minute && b.start >= horizon:
			if !cs.hasMinute(b.start) {
				cs.minutes = append(cs.minutes, b)
				sortBuckets(cs.minutes)
			}
		default:
			h := cs.hour(hourOf(b.start))
			h.merge(b, true)
			if b.span == minute {
				// A minute row from before a restart: it is rolled now.
				h.dirty = true
				if b.start != h.start {
					cs.rolled = append(cs.rolled, store.Range{Client: cs.name, From: b.start, To: b.start + minute})
				}
			}
		}
		cs.mu.Unlock()
		if row.Minute < r.since.Load() {
			r.since.Store(row.Minute)
		}
	}
	samples, err := r.store.LoadSamples(from.UnixNano())
	if err != nil {
		return fmt.Errorf("loading samples: %w", err)
	}
	if !r.settings.Load().Samples {
		samples = nil
	}
	for _, sm := range samples {
		if sm.Time >= to.UnixNano() {
			continue
		}
		cs := r.client(sm.Client)
		cs.mu.Lock()
		switch sm.Kind {
		case kindUnmapped:
			var body string
			status, code, ok := strings.Cut(sm.Key, " ")
			st, err := strconv.Atoi(status)
			if ok && err == nil && json.Unmarshal(sm.Data, &body) == nil {
				cs.keepUnmapped(unmappedKey{st, clip(code, maxCodeLen)}, time.Unix(0, sm.Time), func() string { return body })
				cs.samplesDirty = false
			}
		case kindMismatch:
			var m event.Sample
			if json.Unmarshal(sm.Data, &m) == nil && len(cs.mismatches) < maxMismatchSamples {
				cs.mismatches = append(cs.mismatches, &m)
			}
		}
		cs.mu.Unlock()
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d stored buckets skipped: %s", len(bad), bad[0])
	}
	return nil
}

// heldHours returns the hours memory holds evidence of, in hour buckets or
// in minutes; the caller holds cs.mu.
func (cs *clientState) heldHours() map[int64]bool {
	held := make(map[int64]bool, len(cs.hours)+1)
	for _, h := range cs.hours {
		held[h.start] = true
	}
	for _, m := range cs.minutes {
		held[hourOf(m.start)] = true
	}
	return held
}

func (cs *clientState) hasMinute(start int64) bool {
	for _, m := range cs.minutes {
		if m.start == start {
			return true
		}
	}
	return false
}

func sortBuckets(bs []*bucket) {
	slices.SortFunc(bs, func(a, b *bucket) int { return cmp.Compare(a.start, b.start) })
}
