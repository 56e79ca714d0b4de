package evidence

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// The detail's list bounds.
const (
	maxListedRoutes = 10
	maxListedPaths  = 10
	maxListedCodes  = 5
)

// inWindow reports whether b counts in a window starting at from: a
// minute that ends after it, or an hour that starts in from's hour or
// later.
func (b *bucket) inWindow(from int64) bool {
	return b.start >= hourOf(from) && b.start+b.span > from
}

// aggregate sums the client's buckets of the window: the fleet's minutes
// and hours (hours that started before the window's hour are left out;
// minutes and hours are never both counted, since a minute is rolled into
// its hour when it leaves the last hour), and this replica's own evidence
// not yet written. The caller holds cs.mu.
func (cs *clientState) aggregate(from int64, tallies bool) *bucket {
	sum := newBucket(from, 0)
	for b := range cs.window(from) {
		sum.merge(b, tallies)
	}
	return sum
}

// window yields the client's buckets that aggregate sums. The caller
// holds cs.mu.
func (cs *clientState) window(from int64) iter.Seq[*bucket] {
	return func(yield func(*bucket) bool) {
		for _, list := range [][]*bucket{cs.hours, cs.minutes, cs.unconfirmed, cs.pending} {
			for _, b := range list {
				if b.inWindow(from) && !yield(b) {
					return
				}
			}
		}
	}
}

