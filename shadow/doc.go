// Package shadow proves that switching a client from the legacy format to
// the envelope is safe, using that client's real traffic, before anyone is
// switched.
//
// A shadow-mode client always gets the legacy bytes; the proxy tees the
// request and the legacy response into bounded buffers and, once the
// client's response is complete, hands them to a Comparator as an event.Capture.
// Nothing flows back: the client can never be slowed down or affected by a
// comparison, which is why Admit only does atomic loads and Submit never
// waits.
//
// For every exchange the Comparator first runs the envelope rewrite as a
// dry run, with exactly the semantics of envelope mode, and records what it
// would have done: the status change (403 to 402), the rule that matched,
// whether the error fell to the generic fallback (an unmapped error is a
// blind spot of the migration), and whether the legacy body was JSON at
// all. When a candidate service is configured (the new service that
// answers in the envelope natively), the request is replayed to it, on its
// own context and timeout and marked with X-Shadow-Request: 1, and its
// answer is compared with the dry run's envelope: the status first, then
// the JSON bodies structurally, as RFC 6902 operations, after the
// configured ignore paths (with "*" wildcards) and, unless
// compare_messages is set, the human messages have been removed from both.
//
// Every exchange ends with exactly one event.Outcome. Besides the outcomes of a
// comparison (match, mismatch, ignored, candidate_error, candidate_timeout)
// and of the safety limits (dropped, skipped_too_large, skipped_method),
// two are specific: dry_run, when no candidate is configured and the dry
// run is all there is to record, and upstream_error, when the legacy
// upstream itself failed, so that there is no legacy answer to compare.
//
// Results are aggregated by client, method, route template, legacy status
// and legacy code, in memory that is bounded whatever the traffic: the
// number of groups, of differing paths per group and of stored samples are
// capped, ids in paths are collapsed into {id}, and samples are redacted
// (the key header, Authorization, Cookie and query values) before they are
// stored, because the report is meant to be read by people who must never
// see a client's key. The report is served as JSON by the Comparator's
// ServeHTTP, and the counts are exported as Prometheus counters whose
// labels are config names, outcomes and status codes only.
package shadow
