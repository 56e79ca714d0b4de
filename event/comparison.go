package event

import "time"

// Comparison is one shadow comparison's outcome, handed over by the
// comparison once it has ended. Its strings and Sample are already
// redacted; its bounded strings (Route, LegacyCode, Rule, Paths) are safe
// as keys of stored evidence.
type Comparison struct {
	// Client is the config name.
	Client string
	// Outcome is the comparison's outcome.
	Outcome Outcome
	// Route is "GET /v1/jobs/{id}", empty for outcomes decided before the
	// exchange had one (dropped, skipped_method).
	Route string
	// LegacyStatus is the legacy response's status, and LegacyCode its
	// code as the rules name it ("other" for one they do not, "" when the
	// body had none).
	LegacyStatus int
	LegacyCode   string
	// LegacyBodyCode is an error's code as its legacy body has it,
	// credentials scrubbed ("" when the body had none, and for a status
	// below 400): what a rule suggested for the error matches on, where
	// LegacyCode is "other" for every code a rule matched by status or
	// message alone.
	LegacyBodyCode string
	// Rule is the rule the dry run matched, "" for the generic fallback.
	Rule string
	// EnvelopeStatus is the status the dry run's envelope has, and
	// CandidateStatus the candidate's (0 when it did not answer);
	// EnvelopeCode and CandidateCode their error codes ("" for none).
	EnvelopeStatus  int
	CandidateStatus int
	EnvelopeCode    string
	CandidateCode   string
	// LegacyNotJSON reports a legacy body that envelope mode would
	// rewrite or wrap but that is not one JSON value.
	LegacyNotJSON bool
	// LegacyLatency is the legacy exchange's duration as the client saw
	// it, and CandidateLatency the candidate's, 0 when it did not answer.
	LegacyLatency    time.Duration
	CandidateLatency time.Duration
	// Unmapped reports a dry run whose error no rule matched (its code is
	// LegacyBodyCode), with a redacted sample body ("" when samples are
	// off).
	Unmapped       bool
	UnmappedSample string
	// Paths are the JSON Pointers at which the envelope and the
	// candidate differed, collapsed ("/data/items/*/id").
	Paths []string
	// NoiseChecked reports an exchange replayed twice to learn the
	// candidate's noise, and Noise the collapsed JSON Pointers at which
	// its two answers differed.
	NoiseChecked bool
	Noise        []string
	// Sample is the exchange side by side, for a mismatch when samples
	// are on; nil otherwise.
	Sample *Sample
}

// Sample is one mismatching exchange side by side, redacted: no key,
// Authorization or Cookie value, the dashboard.redact paths masked, each
// body cut to 4 KiB.
type Sample struct {
	Time    time.Time `json:"time"`
	Request string    `json:"request"`
	// Route and LegacyCode place the sample among the comparisons of its
	// route, legacy status and code.
	Route      string `json:"route,omitempty"`
	LegacyCode string `json:"legacy_code,omitempty"`
	// Header holds the request's headers, credentials replaced and
	// values scrubbed.
	Header          map[string]string `json:"header,omitempty"`
	LegacyStatus    int               `json:"legacy_status"`
	EnvelopeStatus  int               `json:"envelope_status"`
	CandidateStatus int               `json:"candidate_status"`
	LegacyBody      string            `json:"legacy_body"`
	EnvelopeBody    string            `json:"envelope_body"`
	CandidateBody   string            `json:"candidate_body"`
	// BodiesTruncated reports that at least one body was cut.
	BodiesTruncated bool `json:"bodies_truncated,omitempty"`
	// Diff are the RFC 6902 operations from the envelope to the
	// candidate's body, after normalisation.
	Diff []DiffOp `json:"diff"`
	// DiffTruncated reports more operations than the 32 kept.
	DiffTruncated bool `json:"diff_truncated,omitempty"`
}

// DiffOp is one RFC 6902 operation turning the envelope into the
// candidate's body.
type DiffOp struct {
	// Op is add, remove or replace.
	Op string `json:"op"`
	// Path is the JSON Pointer ("" is the whole document).
	Path string `json:"path"`
	// Value is the candidate's value as JSON text, cut to 256 bytes.
	Value string `json:"value,omitempty"`
}
