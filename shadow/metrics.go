package shadow

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the comparison's Prometheus counters. Their labels are config
// names, outcomes and status codes only, never paths, fields or keys, so
// that their cardinality is bounded by the config.
type metrics struct {
	// total counts exchanges by client and outcome.
	total *prometheus.CounterVec
	// statusChanges counts the dry run's status changes, legacy status to
	// envelope status (403 to 402).
	statusChanges *prometheus.CounterVec
	// candidateStatus counts the envelope and candidate statuses that
	// differed, a mismatch by itself.
	candidateStatus *prometheus.CounterVec
	// unmapped counts the dry runs whose error no rule matched, by client:
	// with envelope_proxy_unmapped_total, a readiness input.
	unmapped *prometheus.CounterVec
}

// newMetrics registers the counters on reg. A counter already registered
// (a second Comparator on the same registry) is shared rather than an
// error.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_shadow_total",
			Help: "Shadowed exchanges by client and comparison outcome.",
		}, []string{"client", "outcome"}),
		statusChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_shadow_status_changes_total",
			Help: "Shadow dry runs whose envelope status differs from the legacy status, by legacy (from) and envelope (to) status.",
		}, []string{"from", "to"}),
		candidateStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_shadow_candidate_status_mismatches_total",
			Help: "Shadow comparisons whose candidate status differs from the envelope status, by envelope and candidate status.",
		}, []string{"envelope", "candidate"}),
		unmapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_shadow_unmapped_total",
			Help: "Shadow dry runs whose legacy error no rule matched, by client: the blind spots a flip would expose.",
		}, []string{"client"}),
	}
	var err error
	m.total, err = register(reg, m.total)
	if err != nil {
		return nil, err
	}
	m.statusChanges, err = register(reg, m.statusChanges)
	if err != nil {
		return nil, err
	}
	m.candidateStatus, err = register(reg, m.candidateStatus)
	if err != nil {
		return nil, err
	}
	m.unmapped, err = register(reg, m.unmapped)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the identical collector registered
// before.
func register(reg prometheus.Registerer, c *prometheus.CounterVec) (*prometheus.CounterVec, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing, nil
		}
	}
	return nil, err
}

// statusLabel is a status code as a label value; anything outside
// 100..999 (which no HTTP status is) is "other", so the label stays
// bounded.
func statusLabel(status int) string {
	if status < 100 || status > 999 {
		return "other"
	}
	return strconv.Itoa(status)
}
