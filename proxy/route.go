package proxy

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"net/http"
	"strings"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// Decision is the routing outcome for one request, made once when the
// request arrives and never revisited.
type Decision struct {
	// Mode is the response format the client gets.
	Mode config.Mode
	// Client names the client in metrics: a config name, a cohort name or
	// "default". It is always a name from config, so labels stay bounded.
	Client string
	// KeyID is the first 4 bytes of the key's SHA-256 (8 hex digits in
	// logs); zero with HasKey false when the request carried no key.
	KeyID  [4]byte
	HasKey bool
	// KeyHash is the first 8 bytes of the key's SHA-256: the position that
	// places the key in a cohort, and in the shadow sample.
	KeyHash uint64
	// Overridden reports that the override header chose the mode.
	Overridden bool
}

// KeyIDString returns the 8 hex digits that name an unlisted client in
// logs, or "" when the request had no key.
func (d *Decision) KeyIDString() string {
	return string(d.AppendKeyID(nil))
}

// AppendKeyID appends KeyIDString's digits to dst, so that the access log
// can write them without a string per request.
func (d *Decision) AppendKeyID(dst []byte) []byte {
	if !d.HasKey {
		return dst
	}
	return hex.AppendEncode(dst, d.KeyID[:])
}

// Router chooses each request's mode from the routing config. It is built
// once per config and immutable: lookups are a hash of the key and a map
// probe, whatever the number of clients, and allocate nothing.
type Router struct {
	header        string // canonical form of routing.header
	override      string // canonical form of routing.override_header, "" for off
	overrideModes map[string]config.Mode
	clients       map[[sha256.Size]byte]*route
	cohorts       []cohort
	fallback      route
	// vary is the Vary value to add to every response, or "" when every
	// request gets the same format.
	vary string
}

type route struct {
	name string
	mode config.Mode
}

// cohort owns the keys whose hash position falls below upTo and above the
// previous cohort's bound.
type cohort struct {
	upTo uint64
	route
}

// NewRouter builds a Router from a validated routing config.
func NewRouter(rc *config.Routing) *Router {
	r := &Router{
		header:   http.CanonicalHeaderKey(rc.Header),
		clients:  make(map[[sha256.Size]byte]*route, len(rc.Clients)),
		fallback: route{name: config.DefaultClientName, mode: rc.Default},
	}
	modes := map[config.Mode]bool{rc.Default: true}
	for _, cl := range rc.Clients {
		rt := &route{name: cl.Name, mode: cl.Mode}
		modes[cl.Mode] = true
		for _, k := range cl.KeysSHA256 {
			var d [sha256.Size]byte
			if _, err := hex.Decode(d[:], []byte(k)); err == nil {
				r.clients[d] = rt
			}
		}
	}
	var cum float64
	for i, co := range rc.Rollout {
		cum += co.Percent
		r.cohorts = append(r.cohorts, cohort{upTo: cohortBound(cum), route: route{name: rc.CohortName(i), mode: co.Mode}})
		modes[co.Mode] = true
	}
	if rc.OverrideHeader != "" {
		r.override = http.CanonicalHeaderKey(rc.OverrideHeader)
		r.overrideModes = make(map[string]config.Mode, len(rc.OverrideModes))
		for _, m := range rc.OverrideModes {
			r.overrideModes[string(m)] = m
			modes[m] = true
		}
	}
	// A shadow client gets legacy bytes, so only legacy and envelope count
	// as formats.
	formats := 0
	if modes[config.ModeLegacy] || modes[config.ModeShadow] {
		formats++
	}
	if modes[config.ModeEnvelope] {
		formats++
	}
	if formats > 1 {
		r.vary = r.header
		if r.override != "" {
			r.vary += ", " + r.override
		}
	}
	return r
}

// cohortBound maps a cumulative percentage to a position in the 64-bit
// hash space.
func cohortBound(percent float64) uint64 {
	if percent >= 100 {
		return math.MaxUint64
	}
	return uint64(percent / 100 * (1 << 64))
}

// Vary returns the value added to the Vary header of every response, or ""
// when the format does not depend on the client.
func (r *Router) Vary() string { return r.vary }

// Route decides the mode for req: the override header, then a listed
// client, then a rollout cohort, then the default.
func (r *Router) Route(req *http.Request) Decision {
	var d Decision
	var sum [sha256.Size]byte
	if vs := req.Header[r.header]; len(vs) > 0 && vs[0] != "" {
		sum = hashKey(vs[0])
		copy(d.KeyID[:], sum[:4])
		d.HasKey = true
		d.KeyHash = binary.BigEndian.Uint64(sum[:8])
	}
	rt := &r.fallback
	if d.HasKey {
		if c, ok := r.clients[sum]; ok {
			rt = c
		} else {
			for i := range r.cohorts {
				if d.KeyHash < r.cohorts[i].upTo {
					rt = &r.cohorts[i].route
					break
				}
			}
		}
	}
	d.Client, d.Mode = rt.name, rt.mode
	if r.override != "" {
		if vs := req.Header[r.override]; len(vs) > 0 {
			if m, ok := r.overrideModes[strings.TrimSpace(vs[0])]; ok {
				d.Mode, d.Overridden = m, true
			}
		}
	}
	return d
}

// hashKey returns the SHA-256 of an API key without copying it to the heap:
// keys up to 256 bytes are hashed from a stack buffer.
func hashKey(key string) [sha256.Size]byte {
	var buf [256]byte
	if len(key) <= len(buf) {
		n := copy(buf[:], key)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(key))
}
