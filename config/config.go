// Package config loads, defaults and validates envelope-proxy's YAML
// configuration.
//
// A Config is decoded strictly (unknown keys are errors) over Default, then
// checked by Validate, whose errors name the offending field by its YAML path
// (routing.clients[1].mode). A loaded Config is never modified: a reload
// builds a new one and the proxy swaps it in atomically.
package config

import (
	"time"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Mode is the response format a client gets.
type Mode string

// The modes.
const (
	// ModeLegacy passes upstream responses byte for byte.
	ModeLegacy Mode = "legacy"
	// ModeEnvelope rewrites responses into the envelope.
	ModeEnvelope Mode = "envelope"
	// ModeShadow serves legacy bytes while comparing what envelope mode
	// would have sent.
	ModeShadow Mode = "shadow"
)

// Valid reports whether m is one of the modes.
func (m Mode) Valid() bool {
	return m == ModeLegacy || m == ModeEnvelope || m == ModeShadow
}

// Config is the whole configuration. Field names in YAML are the contract
// documented in config.yaml at the repository root.
type Config struct {
	// Listen is the client listener's address.
	Listen string `yaml:"listen"`
	// AdminListen is the admin listener's address (metrics, health).
	AdminListen string `yaml:"admin_listen"`
	// Upstream is the legacy backend.
	Upstream Upstream `yaml:"upstream"`
	// MaxBodyBytes bounds the bodies buffered for a rewrite; larger error
	// bodies pass unchanged and larger success bodies are wrapped while
	// streaming.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// GCHeapFloorBytes is the least heap goal of the garbage collector
	// (see package gcfloor); 0 leaves GOGC alone.
	GCHeapFloorBytes int64 `yaml:"gc_heap_floor_bytes"`
	// Server holds the client listener's limits.
	Server Server `yaml:"server"`
	// Routing chooses each request's mode.
	Routing Routing `yaml:"routing"`
	// MigratedPrefixes are path prefixes whose success responses are
	// already in envelope form and must not be wrapped again.
	MigratedPrefixes []string `yaml:"migrated_prefixes"`
	// Rules are tried before the built-in rules.
	Rules []transform.Rule `yaml:"rules"`
	// Shadow configures what shadow mode compares.
	Shadow Shadow `yaml:"shadow"`
	// Candidate is the new service that speaks the envelope natively, if
	// any; shadowed requests are replayed to it and its answers compared.
	Candidate Candidate `yaml:"candidate"`
	// Contract is the new API's OpenAPI document that envelopes are
	// checked against.
	Contract Contract `yaml:"contract"`
	// Log configures the logger.
	Log Log `yaml:"log"`
	// StateDir is where the dashboard's evidence is kept across restarts
	// (an SQLite file) when StateURL is empty; both empty keep it in
	// memory only.
	StateDir string `yaml:"state_dir"`
	// StateURL is the PostgreSQL database the fleet's replicas share
	// their evidence in. ${NAME} in it names an environment variable, so
	// that the URL can come from a secret (see Expand).
	StateURL string `yaml:"state_url"`
	// Replica names this replica in the fleet view; empty is the host
	// name.
	Replica string `yaml:"replica"`
	// Readiness holds the thresholds of the per-client readiness verdict.
	Readiness Readiness `yaml:"readiness"`
	// Dashboard configures what the migration dashboard keeps.
	Dashboard Dashboard `yaml:"dashboard"`
	// Admin configures access to the admin listener.
	Admin Admin `yaml:"admin"`
}

// Readiness holds the thresholds a client's evidence is held against
// before it is called ready to be flipped to the envelope.
type Readiness struct {
	// Window is how far back the verdict looks.
	Window time.Duration `yaml:"window"`
	// MinRequests is the evidence a verdict needs: compared exchanges for
	// a shadow client, requests for an envelope client.
	MinRequests uint64 `yaml:"min_requests"`
	// MaxMismatchRatio bounds the shadow mismatches over comparisons.
	MaxMismatchRatio float64 `yaml:"max_mismatch_ratio"`
	// MaxUnmapped bounds the errors no rule matched.
	MaxUnmapped uint64 `yaml:"max_unmapped"`
	// MaxCandidateErrorsRatio bounds the candidate's failures and timeouts
	// over replays.
	MaxCandidateErrorsRatio float64 `yaml:"max_candidate_errors_ratio"`
	// MaxUpstreamErrorsRatio bounds an envelope client's requests that
	// got the proxy's 502 or 504.
	MaxUpstreamErrorsRatio float64 `yaml:"max_upstream_errors_ratio"`
	// MaxContractViolations bounds the envelopes the new API's contract
	// does not allow.
	MaxContractViolations uint64 `yaml:"max_contract_violations"`
	// Retention is how long evidence is kept in state_dir.
	Retention time.Duration `yaml:"retention"`
	// MaxStateBytes caps the evidence file; the oldest evidence goes first.
	MaxStateBytes int64 `yaml:"max_state_bytes"`
}

// Dashboard configures the evidence the dashboard keeps.
type Dashboard struct {
	// Samples keeps sample bodies (unmapped errors, shadow mismatches);
	// false keeps counts only.
	Samples bool `yaml:"samples"`
	// Redact lists JSON Pointers ("*" for any key or index) whose values
	// are masked in sample bodies before they are stored.
	Redact RedactPaths `yaml:"redact"`
}

// Contract configures the contract checks: every envelope sent to an
// envelope client, and every envelope a shadow client's dry run computes,
// is held to the new API's OpenAPI document off the request path.
type Contract struct {
	// OpenAPI is the path (relative to the config file) of the new API's
	// OpenAPI 3.0 or 3.1 document; empty is the built-in envelope
	// contract. It is read at start and at every reload.
	OpenAPI string `yaml:"openapi"`
	// Sample is the share of clients' keys whose envelopes are checked,
	// by a stable hash of the key.
	Sample float64 `yaml:"sample"`
	// MaxInFlight bounds the checks waiting or running at once; beyond
	// it envelopes are skipped (counted).
	MaxInFlight int `yaml:"max_in_flight"`
}

// Admin configures the admin listener's access control.
type Admin struct {
	// TokenSHA256 is the hex SHA-256 of a bearer token every admin request
	// but /healthz and /readyz must present; empty means none.
	TokenSHA256 string `yaml:"token_sha256"`
}

// Shadow configures the comparison of shadow-mode traffic. A shadow
// client always gets the legacy bytes; these settings bound what the proxy
// does on the side.
type Shadow struct {
	// Sample is the share of shadow clients' keys whose exchanges are
	// compared, 0 to 1, chosen by a stable hash of the key so a sampled
	// client is sampled consistently.
	Sample float64 `yaml:"sample"`
	// Methods are the request methods replayed to the candidate: safe
	// methods by default. Every shadowed request is dry-run whatever its
	// method; writes are replayed only on the routes Replay lists.
	Methods []string `yaml:"methods"`
	// Replay lists the routes whose writes (methods beyond Methods) are
	// replayed to the candidate too. A replayed write runs the write on
	// the candidate.
	Replay []ReplayRoute `yaml:"replay"`
	// CandidateHeaders are set on every request replayed to the
	// candidate, over the client's (a test tenant's key, say); ${NAME} in
	// a value names an environment variable. Values are never printed.
	CandidateHeaders map[string]string `yaml:"candidate_headers"`
	// LearnSample is the share of replayed safe requests replayed twice,
	// so that the JSON paths whose values differ between the two answers
	// are learned as the candidate's noise.
	LearnSample float64 `yaml:"learn_sample"`
	// LearnIgnores applies the learned noise to the comparison: bodies
	// differing only there end as ignored_learned, not as mismatches.
	LearnIgnores bool `yaml:"learn_ignores"`
	// Tolerances relax the comparison of the bodies.
	Tolerances Tolerances `yaml:"tolerances"`
	// Ignore lists JSON Pointers removed from both bodies before diffing;
	// "*" stands for any object key or array index.
	Ignore []string `yaml:"ignore"`
	// CompareMessages compares the human message texts too; by default
	// only status and codes are compared.
	CompareMessages bool `yaml:"compare_messages"`
	// MaxInFlight bounds concurrent comparisons; beyond it exchanges are
	// dropped and counted, never queued.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxBodyBytes bounds the response body kept for comparison; a larger
	// exchange is skipped and counted.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxRequestBytes bounds the request body replayed to the candidate.
	MaxRequestBytes int64 `yaml:"max_request_bytes"`
	// Routes are path templates such as /v1/jobs/{id} that name the
	// report's groups; other paths have id-like segments collapsed.
	Routes []string `yaml:"routes"`
}

// ReplayRoute is one route whose writes are replayed to the candidate.
type ReplayRoute struct {
	// Method is the write's method (POST, PUT, PATCH, DELETE, ...).
	Method string `yaml:"method"`
	// Route is a path template: "{name}" segments match any segment.
	Route string `yaml:"route"`
}

// Tolerances are the opt-in relaxations of the shadow comparison.
type Tolerances struct {
	// Numbers is a relative tolerance: two numbers at the same path are
	// equal when they differ by at most this share of the larger; 0
	// compares them digit for digit.
	Numbers float64 `yaml:"numbers"`
	// NullEqualsMissing makes a key whose value is null equal to a
	// missing key.
	NullEqualsMissing bool `yaml:"null_equals_missing"`
	// Sets maps JSON Pointers of arrays ("*" matches any key or index)
	// to the field their elements are keyed by: such arrays are compared
	// as sets, element by key, whatever their order.
	Sets map[string]string `yaml:"sets"`
}

// Candidate is the service the shadow comparison replays requests to.
type Candidate struct {
	// URL is the candidate's base URL; empty means dry runs only.
	URL string `yaml:"url"`
	// Timeout bounds each replayed request, independently of the client.
	Timeout time.Duration `yaml:"timeout"`
}

// Upstream is the legacy backend and the transport that reaches it.
type Upstream struct {
	URL string `yaml:"url"`
	// Timeout bounds the wait for the upstream's response headers, from
	// when the whole request (body included) has been handed over; a
	// longer wait answers 504. It never cuts a body that is streaming.
	Timeout             time.Duration `yaml:"timeout"`
	DialTimeout         time.Duration `yaml:"dial_timeout"`
	TLSHandshakeTimeout time.Duration `yaml:"tls_handshake_timeout"`
	KeepAlive           time.Duration `yaml:"keep_alive"`
	MaxIdleConns        int           `yaml:"max_idle_conns"`
	MaxIdleConnsPerHost int           `yaml:"max_idle_conns_per_host"`
	MaxConnsPerHost     int           `yaml:"max_conns_per_host"`
	IdleConnTimeout     time.Duration `yaml:"idle_conn_timeout"`
	// MaxResponseHeaderBytes bounds the upstream's response headers; a
	// larger header block answers 502.
	MaxResponseHeaderBytes int64 `yaml:"max_response_header_bytes"`
}

// Server holds the client listener's timeouts and limits. There is no
// write timeout: it would cut long streams.
type Server struct {
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes"`
	// DrainDelay is how long the proxy keeps accepting requests after
	// SIGTERM while /readyz already answers 503, so that load balancers
	// stop sending traffic before the listener closes.
	DrainDelay time.Duration `yaml:"drain_delay"`
	// ShutdownTimeout bounds the wait for requests in flight (streams
	// included) once the listener has closed.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// RequestBuffering is the largest request body read whole before the
	// upstream is dialled; 0 streams every body as it arrives.
	RequestBuffering int64 `yaml:"request_buffering"`
}

// Routing chooses a request's mode: the override header, then a listed
// client, then a rollout cohort, then Default.
type Routing struct {
	// Header carries the client's API key.
	Header string `yaml:"header"`
	// Default is the mode of requests nothing else decides.
	Default Mode `yaml:"default"`
	// OverrideHeader, when set, lets a request pick its mode among
	// OverrideModes. Empty (the default) disables overrides.
	OverrideHeader string `yaml:"override_header"`
	// OverrideModes are the modes the override header may select.
	OverrideModes []Mode `yaml:"override_modes"`
	// Clients are named clients, identified by the SHA-256 of their keys.
	Clients []Client `yaml:"clients"`
	// Rollout cohorts take a stable share of the remaining keys.
	Rollout []Cohort `yaml:"rollout"`
}

// Client is a named client with its own mode.
type Client struct {
	Name string `yaml:"name"`
	// KeysSHA256 are the hex SHA-256 digests of the client's API keys;
	// the config never holds a key itself.
	KeysSHA256 []string `yaml:"keys_sha256"`
	Mode       Mode     `yaml:"mode"`
}

// Cohort is a percentage of keys, chosen by a stable hash of the key so that
// every replica, before and after a restart, puts a key in the same cohort.
type Cohort struct {
	Name    string  `yaml:"name"`
	Percent float64 `yaml:"percent"`
	Mode    Mode    `yaml:"mode"`
}

// Log configures the zap logger.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// AccessLog turns the one-line-per-request access log on or off.
	AccessLog bool `yaml:"access_log"`
	// SampleInitial and SampleThereafter sample repeated log lines per
	// second, as zap's sampler does; 0 disables sampling.
	SampleInitial    int `yaml:"sample_initial"`
	SampleThereafter int `yaml:"sample_thereafter"`
}

