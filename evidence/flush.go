package evidence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/store"
	"go.uber.org/zap"
)

// Opener opens the evidence store.
type Opener func(ctx context.Context) (store.Store, error)

// The sample kinds in the store.
const (
	kindUnmapped = "unmapped"
	kindMismatch = "mismatch"
	// kindViolation is a contract violation's sample.
	kindViolation = "violation"
)

// The loop's bounds: how long one call to the store may take, and how long
// it waits before trying an unreachable store again.
const (
	storeTimeout = 10 * time.Second
	minBackoff   = time.Second
	maxBackoff   = time.Minute
)

// link is the Recorder's side of the store. Only the loop (and Close,
// after it) writes; queries of one replica alone read through mu.
type link struct {
	open         Opener
	kind         string
	memoryReason string

	mu sync.Mutex
	st store.Store
	// seq is this replica's last batch written; inflight a batch whose
	// commit is uncertain, sent again before anything else.
	seq      int64
	inflight *batch
	// marks are the other replicas' last batches read.
	marks map[string]int64
	// retryAt and backoff pace the attempts to open the store.
	retryAt time.Time
	backoff time.Duration

	reloadWanted atomic.Bool
	connected    atomic.Bool
	location     atomic.Pointer[string]
	err          atomic.Pointer[string]
	since        atomic.Int64
}

func (l *link) init(opts Options) {
	l.open, l.kind, l.memoryReason = opts.Open, opts.Kind, opts.MemoryReason
	l.marks = map[string]int64{}
	if l.kind == "" {
		l.kind = "store"
	}
	if l.open == nil {
		l.kind = "memory"
	}
}

// setErr records the store's problem for the page, "" when there is none.
func (l *link) setErr(s string) {
	if s == "" {
		l.err.Store(nil)
		return
	}
	l.err.Store(&s)
}

// batch is one write of this replica's evidence.
type batch struct {
	seq     int64
	deltas  []store.Row
	samples []store.SampleRow
	// taken are the pending buckets it holds, by client, to be added to
	// the fleet's sums once written or put back when not.
	taken map[*clientState][]*bucket
	// sampled are the clients whose samples it holds.
	sampled []*clientState
}

// empty reports a batch with nothing but the heartbeat.
func (b *batch) empty() bool { return len(b.deltas) == 0 && len(b.samples) == 0 }

// loop writes and reads every flush interval, and tries its turn at the
// maintenance every maintain interval, until Close.
func (r *Recorder) loop(flush, maintain time.Duration) {
	defer close(r.done)
	t := time.NewTicker(flush)
	defer t.Stop()
	lastMaintain := r.now()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			now := r.now()
			r.roll(now)
			r.sync(false)
			if now.Sub(lastMaintain) >= maintain {
				lastMaintain = now
				r.maintainStore(now)
			}
		}
	}
}

// Close stops the loop, writes what is pending, marks this replica
// stopped, and closes the store. It is safe to call more than once.
func (r *Recorder) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.stop)
		<-r.done
		err = r.sync(true)
		r.link.mu.Lock()
		defer r.link.mu.Unlock()
		if r.link.st != nil {
			err = errors.Join(err, r.link.st.Close())
			r.link.st = nil
			r.link.connected.Store(false)
		}
	})
	return err
}

// Flush writes what is pending and reads what the other replicas wrote, as
// the loop does every interval.
func (r *Recorder) Flush() error { return r.sync(false) }

// sync connects when the store is not open yet, writes this replica's
// pending evidence, and reads the others'. Without a store, pending
// evidence is simply added to the sums.
func (r *Recorder) sync(stopping bool) error {
	l := &r.link
	if l.open == nil {
		r.keepInMemory()
		return nil
	}
	l.mu.Lock()
	haveStore := l.st != nil
	l.mu.Unlock()
	if !haveStore {
		r.boundPending()
		if stopping || r.now().Before(l.retryAt) {
			return nil
		}
		if !r.connect(storeTimeout) {
			return nil
		}
	}
	if l.reloadWanted.Swap(false) {
		if err := r.reload(); err != nil {
			// Nothing is written before a load has told this replica
			// where its numbering stands: a batch numbered from a stale
			// seq would be skipped by the others' marks, or taken for
			// one already folded.
			l.reloadWanted.Store(true)
			r.boundPending()
			r.storeFailed("loading evidence", err)
			return err
		}
	}
	if err := r.write(stopping); err != nil {
		r.storeFailed("writing evidence", err)
		return err
	}
	if stopping {
		return nil
	}
	if err := r.read(); err != nil {
		r.storeFailed("reading the fleet's evidence", err)
		return err
	}
	l.setErr("")
	return nil
}

