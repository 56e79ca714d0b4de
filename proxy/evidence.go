package proxy

import (
	"net/http"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Evidence is what the proxy needs of the migration dashboard: one call per
// finished request that never blocks on storage and keeps nothing of the
// event it is handed. Nothing flows back into the proxy.
type Evidence interface {
	Record(ev *evidence.Event)
}

// maxUnmappedCapture bounds the copy of an unmapped error's body kept for
// its sample; larger bodies are cut (and then withheld when redact paths
// are set, since a cut body cannot be masked reliably).
const maxUnmappedCapture = 64 << 10

// recordEvidence hands the finished exchange to the dashboard's recorder.
// The event lives in the pooled exchange, so recording allocates nothing.
func (h *Handler) recordEvidence(ex *exchange, elapsed time.Duration) {
	e := &ex.evidence
	*e = evidence.Event{
		Client:            ex.decision.Client,
		Status:            ex.rec.status,
		LegacyStatus:      ex.upstreamStatus,
		Envelope:          ex.decision.Mode == config.ModeEnvelope,
		UpstreamError:     ex.upstreamError != "",
		Added:             -1,
		Unmapped:          ex.outcome.Unmapped && ex.upstreamError == "",
		UnmappedCode:      ex.unmappedCode,
		UnmappedBody:      ex.unmappedBody,
		UnmappedTruncated: ex.unmappedTruncated,
	}
	if ex.upstreamStatus != 0 && ex.upstreamError == "" {
		e.Added = max(elapsed-ex.upstreamTime, 0)
	}
	if e.Envelope && !e.UpstreamError {
		o := &ex.outcome
		switch o.Action {
		case transform.Rewrite:
			e.Action, e.LegacyCode, e.Code = evidence.ActionRewrite, o.LegacyCode, o.Code
		case transform.Wrap:
			e.Action = evidence.ActionWrap
		case transform.Pass:
			e.Action, e.Reason = evidence.ActionPass, string(o.Reason)
		}
	}
	h.evidence.Record(e)
	e.UnmappedBody = nil
}

// noteUnmapped keeps what the dashboard shows of an error no rule matched:
// its legacy code, and with samples on a copy of its decoded body, in the
// exchange's reused buffer, scrubbed of the request's credentials. It runs
// only for such errors.
func (ex *exchange) noteUnmapped(body []byte, req *http.Request, keyHeader string, samples bool) {
	ex.unmappedCode = transform.LegacyCode(body)
	if !samples {
		return
	}
	n := min(len(body), maxUnmappedCapture)
	ex.unmappedBody = append(ex.unmappedBody[:0], body[:n]...)
	ex.unmappedTruncated = n < len(body)
	ex.unmappedBody = redact.Credentials(keyHeader, req.Header).Bytes(ex.unmappedBody)
}
