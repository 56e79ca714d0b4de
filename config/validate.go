package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/transform"
	"golang.org/x/net/http/httpguts"
)

// Validate checks every field and returns all problems as Errors, each
// naming its field path, or nil.
func (c *Config) Validate() error {
	var errs Errors
	add := func(path, format string, args ...any) {
		errs = append(errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	checkAddr := func(path, addr string) {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			add(path, "%q is not a host:port address", addr)
		}
	}
	checkAddr("listen", c.Listen)
	checkAddr("admin_listen", c.AdminListen)
	if c.Listen == c.AdminListen && !strings.HasSuffix(c.Listen, ":0") {
		add("admin_listen", "must differ from listen (%q)", c.Listen)
	}

	if u, err := url.Parse(c.Upstream.URL); err != nil {
		add("upstream.url", "%v", err)
	} else if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		add("upstream.url", "%q is not an http(s) URL with a host", c.Upstream.URL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		add("upstream.url", "%q must not have a query or fragment", c.Upstream.URL)
	}
	positive := map[string]int64{
		"upstream.timeout":               int64(c.Upstream.Timeout),
		"upstream.dial_timeout":          int64(c.Upstream.DialTimeout),
		"max_body_bytes":                 c.MaxBodyBytes,
		"server.read_header_timeout":     int64(c.Server.ReadHeaderTimeout),
		"server.idle_timeout":            int64(c.Server.IdleTimeout),
		"server.max_header_bytes":        int64(c.Server.MaxHeaderBytes),
		"server.shutdown_timeout":        int64(c.Server.ShutdownTimeout),
		"upstream.max_idle_conns":        int64(c.Upstream.MaxIdleConns),
		"upstream.idle_conn_timeout":     int64(c.Upstream.IdleConnTimeout),
		"upstream.keep_alive":            int64(c.Upstream.KeepAlive),
		"upstream.tls_handshake_timeout": int64(c.Upstream.TLSHandshakeTimeout),
	}
	for _, path := range sortedKeys(positive) {
		if positive[path] <= 0 {
			add(path, "must be positive")
		}
	}
	nonNegative := map[string]int64{
		"upstream.max_idle_conns_per_host": int64(c.Upstream.MaxIdleConnsPerHost),
		"upstream.max_conns_per_host":      int64(c.Upstream.MaxConnsPerHost),
		"server.read_timeout":              int64(c.Server.ReadTimeout),
		"server.drain_delay":               int64(c.Server.DrainDelay),
		"server.request_buffering":         c.Server.RequestBuffering,
		"gc_heap_floor_bytes":              c.GCHeapFloorBytes,
	}
	for _, path := range sortedKeys(nonNegative) {
		if nonNegative[path] < 0 {
			add(path, "must not be negative")
		}
	}

	if c.GCHeapFloorBytes > MaxGCHeapFloorBytes {
		add("gc_heap_floor_bytes", "must be at most %d (1 TiB)", int64(MaxGCHeapFloorBytes))
	}

	r := &c.Routing
	if !httpguts.ValidHeaderFieldName(r.Header) {
		add("routing.header", "%q is not a header name", r.Header)
	}
	checkMode := func(path string, m Mode) {
		if !m.Valid() {
			add(path, "%q is not one of legacy, envelope, shadow", m)
		}
	}
	checkMode("routing.default", r.Default)
	if r.OverrideHeader != "" {
		if !httpguts.ValidHeaderFieldName(r.OverrideHeader) {
			add("routing.override_header", "%q is not a header name", r.OverrideHeader)
		} else if http.CanonicalHeaderKey(r.OverrideHeader) == http.CanonicalHeaderKey(r.Header) {
			add("routing.override_header", "must differ from routing.header")
		}
	}
	for i, m := range r.OverrideModes {
		checkMode(fmt.Sprintf("routing.override_modes[%d]", i), m)
	}
	names := map[string]string{}
	checkName := func(path, name string) {
		switch {
		case name == "":
			add(path, "must not be empty")
		case !validName(name):
			add(path, "%q may hold only letters, digits, '.', '_' and '-'", name)
		case names[name] != "":
			add(path, "%q is already the name of %s", name, names[name])
		case name == DefaultClientName:
			add(path, "%q is reserved for requests nothing else routes", name)
		default:
			names[name] = path
		}
	}
	keys := map[string]string{}
	for i, cl := range r.Clients {
		p := fmt.Sprintf("routing.clients[%d]", i)
		checkName(p+".name", cl.Name)
		checkMode(p+".mode", cl.Mode)
		if len(cl.KeysSHA256) == 0 {
			add(p+".keys_sha256", "must list at least one key digest")
		}
		for j, k := range cl.KeysSHA256 {
			kp := fmt.Sprintf("%s.keys_sha256[%d]", p, j)
			if b, err := hex.DecodeString(k); err != nil || len(b) != 32 {
				add(kp, "%q is not a hex SHA-256 digest (64 hex digits)", redactDigest(k))
				continue
			}
			lk := strings.ToLower(k)
			if prev := keys[lk]; prev != "" {
				add(kp, "digest already listed at %s", prev)
			}
			keys[lk] = kp
		}
	}
	var total float64
	for i, co := range r.Rollout {
		p := fmt.Sprintf("routing.rollout[%d]", i)
		name := co.Name
		if name == "" {
			name = co.defaultName(i)
		}
		checkName(p+".name", name)
		checkMode(p+".mode", co.Mode)
		if !(co.Percent > 0 && co.Percent <= 100) {
			add(p+".percent", "%v is not in (0, 100]", co.Percent)
		}
		total += co.Percent
	}
	if total > 100 {
		add("routing.rollout", "percentages add up to %v, more than 100", total)
	}
	for i, pre := range c.MigratedPrefixes {
		if !strings.HasPrefix(pre, "/") {
			add(fmt.Sprintf("migrated_prefixes[%d]", i), "%q must start with /", pre)
		}
	}
	if _, err := transform.New(c.Rules); err != nil {
		var re *transform.RuleError
		if errors.As(err, &re) && re.Index < len(c.Rules) {
			add(fmt.Sprintf("rules[%d].%s", re.Index, re.Field), "%v", re.Err)
		} else {
			add("rules", "%v", err)
		}
	}
	sh := &c.Shadow
	if !(sh.Sample >= 0 && sh.Sample <= 1) {
		add("shadow.sample", "%v is not in [0, 1]", sh.Sample)
	}
	// checkMethod checks a method the shadow mirrors or replays.
	checkMethod := func(field, m, never string) {
		if m == "" || !httpguts.ValidHeaderFieldName(m) || strings.ToUpper(m) != m {
			add(field, "%q is not an upper-case HTTP method", m)
		}
		if m == http.MethodConnect {
			add(field, "CONNECT is never %s", never)
		}
	}
	for i, m := range sh.Methods {
		checkMethod(fmt.Sprintf("shadow.methods[%d]", i), m, "mirrored")
	}
	for i, p := range sh.Ignore {
		if !strings.HasPrefix(p, "/") {
			add(fmt.Sprintf("shadow.ignore[%d]", i), "%q is not a JSON Pointer (it must start with /)", p)
		}
	}
	for i, p := range sh.Routes {
		if !strings.HasPrefix(p, "/") {
			add(fmt.Sprintf("shadow.routes[%d]", i), "%q must start with /", p)
		}
	}
	for i, rr := range sh.Replay {
		checkMethod(fmt.Sprintf("shadow.replay[%d].method", i), rr.Method, "replayed")
		if !strings.HasPrefix(rr.Route, "/") {
			add(fmt.Sprintf("shadow.replay[%d].route", i), "%q must start with /", rr.Route)
		}
	}
	for _, name := range sortedKeys(sh.CandidateHeaders) {
		field := "shadow.candidate_headers." + name
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			add(field, "%q is not a header name", name)
		case !candidateHeaderAllowed(name):
			add(field, "%s is set by the proxy or the connection, not by config", http.CanonicalHeaderKey(name))
		case !httpguts.ValidHeaderFieldValue(sh.CandidateHeaders[name]):
			// The value is never echoed: it may be a secret.
			add(field, "the value holds a character a header value may not")
		}
	}
	if !(sh.LearnSample >= 0 && sh.LearnSample <= 1) {
		add("shadow.learn_sample", "%v is not in [0, 1]", sh.LearnSample)
	}
	if tn := sh.Tolerances.Numbers; !(tn >= 0 && tn < 1) {
		add("shadow.tolerances.numbers", "%v is not in [0, 1)", tn)
	}
	for _, p := range sortedKeys(sh.Tolerances.Sets) {
		if !strings.HasPrefix(p, "/") {
			add("shadow.tolerances.sets", "%q is not a JSON Pointer (it must start with /)", p)
		}
		if sh.Tolerances.Sets[p] == "" {
			add("shadow.tolerances.sets."+p, "names no key field")
		}
	}
	if sh.MaxInFlight <= 0 {
		add("shadow.max_in_flight", "must be positive")
	}
	if sh.MaxBodyBytes <= 0 {
		add("shadow.max_body_bytes", "must be positive")
	}
	if sh.MaxRequestBytes < 0 {
		add("shadow.max_request_bytes", "must not be negative")
	}
	if ct := &c.Contract; !(ct.Sample >= 0 && ct.Sample <= 1) {
		add("contract.sample", "%v is not in [0, 1]", ct.Sample)
	}
	if n := c.Contract.MaxInFlight; n <= 0 || n > MaxContractInFlight {
		add("contract.max_in_flight", "%d is not in [1, %d]", n, MaxContractInFlight)
	}
	if c.Candidate.URL != "" {
		if u, err := url.Parse(c.Candidate.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("candidate.url", "%q is not an http(s) URL with a host", c.Candidate.URL)
		}
	}
	if c.Candidate.Timeout <= 0 {
		add("candidate.timeout", "must be positive")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	if c.Log.SampleInitial < 0 || c.Log.SampleThereafter < 0 {
		add("log", "sample_initial and sample_thereafter must not be negative")
	}
	rd := &c.Readiness
	if rd.Window < time.Minute {
		add("readiness.window", "%v is shorter than a minute", rd.Window)
	}
	if rd.Retention < rd.Window {
		add("readiness.retention", "%v is shorter than readiness.window (%v)", rd.Retention, rd.Window)
	}
	for _, f := range []struct {
		path string
		v    float64
	}{
		{"readiness.max_mismatch_ratio", rd.MaxMismatchRatio},
		{"readiness.max_candidate_errors_ratio", rd.MaxCandidateErrorsRatio},
		{"readiness.max_upstream_errors_ratio", rd.MaxUpstreamErrorsRatio},
	} {
		if !(f.v >= 0 && f.v <= 1) {
			add(f.path, "%v is not in [0, 1]", f.v)
		}
	}
	if rd.MaxStateBytes < 0 {
		add("readiness.max_state_bytes", "must not be negative")
	}
	if c.StateURL != "" {
		// The value is not echoed: it may hold a password.
		switch url := Expand(c.StateURL); {
		case url == "":
			add("state_url", "is empty once its environment variables are expanded")
		case !validStateURL(url):
			add("state_url", "is not a PostgreSQL URL (postgres://user@host:5432/db?sslmode=...) or key=value connection string")
		}
	}
	if c.Replica != "" && (!validName(c.Replica) || len(c.Replica) > 63) {
		add("replica", "%q may hold only letters, digits, '.', '_' and '-', at most 63 of them", c.Replica)
	}
	if t := c.Admin.TokenSHA256; t != "" {
		if b, err := hex.DecodeString(t); err != nil || len(b) != 32 {
			add("admin.token_sha256", "%q is not a hex SHA-256 digest (64 hex digits)", redactDigest(t))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validStateURL reports a PostgreSQL connection string: a postgres:// or
// postgresql:// URL with a host, or the key=value form.
func validStateURL(s string) bool {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		return u.Host != "" || u.Query().Has("host")
	}
	return strings.Contains(s, "=") && !strings.Contains(s, "://")
}

// DefaultClientName names requests routed by routing.default in logs and
// metrics.
const DefaultClientName = "default"

// CohortName returns the name of rollout cohort i: its own, or one derived
// from its position and mode.
func (r *Routing) CohortName(i int) string {
	co := r.Rollout[i]
	if co.Name != "" {
		return co.Name
	}
	return co.defaultName(i)
}

// The kinds of Target.
const (
	KindClient  = "client"
	KindCohort  = "cohort"
	KindDefault = "default"
)

// Target is a name routing gives requests, with the mode it gives them: a
// named client, a rollout cohort, or the default. Metrics, logs and the
// dashboard name clients by these names only.
type Target struct {
	Name string
	// Kind is KindClient, KindCohort or KindDefault.
	Kind string
	Mode Mode
}

// Targets returns every name routing can give a request, in config order:
// the named clients, the rollout cohorts, then the default.
func (r *Routing) Targets() []Target {
	out := make([]Target, 0, len(r.Clients)+len(r.Rollout)+1)
	for _, cl := range r.Clients {
		out = append(out, Target{Name: cl.Name, Kind: KindClient, Mode: cl.Mode})
	}
	for i, co := range r.Rollout {
		out = append(out, Target{Name: r.CohortName(i), Kind: KindCohort, Mode: co.Mode})
	}
	return append(out, Target{Name: DefaultClientName, Kind: KindDefault, Mode: r.Default})
}

func (co Cohort) defaultName(i int) string {
	return fmt.Sprintf("rollout-%d-%s", i, co.Mode)
}

// validName keeps client names usable as metric labels and log fields.
func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// redactDigest shortens a malformed digest in an error message: it may be
// a plaintext key pasted by mistake, which must not reach logs.
func redactDigest(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:4] + "…(" + fmt.Sprint(len(s)) + " chars)"
}

// candidateHeaderAllowed reports a header config may set on the requests
// replayed to the candidate: not one of a connection, nor one the proxy
// sets itself. The list names shadow's hopHeaders, ShadowRequestHeader and
// IdempotencyKeyHeader again, since config cannot import shadow: keep them
// in step.
func candidateHeaderAllowed(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Connection", "Content-Length", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
		"Keep-Alive", "Proxy-Connection", "Expect", "X-Shadow-Request", "Idempotency-Key":
		return false
	}
	return true
}
