package evidence

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/store"
)

// maxViolationKeys bounds a bucket's tally of contract violations: routes
// come from traffic, so past it kinds fold into {other}.
const maxViolationKeys = 64

// violationKey is one kind of contract violation: where the envelope came
// from (live or dry run) and went (route), what it was (status and code),
// and why the contract refuses it.
type violationKey struct {
	Source string `json:"source"`
	Route  string `json:"route"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// otherViolation is the key the violations past maxViolationKeys fold
// into.
var otherViolation = violationKey{Route: otherKey, Code: otherKey, Reason: otherKey}

// violationSample is the newest sample of one kind of violation, with the
// replica that took it.
type violationSample struct {
	replica string
	time    time.Time
	detail  string
	body    string
}

// storedViolation is a bucket's tally of one kind in the store.
type storedViolation struct {
	violationKey
	Count uint64 `json:"count"`
}

// storedViolationSample is a violation's sample in the store: its kind is
// in the data, since a route does not fit a sample's key well.
type storedViolationSample struct {
	violationKey
	Detail string `json:"detail,omitempty"`
	Body   string `json:"body"`
}

// RecordContractCheck counts one envelope held to the new API's contract,
// or skipped, and keeps a sample of a violation when samples are on. It
// never blocks on the store.
func (r *Recorder) RecordContractCheck(ev *event.ContractCheck) {
	cs := r.client(ev.Client)
	now := r.now()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	b := cs.pendingFor(now.Unix())
	if ev.Skipped != "" {
		b.ContractSkipped++
		return
	}
	b.ContractChecked++
	if !ev.Violation() {
		if ev.Extension != "" {
			b.ContractExtensions++
		}
		return
	}
	b.ContractViolations++
	k := violationKey{Source: string(ev.Source), Route: clip(ev.Route, maxRouteLen), Status: ev.Status, Code: clip(ev.Code, maxCodeLen), Reason: clip(ev.Reason, maxCodeLen)}
	bump(&b.violations, k, otherViolation, maxViolationKeys, 1)
	if r.settings.Load().Samples && ev.Sample != "" && cs.keepViolation(k, &violationSample{replica: r.replica, time: ev.Time, detail: ev.Detail, body: ev.Sample}) {
		cs.ownDirty = true
	}
}

// keepViolation keeps smp as k's sample unless a recent one is kept, and
// reports whether it did; the caller holds cs.mu.
func (cs *clientState) keepViolation(k violationKey, smp *violationSample) bool {
	if k == otherViolation {
		return false
	}
	cur := cs.violations[k]
	if cur != nil && smp.time.Sub(cur.time) < unmappedSampleAge {
		return false
	}
	if cur == nil && len(cs.violations) >= maxViolationKeys {
		return false
	}
	if cs.violations == nil {
		cs.violations = make(map[violationKey]*violationSample)
	}
	cs.violations[k] = smp
	return true
}

// ownViolationSamples appends this replica's violation samples of the
// client in stored form; the caller holds cs.mu.
func (cs *clientState) ownViolationSamples(out []store.SampleRow, replica string, seq int64) []store.SampleRow {
	for k, v := range cs.violations {
		if v.replica == replica {
			key := strconv.Itoa(k.Status) + " " + k.Code + " " + k.Reason + " " + k.Source + " " + k.Route
			out, _ = cs.appendSample(out, kindViolation, key, v.time, seq, storedViolationSample{violationKey: k, Detail: v.detail, Body: v.body})
		}
	}
	return out
}

// ingestViolationSample keeps a stored violation sample; the caller holds
// cs.mu.
func (cs *clientState) ingestViolationSample(sm *store.SampleRow) {
	var v storedViolationSample
	if json.Unmarshal(sm.Data, &v) != nil {
		return
	}
	k := v.violationKey
	k.Route, k.Code, k.Reason, k.Source = clip(k.Route, maxRouteLen), clip(k.Code, maxCodeLen), clip(k.Reason, maxCodeLen), clip(k.Source, maxCodeLen)
	cs.keepViolation(k, &violationSample{replica: sm.Replica, time: time.Unix(0, sm.Time), detail: clip(v.Detail, maxUnmappedSample), body: clip(v.Body, maxUnmappedSample+4)})
}

// ContractSummary is what the contract checks found for a client over the
// window.
type ContractSummary struct {
	// Checked are the envelopes held to the contract; Violations those it
	// does not allow; Extensions those it allows only as extensions it
	// marks; Skipped those not checked (max_in_flight reached, or
	// streamed).
	Checked    uint64 `json:"checked"`
	Violations uint64 `json:"violations"`
	Extensions uint64 `json:"extensions"`
	Skipped    uint64 `json:"skipped"`
}

// ViolationCount is one kind of contract violation with its newest sample.
type ViolationCount struct {
	// Source is live (sent to the client) or dry_run (what a shadow
	// client would get).
	Source string `json:"source"`
	// Route is "GET /v1/jobs/{id}": the operation's path template, or
	// the path's route template.
	Route  string `json:"route"`
	Status int    `json:"status"`
	// Code is the envelope's error code, "" for a success.
	Code string `json:"code"`
	// Reason is undocumented_status, undocumented_code, schema or
	// not_json.
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
	// Detail is the validator's reason, and Sample the envelope,
	// redacted and cut to 2 KiB, with SampleTime; empty when
	// dashboard.samples is false.
	Detail     string    `json:"detail,omitempty"`
	Sample     string    `json:"sample,omitempty"`
	SampleTime time.Time `json:"sample_time,omitzero"`
}

// contractSummary is sum's contract summary, nil when nothing was checked
// or skipped.
func contractSummary(sum *bucket) *ContractSummary {
	if sum.ContractChecked == 0 && sum.ContractSkipped == 0 {
		return nil
	}
	return &ContractSummary{Checked: sum.ContractChecked, Violations: sum.ContractViolations, Extensions: sum.ContractExtensions, Skipped: sum.ContractSkipped}
}

// violationCounts lists sum's violations, most frequent first, with the
// samples cs keeps; the caller holds cs.mu when cs is not nil.
func violationCounts(sum *bucket, cs *clientState, samples bool) []ViolationCount {
	out := []ViolationCount{}
	for k, n := range sum.violations {
		v := ViolationCount{Source: k.Source, Route: k.Route, Status: k.Status, Code: k.Code, Reason: k.Reason, Count: n}
		if cs != nil && samples {
			if smp := cs.violations[k]; smp != nil {
				v.Detail, v.Sample, v.SampleTime = smp.detail, smp.body, smp.time.UTC()
			}
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ViolationCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Status, b.Status), cmp.Compare(a.Code, b.Code), cmp.Compare(a.Route, b.Route), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// topViolations names the most frequent kinds of violation for the
// verdict's reason: "402 trial_expired (undocumented_code)".
func topViolations(m map[violationKey]uint64, n int) []string {
	type kind struct {
		status       int
		code, reason string
	}
	counts := map[kind]uint64{}
	for k, v := range m {
		counts[kind{k.Status, k.Code, k.Reason}] += v
	}
	kinds := make([]kind, 0, len(counts))
	for k := range counts {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b kind) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a.status, b.status), cmp.Compare(a.code, b.code), cmp.Compare(a.reason, b.reason))
	})
	var out []string
	for _, k := range kinds[:min(n, len(kinds))] {
		s := strconv.Itoa(k.status)
		if k.code != "" {
			s += " " + k.code
		}
		out = append(out, s+" ("+k.reason+")")
	}
	return out
}
