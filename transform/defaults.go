package transform

// DefaultRules returns the built-in rule set, which reproduces the mapping
// table of the migration (README, "Mapping"). User rules are tried before
// it; errors it does not cover fall to the generic fallback. A fresh slice
// is returned each time so callers cannot change the defaults.
func DefaultRules() []Rule {
	return []Rule{
		{Name: "invalid_key", Match: Match{Status: 401}, Status: 401, Code: "invalid_key"},
		{Name: "insufficient_scope", Match: Match{Status: 403, Shape: ShapeDetail, Message: `^API key does not have required scope`}, Status: 403, Code: "insufficient_scope"},
		{
			Name:    "insufficient_credits",
			Match:   Match{Status: 403, Code: "insufficient_credits", Has: []string{"details.credits", "details.required"}},
			Status:  402,
			Code:    "insufficient_credits",
			Message: "Insufficient credits. Required: {{details.required}}, available: {{details.credits}}",
		},
		// Not in the migration table: an insufficient_credits error without
		// the numbers still moves to 402, like every other credits error.
		{Name: "insufficient_credits_bare", Match: Match{Status: 403, Code: "insufficient_credits"}, Status: 402, Code: "insufficient_credits"},
		{Name: "credits_exhausted", Match: Match{Status: 403, Code: "credits_exhausted"}, Status: 402, Code: "insufficient_credits"},
		{Name: "trial_expired", Match: Match{Status: 403, Code: "trial_expired"}, Status: 402, Code: "trial_expired"},
		{Name: "key_limit_reached", Match: Match{Status: 403, Code: "key_limit_reached"}, Status: 403, Code: "key_limit_reached"},
		{Name: "invalid_payload", Match: Match{Status: 400, Code: "invalid_payload"}, Status: 400, Code: "invalid_payload", Fields: FieldsDetails},
		{Name: "serializer_fields", Match: Match{Status: 400, Shape: ShapeFields}, Status: 400, Code: "validation_error", Fields: FieldsBody},
		{Name: "pydantic_validation", Match: Match{Status: 422, Shape: ShapePydantic}, Status: 400, Code: "validation_error", Fields: FieldsPydantic},
		// Not in the migration table: the envelope never answers 422 (its
		// spec: "Returned as 400 ... (not 422)"), whatever the body's shape.
		{Name: "unprocessable", Match: Match{Status: 422}, Status: 400, Code: "validation_error"},
		{Name: "too_many_pending_jobs", Match: Match{Status: 429, Code: "too_many_pending_jobs"}, Status: 429, Code: "too_many_pending_jobs"},
		{Name: "rate_limit_exceeded", Match: Match{Status: 429}, Status: 429, Code: "rate_limit_exceeded", FallbackMessage: "Rate limit exceeded. Please try again later."},
		{Name: "internal_error", Match: Match{Status: 500}, Status: 500, Code: "internal_error", FallbackMessage: "Internal server error"},
		{Name: "service_unavailable", Match: Match{Status: 503}, Status: 503, Code: "service_unavailable"},
	}
}
