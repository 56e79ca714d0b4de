package shadow

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/wI2L/jsondiff"
)

// The sample limits: what one stored sample may hold.
const (
	// maxSampleBody bounds each stored body (legacy, envelope, candidate).
	maxSampleBody = 4 << 10
	// maxSampleHeaders and maxSampleHeaderValue bound the stored request
	// headers.
	maxSampleHeaders     = 32
	maxSampleHeaderValue = 256
	// maxSampleRequestLine bounds the stored request line.
	maxSampleRequestLine = 1 << 10
	// maxQueryParams bounds the query parameters kept (values redacted).
	maxQueryParams = 32
	// maxSampleOps bounds the diff operations kept per sample, and
	// maxOpValue each operation's value (JSON text).
	maxSampleOps = 32
	maxOpValue   = 256
	// maxPaths bounds the differing paths one comparison reports.
	maxPaths = 64
)

// redacted replaces every secret in a sample.
const redacted = redact.Mask

// redactor removes one exchange's secrets from what its sample stores: the
// values of the key header, Authorization, Cookie and other credential
// headers are replaced in the stored headers and scrubbed wherever else
// they appear (a legacy error may echo the key it refused), and every
// query value is replaced. The report must never hold a key.
type redactor struct {
	keyHeader string
	secrets   redact.Secrets
}

// newRedactor collects the credentials of a request's headers, and adds
// those of the candidate_headers set on its replays (extra), which the
// candidate may echo too.
func newRedactor(keyHeader string, h http.Header, extra redact.Secrets) *redactor {
	secrets := redact.Credentials(keyHeader, h)
	if len(extra) > 0 {
		secrets = append(secrets, extra...)
		slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	}
	return &redactor{keyHeader: keyHeader, secrets: secrets}
}

// sensitive reports a header whose value is a credential.
func (r *redactor) sensitive(name string) bool { return redact.Sensitive(name, r.keyHeader) }

// text scrubs every secret from s.
func (r *redactor) text(s string) string { return r.secrets.String(s) }

// body returns a body for a sample: scrubbed, then cut to maxSampleBody
// bytes (on a character boundary). It scrubs a window long enough that a
// secret straddling the cut is scrubbed whole, never left half.
func (r *redactor) body(b []byte) (string, bool) {
	window := len(b)
	if limit := maxSampleBody + r.longestSecret(); window > limit {
		window = limit
	}
	s := r.text(string(b[:window]))
	out, cut := transform.CutString(s, maxSampleBody)
	return out, cut || window < len(b)
}

func (r *redactor) longestSecret() int { return r.secrets.Longest() }

// header returns the request headers for a sample: credential headers
// replaced, other values scrubbed and shortened, at most maxSampleHeaders
// of them.
func (r *redactor) header(h http.Header) map[string]string {
	if len(h) == 0 {
		return nil
	}
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) > maxSampleHeaders {
		names = names[:maxSampleHeaders]
	}
	out := make(map[string]string, len(names))
	for _, name := range names {
		key, _ := transform.CutString(name, maxSampleHeaderValue)
		if r.sensitive(name) {
			out[key] = redacted
			continue
		}
		v, _ := transform.CutString(r.text(strings.Join(h[name], ", ")), maxSampleHeaderValue)
		out[key] = v
	}
	return out
}

// requestLine returns "METHOD /path?name=[redacted]" for a sample: every
// query value is replaced (tokens travel in query strings), the path is
// scrubbed, and the line is at most maxSampleRequestLine bytes.
func (r *redactor) requestLine(method, path, rawQuery string) string {
	var b strings.Builder
	m, _ := transform.CutString(method, 32)
	b.WriteString(m)
	b.WriteByte(' ')
	b.WriteString(r.text(path))
	if rawQuery != "" {
		b.WriteByte('?')
		b.WriteString(r.query(rawQuery))
	}
	out, _ := transform.CutString(b.String(), maxSampleRequestLine)
	return out
}

// query keeps a query string's parameter names (scrubbed) and replaces
// every value; a parameter without '=' may itself be a token and is
// replaced whole.
func (r *redactor) query(raw string) string {
	var b strings.Builder
	for i, part := range strings.Split(raw, "&") {
		if i == maxQueryParams {
			b.WriteString("&…")
			break
		}
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, ok := strings.Cut(part, "=")
		if !ok {
			b.WriteString(redacted)
			continue
		}
		name, _ = transform.CutString(r.text(name), 64)
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(redacted)
	}
	return b.String()
}

// newSample builds the redacted sample of a mismatching exchange, nil when
// dashboard.samples is off. The dashboard.redact paths are masked over
// each whole body before it is scrubbed of credentials and cut, and a diff
// value at, above or under a masked path is withheld.
func newSample(s *compiled, ex *event.Capture, r *comparison, route string) *event.Sample {
	if !s.samples {
		return nil
	}
	rd := newRedactor(s.keyHeader, ex.Header, s.candidateSecrets)
	smp := &event.Sample{
		Time:         time.Now().UTC(),
		Request:      rd.requestLine(ex.Method, ex.Path, ex.RawQuery),
		Route:        route,
		Header:       rd.header(ex.Header),
		LegacyStatus: ex.LegacyStatus,
		Diff:         make([]event.DiffOp, 0, min(len(r.diff.ops), maxSampleOps)),
	}
	if r.dry != nil {
		smp.LegacyCode = r.dry.outcome.LegacyCode
	}
	var cut [3]bool
	if r.dry != nil {
		smp.EnvelopeStatus = r.dry.status
		legacy, _ := s.mask.Legacy(r.dry.legacy)
		smp.LegacyBody, cut[0] = rd.body(legacy)
		envelope, _ := s.mask.Envelope(r.dry.body)
		smp.EnvelopeBody, cut[1] = rd.body(envelope)
	}
	if r.cand != nil {
		smp.CandidateStatus = r.cand.status
		candidate, _ := s.mask.Envelope(r.cand.body)
		smp.CandidateBody, cut[2] = rd.body(candidate)
	}
	smp.BodiesTruncated = cut[0] || cut[1] || cut[2]
	for i, op := range r.diff.ops {
		if i == maxSampleOps {
			smp.DiffTruncated = true
			break
		}
		d := event.DiffOp{Op: op.Type}
		d.Path, _ = transform.CutString(rd.text(op.Path), maxSampleHeaderValue)
		if op.Value != nil && op.Type != jsondiff.OperationRemove {
			if s.mask.Touches(op.Path) {
				d.Value = redactedValue
			} else if b, err := json.Marshal(op.Value); err == nil {
				d.Value, _ = transform.CutString(rd.text(string(b)), maxOpValue)
			}
		}
		smp.Diff = append(smp.Diff, d)
	}
	return smp
}

// redactedValue stands for a diff value withheld by dashboard.redact.
const redactedValue = `"` + redact.Mask + `"`

// unmappedSample is the redacted sample of a dry run's unmapped error
// body, "" when dashboard.samples is off.
func unmappedSample(s *compiled, rd *redactor, legacy []byte) string {
	if !s.samples {
		return ""
	}
	masked, _ := s.mask.Legacy(legacy)
	body, _ := rd.body(masked)
	return body
}