// storeFailed reports a failed call to the store on the page and in the
// log. Evidence stays in memory meanwhile.
func (r *Recorder) storeFailed(what string, err error) {
	r.link.setErr(what + " failed; this replica's evidence is kept in memory until the store answers: " + err.Error())
	r.logger.Warn(what, zap.Error(err))
}

// connect opens the store, within timeout, and loads the window's evidence
// from it, and reports whether it is open. On failure it schedules the
// next attempt, backing off.
func (r *Recorder) connect(timeout time.Duration) bool {
	l := &r.link
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	st, err := l.open(ctx)
	if err != nil {
		l.backoff = min(max(2*l.backoff, minBackoff), maxBackoff)
		if errors.Is(err, store.ErrNewerSchema) {
			l.backoff = maxBackoff
		}
		l.retryAt = r.now().Add(l.backoff)
		l.setErr("the " + l.kind + " store could not be opened; evidence is kept in memory and written once it opens: " + err.Error())
		r.logger.Error("dashboard evidence store not open", zap.String("kind", l.kind), zap.Duration("retry_in", l.backoff), zap.Error(err))
		return false
	}
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	loc := st.Location()
	l.location.Store(&loc)
	l.backoff = 0
	l.connected.Store(true)
	if err := r.reload(); err != nil {
		l.reloadWanted.Store(true)
		r.storeFailed("loading evidence", err)
	} else {
		l.setErr("")
	}
	r.logger.Info("dashboard evidence stored", zap.String("kind", l.kind), zap.String("location", loc), zap.String("replica", r.replica))
	return true
}

// registration is this replica's row in the store.
func (r *Recorder) registration(seq int64, stopped bool) store.Replica {
	return store.Replica{Name: r.replica, Started: r.started.UnixMilli(), LastSeen: r.now().UnixMilli(), LastSeq: seq, Stopped: stopped}
}

// write sends the batch whose commit was uncertain, if any, then the
// pending evidence as a new batch (or the heartbeat alone).
func (r *Recorder) write(stopping bool) error {
	l := &r.link
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if b := l.inflight; b != nil {
		if err := l.st.Apply(ctx, store.Write{Replica: r.registration(b.seq, false), Deltas: b.deltas, Samples: b.samples}); err != nil {
			return err
		}
		l.inflight = nil
		r.written(b)
	}
	b := r.take(l.seq + 1)
	seq := l.seq
	if !b.empty() {
		seq = b.seq
	}
	clear := r.clearSamples.Load()
	err := l.st.Apply(ctx, store.Write{Replica: r.registration(seq, stopping), Deltas: b.deltas, Samples: b.samples, ClearSamples: clear})
	switch {
	case err == nil:
		l.seq = seq
		if clear {
			r.clearSamples.Store(false)
		}
		r.written(b)
	case errors.Is(err, store.ErrUncertain) && !b.empty():
		// The batch may be stored: it is sent again, as it is, under the
		// same numbers, and counted once whichever it was.
		l.seq, l.inflight = seq, b
	default:
		r.putBack(b)
	}
	return err
}

// take gathers every client's pending evidence and, where they changed,
// its own samples, into a batch numbered seq. The buckets stay counted,
// as unconfirmed, until the batch is written or put back.
func (r *Recorder) take(seq int64) *batch {
	b := &batch{seq: seq, taken: map[*clientState][]*bucket{}}
	s := r.settings.Load()
	all := r.clearSamples.Load()
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		for _, pb := range cs.pending {
			data, err := pb.encode()
			if err != nil {
				r.logger.Error("encoding dashboard evidence", zap.String("client", cs.name), zap.Error(err))
				continue
			}
			b.deltas = append(b.deltas, store.Row{Replica: r.replica, Client: cs.name, Start: pb.start, Span: minute, Seq: seq, Data: data})
			b.taken[cs] = append(b.taken[cs], pb)
		}
		cs.unconfirmed = append(cs.unconfirmed, cs.pending...)
		cs.pending, cs.cur = nil, nil
		if (cs.ownDirty || all) && s.Samples {
			b.samples = append(b.samples, cs.ownSamples(r.replica, seq)...)
			b.sampled = append(b.sampled, cs)
			cs.ownDirty = false
		}
		cs.mu.Unlock()
	}
	return b
}

