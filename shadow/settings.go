package shadow

import (
	"net/http"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/routes"
	"github.com/envelope-proxy/envelope-proxy/sampling"
)

// Settings are what the comparison takes from one config.
type Settings struct {
	// Shadow is the config's shadow block.
	Shadow config.Shadow
	// Candidate is the new service to replay to; an empty URL means dry
	// runs only.
	Candidate config.Candidate
	// EnvelopeMaxBody is max_body_bytes: envelope mode passes larger error
	// bodies unchanged, and so does the dry run.
	EnvelopeMaxBody int64
	// KeyHeader is routing.header, whose values are redacted.
	KeyHeader string
	// Samples is dashboard.samples: false keeps no bodies at all; Redact
	// is dashboard.redact, applied to bodies before they are kept.
	Samples bool
	Redact  redact.Paths
}

// compiled is Settings made ready for use. Swap builds a new one and
// publishes it atomically; it is never modified once published, so the
// request path reads it with one atomic load and a comparison keeps the
// settings it started with.
type compiled struct {
	// sample is shadow.sample: the keys whose exchanges are compared.
	sample sampling.Share

	// methods are the methods replayed to the candidate, upper case,
	// CONNECT excluded, and replay the routes whose writes are too.
	methods []string
	replay  []replayRoute
	// candidateHeaders are set on every replayed request, their values
	// expanded from the environment; candidateSecrets are the credentials
	// among them, collected once, which every sample is scrubbed of too,
	// since the candidate may echo them.
	candidateHeaders http.Header
	candidateSecrets redact.Secrets
	// learnSample is the share of replayed safe requests replayed twice
	// to learn the candidate's noise; learnIgnores applies what was
	// learned to the comparison.
	learnSample  float64
	learnIgnores bool

	diff normaliser

	maxInFlight     int64
	maxBodyBytes    int64
	maxRequestBytes int64
	// envelopeMaxBody is the top-level max_body_bytes: envelope mode
	// passes larger error bodies unchanged.
	envelopeMaxBody int64

	routes *routes.Templates
	// keyHeader is routing.header, canonical; its values are redacted.
	keyHeader string

	// samples is dashboard.samples: false keeps no bodies at all; mask
	// holds dashboard.redact, applied to bodies before they are kept.
	samples bool
	mask    redact.Paths

	// candidate is nil when candidate.url is empty (dry runs only).
	candidate        *candidate
	candidateURL     string
	candidateTimeout time.Duration
}

// The fallbacks for zero or negative limits, which config validation
// should have refused: the documented defaults.
const (
	defaultMaxInFlight      = 64
	defaultMaxBodyBytes     = 1 << 20
	defaultMaxRequestBytes  = 64 << 10
	defaultCandidateTimeout = 5 * time.Second
)

// compile builds the comparison's view of in. The candidate's client is
// kept from old when its URL and timeout are unchanged, so that a reload
// keeps the candidate's warm connections. invalid lists what had to be
// left out, for the caller to log.
func compile(in Settings, old *compiled) (s *compiled, replaced *candidate, invalid []string, err error) {
	sh := in.Shadow
	s = &compiled{
		sample:           sampling.NewShare(sh.Sample),
		maxInFlight:      int64(sh.MaxInFlight),
		maxBodyBytes:     sh.MaxBodyBytes,
		maxRequestBytes:  sh.MaxRequestBytes,
		envelopeMaxBody:  in.EnvelopeMaxBody,
		routes:           routes.New(sh.Routes),
		keyHeader:        http.CanonicalHeaderKey(in.KeyHeader),
		candidateURL:     strings.TrimSpace(in.Candidate.URL),
		candidateTimeout: in.Candidate.Timeout,
		samples:          in.Samples,
		mask:             in.Redact,
	}
	for _, m := range sh.Methods {
		m = strings.ToUpper(strings.TrimSpace(m))
		if m == "" || m == http.MethodConnect || containsString(s.methods, m) {
			continue
		}
		s.methods = append(s.methods, m)
	}
	for _, rr := range sh.Replay {
		m := strings.ToUpper(strings.TrimSpace(rr.Method))
		if m == "" || m == http.MethodConnect || strings.TrimSpace(rr.Route) == "" {
			continue
		}
		s.replay = append(s.replay, replayRoute{method: m, route: routes.Compile(rr.Route)})
	}
	if len(sh.CandidateHeaders) > 0 {
		s.candidateHeaders = make(http.Header, len(sh.CandidateHeaders))
		for name, v := range sh.CandidateHeaders {
			s.candidateHeaders.Set(name, config.Expand(v))
		}
	}
	s.learnSample, s.learnIgnores = sh.LearnSample, sh.LearnIgnores
	s.diff.compareMessages = sh.CompareMessages
	s.diff.tolerance = sh.Tolerances.Numbers
	s.diff.nullIsMissing = sh.Tolerances.NullEqualsMissing
	var badSets []string
	s.diff.sets, badSets = parseSets(sh.Tolerances.Sets)
	invalid = append(invalid, badSets...)
	var badIgnore []string
	s.diff.ignore, badIgnore = parseIgnore(sh.Ignore)
	invalid = append(invalid, badIgnore...)
	if s.maxInFlight <= 0 {
		s.maxInFlight = defaultMaxInFlight
	}
	if s.maxBodyBytes <= 0 {
		s.maxBodyBytes = defaultMaxBodyBytes
	}
	if s.maxRequestBytes < 0 {
		s.maxRequestBytes = defaultMaxRequestBytes
	}
	if s.envelopeMaxBody <= 0 {
		s.envelopeMaxBody = config.DefaultMaxBodyBytes
	}
	if s.keyHeader == "" {
		s.keyHeader = config.DefaultRoutingHeader
	}
	if len(s.candidateHeaders) > 0 {
		s.candidateSecrets = redact.Credentials(s.keyHeader, s.candidateHeaders)
	}
	if s.candidateTimeout <= 0 {
		s.candidateTimeout = defaultCandidateTimeout
	}
	if s.candidateURL == "" {
		if old != nil {
			replaced = old.candidate
		}
		return s, replaced, invalid, nil
	}
	if old != nil && old.candidate != nil && old.candidateURL == s.candidateURL && old.candidateTimeout == s.candidateTimeout {
		s.candidate = old.candidate
		return s, nil, invalid, nil
	}
	s.candidate, err = newCandidate(s.candidateURL, s.candidateTimeout, int(s.maxInFlight))
	if old != nil {
		replaced = old.candidate
	}
	return s, replaced, invalid, err
}

// replayRoute is one shadow.replay entry.
type replayRoute struct {
	method string
	route  routes.Template
}

// replays reports whether a request may be replayed to the candidate: a
// candidate is configured, and the method is in shadow.methods or the
// method and path are in shadow.replay. It runs on the request path: a
// linear scan of a handful of entries, no allocation.
func (s *compiled) replays(method, path string) bool {
	if s.candidate == nil {
		return false
	}
	if containsString(s.methods, method) {
		return true
	}
	for i := range s.replay {
		if s.replay[i].method == method && s.replay[i].route.Matches(path) {
			return true
		}
	}
	return false
}

func containsString(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}
