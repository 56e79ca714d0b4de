package proxy

import (
	"net/http"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// maxUnmappedCapture bounds the copy of an unmapped error's body kept for
// its sample; larger bodies are cut (and then withheld when redact paths
// are set, since a cut body cannot be masked reliably).
const maxUnmappedCapture = 64 << 10

// recordRequest hands the finished exchange to the dashboard's recorder.
// The event lives in the pooled exchange, so recording allocates nothing.
func (ex *exchange) recordRequest(elapsed time.Duration) {
	e := &ex.record
	*e = event.Request{
		Client:            ex.decision.Client,
		Status:            ex.w.status,
		LegacyStatus:      ex.upstreamStatus,
		Envelope:          ex.envelope(),
		UpstreamError:     ex.upstreamError != "",
		Added:             -1,
		Unmapped:          ex.result.Unmapped && ex.upstreamError == "",
		UnmappedCode:      ex.unmappedCode,
		UnmappedBody:      ex.unmappedBody,
		UnmappedTruncated: ex.unmappedTruncated,
		Action:            ex.result.Action,
		Reason:            ex.result.Reason,
		LegacyCode:        ex.result.LegacyCode,
		Code:              ex.result.Code,
	}
	if ex.upstreamStatus != 0 && ex.upstreamError == "" {
		e.Added = max(elapsed-ex.upstreamTime, 0)
	}
	ex.snap.recorder.RecordRequest(e)
	e.UnmappedBody = nil
}

// noteUnmapped keeps what the dashboard shows of an error no rule matched:
// its legacy code, and with samples on a copy of its decoded body, in the
// exchange's reused buffer, scrubbed of the request's credentials. It runs
// only for such errors.
func (ex *exchange) noteUnmapped(body []byte, req *http.Request) {
	ex.unmappedCode = transform.LegacyCode(body)
	if !ex.snap.samples {
		return
	}
	n := min(len(body), maxUnmappedCapture)
	ex.unmappedBody = append(ex.unmappedBody[:0], body[:n]...)
	ex.unmappedTruncated = n < len(body)
	ex.unmappedBody = redact.Credentials(ex.snap.keyHeader, req.Header).Bytes(ex.unmappedBody)
}
