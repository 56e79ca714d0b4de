package shadow

import (
	"sync"
	"sync/atomic"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/prometheus/client_golang/prometheus"
)

// maxClients bounds the clients tracked one by one; beyond it, exchanges of
// further clients are counted under otherClient. Client names come from
// the config, so the bound is only reached by a config with that many
// clients and cohorts.
const maxClients = 256

// otherClient names the clients beyond maxClients.
const otherClient = "{other}"

// maxAliases bounds the names remembered as aliases of otherClient.
const maxAliases = 4 * maxClients

// clientStats are one client's Prometheus counters of outcomes, resolved
// once so that counting never hashes label values.
type clientStats struct {
	name string
	prom [event.NumOutcomes]prometheus.Counter
}

// count adds one exchange with outcome o.
func (cs *clientStats) count(o event.Outcome) {
	if i := o.Index(); i >= 0 {
		cs.prom[i].Inc()
	}
}

// clientTable maps client names to their stats. Reads load an immutable
// map with one atomic load; a new client copies the map under a mutex,
// which happens once per client name.
type clientTable struct {
	current atomic.Pointer[map[string]*clientStats]
	mu      sync.Mutex
	// distinct counts the clients with stats of their own (guarded by
	// mu).
	distinct int
	total    *prometheus.CounterVec
}

func newClientTable(total *prometheus.CounterVec) *clientTable {
	t := &clientTable{total: total}
	m := map[string]*clientStats{}
	t.current.Store(&m)
	return t
}

// get returns name's stats, creating them on first use. It allocates only
// then.
func (t *clientTable) get(name string) *clientStats {
	if cs, ok := (*t.current.Load())[name]; ok {
		return cs
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.current.Load()
	if cs, ok := old[name]; ok {
		return cs
	}
	var cs *clientStats
	m := make(map[string]*clientStats, len(old)+2)
	for k, v := range old {
		m[k] = v
	}
	if t.distinct < maxClients {
		cs = t.newStats(name)
		t.distinct++
	} else {
		// Past the bound, the client is counted as {other}; the alias is
		// remembered (up to a bound of its own) so that later lookups
		// stay lock-free.
		cs = old[otherClient]
		if cs == nil {
			cs = t.newStats(otherClient)
			m[otherClient] = cs
		}
		if len(old) >= maxAliases {
			if cs != old[otherClient] {
				t.current.Store(&m)
			}
			return cs
		}
	}
	m[name] = cs
	t.current.Store(&m)
	return cs
}

// newStats builds a client's stats and resolves its counters.
func (t *clientTable) newStats(name string) *clientStats {
	cs := &clientStats{name: name}
	for i, o := range event.Outcomes {
		cs.prom[i] = t.total.WithLabelValues(name, string(o))
	}
	return cs
}
