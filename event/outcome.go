package event

// Outcome is how one shadowed exchange ended. Every exchange the comparison
// admits or refuses gets exactly one; it is the outcome label of
// envelope_proxy_shadow_total, and the evidence counts exchanges by it.
type Outcome string

// The outcomes, in the order of Outcomes.
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
	// (or the comparison was closed), so the exchange was not compared.
	OutcomeDropped Outcome = "dropped"
	// OutcomeSkippedTooLarge means the legacy response was larger than
	// shadow.max_body_bytes, the request body larger than
	// shadow.max_request_bytes with a candidate configured, or the
	// candidate's body larger than shadow.max_body_bytes.
	OutcomeSkippedTooLarge Outcome = "skipped_too_large"
	// OutcomeSkippedMethod means the exchange was dry-run but not
	// replayed to the configured candidate: its method is not in
	// shadow.methods and its route not in shadow.replay (CONNECT and
	// upgrades never are).
	OutcomeSkippedMethod Outcome = "skipped_method"
	// OutcomeDryRun means no candidate is configured: the dry run was
	// recorded and there was nothing to compare it with.
	OutcomeDryRun Outcome = "dry_run"
	// OutcomeUpstreamError means the legacy upstream failed (the client got
	// the proxy's 502 or 504), so there is no legacy answer to rewrite or
	// compare.
	OutcomeUpstreamError Outcome = "upstream_error"
	// OutcomeIgnoredLearned means the bodies differ only at paths learned
	// as the candidate's noise (shadow.learn_ignores), and at ignored
	// ones, with equal statuses.
	OutcomeIgnoredLearned Outcome = "ignored_learned"
)

// Outcomes lists every Outcome once, so that per-outcome counters can be
// arrays indexed by Index instead of maps.
var Outcomes = [...]Outcome{
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
	// Appended last: stored counts are arrays in this order.
	OutcomeIgnoredLearned,
}

// NumOutcomes is the length of Outcomes.
const NumOutcomes = len(Outcomes)

// Index returns o's position in Outcomes, or -1 for a value that is not one
// of them.
func (o Outcome) Index() int {
	for i, v := range Outcomes {
		if v == o {
			return i
		}
	}
	return -1
}

// Compared reports the outcomes of an exchange the candidate answered:
// match, mismatch, ignored and ignored_learned.
func (o Outcome) Compared() bool {
	return o == OutcomeMatch || o == OutcomeMismatch || o == OutcomeIgnored || o == OutcomeIgnoredLearned
}

// CandidateFailed reports the outcomes of a replay the candidate failed.
func (o Outcome) CandidateFailed() bool {
	return o == OutcomeCandidateError || o == OutcomeCandidateTimeout
}