// ownSamples returns this replica's samples of the client in stored form;
// the caller holds cs.mu.
func (cs *clientState) ownSamples(replica string, seq int64) []store.SampleRow {
	var out []store.SampleRow
	for k, u := range cs.unmapped {
		if u.replica == replica {
			out, _ = cs.appendSample(out, kindUnmapped, strconv.Itoa(k.Status)+" "+k.Code, u.time, seq, u.body)
		}
	}
	slot := 0
	for _, m := range cs.mismatches {
		if m.replica != replica {
			continue
		}
		var kept bool
		if out, kept = cs.appendSample(out, kindMismatch, strconv.Itoa(slot), m.sample.Time, seq, m.sample); kept {
			slot++
		}
	}
	return cs.ownViolationSamples(out, replica, seq)
}

// appendSample appends v, the client's sample of kind and key taken at
// taken, in stored form to out and reports whether it did: a sample that
// does not marshal is left out.
func (cs *clientState) appendSample(out []store.SampleRow, kind, key string, taken time.Time, seq int64, v any) ([]store.SampleRow, bool) {
	data, err := json.Marshal(v)
	if err != nil {
		return out, false
	}
	return append(out, store.SampleRow{Client: cs.name, Kind: kind, Key: key, Time: taken.UnixNano(), Seq: seq, Data: data}), true
}

// written adds a written batch's buckets to the fleet's sums.
func (r *Recorder) written(b *batch) {
	now := r.now().Unix()
	for cs, bs := range b.taken {
		cs.mu.Lock()
		cs.unconfirmed = removeBuckets(cs.unconfirmed, bs)
		for _, pb := range bs {
			cs.addToSums(pb, now)
			r.fleet.count(r.replica, pb.start, pb.Requests)
		}
		cs.mu.Unlock()
	}
}

// putBack returns a batch that was not written to the pending evidence,
// to be sent with the next one, dropping the oldest buckets past
// maxPending.
func (r *Recorder) putBack(b *batch) {
	for cs, bs := range b.taken {
		cs.mu.Lock()
		cs.unconfirmed = removeBuckets(cs.unconfirmed, bs)
		for _, pb := range bs {
			cs.addPending(pb)
		}
		cs.mu.Unlock()
	}
	for _, cs := range b.sampled {
		cs.mu.Lock()
		cs.ownDirty = true
		cs.mu.Unlock()
	}
	r.boundPending()
}

// keepInMemory adds every client's pending evidence to the sums: without
// a store, there is nothing to wait for.
func (r *Recorder) keepInMemory() {
	now := r.now().Unix()
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		for _, pb := range cs.pending {
			cs.addToSums(pb, now)
			r.fleet.count(r.replica, pb.start, pb.Requests)
		}
		cs.pending, cs.cur = nil, nil
		cs.mu.Unlock()
	}
}

// boundPending drops the oldest pending buckets while more than
// maxPending are kept, and counts them as lost.
func (r *Recorder) boundPending() {
	for {
		total := 0
		var oldest *clientState
		var oldestStart int64
		for _, cs := range *r.clients.Load() {
			cs.mu.Lock()
			total += len(cs.pending)
			if len(cs.pending) > 0 && (oldest == nil || cs.pending[0].start < oldestStart) {
				oldest, oldestStart = cs, cs.pending[0].start
			}
			cs.mu.Unlock()
		}
		if total <= maxPending || oldest == nil {
			return
		}
		oldest.mu.Lock()
		if len(oldest.pending) > 0 {
			if oldest.cur == oldest.pending[0] {
				oldest.cur = nil
			}
			oldest.pending = oldest.pending[1:]
			r.lost.Add(1)
		}
		oldest.mu.Unlock()
	}
}

// addPending merges b into the pending bucket of its minute, in order;
// the caller holds cs.mu.
func (cs *clientState) addPending(b *bucket) {
	for i, pb := range cs.pending {
		if pb.start == b.start {
			pb.merge(b, true)
			return
		}
		if pb.start > b.start {
			cs.pending = append(cs.pending[:i], append([]*bucket{b}, cs.pending[i:]...)...)
			return
		}
	}
	cs.pending = append(cs.pending, b)
}

// removeBuckets returns list without the buckets of gone.
func removeBuckets(list, gone []*bucket) []*bucket {
	out := list[:0]
	for _, b := range list {
		drop := false
		for _, g := range gone {
			if b == g {
				drop = true
				break
			}
		}
		if !drop {
			out = append(out, b)
		}
	}
	clear(list[len(out):])
	return out
}

