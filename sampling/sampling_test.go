package sampling

import (
	"math"
	"testing"
)

func TestShareIncludes(t *testing.T) {
	tests := []struct {
		name    string
		share   float64
		keyHash uint64
		want    bool
	}{
		{"none", 0, 42, false},
		{"none, no key", 0, 0, false},
		{"negative is none", -1, 42, false},
		{"NaN is none", math.NaN(), 42, false},
		{"all", 1, math.MaxUint64, true},
		{"more than all is all", 2, math.MaxUint64, true},
		{"a quarter: low hash in", 0.25, 1 << 60, true},
		{"a quarter: high hash out", 0.25, 1 << 63, false},
		{"a quarter: the boundary is out", 0.25, 1 << 62, false},
		{"a quarter: no key is in", 0.25, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewShare(tt.share).Includes(tt.keyHash); got != tt.want {
				t.Errorf("NewShare(%v).Includes(%#x): got %v; want %v", tt.share, tt.keyHash, got, tt.want)
			}
		})
	}
}

// TestShareIsAboutItsValue checks that a share takes about that share of
// evenly spread hashes.
func TestShareIsAboutItsValue(t *testing.T) {
	for _, share := range []float64{0.01, 0.1, 0.5, 0.9} {
		s := NewShare(share)
		const n = 100_000
		in := 0
		for i := uint64(1); i <= n; i++ {
			if s.Includes(i * (math.MaxUint64 / n)) {
				in++
			}
		}
		if got := float64(in) / n; math.Abs(got-share) > 0.001 {
			t.Errorf("share %v: got %v of the keys; want %v", share, got, share)
		}
	}
}