// The defaults, also documented in config.yaml.
const (
	DefaultListen          = ":8080"
	DefaultAdminListen     = "127.0.0.1:9901"
	DefaultUpstreamURL     = "http://127.0.0.1:9000"
	DefaultUpstreamTimeout = 30 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	// DefaultGCHeapFloorBytes keeps the heap goal at 16 MiB or more:
	// several times fewer collections than GOGC=100 alone on a small heap
	// under load, for about 12 MiB more memory.
	DefaultGCHeapFloorBytes = 16 << 20
	// MaxGCHeapFloorBytes bounds gc_heap_floor_bytes.
	MaxGCHeapFloorBytes  = 1 << 40
	DefaultRoutingHeader = "X-API-Key"
	DefaultMode          = ModeLegacy
	// DefaultRequestBuffering is the largest request body read before the
	// upstream is dialled.
	DefaultRequestBuffering = 1 << 20
	// DefaultStateDir is relative to the working directory.
	DefaultStateDir = "state"
	// DefaultLearnSample is shadow.learn_sample's default: one replayed
	// safe request in twenty is replayed a second time.
	DefaultLearnSample = 0.05
	// DefaultContractMaxInFlight is contract.max_in_flight's default,
	// and MaxContractInFlight its largest value.
	DefaultContractMaxInFlight = 64
	MaxContractInFlight        = 4096
)