// addToSums adds b to the fleet's minute of its start, or its hour once the
// minute is past the horizon; the caller holds cs.mu.
func (cs *clientState) addToSums(b *bucket, now int64) {
	if b.span == minute && b.start >= now-minuteHorizon {
		cs.minuteAt(b.start).merge(b, true)
		return
	}
	cs.hour(hourOf(b.start)).merge(b, true)
}

// minuteAt returns the fleet's minute bucket starting at start, creating it
// in order; the caller holds cs.mu.
func (cs *clientState) minuteAt(start int64) *bucket {
	for i := len(cs.minutes) - 1; i >= 0; i-- {
		m := cs.minutes[i]
		if m.start == start {
			return m
		}
		if m.start < start {
			b := newBucket(start, minute)
			cs.minutes = append(cs.minutes[:i+1], append([]*bucket{b}, cs.minutes[i+1:]...)...)
			return b
		}
	}
	b := newBucket(start, minute)
	cs.minutes = append([]*bucket{b}, cs.minutes...)
	return b
}

// hour returns the fleet's hour bucket starting at start, creating it in
// order; the caller holds cs.mu.
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

// read reads what the other replicas wrote since the last read, adds it
// to the sums, and loads the window again when the fleet's maintenance has
// folded deltas this replica had not read.
func (r *Recorder) read() error {
	l := &r.link
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	ch, err := l.st.Changes(ctx, r.replica, l.marks)
	if err != nil {
		return err
	}
	for _, rep := range ch.Replicas {
		if rep.Name != r.replica && rep.RolledSeq > l.marks[rep.Name] && rep.LastSeq > l.marks[rep.Name] {
			// Deltas this replica had not read were folded into rolled
			// rows, which are read only by a load.
			return r.reload()
		}
	}
	r.ingest(ch.Deltas, ch.Samples)
	for _, rep := range ch.Replicas {
		if rep.Name != r.replica {
			l.marks[rep.Name] = rep.LastSeq
		}
	}
	r.fleet.setReplicas(ch.Replicas)
	return nil
}

// ingest adds rows and samples of the store to memory.
func (r *Recorder) ingest(rows []store.Row, samples []store.SampleRow) {
	now := r.now().Unix()
	from := now - int64(r.settings.Load().window().Seconds()) - hour
	var bad int
	for _, row := range rows {
		if row.Start+row.Span <= from {
			continue
		}
		b, err := decodeBucket(row.Start, row.Data)
		if err != nil {
			bad++
			continue
		}
		cs := r.client(row.Client)
		cs.mu.Lock()
		cs.addToSums(b, now)
		cs.mu.Unlock()
		r.fleet.count(row.Replica, b.start, b.Requests)
	}
	if bad > 0 {
		r.logger.Warn("stored evidence that does not decode was skipped", zap.Int("rows", bad))
	}
	if !r.settings.Load().Samples {
		return
	}
	for _, sm := range samples {
		cs := r.client(sm.Client)
		t := time.Unix(0, sm.Time)
		cs.mu.Lock()
		switch sm.Kind {
		case kindUnmapped:
			var body string
			status, code, ok := cutStatus(sm.Key)
			if ok && json.Unmarshal(sm.Data, &body) == nil {
				cs.keepUnmapped(unmappedKey{status, clip(code, maxCodeLen)}, sm.Replica, t, func() string { return body })
			}
		case kindMismatch:
			var m event.Sample
			if json.Unmarshal(sm.Data, &m) == nil {
				cs.keepMismatch(sm.Replica, &m)
			}
		case kindViolation:
			cs.ingestViolationSample(&sm)
		}
		cs.mu.Unlock()
	}
}

// cutStatus splits an unmapped sample's key, "403 code".
func cutStatus(key string) (int, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == ' ' {
			status, err := strconv.Atoi(key[:i])
			return status, key[i+1:], err == nil
		}
	}
	return 0, "", false
}

