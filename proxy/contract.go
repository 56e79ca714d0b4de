package proxy

import "github.com/envelope-proxy/envelope-proxy/event"

// checkContract hands the envelope an envelope client is sent to the
// contract checks: the rewritten error or the wrapped success, decoded, or
// the proxy's own error; streamed says a success wrapped while it
// streamed, which is never whole in memory and is counted unchecked, and
// wrapped a buffered success wrapped around a body transform.Valid passed
// (event.Envelope.Wrapped).
// Errors that fell to the generic fallback are not handed over: they are
// counted as unmapped already. The event lives in the pooled exchange and
// the checks copy what they keep, so the hand-over allocates nothing.
func (ex *exchange) checkContract(body []byte, streamed, wrapped bool) {
	s := ex.snap
	if s.contract == nil || !ex.envelope() || ex.result.Unmapped {
		return
	}
	e := &ex.contractEnvelope
	*e = event.Envelope{
		Client:   ex.decision.Client,
		KeyHash:  ex.decision.KeyHash,
		Source:   event.SourceLive,
		Method:   ex.method,
		Path:     ex.path,
		Status:   ex.result.Status,
		Code:     ex.result.Code,
		Fields:   ex.result.Fields,
		Body:     body,
		Streamed: streamed,
		Wrapped:  wrapped,
		Header:   ex.reqHeader,
	}
	s.contract.Submit(e)
	e.Body, e.Header = nil, nil
}
