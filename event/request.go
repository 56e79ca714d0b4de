package event

import (
	"time"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Request is one finished request as the proxy saw it. The proxy fills it in
// its pooled per-request state and hands a pointer to the recorder, which
// reads it during the call and keeps nothing of it but counts and, at most,
// a masked copy of UnmappedBody.
type Request struct {
	// Client is the config name the request was routed to.
	Client string
	// Envelope reports a request served in envelope mode: an envelope
	// client's verdict counts only these.
	Envelope bool
	// Status is the status the client was sent, 0 when it got none.
	Status int
	// Action is what envelope mode did to the response, and Reason why it
	// passed one unchanged; both are meaningful only when Envelope is set
	// and UpstreamError is not.
	Action transform.Action
	Reason transform.Reason
	// LegacyStatus is the upstream's status; LegacyCode and Code the
	// rewrite's legacy and sent codes, as interned by the rules ("other"
	// for a code no rule names).
	LegacyStatus int
	LegacyCode   string
	Code         string
	// Unmapped reports an error no rule matched, with its legacy "code"
	// ("" when it has none); UnmappedBody is its legacy body (decoded,
	// credentials scrubbed, possibly cut short: see UnmappedTruncated),
	// valid only during the call, and nil when samples are off.
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

// Rewritten reports whether Action says what envelope mode did: the request
// was served in envelope mode and the upstream answered.
func (r *Request) Rewritten() bool { return r.Envelope && !r.UpstreamError }
