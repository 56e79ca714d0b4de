package evidence

import (
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// Overview is GET /api/clients: every client's summary and verdict over
// the readiness window, busiest first.
type Overview struct {
	// GeneratedAt is when the overview was computed.
	GeneratedAt time.Time `json:"generated_at"`
	// Window is the readiness window, as "24h".
	Window string `json:"window"`
	// Thresholds are the readiness thresholds the verdicts used.
	Thresholds verdict.Thresholds `json:"thresholds"`
	// State says where the evidence is kept.
	State StateInfo `json:"state"`
	// Replicas are the fleet's replicas: this one first, then every one
	// that wrote in the window, with its share of the requests.
	Replicas []ReplicaSummary `json:"replicas"`
	// FleetWarning names replicas gone silent while others write; "" when
	// none is.
	FleetWarning string `json:"fleet_warning,omitempty"`
	// Requests is the total over every client in the window.
	Requests uint64 `json:"requests"`
	// Clients are the rows: configured clients, rollout cohorts and the
	// default, plus clients no longer configured that still have evidence
	// in the window.
	Clients []ClientSummary `json:"clients"`
}

// StateInfo describes the evidence store.
type StateInfo struct {
	// Persistent is true when evidence is written to a store that is open.
	Persistent bool `json:"persistent"`
	// Kind is sqlite, postgres or memory, and Location the file or the
	// database URL, without its password.
	Kind     string `json:"kind"`
	Location string `json:"location,omitempty"`
	// Replica is the name of the replica that answered.
	Replica string `json:"replica"`
	// Error explains why evidence is kept in memory, when it is.
	Error string `json:"error,omitempty"`
	// Pending counts this replica's buckets of evidence (one per client
	// and minute) not yet written, and Lost those dropped while the store
	// was unreachable and memory full.
	Pending int    `json:"pending"`
	Lost    uint64 `json:"lost,omitempty"`
	// Since is the start of the oldest evidence held.
	Since time.Time `json:"since,omitzero"`
}

// ReplicaSummary is one replica of the fleet.
type ReplicaSummary struct {
	Name string `json:"name"`
	// Self marks the replica that answered.
	Self bool `json:"self,omitempty"`
	// State is active, silent or stopped.
	State string `json:"state"`
	// Started and LastSeen are when it started, and when it last wrote.
	Started  time.Time `json:"started,omitzero"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// Requests are the requests it served in the window, and Share their
	// part of the fleet's (0 to 1).
	Requests uint64  `json:"requests"`
	Share    float64 `json:"share"`
}

// KindRemoved is the kind of a row for a client no longer in config with
// evidence left; the others are config.KindClient, config.KindCohort and
// config.KindDefault.
const KindRemoved = "removed"

// ClientSummary is one client's row.
type ClientSummary struct {
	// Name is the config name (client, cohort or "default"); never a key.
	Name string `json:"name"`
	// Kind is client, cohort, default or removed.
	Kind string `json:"kind"`
	// Mode is the format the client gets now.
	Mode string `json:"mode"`
	// Requests are the client's requests in the window, and Share their
	// part of all requests (0 to 1).
	Requests uint64  `json:"requests"`
	Share    float64 `json:"share"`
	// Classes count the statuses sent by class: 1xx to 5xx, and "none"
	// when the client got no response (it went away).
	Classes map[string]uint64 `json:"classes"`
	// Rewritten, Wrapped and Passed count the envelope mode's errors
	// rewritten, successes wrapped and responses passed unchanged.
	Rewritten uint64 `json:"rewritten"`
	Wrapped   uint64 `json:"wrapped"`
	Passed    uint64 `json:"passed"`
	// Unmapped counts errors no rule matched (live and dry run) that the
	// rules in force still do not cover.
	Unmapped uint64 `json:"unmapped"`
	// UpstreamErrors count requests the upstream failed.
	UpstreamErrors uint64 `json:"upstream_errors"`
	// AddedLatency is the time the proxy added: the whole exchange minus
	// the wait for the upstream's response head.
	AddedLatency Latency `json:"added_latency"`
	// Shadow is the comparison's summary; nil when the client had no
	// shadow exchange in the window.
	Shadow *ShadowSummary `json:"shadow,omitempty"`
	// Contract is what the contract checks found; nil when no envelope
	// of the client was checked in the window.
	Contract *ContractSummary `json:"contract,omitempty"`
	// Verdict is the readiness verdict with its reasons.
	Verdict verdict.Verdict `json:"verdict"`
}

// Latency summarises durations.
type Latency struct {
	// Count is the number of durations recorded.
	Count uint64 `json:"count"`
	// P50Ms and P99Ms are the median and the 99th percentile, in
	// milliseconds.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// ShadowSummary counts a shadow client's comparison outcomes.
type ShadowSummary struct {
	// Outcomes count exchanges by outcome (match, mismatch, ignored,
	// candidate_error, candidate_timeout, dropped, skipped_too_large,
	// skipped_method, dry_run, upstream_error); zeros left out.
	Outcomes map[string]uint64 `json:"outcomes"`
	// Compared are matches, mismatches and ignored differences.
	Compared uint64 `json:"compared"`
	// MismatchRatio is mismatches over compared, and
	// CandidateErrorsRatio candidate errors and timeouts over replays.
	MismatchRatio        float64 `json:"mismatch_ratio"`
	CandidateErrorsRatio float64 `json:"candidate_errors_ratio"`
}

// ClientDetail is GET /api/clients/{name}.
type ClientDetail struct {
	ClientSummary
	// Replica is the replica the detail is limited to (?replica=NAME);
	// "" for the whole fleet.
	Replica string `json:"replica,omitempty"`
	// Rewrites count the rewritten responses by legacy status and code
	// to sent status and code, most frequent first.
	Rewrites []RewriteCount `json:"rewrites"`
	// Passthrough counts unchanged responses by reason (not_json,
	// oversize, migrated, encoding).
	Passthrough map[string]uint64 `json:"passthrough"`
	// UnmappedCodes are the legacy codes no rule matched, with a sample
	// body each (redacted, truncated; empty when dashboard.samples is
	// false).
	UnmappedCodes []UnmappedCode `json:"unmapped_codes"`
	// Routes are the shadow routes with the most mismatches.
	Routes []RouteCount `json:"routes"`
	// Paths are the JSON Pointers that differed most often.
	Paths []PathCount `json:"paths"`
	// Samples are recent mismatching exchanges, newest first.
	Samples []event.Sample `json:"samples"`
	// Violations are the envelopes the new API's contract does not
	// allow, by kind, most frequent first, each with its newest sample.
	Violations []ViolationCount `json:"violations"`
	// Recent are the client's counts over the last hour, by minute.
	Recent Series `json:"recent"`
	// Series are the client's counts over the window, by hour.
	Series Series `json:"series"`
}

// RewriteCount is one (legacy status, legacy code) to (status, code)
// pair. Codes no rule names read "other"; success wraps have no code.
type RewriteCount struct {
	LegacyStatus int    `json:"legacy_status"`
	LegacyCode   string `json:"legacy_code"`
	Status       int    `json:"status"`
	Code         string `json:"code"`
	Count        uint64 `json:"count"`
}

// UnmappedCode is one legacy error code no rule matched.
type UnmappedCode struct {
	LegacyStatus int    `json:"legacy_status"`
	Code         string `json:"code"`
	Count        uint64 `json:"count"`
	// Covered reports a code the rules in force now map: it no longer
	// counts as unmapped.
	Covered bool `json:"covered,omitempty"`
	// Sample is one legacy body with this code, redacted and cut to
	// 2 KiB; SampleTime is when it was seen.
	Sample     string    `json:"sample,omitempty"`
	SampleTime time.Time `json:"sample_time,omitzero"`
}

// RouteCount is one route template's comparisons.
type RouteCount struct {
	// Route is "GET /v1/jobs/{id}".
	Route      string `json:"route"`
	Compared   uint64 `json:"compared"`
	Mismatches uint64 `json:"mismatches"`
}

// PathCount is one differing JSON Pointer ("" is the whole document).
type PathCount struct {
	Path  string `json:"path"`
	Count uint64 `json:"count"`
}

// Series is a client's evidence over time in equal steps.
type Series struct {
	// StepSeconds is the width of a point: 60 (Recent) or 3600 (Series).
	StepSeconds int64 `json:"step_seconds"`
	// Points are the steps, oldest first; steps without traffic are
	// present with zero counts.
	Points []Point `json:"points"`
}

// Point is one step of a Series.
type Point struct {
	// Time is the step's start, in Unix seconds.
	Time       int64  `json:"t"`
	Requests   uint64 `json:"requests"`
	Errors     uint64 `json:"errors"`
	Compared   uint64 `json:"compared"`
	Mismatches uint64 `json:"mismatches"`
	Unmapped   uint64 `json:"unmapped"`
}