// Overview returns every client's summary and verdict.
func (r *Recorder) Overview() Overview {
	s := r.settings.Load()
	now := r.now()
	from := now.Add(-s.window()).Unix()
	ov := r.header(s, now)
	clients := *r.clients.Load()
	seen := make(map[string]bool, len(s.rows))
	for _, rw := range s.rows {
		seen[rw.name] = true
		ov.Clients = append(ov.Clients, r.summary(s, rw, clients[rw.name], from, false).ClientSummary)
	}
	for name, cs := range clients {
		if seen[name] {
			continue
		}
		sm := r.summary(s, row{name: name, kind: KindRemoved}, cs, from, false)
		if sm.Requests == 0 && sm.Shadow == nil {
			continue
		}
		ov.Clients = append(ov.Clients, sm.ClientSummary)
	}
	for _, c := range ov.Clients {
		ov.Requests += c.Requests
	}
	for i := range ov.Clients {
		ov.Clients[i].Share = share(ov.Clients[i].Requests, ov.Requests)
	}
	slices.SortStableFunc(ov.Clients, func(a, b ClientSummary) int {
		if c := cmp.Compare(b.Requests, a.Requests); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return ov
}

func (r *Recorder) header(s *settings, now time.Time) Overview {
	ov := Overview{
		GeneratedAt: now.UTC(),
		Window:      verdict.Window(s.window()),
		Thresholds:  s.Thresholds,
		State:       r.State(),
		Clients:     []ClientSummary{},
	}
	ov.Replicas, ov.FleetWarning = r.fleet.view(r.replica, now, now.Add(-s.window()).Unix(), ov.State.Persistent)
	return ov
}

// State says where the evidence is kept, and what went wrong with the
// store, if anything; /readyz's body says it too.
func (r *Recorder) State() StateInfo {
	l := &r.link
	st := StateInfo{Persistent: l.connected.Load(), Kind: l.kind, Replica: r.replica, Lost: r.lost.Load()}
	if loc := l.location.Load(); loc != nil {
		st.Location = *loc
	}
	switch e := l.err.Load(); {
	case e != nil:
		st.Error = *e
	case l.open == nil:
		st.Error = l.memoryReason
	}
	since := r.started.Unix()
	if s := l.since.Load(); s != 0 && s < since {
		since = s
	}
	st.Since = time.Unix(since, 0).UTC()
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		st.Pending += len(cs.pending) + len(cs.unconfirmed)
		cs.mu.Unlock()
	}
	return st
}

func share(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// detail is a summary with the aggregated bucket it came from and the
// errors in it the rules leave to the fallback, which the client view lists.
type detail struct {
	ClientSummary
	sum       *bucket
	uncovered map[unmappedKey]uint64
}

// summary builds one row; cs may be nil for a client without evidence.
func (r *Recorder) summary(s *settings, rw row, cs *clientState, from int64, tallies bool) detail {
	sum := newBucket(from, 0)
	var uncovered map[unmappedKey]uint64
	if cs != nil {
		cs.mu.Lock()
		sum = cs.aggregate(from, tallies)
		uncovered = s.uncovered(sum.unmapped, cs.unmapped)
		cs.mu.Unlock()
	}
	var unmapped uint64
	for _, n := range uncovered {
		unmapped += n
	}
	c := ClientSummary{
		Name:           rw.name,
		Kind:           rw.kind,
		Mode:           rw.mode,
		Requests:       sum.Requests,
		Classes:        make(map[string]uint64, len(classNames)),
		Rewritten:      sum.Rewritten,
		Wrapped:        sum.Wrapped,
		Passed:         sum.Passed,
		Unmapped:       unmapped,
		UpstreamErrors: sum.UpstreamErrors,
	}
	for i, n := range sum.Classes {
		if n > 0 {
			c.Classes[classNames[i]] = n
		}
	}
	if n := sum.latency.count(); n > 0 {
		c.AddedLatency = Latency{Count: n, P50Ms: sum.latency.quantile(0.5, n), P99Ms: sum.latency.quantile(0.99, n)}
	}
	c.Contract = contractSummary(sum)
	if sum.shadowTotal() > 0 {
		sh := &ShadowSummary{Outcomes: map[string]uint64{}, Compared: sum.compared()}
		for i, n := range sum.Shadow {
			if n > 0 {
				sh.Outcomes[string(event.Outcomes[i])] = n
			}
		}
		sh.MismatchRatio = share(sum.Shadow[outcomeMismatch], sh.Compared)
		sh.CandidateErrorsRatio = share(sum.candidateErrors(), sh.Compared+sum.candidateErrors())
		c.Shadow = sh
	}
	ev := verdict.Evidence{
		Mode:               verdict.Mode(rw.mode),
		Requests:           sum.Requests,
		Compared:           sum.compared(),
		Mismatches:         sum.Shadow[outcomeMismatch],
		CandidateErrors:    sum.candidateErrors(),
		DryRuns:            sum.Shadow[outcomeDryRun],
		Unmapped:           c.Unmapped,
		UnmappedCodes:      topCodes(uncovered, maxListedCodes),
		UpstreamErrors:     sum.UpstreamErrors,
		ContractChecked:    sum.ContractChecked,
		ContractViolations: sum.ContractViolations,
		ViolationKinds:     topViolations(sum.violations, maxListedCodes),
	}
	if rw.mode == string(verdict.ModeEnvelope) {
		// A flipped client is judged on what it got since the flip.
		ev.Requests, ev.UpstreamErrors = sum.Envelope, sum.EnvelopeUpstreamErrors
	}
	if rw.kind == KindRemoved {
		c.Verdict = verdict.Verdict{State: verdict.InsufficientEvidence, Reasons: []string{"no longer in config: its evidence is kept until it leaves the window"}}
	} else {
		c.Verdict = verdict.Decide(ev, s.Thresholds)
	}
	return detail{ClientSummary: c, sum: sum, uncovered: uncovered}
}

// topCodes names the most frequent unmapped codes, "(none)" for errors
// without one.
func topCodes(m map[unmappedKey]uint64, n int) []string {
	keys := make([]unmappedKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b unmappedKey) int {
		if c := cmp.Compare(m[b], m[a]); c != 0 {
			return c
		}
		return cmp.Compare(a.Code, b.Code)
	})
	var out []string
	for _, k := range keys[:min(n, len(keys))] {
		out = append(out, codeLabel(k.Code))
	}
	return out
}

func codeLabel(code string) string {
	if code == "" {
		return "(none)"
	}
	return code
}

// Client returns one client's details, false for a name that is neither
// configured nor has evidence in the window.
func (r *Recorder) Client(name string) (ClientDetail, bool) {
	d, ok, _ := r.ReplicaClient(name, "")
	return d, ok
}

// ReplicaClient returns one client's details as Client does, limited to
// one replica's traffic when replica is not "": its rows are read from
// the store, so that any replica can show any other's.
func (r *Recorder) ReplicaClient(name, replica string) (ClientDetail, bool, error) {
	s := r.settings.Load()
	now := r.now()
	from := now.Add(-s.window()).Unix()
	cs := (*r.clients.Load())[name]
	if replica != "" {
		var err error
		if cs, err = r.replicaState(name, replica, cs, from); err != nil {
			return ClientDetail{}, false, err
		}
	}
	rw := row{name: name, kind: KindRemoved}
	found := false
	for _, c := range s.rows {
		if c.name == name {
			rw, found = c, true
			break
		}
	}
	if !found && cs == nil {
		return ClientDetail{}, false, nil
	}
	d := r.summary(s, rw, cs, from, true)
	if !found && d.Requests == 0 && d.Shadow == nil {
		return ClientDetail{}, false, nil
	}
	d.Share = share(d.Requests, r.totalRequests(from))
	out := ClientDetail{
		ClientSummary: d.ClientSummary,
		Replica:       replica,
		Rewrites:      []RewriteCount{},
		Passthrough:   d.sum.passed,
		UnmappedCodes: []UnmappedCode{},
		Routes:        []RouteCount{},
		Paths:         []PathCount{},
		Samples:       []event.Sample{},
	}
	if out.Passthrough == nil {
		out.Passthrough = map[string]uint64{}
	}
	for k, v := range d.sum.rewrites {
		out.Rewrites = append(out.Rewrites, RewriteCount{k.LegacyStatus, k.LegacyCode, k.Status, k.Code, v})
	}
	slices.SortFunc(out.Rewrites, func(a, b RewriteCount) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Or(cmp.Compare(a.LegacyStatus, b.LegacyStatus), cmp.Compare(a.LegacyCode, b.LegacyCode))
	})
	routes, paths := map[string]*RouteCount{}, map[string]uint64{}
	for k, g := range d.sum.groups {
		rc := routes[k.Route]
		if rc == nil {
			rc = &RouteCount{Route: k.Route}
			routes[k.Route] = rc
		}
		rc.Compared += g.compared()
		rc.Mismatches += g.Outcomes[outcomeMismatch]
		for p, n := range g.paths {
			paths[p] += n
		}
	}
	for _, rc := range routes {
		if rc.Compared > 0 {
			out.Routes = append(out.Routes, *rc)
		}
	}
	slices.SortFunc(out.Routes, func(a, b RouteCount) int {
		return cmp.Or(cmp.Compare(b.Mismatches, a.Mismatches), cmp.Compare(b.Compared, a.Compared), cmp.Compare(a.Route, b.Route))
	})
	out.Routes = out.Routes[:min(len(out.Routes), maxListedRoutes)]
	for k, v := range paths {
		out.Paths = append(out.Paths, PathCount{Path: k, Count: v})
	}
	slices.SortFunc(out.Paths, func(a, b PathCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Path, b.Path))
	})
	out.Paths = out.Paths[:min(len(out.Paths), maxListedPaths)]
	if cs != nil {
		cs.mu.Lock()
		for k, v := range d.sum.unmapped {
			_, open := d.uncovered[k]
			u := UnmappedCode{LegacyStatus: k.Status, Code: k.Code, Count: v, Covered: !open}
			if smp := cs.unmapped[k]; smp != nil && s.Samples {
				u.Sample, u.SampleTime = smp.body, smp.time.UTC()
			}
			out.UnmappedCodes = append(out.UnmappedCodes, u)
		}
		for i := len(cs.mismatches) - 1; i >= 0 && s.Samples; i-- {
			if m := cs.mismatches[i]; m.sample.Time.Unix() >= from {
				out.Samples = append(out.Samples, *m.sample)
			}
		}
		out.Violations = violationCounts(d.sum, cs, s.Samples)
		out.Recent, out.Series = cs.series(now, from)
		cs.mu.Unlock()
	} else {
		out.Violations = violationCounts(d.sum, nil, false)
		out.Recent, out.Series = (&clientState{}).series(now, from)
	}
	slices.SortFunc(out.UnmappedCodes, func(a, b UnmappedCode) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Code, b.Code))
	})
	return out, true, nil
}

