// Package verdict decides whether a client is ready to be flipped to the
// envelope. It is a pure function of the evidence gathered over the
// readiness window and the configured thresholds, so the same numbers
// always give the same verdict, on the dashboard, in the API and in the
// `ready` command alike.
package verdict

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// State is a verdict's outcome.
type State string

// The states. Their order of severity is NotReady, then
// InsufficientEvidence, then Ready: a threshold that is already exceeded
// makes a client not ready however little traffic it had.
const (
	// Ready means the evidence meets every threshold over enough traffic.
	Ready State = "ready"
	// NotReady means at least one threshold is exceeded.
	NotReady State = "not_ready"
	// InsufficientEvidence means no threshold is exceeded yet, but there
	// is not enough traffic (or no comparison at all) to say so.
	InsufficientEvidence State = "insufficient_evidence"
)

// Mode is the format a client gets, as config names it.
type Mode string

// The modes.
const (
	ModeLegacy   Mode = "legacy"
	ModeEnvelope Mode = "envelope"
	ModeShadow   Mode = "shadow"
)

// Thresholds are the readiness settings of the config.
type Thresholds struct {
	// Window is how far back the evidence reaches; the API states it
	// beside the thresholds, as text ("24h").
	Window time.Duration `json:"-"`
	// MinRequests is the evidence needed for any verdict but not_ready:
	// compared exchanges for a shadow client, served requests for an
	// envelope client.
	MinRequests uint64 `json:"min_requests"`
	// MaxMismatchRatio bounds mismatches over compared exchanges.
	MaxMismatchRatio float64 `json:"max_mismatch_ratio"`
	// MaxUnmapped bounds the errors no rule matched (the shadow dry run's
	// and the live rewrites').
	MaxUnmapped uint64 `json:"max_unmapped"`
	// MaxCandidateErrorsRatio bounds the replays the candidate failed or
	// timed out on, over all replays.
	MaxCandidateErrorsRatio float64 `json:"max_candidate_errors_ratio"`
	// MaxUpstreamErrorsRatio bounds, for an envelope client, the requests
	// answered with the proxy's own 502 or 504 over all its requests.
	MaxUpstreamErrorsRatio float64 `json:"max_upstream_errors_ratio"`
	// MaxContractViolations bounds the envelopes the new API's contract
	// does not allow (live, and a shadow client's dry runs).
	MaxContractViolations uint64 `json:"max_contract_violations"`
}

// Evidence is what one client's traffic showed over the window.
type Evidence struct {
	// Mode is the format the client gets now.
	Mode Mode `json:"mode"`
	// Requests are all the client's requests.
	Requests uint64 `json:"requests"`
	// Compared are the shadow exchanges the candidate answered: matches,
	// mismatches and exchanges differing only at ignored paths.
	Compared uint64 `json:"compared"`
	// Mismatches are the compared exchanges that differed.
	Mismatches uint64 `json:"mismatches"`
	// CandidateErrors are the replays that failed or timed out.
	CandidateErrors uint64 `json:"candidate_errors"`
	// DryRuns are the shadow exchanges rewritten with no candidate to
	// compare with.
	DryRuns uint64 `json:"dry_runs"`
	// Unmapped are the errors that fell to the generic fallback, in the
	// shadow dry run or in a live rewrite.
	Unmapped uint64 `json:"unmapped"`
	// UnmappedCodes name a few of the legacy codes behind Unmapped.
	UnmappedCodes []string `json:"unmapped_codes,omitempty"`
	// UpstreamErrors are the requests the upstream failed (502, 504).
	UpstreamErrors uint64 `json:"upstream_errors"`
	// ContractChecked are the envelopes held to the new API's contract,
	// and ContractViolations those it does not allow, with a few of
	// their kinds named ("402 trial_expired (undocumented_code)").
	ContractChecked    uint64   `json:"contract_checked"`
	ContractViolations uint64   `json:"contract_violations"`
	ViolationKinds     []string `json:"violation_kinds,omitempty"`
}

// Verdict is the decision with the reasons for it, each naming the
// number and the threshold it was held against.
type Verdict struct {
	State   State    `json:"state"`
	Reasons []string `json:"reasons"`
}

