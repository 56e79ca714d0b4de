package evidence

import (
	"math"
	"time"
)

// The latency histogram's layout: four buckets per power of two from
// 2^minExp seconds (about 7.6 µs) to 2^(minExp+octaves) seconds (256 s),
// so every bucket spans at most 19% and a quantile read from it is within
// about 10% of the truth. A fixed array keeps recording allocation-free and
// merging a plain sum.
const (
	minExp       = -17
	octaves      = 25
	subBuckets   = 4
	latencySlots = octaves * subBuckets
)

// histogram counts durations in logarithmic buckets.
type histogram [latencySlots]uint32

// slot returns d's bucket: the float's exponent gives the octave and the
// top two mantissa bits the quarter within it, without calling math.Log.
func slot(d time.Duration) int {
	s := d.Seconds()
	if s <= 0 {
		return 0
	}
	frac, exp := math.Frexp(s) // s = frac * 2^exp, frac in [0.5, 1)
	e := exp - 1 - minExp
	if e < 0 {
		return 0
	}
	if e >= octaves {
		return latencySlots - 1
	}
	q := int((frac*2 - 1) * subBuckets)
	return e*subBuckets + min(q, subBuckets-1)
}

// bounds returns bucket i's range, in seconds.
func bounds(i int) (lo, hi float64) {
	e := i/subBuckets + minExp
	q := float64(i % subBuckets)
	return math.Ldexp(1+q/subBuckets, e), math.Ldexp(1+(q+1)/subBuckets, e)
}

func (h *histogram) add(d time.Duration) {
	h[slot(d)]++
}

func (h *histogram) merge(o *histogram) {
	for i, v := range o {
		h[i] += v
	}
}

func (h *histogram) count() uint64 {
	var n uint64
	for _, v := range h {
		n += uint64(v)
	}
	return n
}

// quantile returns the q-quantile in milliseconds: the geometric middle of
// the bucket holding it.
func (h *histogram) quantile(q float64, n uint64) float64 {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, v := range h {
		seen += uint64(v)
		if seen >= rank {
			lo, hi := bounds(i)
			return math.Round(math.Sqrt(lo*hi)*1e6) / 1e3
		}
	}
	return 0
}
