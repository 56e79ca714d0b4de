package event

import (
	"net/http"
	"time"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Capture is one shadowed request and the legacy response its client got,
// handed from the proxy to the shadow comparison once that response has been
// sent. The comparison owns it, and its byte slices, from then on.
type Capture struct {
	// Client is the client's config or cohort name.
	Client string
	// KeyHash is the first 8 bytes of the key's SHA-256, as routing uses
	// it; 0 when the request had no key.
	KeyHash uint64
	// Start is when the request arrived: with the rest of the exchange,
	// it derives the Idempotency-Key of a replayed write.
	Start time.Time
	// Method, Path and RawQuery are the client's request line.
	Method   string
	Path     string
	RawQuery string
	// Header holds the request's end-to-end headers (a copy), the client's
	// key included: the candidate needs it. Whatever is kept of it must be
	// redacted.
	Header http.Header
	// Body is the request body, up to shadow.max_request_bytes.
	Body []byte
	// BodyTruncated reports a request body larger than that: it cannot be
	// replayed faithfully.
	BodyTruncated bool
	// BodyNotCaptured reports a request the comparison would not replay
	// when the proxy admitted it, so that its body was not captured. The
	// decision stands: a reload that makes the request replayable before
	// it is compared must not send the candidate a write without its body.
	BodyNotCaptured bool

	// LegacyStatus, LegacyHeader and LegacyBody are the legacy response as
	// the client got it (the body still in its Content-Encoding), up to
	// shadow.max_body_bytes.
	LegacyStatus int
	LegacyHeader http.Header
	LegacyBody   []byte
	// LegacyTruncated reports a response body larger than that: the
	// exchange is skipped (skipped_too_large).
	LegacyTruncated bool
	// LegacyLatency is the time from the request to the end of the legacy
	// response.
	LegacyLatency time.Duration
	// UpstreamError is set when the legacy upstream failed (the client got
	// the proxy's 502/504); such exchanges have no legacy body to compare.
	UpstreamError string

	// Transformer is the rule set of the config the request was served
	// with, for the dry run.
	Transformer *transform.Transformer
	// Migrated reports a success response under migrated_prefixes, which
	// envelope mode would pass unchanged.
	Migrated bool
}
