package event

import (
	"net/http"
	"time"
)

// Source says where an envelope held to the contract came from.
type Source string

// The sources.
const (
	// SourceLive is an envelope the proxy sent an envelope client.
	SourceLive Source = "live"
	// SourceDryRun is an envelope a shadow client's dry run computed: what
	// the client would get once flipped.
	SourceDryRun Source = "dry_run"
)

// Envelope is one envelope to hold to the new API's contract, handed from
// the proxy (or the shadow comparison) to the contract checks. The checks
// copy what they keep: the proxy's buffers go back to its pools at once.
type Envelope struct {
	// Client is the client's config or cohort name, and KeyHash its
	// key's hash, which the checks' sample is taken by.
	Client  string
	KeyHash uint64
	Source  Source
	// Method and Path are the client's request line (a HEAD asked of an
	// envelope client is held to its GET).
	Method string
	Path   string
	// Status is the envelope's status and Code its error code ("" for a
	// success), as the rules named it.
	Status int
	Code   string
	// Fields reports an error whose entries are keyed by field.
	Fields bool
	// Body is the envelope, decoded from its Content-Encoding; nil with
	// Streamed.
	Body []byte
	// Streamed reports a success wrapped while it streamed, larger than
	// max_body_bytes: it is never whole in memory, so it is not checked,
	// and counted as skipped.
	Streamed bool
	// Wrapped reports a success the proxy wrapped: Body is
	// transform.SuccessPrefix, then exactly one JSON value it checked
	// (transform.Valid), then transform.SuccessSuffix. The checks use it
	// to hold a large one to a contract that leaves data free without
	// copying or decoding data.
	Wrapped bool
	// Header is the request's header, read only, whose credential values
	// are scrubbed from a violation's sample.
	Header http.Header
}

// Skip says why an envelope was not checked.
type Skip string

// The skips.
const (
	// SkipBusy means contract.max_in_flight checks were already waiting
	// or running.
	SkipBusy Skip = "busy"
	// SkipTooLarge means the envelope was streamed (larger than
	// max_body_bytes).
	SkipTooLarge Skip = "too_large"
)

// ContractCheck is one envelope held to the contract, or skipped, handed
// from the contract checks to the evidence. Its strings are bounded and,
// but for Sample, free of anything the request or the legacy body said.
type ContractCheck struct {
	Client string
	Source Source
	// Route is "GET /v1/jobs/{id}": the method with the operation's path
	// template, or the path's route template when no operation of the
	// document describes it.
	Route  string
	Status int
	Code   string
	// Skipped is why the envelope was not checked, "" when it was.
	Skipped Skip
	// Reason is how the envelope breaks the contract, "" when it does
	// not; Detail is the validator's message.
	Reason string
	Detail string
	// Extension is the document's note when the envelope is allowed
	// only as an extension of the new API's documentation.
	Extension string
	// Sample is the envelope, redacted and cut, for a violation when
	// samples are on; "" otherwise.
	Sample string
	Time   time.Time
}

// Violation reports whether the check found the envelope breaking the
// contract.
func (c *ContractCheck) Violation() bool { return c.Reason != "" }