// Default returns the configuration used when no file is given.
func Default() *Config {
	return &Config{
		Listen:      DefaultListen,
		AdminListen: DefaultAdminListen,
		Upstream: Upstream{
			URL:                    DefaultUpstreamURL,
			Timeout:                DefaultUpstreamTimeout,
			DialTimeout:            5 * time.Second,
			TLSHandshakeTimeout:    5 * time.Second,
			KeepAlive:              30 * time.Second,
			MaxIdleConns:           1024,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        90 * time.Second,
			MaxResponseHeaderBytes: 64 << 10,
		},
		MaxBodyBytes:     DefaultMaxBodyBytes,
		GCHeapFloorBytes: DefaultGCHeapFloorBytes,
		Server: Server{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ShutdownTimeout:   30 * time.Second,
			RequestBuffering:  DefaultRequestBuffering,
		},
		Routing: Routing{
			Header:        DefaultRoutingHeader,
			Default:       DefaultMode,
			OverrideModes: []Mode{ModeLegacy, ModeEnvelope},
			Clients:       []Client{},
			Rollout:       []Cohort{},
		},
		MigratedPrefixes: []string{},
		Rules:            []transform.Rule{},
		Shadow: Shadow{
			Sample:           1,
			Methods:          []string{"GET", "HEAD", "OPTIONS"},
			Ignore:           []string{},
			MaxInFlight:      64,
			MaxBodyBytes:     1 << 20,
			MaxRequestBytes:  64 << 10,
			Routes:           []string{},
			Replay:           []ReplayRoute{},
			CandidateHeaders: map[string]string{},
			LearnSample:      DefaultLearnSample,
			Tolerances:       Tolerances{Sets: map[string]string{}},
		},
		Candidate: Candidate{Timeout: 5 * time.Second},
		Contract:  Contract{Sample: 1, MaxInFlight: DefaultContractMaxInFlight},
		Log:       Log{Level: "info", AccessLog: true, SampleInitial: 100, SampleThereafter: 100},
		StateDir:  DefaultStateDir,
		Readiness: Readiness{
			Window:                  24 * time.Hour,
			MinRequests:             1000,
			MaxMismatchRatio:        0.001,
			MaxUnmapped:             0,
			MaxCandidateErrorsRatio: 0.001,
			MaxUpstreamErrorsRatio:  0.01,
			Retention:               14 * 24 * time.Hour,
			MaxStateBytes:           256 << 20,
		},
		Dashboard: Dashboard{Samples: true},
	}
}