// replicaState builds the evidence of one replica's traffic for a client:
// its rows in the store since from, this replica's own evidence not yet
// written when it is this one, and the samples it took. Without a store,
// only this replica's own evidence is known.
func (r *Recorder) replicaState(name, replica string, fleetState *clientState, from int64) (*clientState, error) {
	out := &clientState{name: name}
	now := r.now().Unix()
	l := &r.link
	l.mu.Lock()
	st := l.st
	l.mu.Unlock()
	switch {
	case st != nil:
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		defer cancel()
		rows, err := st.Rows(ctx, replica, name, from-hour)
		if err != nil {
			return nil, fmt.Errorf("reading replica %s: %w", replica, err)
		}
		for _, row := range rows {
			if b, err := decodeBucket(row.Start, row.Data); err == nil {
				out.addToSums(b, now)
			}
		}
	case replica != r.replica:
		return nil, nil
	}
	if fleetState == nil {
		if len(out.minutes)+len(out.hours) == 0 {
			return nil, nil
		}
		return out, nil
	}
	fleetState.mu.Lock()
	defer fleetState.mu.Unlock()
	if replica == r.replica {
		if st == nil {
			// Memory only: every bucket is this replica's.
			for _, list := range [][]*bucket{fleetState.hours, fleetState.minutes} {
				for _, b := range list {
					out.addToSums(b, now)
				}
			}
		}
		// Evidence whose write is uncertain may be in the rows already:
		// with a store, only what was never sent is added.
		lists := [][]*bucket{fleetState.pending}
		if st == nil {
			lists = append(lists, fleetState.unconfirmed)
		}
		for _, list := range lists {
			for _, b := range list {
				out.addToSums(b, now)
			}
		}
	}
	for k, u := range fleetState.unmapped {
		if u.replica == replica {
			if out.unmapped == nil {
				out.unmapped = map[unmappedKey]*unmappedSample{}
			}
			out.unmapped[k] = u
		}
	}
	for _, m := range fleetState.mismatches {
		if m.replica == replica {
			out.mismatches = append(out.mismatches, m)
		}
	}
	for k, v := range fleetState.violations {
		if v.replica == replica {
			if out.violations == nil {
				out.violations = map[violationKey]*violationSample{}
			}
			out.violations[k] = v
		}
	}
	return out, nil
}

