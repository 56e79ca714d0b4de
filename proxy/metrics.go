package proxy

import (
	"strconv"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus collectors. Every label value comes
// from config (client and cohort names), from the rules (codes, else
// "other"), or from a small fixed set, so no request can create a series.
type Metrics struct {
	requests         *prometheus.CounterVec
	rewrites         *prometheus.CounterVec
	unmapped         *prometheus.CounterVec
	passthrough      *prometheus.CounterVec
	upstreamErrors   *prometheus.CounterVec
	clientErrors     *prometheus.CounterVec
	clientMode       *prometheus.GaugeVec
	requestDuration  *prometheus.HistogramVec
	upstreamDuration prometheus.Histogram
	// modeDuration holds requestDuration's child of each mode (legacy,
	// envelope, shadow), resolved once so that a request does not hash
	// its label.
	modeDuration [3]prometheus.Observer
}

// modeIndex returns the index of a mode in Metrics.modeDuration.
func modeIndex(m config.Mode) int {
	switch m {
	case config.ModeEnvelope:
		return 1
	case config.ModeShadow:
		return 2
	}
	return 0
}

// The upstream error kinds.
const (
	upstreamRefused = "refused"
	upstreamTimeout = "timeout"
	upstreamReset   = "reset"
	// upstreamBadEncoding is a body that does not decode in its declared
	// Content-Encoding, rewritten for an envelope client.
	upstreamBadEncoding = "bad_encoding"
	upstreamOther       = "other"
)

// clientRequestBody is the kind of client error of a request body the
// client could not send whole.
const clientRequestBody = "request_body"

// NewMetrics creates the proxy's collectors and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_requests_total",
			Help: "Requests served, by client (config or cohort name), mode and class of the status sent.",
		}, []string{"client", "mode", "code_class"}),
		rewrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_rewrites_total",
			Help: "Responses rewritten into the envelope, by legacy status and code and the status and code sent. Codes no rule names are \"other\"; success wraps have empty codes.",
		}, []string{"legacy_status", "legacy_code", "status", "code"}),
		unmapped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_unmapped_total",
			Help: "Errors no rule matched, rewritten by the generic fallback: the rules' blind spots, by client and legacy status.",
		}, []string{"client", "legacy_status"}),
		passthrough: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_passthrough_total",
			Help: "Responses to envelope clients passed unchanged, by reason.",
		}, []string{"reason"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_upstream_errors_total",
			Help: "Failures to reach or read the upstream (the client got the proxy's 502 or 504), by client and kind.",
		}, []string{"client", "kind"}),
		clientErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "envelope_proxy_client_errors_total",
			Help: "Requests the client could not send whole (a request body cut short, malformed or stalled): the client got the proxy's 400, by client and kind.",
		}, []string{"client", "kind"}),
		clientMode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "envelope_proxy_client_mode",
			Help: "1 for the mode each configured client (named client, rollout cohort, default) gets now; for joining readiness alerts on flipped clients.",
		}, []string{"client", "mode"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "envelope_proxy_request_duration_seconds",
			Help:    "Time from request to the end of the response, by mode.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"mode"}),
		upstreamDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "envelope_proxy_upstream_duration_seconds",
			Help:    "Time from sending the request upstream to its response headers.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	reg.MustRegister(m.requests, m.rewrites, m.unmapped, m.passthrough, m.upstreamErrors, m.clientErrors, m.clientMode, m.requestDuration, m.upstreamDuration)
	// Known label values start at zero, so rate() works from the first
	// scrape and dashboards show the series before the first event.
	for _, r := range []transform.Reason{transform.ReasonOversize, transform.ReasonNotJSON, transform.ReasonMigrated, transform.ReasonEncoding} {
		m.passthrough.WithLabelValues(string(r))
	}
	for _, mode := range []config.Mode{config.ModeLegacy, config.ModeEnvelope, config.ModeShadow} {
		m.modeDuration[modeIndex(mode)] = m.requestDuration.WithLabelValues(string(mode))
	}
	return m
}

// setModes publishes each configured client's mode, and starts the
// per-client error counters at zero so that rate() works from the first
// scrape.
func (m *Metrics) setModes(targets []config.Target) {
	m.clientMode.Reset()
	for _, t := range targets {
		m.clientMode.WithLabelValues(t.Name, string(t.Mode)).Set(1)
		for _, k := range []string{upstreamRefused, upstreamTimeout, upstreamReset, upstreamBadEncoding, upstreamOther} {
			m.upstreamErrors.WithLabelValues(t.Name, k)
		}
		m.clientErrors.WithLabelValues(t.Name, clientRequestBody)
	}
}

// statusLabel returns the label text of an HTTP status without formatting
// a number on the hot path.
func statusLabel(status int) string {
	if status >= 100 && status < 100+len(statusLabels) {
		return statusLabels[status-100]
	}
	return strconv.Itoa(status)
}

var statusLabels = func() (s [500]string) {
	for i := range s {
		s[i] = strconv.Itoa(i + 100)
	}
	return s
}()

// codeClass returns "2xx" and the like for a sent status, "none" when the
// client got no response.
func codeClass(status int) string {
	switch status / 100 {
	case 1:
		return "1xx"
	case 2:
		return "2xx"
	case 3:
		return "3xx"
	case 4:
		return "4xx"
	case 5:
		return "5xx"
	}
	return "none"
}

// observe counts the finished exchange in the metrics.
func (ex *exchange) observe(elapsed time.Duration) {
	m := ex.snap.metrics
	m.requests.WithLabelValues(ex.decision.Client, string(ex.decision.Mode), codeClass(ex.w.status)).Inc()
	m.modeDuration[modeIndex(ex.decision.Mode)].Observe(elapsed.Seconds())
	o := &ex.result
	if ex.upstreamError != "" || ex.clientError != "" {
		// Counted where the client was answered.
		return
	}
	switch o.Action {
	case transform.Rewrite:
		m.rewrites.WithLabelValues(statusLabel(ex.upstreamStatus), o.LegacyCode, statusLabel(o.Status), o.Code).Inc()
		if o.Unmapped {
			m.unmapped.WithLabelValues(ex.decision.Client, statusLabel(ex.upstreamStatus)).Inc()
		}
	case transform.Wrap:
		m.rewrites.WithLabelValues(statusLabel(ex.upstreamStatus), "", statusLabel(o.Status), "").Inc()
	case transform.Pass:
		if o.Reason != transform.ReasonNone {
			m.passthrough.WithLabelValues(string(o.Reason)).Inc()
		}
	}
}
