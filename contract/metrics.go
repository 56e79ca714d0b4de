package contract

import (
	"strconv"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
)

// The results of a check: the result label of
// envelope_proxy_contract_checks_total.
const (
	resultConforms  = "conforms"
	resultExtension = "extension"
	resultViolation = "violation"
	// The skips, one label value each (event.SkipBusy, SkipTooLarge).
	resultSkippedBusy     = "skipped_busy"
	resultSkippedTooLarge = "skipped_too_large"
)

// maxCodeLabel bounds the code label: codes come from the rules, but a
// code template can render part of a legacy body.
const maxCodeLabel = 64

// metrics are the checks' counters. Their labels are bounded: clients by
// the config, sources, results and reasons by this package, statuses by
// HTTP, and codes by the rules.
type metrics struct {
	checks     *prometheus.CounterVec
	violations *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_contract_checks_total",
			Help: "Envelopes held to the new API's contract, by client, source (live: sent to an envelope client; dry_run: a shadow client's dry run) and result (conforms, extension: allowed only as an extension the contract marks, violation, skipped_busy, skipped_too_large).",
		}, []string{"client", "source", "result"}),
		violations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_contract_violations_total",
			Help: "Envelopes the new API's contract does not allow, by client, status, error code (none for a success) and reason (undocumented_status, undocumented_code, schema, not_json).",
		}, []string{"client", "status", "code", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.checks, m.violations} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// count counts one check or skip.
func (m *metrics) count(ev *event.ContractCheck) {
	result := resultConforms
	switch {
	case ev.Skipped == event.SkipBusy:
		result = resultSkippedBusy
	case ev.Skipped != "":
		result = resultSkippedTooLarge
	case ev.Violation():
		result = resultViolation
		code := ev.Code
		if code == "" {
			code = "none"
		}
		code, _ = transform.CutString(code, maxCodeLabel)
		m.violations.WithLabelValues(ev.Client, strconv.Itoa(ev.Status), code, ev.Reason).Inc()
	case ev.Extension != "":
		result = resultExtension
	}
	m.checks.WithLabelValues(ev.Client, string(ev.Source), result).Inc()
}
