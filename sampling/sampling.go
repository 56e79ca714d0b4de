// Package sampling decides whether a client's key is in a sample. The
// decision depends only on the key's hash, so a key is in or out
// consistently, on every request, on every replica and across restarts:
// a sampled client's evidence is whole, not a scattering of its requests.
package sampling

import "math"

// Share is a sample of keys: a share of 0.25 takes the keys whose hash
// falls in the lowest quarter of the hash space. The zero value samples
// nothing.
type Share struct {
	all       bool
	threshold uint64
	share     float64
}

// NewShare returns the sample of the given share of keys: 0 (or less, or
// NaN) none, 1 (or more) all.
func NewShare(share float64) Share {
	switch {
	case !(share > 0): // NaN included
		return Share{}
	case share >= 1:
		return Share{all: true, share: 1}
	}
	return Share{threshold: uint64(share * math.Exp2(64)), share: share}
}

// Includes reports whether the key whose hash is keyHash is in the
// sample. Requests without a key (hash 0) are in any sample that is not
// empty. It allocates nothing.
func (s Share) Includes(keyHash uint64) bool {
	switch {
	case s.all:
		return true
	case s.share == 0:
		return false
	case keyHash == 0:
		return true
	}
	return keyHash < s.threshold
}

// Value is the share the sample was made with.
func (s Share) Value() float64 { return s.share }
