package store

import (
	"cmp"
	"fmt"
	"slices"
)

// rowKey names a rolled row.
type rowKey struct {
	replica, client string
	start           int64
}

// fold merges rows into rolled rows of span: one per replica, client and
// span start, each the merge of its rows and of the rolled row already
// stored under its key, if any (existing). The result is in key order, so
// that two stores write the same rows in the same order.
func fold(span int64, rows []Row, existing map[rowKey][]byte, merge func(int64, [][]byte) ([]byte, error)) ([]Row, error) {
	groups := map[rowKey][][]byte{}
	for _, r := range rows {
		k := rowKey{r.Replica, r.Client, r.Start - r.Start%span}
		if groups[k] == nil {
			if old, ok := existing[k]; ok {
				groups[k] = append(groups[k], old)
			}
		}
		groups[k] = append(groups[k], r.Data)
	}
	keys := make([]rowKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b rowKey) int {
		return cmp.Or(cmp.Compare(a.replica, b.replica), cmp.Compare(a.client, b.client), cmp.Compare(a.start, b.start))
	})
	out := make([]Row, 0, len(keys))
	for _, k := range keys {
		data, err := merge(span, groups[k])
		if err != nil {
			return nil, fmt.Errorf("folding %s/%s at %d: %w", k.replica, k.client, k.start, err)
		}
		out = append(out, Row{Replica: k.replica, Client: k.client, Start: k.start, Span: span, Data: data})
	}
	return out, nil
}

// maxSeqs returns the highest sequence number among rows, by replica.
func maxSeqs(rows []Row) map[string]int64 {
	m := map[string]int64{}
	for _, r := range rows {
		m[r.Replica] = max(m[r.Replica], r.Seq)
	}
	return m
}

// secondsToNanos converts Unix seconds to Unix nanoseconds, saturating
// instead of overflowing for times past the year 2262.
func secondsToNanos(s int64) int64 {
	return saturatingMul(s, 1_000_000_000)
}

// secondsToMillis converts Unix seconds to Unix milliseconds, saturating
// like secondsToNanos: a retention far in the future overflowed to a time
// before every registration and deleted none of them.
func secondsToMillis(s int64) int64 {
	return saturatingMul(s, 1000)
}

// saturatingMul returns s*unit, or the int64 nearest to it when the product
// overflows; unit is positive.
func saturatingMul(s, unit int64) int64 {
	switch {
	case s > (1<<63-1)/unit:
		return 1<<63 - 1
	case s < -(1<<63)/unit:
		return -1 << 63
	}
	return s * unit
}

// notFolded returns the deltas of a batch that the maintenance has not
// folded yet, given the writer's rolled_seq: a batch sent again after an
// uncertain commit may have been stored, and its deltas folded and deleted
// since, and inserting them again would count them twice. Batches are
// written in order and one is sent again before the next is written, so a
// batch at or below rolled_seq was stored: those of its deltas still there
// are left alone by the insert's ON CONFLICT, the others were folded.
func notFolded(deltas []Row, rolledSeq int64) []Row {
	if rolledSeq <= 0 {
		return deltas
	}
	out := make([]Row, 0, len(deltas))
	for _, d := range deltas {
		if d.Seq > rolledSeq {
			out = append(out, d)
		}
	}
	return out
}

// nonNil returns b, or an empty slice when b is nil: drivers bind a nil
// slice as NULL, and the data columns are NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
