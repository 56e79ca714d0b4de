package evidence

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
)

// Bounds on a bucket's noise tallies: routes and paths come from traffic
// and from the candidate's bodies.
const (
	maxNoiseRoutes = 64
	maxNoiseKeys   = 256
	// learnedTTL is how long the learned noise the comparison reads is
	// reused before it is summed again from the evidence.
	learnedTTL = 5 * time.Second
)

// noiseKey is one JSON Pointer at which the candidate's two answers to the
// same request on a route differed: its noise.
type noiseKey struct {
	Route string `json:"route"`
	Path  string `json:"path"`
}

// otherNoise is the key the noise past maxNoiseKeys folds into.
var otherNoise = noiseKey{Route: otherKey, Path: otherKey}

// storedNoise is a noise tally in a stored bucket; a tally with an empty
// Path counts the route's double replays.
type storedNoise struct {
	noiseKey
	Count uint64 `json:"count"`
}

// addNoise counts a comparison replayed twice: its route's check, and the
// paths its two answers differed at.
func (b *bucket) addNoise(ev *event.Comparison) {
	if !ev.NoiseChecked || ev.Route == "" {
		return
	}
	route := clip(ev.Route, maxRouteLen)
	bump(&b.noiseChecks, route, otherKey, maxNoiseRoutes, 1)
	for _, p := range ev.Noise {
		bump(&b.noise, noiseKey{route, clip(p, maxRouteLen)}, otherNoise, maxNoiseKeys, 1)
	}
}

// mergeNoise adds o's noise tallies into b.
func (b *bucket) mergeNoise(o *bucket) {
	for k, v := range o.noiseChecks {
		bump(&b.noiseChecks, k, otherKey, maxNoiseRoutes, v)
	}
	for k, v := range o.noise {
		bump(&b.noise, k, otherNoise, maxNoiseKeys, v)
	}
}

// storedNoise lists b's noise tallies for the store.
func (b *bucket) storedNoise() []storedNoise {
	var out []storedNoise
	for route, n := range b.noiseChecks {
		out = append(out, storedNoise{noiseKey{Route: route}, n})
	}
	for k, n := range b.noise {
		out = append(out, storedNoise{k, n})
	}
	return out
}

// loadNoise adds stored noise tallies to b, with every bound of a live one.
func (b *bucket) loadNoise(in []storedNoise) {
	for _, s := range in {
		route := clip(s.Route, maxRouteLen)
		if s.Path == "" {
			bump(&b.noiseChecks, route, otherKey, maxNoiseRoutes, s.Count)
			continue
		}
		bump(&b.noise, noiseKey{route, clip(s.Path, maxRouteLen)}, otherNoise, maxNoiseKeys, s.Count)
	}
}

// routeNoise is what the double replays of one route taught: how many
// there were, and how often each JSON Pointer differed between the two
// answers.
type routeNoise struct {
	route  string
	checks uint64
	paths  []PathCount
}

// learned is the candidate's noise summed over the fleet's evidence in the
// window, by route: the pointers as the comparison reads them, and the
// counts behind them for the ignore suggestions.
type learned struct {
	at     time.Time
	routes map[string][]string
	report []routeNoise
}

// learnedCache holds the last sum, recomputed at most every learnedTTL.
type learnedCache struct {
	mu  sync.Mutex
	cur atomic.Pointer[learned]
}

// LearnedIgnores returns the JSON Pointers learned as the candidate's noise
// on route, over the fleet's evidence in the window: paths at which two
// answers of the candidate to the same request differed. It is read once
// per comparison, off the request path.
func (r *Recorder) LearnedIgnores(route string) []string {
	return r.learnedNoise().routes[route]
}

// learnedNoise returns the current sum, summing again when it is older
// than learnedTTL; one caller sums while the others keep the old one.
func (r *Recorder) learnedNoise() *learned {
	now := r.now()
	if l := r.learned.cur.Load(); l != nil && now.Sub(l.at) < learnedTTL {
		return l
	}
	if !r.learned.mu.TryLock() {
		if l := r.learned.cur.Load(); l != nil {
			return l
		}
		r.learned.mu.Lock()
	}
	defer r.learned.mu.Unlock()
	if l := r.learned.cur.Load(); l != nil && now.Sub(l.at) < learnedTTL {
		return l
	}
	from := now.Add(-r.settings.Load().window()).Unix()
	sum := newBucket(from, 0)
	for _, cs := range *r.clients.Load() {
		cs.mu.Lock()
		for b := range cs.window(from) {
			sum.mergeNoise(b)
		}
		cs.mu.Unlock()
	}
	l := &learned{at: now, routes: map[string][]string{}}
	byRoute := map[string]*routeNoise{}
	for route, n := range sum.noiseChecks {
		if route != otherKey {
			byRoute[route] = &routeNoise{route: route, checks: n}
		}
	}
	for k, n := range sum.noise {
		rn := byRoute[k.Route]
		if rn == nil || k.Path == otherKey {
			continue
		}
		rn.paths = append(rn.paths, PathCount{Path: k.Path, Count: n})
		l.routes[k.Route] = append(l.routes[k.Route], k.Path)
	}
	for _, rn := range byRoute {
		l.report = append(l.report, *rn)
	}
	for _, paths := range l.routes {
		slices.Sort(paths)
	}
	r.learned.cur.Store(l)
	return l
}
