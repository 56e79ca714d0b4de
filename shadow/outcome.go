package shadow

// Outcome is how one shadowed exchange ended. Every exchange submitted or
// refused by Admit gets exactly one; it is the outcome label of
// envelope_proxy_shadow_total.
type Outcome string

// The outcomes.
const (
	// OutcomeMatch means the candidate answered the envelope's status and
	// an equal body, after the configured normalisation.
	OutcomeMatch Outcome = "match"
	// OutcomeMismatch means the statuses differ, or the bodies differ
	// outside the ignored paths.
	OutcomeMismatch Outcome = "mismatch"
	// OutcomeIgnored means the bodies differ only at ignored paths, with
	// equal statuses.
	OutcomeIgnored Outcome = "ignored"
	// OutcomeCandidateError means the candidate could not be reached, or
	// its answer could not be read.
	OutcomeCandidateError Outcome = "candidate_error"
	// OutcomeCandidateTimeout means the candidate did not answer within
	// candidate.timeout.
	OutcomeCandidateTimeout Outcome = "candidate_timeout"
	// OutcomeDropped means max_in_flight comparisons were already running
	// (or the Comparator was closed), so the exchange was not compared.
	OutcomeDropped Outcome = "dropped"
	// OutcomeSkippedTooLarge means the legacy response was larger than
	// shadow.max_body_bytes, the request body larger than
	// shadow.max_request_bytes with a candidate configured, or the
	// candidate's body larger than shadow.max_body_bytes.
	OutcomeSkippedTooLarge Outcome = "skipped_too_large"
	// OutcomeSkippedMethod means a sampled request's method is not in
	// shadow.methods (CONNECT and upgrades never are).
	OutcomeSkippedMethod Outcome = "skipped_method"
	// OutcomeDryRun means no candidate is configured: the dry run was
	// recorded and there was nothing to compare it with.
	OutcomeDryRun Outcome = "dry_run"
	// OutcomeUpstreamError means the legacy upstream failed (the client got the
	// proxy's 502 or 504), so there is no legacy answer to rewrite or
	// compare.
	OutcomeUpstreamError Outcome = "upstream_error"
)

// outcomes lists every Outcome, in the order of outcomeIndex, so that
// per-outcome counters can be arrays updated without a map lookup.
var outcomes = [...]Outcome{
	OutcomeMatch,
	OutcomeMismatch,
	OutcomeIgnored,
	OutcomeCandidateError,
	OutcomeCandidateTimeout,
	OutcomeDropped,
	OutcomeSkippedTooLarge,
	OutcomeSkippedMethod,
	OutcomeDryRun,
	OutcomeUpstreamError,
}

const numOutcomes = len(outcomes)

// index returns o's position in outcomes, or -1 for a value that is not
// one of them.
func (o Outcome) index() int {
	for i, v := range outcomes {
		if v == o {
			return i
		}
	}
	return -1
}