// totalRequests sums every client's requests in the window, the
// denominator of a client's share.
func (r *Recorder) totalRequests(from int64) uint64 {
	var n uint64
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		for _, list := range [][]*bucket{cs.hours, cs.minutes, cs.unconfirmed, cs.pending} {
			for _, b := range list {
				if b.inWindow(from) {
					n += b.Requests
				}
			}
		}
		cs.mu.Unlock()
	}
	return n
}

// series returns the last hour by minute and the window by hour, zeros
// included; the caller holds cs.mu.
func (cs *clientState) series(now time.Time, from int64) (recent, window Series) {
	end := now.Unix()
	recent = Series{StepSeconds: minute, Points: make([]Point, 0, 60)}
	first := end - end%minute - (60-1)*minute
	for t := first; t <= end; t += minute {
		recent.Points = append(recent.Points, Point{Time: t})
	}
	window = Series{StepSeconds: hour, Points: []Point{}}
	for t := hourOf(from); t <= end; t += hour {
		window.Points = append(window.Points, Point{Time: t})
	}
	add := func(p *Point, b *bucket) {
		p.Requests += b.Requests
		p.Errors += b.Classes[3] + b.Classes[4]
		p.Compared += b.compared()
		p.Mismatches += b.Shadow[outcomeMismatch]
		p.Unmapped += b.Unmapped + b.ShadowUnmapped
	}
	for _, list := range [][]*bucket{cs.hours, cs.minutes, cs.unconfirmed, cs.pending} {
		for _, b := range list {
			if i := (b.start - window.Points[0].Time) / hour; i >= 0 && int(i) < len(window.Points) {
				add(&window.Points[i], b)
			}
			if b.span == minute {
				if i := (b.start - first) / minute; i >= 0 && int(i) < len(recent.Points) {
					add(&recent.Points[i], b)
				}
			}
		}
	}
	return recent, window
}

// uncovered returns the unmapped errors that the rules in force do not
// cover now: each legacy status and code is rewritten again, from its
// sample when one is kept, so that an error a rule added since covers no
// longer counts against the verdict. What folded into {other} is never
// known to be covered.
func (s *settings) uncovered(unmapped map[unmappedKey]uint64, samples map[unmappedKey]*unmappedSample) map[unmappedKey]uint64 {
	out := make(map[unmappedKey]uint64, len(unmapped))
	for k, n := range unmapped {
		if k.Code != otherKey && s.transformer != nil {
			sample := ""
			if u := samples[k]; u != nil {
				sample = u.body
			}
			if !s.rewrite(k.Status, legacyBody(legacyKey{k.Status, k.Code}, sample, nil)).Unmapped {
				continue
			}
		}
		out[k] = n
	}
	return out
}
