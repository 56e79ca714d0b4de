package shadow

import (
	"net/http"

	"github.com/envelope-proxy/envelope-proxy/codec"
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/tidwall/gjson"
)

// dryRun is what envelope mode would have sent for one legacy response.
type dryRun struct {
	// outcome is the transform's outcome: action, rule, codes, unmapped.
	outcome transform.Result
	// status and body are the envelope response: the rewritten one, or
	// the legacy one (decoded) when envelope mode would pass it.
	status int
	body   []byte
	// legacy is the legacy body, decoded from its Content-Encoding when
	// possible.
	legacy []byte
	// legacyNotJSON reports a body envelope mode would rewrite or wrap
	// that is not one JSON value: a non-empty body that does not parse, or
	// an empty error body. Such an error carries no legacy message into
	// the envelope; such a success is passed unwrapped.
	legacyNotJSON bool
}

// dryRun runs the envelope rewrite on a complete legacy response with
// envelope mode's semantics: HEAD and migrated success responses pass; a
// compressed body is decoded first (an unsupported encoding passes with
// reason "encoding", and one that does not decode gets the proxy's 502, as
// envelope mode does); an error body larger than max_body_bytes passes with
// reason "oversize".
func (c *Comparator) dryRun(s *compiled, ex *event.Capture) dryRun {
	status := ex.LegacyStatus
	d := dryRun{status: status, body: ex.LegacyBody, legacy: ex.LegacyBody}
	pass := func(reason transform.Reason) dryRun {
		d.outcome = transform.Result{Action: transform.Pass, Reason: reason, Status: status}
		return d
	}
	if ex.Method == http.MethodHead {
		// A HEAD response has no body to judge.
		return pass(transform.ReasonNone)
	}
	if ex.Migrated {
		return pass(transform.ReasonMigrated)
	}
	h := ex.LegacyHeader.Clone()
	if h == nil {
		h = http.Header{}
	}
	action, reason := transform.Decide(status, h.Get("Content-Type"))
	if action == transform.Pass {
		// Redirects, 204, files and other non-JSON successes pass by
		// design: their bodies are not the envelope's business.
		return pass(reason)
	}
	cd, err := c.codecs.Lookup(h.Get("Content-Encoding"))
	if err != nil {
		// A body in an encoding that cannot be read is not known to be
		// anything, JSON or not.
		return pass(transform.ReasonEncoding)
	}
	if cd != nil {
		var plain []byte
		fit, err := codec.DecodeAll(cd, ex.LegacyBody, &plain, s.envelopeMaxBody)
		switch {
		case err != nil:
			// Envelope mode answers a body that does not decode in its
			// declared encoding with the proxy's own 502.
			const status = http.StatusBadGateway
			code := transform.StatusCode(status)
			d.status, d.body = status, transform.AppendEnvelopeError(nil, code, transform.StatusText(status))
			d.outcome = transform.Result{Action: transform.Rewrite, Status: status, Code: code}
			return d
		case !fit:
			return pass(transform.ReasonOversize)
		}
		d.legacy, d.body = plain, plain
		h.Del("Content-Encoding")
	}
	d.legacyNotJSON = notJSON(status, d.legacy)
	if action == transform.Rewrite && int64(len(d.legacy)) > s.envelopeMaxBody {
		return pass(transform.ReasonOversize)
	}
	t := ex.Transformer
	if t == nil {
		t = c.transformer
	}
	if t == nil {
		return pass(transform.ReasonNone)
	}
	d.status, d.body, d.outcome = t.Transform(nil, status, h, d.legacy)
	return d
}

// notJSON reports a legacy body that is not exactly one JSON value: a
// non-empty body that does not parse, or an empty body on an error
// status, whose envelope can carry no legacy message.
func notJSON(status int, body []byte) bool {
	if len(body) == 0 {
		return status >= 400
	}
	return !gjson.ValidBytes(body)
}