// reload loads the window's evidence again, from every replica: the sums
// are rebuilt from the store; what this replica has not written yet stays.
func (r *Recorder) reload() error {
	l := &r.link
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	now := r.now()
	since := now.Add(-r.settings.Load().window()).Unix() - hour
	snap, err := l.st.Load(ctx, since)
	if err != nil {
		return err
	}
	var own store.Replica
	for _, rep := range snap.Replicas {
		if rep.Name == r.replica {
			own = rep
		}
	}
	if own.LastSeq > l.seq {
		// An earlier run under this name wrote batches: number on from
		// them.
		l.seq = own.LastSeq
	}
	if b := l.inflight; b != nil && own.LastSeq >= b.seq {
		// The uncertain batch was stored after all, and is in the load.
		l.inflight = nil
		for cs, bs := range b.taken {
			cs.mu.Lock()
			cs.unconfirmed = removeBuckets(cs.unconfirmed, bs)
			cs.mu.Unlock()
		}
	}
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		cs.minutes, cs.hours = nil, nil
		cs.mu.Unlock()
	}
	r.fleet.reset()
	r.ingest(snap.Rolled, nil)
	r.ingest(snap.Deltas, snap.Samples)
	clear(l.marks)
	for _, rep := range snap.Replicas {
		if rep.Name != r.replica {
			l.marks[rep.Name] = rep.LastSeq
		}
	}
	l.since.Store(firstRow(snap))
	r.fleet.setReplicas(snap.Replicas)
	return nil
}

// firstRow returns the start of the oldest row of snap, 0 for none.
func firstRow(snap *store.Snapshot) int64 {
	var first int64
	for _, rows := range [][]store.Row{snap.Rolled, snap.Deltas} {
		for _, row := range rows {
			if first == 0 || row.Start < first {
				first = row.Start
			}
		}
	}
	return first
}

// maintainStore takes this replica's turn at the fleet's maintenance: it
// folds the deltas of finished minutes into minutes and the minutes past
// the horizon into hours, and enforces the retention.
func (r *Recorder) maintainStore(now time.Time) {
	l := &r.link
	l.mu.Lock()
	st := l.st
	l.mu.Unlock()
	if st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	t := now.Unix()
	// A minute is folded once every replica has written it: two flush
	// intervals after it ended leave them the time.
	minutesBefore := t - t%minute - minute - int64(2*r.fleet.interval/time.Second)
	_, err := st.Maintain(ctx, store.Maintenance{
		MinutesBefore: minutesBefore,
		HoursBefore:   t - minuteHorizon,
		RetainAfter:   now.Add(-r.settings.Load().Retention).Unix(),
		Merge:         mergeBlobs,
	})
	if err != nil {
		r.logger.Warn("maintaining dashboard evidence", zap.Error(err))
	}
}

// mergeBlobs adds stored buckets into one of span.
func mergeBlobs(span int64, blobs [][]byte) ([]byte, error) {
	var sum *bucket
	for _, data := range blobs {
		b, err := decodeBucket(0, data)
		if err != nil {
			return nil, err
		}
		if sum == nil {
			sum = newBucket(0, span)
		}
		sum.merge(b, true)
	}
	if sum == nil {
		return nil, fmt.Errorf("nothing to merge")
	}
	return sum.encode()
}

// roll moves every client's minutes past the horizon into their hours and
// drops what the window no longer covers, in memory.
func (r *Recorder) roll(now time.Time) {
	s := r.settings.Load()
	horizon := now.Unix() - minuteHorizon
	oldest := hourOf(now.Add(-s.window()).Unix())
	for name, cs := range *r.clients.Load() {
		cs.mu.Lock()
		cs.roll(horizon, oldest)
		empty := len(cs.minutes) == 0 && len(cs.hours) == 0 && len(cs.pending) == 0 && len(cs.unconfirmed) == 0
		cs.mu.Unlock()
		if empty && !r.configured(s, name) {
			r.forget(name, cs)
		}
	}
	r.fleet.roll(oldest)
}

// roll moves minutes older than horizon into their hours and drops hours
// and samples before oldest; the caller holds cs.mu.
func (cs *clientState) roll(horizon, oldest int64) {
	keep := cs.minutes[:0]
	for _, m := range cs.minutes {
		if m.start >= horizon {
			keep = append(keep, m)
			continue
		}
		cs.hour(hourOf(m.start)).merge(m, true)
	}
	clear(cs.minutes[len(keep):])
	cs.minutes = keep
	hours := cs.hours[:0]
	for _, h := range cs.hours {
		if h.start >= oldest {
			hours = append(hours, h)
		}
	}
	clear(cs.hours[len(hours):])
	cs.hours = hours
	for k, u := range cs.unmapped {
		if u.time.Unix() < oldest {
			delete(cs.unmapped, k)
		}
	}
	for len(cs.mismatches) > 0 && cs.mismatches[0].sample.Time.Unix() < oldest {
		cs.mismatches = cs.mismatches[1:]
	}
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
