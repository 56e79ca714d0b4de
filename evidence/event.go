package evidence

import "time"

// Event is one finished request as the proxy saw it. The proxy fills it in
// its pooled per-request state and hands a pointer to Record, which reads
// it during the call and keeps nothing of it but counts and, at most, a
// masked copy of UnmappedBody.
type Event struct {
	// Client is the config name the request was routed to.
	Client string
	// Envelope reports a request served in envelope mode: an envelope
	// client's verdict counts only these.
	Envelope bool
	// Status is the status the client was sent, 0 when it got none.
	Status int
	// Action is what envelope mode did: ActionNone (legacy and shadow
	// modes, upstream failures), ActionRewrite, ActionWrap or ActionPass.
	Action Action
	// Reason is why an envelope response passed unchanged ("" when it
	// did not, or when it was not an envelope response).
	Reason string
	// LegacyStatus is the upstream's status; LegacyCode and Code the
	// rewrite's legacy and sent codes, as interned by the rules ("other"
	// for a code no rule names).
	LegacyStatus int
	LegacyCode   string
	Code         string
	// Unmapped reports an error no rule matched, with its legacy "code"
	// ("" when it has none); UnmappedBody is its legacy body (decoded,
	// credentials scrubbed, possibly cut short: see UnmappedTruncated),
	// valid only during Record, and nil when samples are off.
	Unmapped          bool
	UnmappedCode      string
	UnmappedBody      []byte
	UnmappedTruncated bool
	// UpstreamError reports that the upstream failed and the client got
	// the proxy's 502 or 504.
	UpstreamError bool
	// Added is the time the proxy added to the exchange: its duration
	// minus the wait for the upstream's response head; negative when there
	// was no upstream response to measure against.
	Added time.Duration
}

// Action is what envelope mode did to a response.
type Action uint8

// The actions.
const (
	ActionNone Action = iota
	ActionRewrite
	ActionWrap
	ActionPass
)

// ShadowEvent is one shadow comparison's outcome, handed over by the
// comparison after it ended. Its strings and Sample are already redacted.
type ShadowEvent struct {
	// Client is the config name.
	Client string
	// Outcome is the comparison's outcome, as envelope_proxy_shadow_total
	// labels it (match, mismatch, ...).
	Outcome string
	// Route is "GET /v1/jobs/{id}", empty for outcomes decided before the
	// exchange had one (dropped, skipped_method).
	Route string
	// LegacyStatus is the legacy response's status.
	LegacyStatus int
	// Unmapped reports a dry run whose error no rule matched, with the
	// legacy code ("" when the body had none) and a redacted sample body
	// ("" when samples are off).
	Unmapped       bool
	UnmappedCode   string
	UnmappedSample string
	// Paths are the JSON Pointers at which the envelope and the
	// candidate differed, collapsed ("/data/items/*/id").
	Paths []string
	// Sample is the exchange side by side, for a mismatch when samples
	// are on; nil otherwise.
	Sample *Sample
}
