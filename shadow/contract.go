package shadow

import (
	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// ContractChecker is what the comparison needs of the contract checks: a
// check of a dry run's envelope on the comparison's own goroutine, which
// is off the request path and bounded by max_in_flight already.
type ContractChecker interface {
	Check(e *event.Envelope)
}

// checkContract holds a dry run's envelope to the new API's contract: what
// the client would get once flipped. Only envelopes are held to it (a
// wrapped success, a rewritten error, the proxy's own 502); an error that
// fell to the generic fallback is counted as unmapped already.
func (c *Comparator) checkContract(client string, ex *event.Capture, d *dryRun) {
	o := &d.outcome
	if c.contract == nil || !(o.Action == transform.Wrap || (o.Action == transform.Rewrite && !o.Unmapped)) {
		return
	}
	c.contract.Check(&event.Envelope{
		Client:  client,
		KeyHash: ex.KeyHash,
		Source:  event.SourceDryRun,
		Method:  ex.Method,
		Path:    ex.Path,
		Status:  d.status,
		Code:    o.Code,
		Fields:  o.Fields,
		Body:    d.body,
		Header:  ex.Header,
	})
}
