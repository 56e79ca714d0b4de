package evidence

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/envelope-proxy/envelope-proxy/store"
)

// The states of a replica on the page.
const (
	// ReplicaActive has written within the last few flush intervals.
	ReplicaActive = "active"
	// ReplicaSilent has not, and did not stop cleanly: while others
	// write, it is stuck, cut off from the store, or gone without a word.
	ReplicaSilent = "silent"
	// ReplicaStopped shut down cleanly.
	ReplicaStopped = "stopped"
	// ReplicaGone has been silent for longer than goneAfter: a pod
	// replaced long ago, most likely. Its evidence still counts while it
	// is in the window, without a warning.
	ReplicaGone = "gone"
)

// goneAfter is how long a replica stays silent, with a warning, before it
// is taken for gone.
const goneAfter = time.Hour

// fleet is what the page shows of the replicas that write the store: their
// registrations, and each one's requests by hour, for its share.
type fleet struct {
	// interval is the flush interval: a replica that has missed a few
	// is silent.
	interval time.Duration
	mu       sync.Mutex
	replicas []store.Replica
	requests map[string]map[int64]uint64
}

// count adds n requests of replica in the hour holding start.
func (f *fleet) count(replica string, start int64, n uint64) {
	if n == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requests == nil {
		f.requests = map[string]map[int64]uint64{}
	}
	m := f.requests[replica]
	if m == nil {
		m = map[int64]uint64{}
		f.requests[replica] = m
	}
	m[hourOf(start)] += n
}

// reset forgets the counts, before a load counts everything again.
func (f *fleet) reset() {
	f.mu.Lock()
	f.requests = nil
	f.mu.Unlock()
}

// setReplicas keeps the registrations read from the store.
func (f *fleet) setReplicas(rs []store.Replica) {
	f.mu.Lock()
	f.replicas = slices.Clone(rs)
	f.mu.Unlock()
}

// roll drops the counts of hours before oldest.
func (f *fleet) roll(oldest int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for name, m := range f.requests {
		for h := range m {
			if h < oldest {
				delete(m, h)
			}
		}
		if len(m) == 0 {
			delete(f.requests, name)
		}
	}
}

// silentAfter is how long a replica may go without writing before it is
// silent: three flush intervals, and at least 15 seconds.
func (f *fleet) silentAfter() time.Duration { return max(3*f.interval, 15*time.Second) }

// view returns the replicas that registered or have requests in the window
// (from on), self first then by name, with their state and share, and a
// warning when one is silent while another writes.
func (f *fleet) view(self string, now time.Time, from int64, persistent bool) ([]ReplicaSummary, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ReplicaSummary
	names := map[string]bool{self: true}
	for _, r := range f.replicas {
		names[r.Name] = true
	}
	for name := range f.requests {
		names[name] = true
	}
	var total uint64
	for name := range names {
		rs := ReplicaSummary{Name: name, Self: name == self, State: ReplicaActive}
		for h, n := range f.requests[name] {
			if h+hour > from {
				rs.Requests += n
			}
		}
		registered := false
		for _, r := range f.replicas {
			if r.Name != name {
				continue
			}
			registered = true
			rs.Started, rs.LastSeen = time.UnixMilli(r.Started).UTC(), time.UnixMilli(r.LastSeen).UTC()
			switch {
			case r.Stopped:
				rs.State = ReplicaStopped
			case now.Sub(rs.LastSeen) > goneAfter:
				rs.State = ReplicaGone
			case now.Sub(rs.LastSeen) > f.silentAfter():
				rs.State = ReplicaSilent
			}
		}
		if name == self && (!persistent || !registered) {
			rs.State, rs.LastSeen = ReplicaActive, now.UTC()
		}
		if name != self && rs.Requests == 0 && (!registered || rs.State == ReplicaGone || rs.State == ReplicaStopped) {
			// Nothing of it is left in the window.
			continue
		}
		total += rs.Requests
		out = append(out, rs)
	}
	var active, silent []string
	for i := range out {
		out[i].Share = share(out[i].Requests, total)
		switch out[i].State {
		case ReplicaActive:
			active = append(active, out[i].Name)
		case ReplicaSilent:
			silent = append(silent, out[i].Name)
		}
	}
	slices.SortFunc(out, func(a, b ReplicaSummary) int {
		if a.Self != b.Self {
			if a.Self {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		return 1
	})
	warning := ""
	if len(silent) > 0 && len(active) > 0 {
		slices.Sort(silent)
		warning = "silent while others write: " + strings.Join(silent, ", ") + " (nothing written for more than " + f.silentAfter().String() + ", and not stopped cleanly): stuck, cut off from the store, or gone"
	}
	return out, warning
}