// Decide returns the verdict on e under t.
//
// A shadow client is judged on its comparisons (mismatch and candidate
// error ratios, unmapped codes), an envelope client on its live rewrites
// (unmapped codes, upstream errors), so a bad flip shows too. A legacy
// client has no evidence: nothing is rewritten or compared for it.
func Decide(e Evidence, t Thresholds) Verdict {
	j := judgement{over: " over " + Window(t.Window)}
	switch e.Mode {
	case ModeShadow:
		j.unmapped(e, t)
		j.contract(e, t)
		attempts := e.Compared + e.CandidateErrors
		switch {
		case attempts == 0 && e.DryRuns > 0:
			j.missing = append(j.missing, fmt.Sprintf("no candidate comparison%s (%s dry runs): set candidate.url to compare with the new service", j.over, Count(e.DryRuns)))
		case attempts == 0:
			j.missing = append(j.missing, "no shadow exchange compared"+j.over)
		default:
			j.ratio("candidate errors", e.CandidateErrors, attempts, t.MaxCandidateErrorsRatio, "replays")
			if e.Compared > 0 {
				j.ratio("mismatch", e.Mismatches, e.Compared, t.MaxMismatchRatio, "compared")
			}
			j.enough(e.Compared, t.MinRequests, "compared")
		}
	case ModeEnvelope:
		j.unmapped(e, t)
		j.contract(e, t)
		if e.Requests > 0 {
			j.ratio("upstream errors", e.UpstreamErrors, e.Requests, t.MaxUpstreamErrorsRatio, "requests")
		}
		j.enough(e.Requests, t.MinRequests, "requests")
	default:
		j.missing = append(j.missing, fmt.Sprintf("mode %s: nothing is rewritten or compared (%s requests%s); switch it to shadow to gather evidence", modeName(e.Mode), Count(e.Requests), j.over))
	}
	switch {
	case len(j.failed) > 0:
		return Verdict{State: NotReady, Reasons: j.failed}
	case len(j.missing) > 0:
		return Verdict{State: InsufficientEvidence, Reasons: j.missing}
	}
	return Verdict{State: Ready, Reasons: j.passed}
}

// judgement collects the reasons of one verdict: thresholds exceeded,
// evidence missing, thresholds met.
type judgement struct {
	over                    string
	failed, missing, passed []string
}

// ratio holds n/d against max: "mismatch 0.4% > 0.1% over 24h, 3,112
// compared". The line is formatted once, so the "%" of a percentage is
// never read as a verb.
func (j *judgement) ratio(what string, n, d uint64, max float64, unit string) {
	r := ratio(n, d)
	line := func(op string) string {
		return fmt.Sprintf("%s %s %s %s%s, %s %s", what, Percent(r), op, Percent(max), j.over, Count(d), unit)
	}
	if r > max {
		j.failed = append(j.failed, line(">"))
	} else {
		j.passed = append(j.passed, line("≤"))
	}
}

// unmapped holds the unmapped errors against max_unmapped.
func (j *judgement) unmapped(e Evidence, t Thresholds) {
	if e.Unmapped > t.MaxUnmapped {
		j.failed = append(j.failed, unmappedReason(e, t)+j.over)
	} else {
		j.passed = append(j.passed, fmt.Sprintf("unmapped %s ≤ %s%s", Count(e.Unmapped), Count(t.MaxUnmapped), j.over))
	}
}

// contract holds the envelopes the contract does not allow against
// max_contract_violations: "contract violations 3 > 0 over 24h (402
// trial_expired (undocumented_code)), 1,200 checked". With nothing checked
// (contract.sample 0) it says nothing.
func (j *judgement) contract(e Evidence, t Thresholds) {
	checked := ", " + Count(e.ContractChecked) + " checked"
	if e.ContractViolations > t.MaxContractViolations {
		s := fmt.Sprintf("contract violations %s > %s%s", Count(e.ContractViolations), Count(t.MaxContractViolations), j.over)
		if len(e.ViolationKinds) > 0 {
			s += " (" + strings.Join(e.ViolationKinds, ", ") + ")"
		}
		j.failed = append(j.failed, s+checked)
	} else if e.ContractChecked > 0 {
		j.passed = append(j.passed, fmt.Sprintf("contract violations %s ≤ %s%s%s", Count(e.ContractViolations), Count(t.MaxContractViolations), j.over, checked))
	}
}

// enough notes too little evidence: "12 requests < 100 needed over 24h".
func (j *judgement) enough(n, need uint64, unit string) {
	if n < need {
		j.missing = append(j.missing, fmt.Sprintf("%s %s < %s needed%s", Count(n), unit, Count(need), j.over))
	}
}

// unmappedReason says how many errors fell to the fallback, and which
// codes, against the threshold.
func unmappedReason(e Evidence, t Thresholds) string {
	s := fmt.Sprintf("unmapped %s > %s", Count(e.Unmapped), Count(t.MaxUnmapped))
	if len(e.UnmappedCodes) > 0 {
		s += " (" + strings.Join(e.UnmappedCodes, ", ") + ")"
	}
	return s
}

func modeName(m Mode) string {
	if m == "" {
		return string(ModeLegacy)
	}
	return string(m)
}

// ratio is n/d, 0 when d is 0.
func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

// Percent formats a ratio as a percentage with the precision it needs:
// 0.004 is "0.4%", 0.00012 is "0.012%", 0 is "0%".
func Percent(r float64) string {
	p := r * 100
	prec := 1
	for prec < 4 && p != 0 && p < 1/pow10(prec) {
		prec++
	}
	if prec > 1 {
		// Below 0.1% the first significant digit alone would round
		// 0.012% to 0.01%: show a second one.
		prec++
	}
	s := strconv.FormatFloat(p, 'f', prec, 64)
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	return s + "%"
}

func pow10(n int) float64 {
	v := 1.0
	for range n {
		v *= 10
	}
	return v
}

// Count formats n with thousands separators: 3112 is "3,112".
func Count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	if len(s) <= 3 {
		return s
	}
	var b strings.Builder
	lead := len(s) % 3
	if lead > 0 {
		b.WriteString(s[:lead])
	}
	for i := lead; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// Window formats a duration the way people write windows: 24h, 90m, 7d.
func Window(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0 && d > 24*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
