package transform

// DefaultRules returns the built-in rule set, which reproduces the mapping
// table of the migration (README, "Mapping"). User rules are tried before
// it; errors it does not cover fall to the generic fallback. A fresh slice
// is returned each time so callers cannot change the defaults.
//
// Each rule's examples are the legacy API's documented responses it is
// meant for (the legacy spec's examples, and the framework shapes of the
// mapping table): `envelope-proxy contract` holds their envelopes to the
// new API's contract.
func DefaultRules() []Rule {
	return []Rule{
		{
			Name: "invalid_key", Match: Match{Status: 401}, Status: 401, Code: "invalid_key",
			Examples: []Example{
				{Body: `{"error": "API key is required. Please provide it in X-API-Key header."}`},
				{Body: `{"error": "Invalid API key."}`},
				{Body: `{"error": "API key is invalid, inactive, or expired."}`},
			},
		},
		{
			Name: "insufficient_scope", Match: Match{Status: 403, Shape: ShapeDetail, Message: `^API key does not have required scope`}, Status: 403, Code: "insufficient_scope",
			Examples: []Example{{Body: `{"detail": "API key does not have required scope: AI Detector"}`}},
		},
		{
			Name:    "insufficient_credits",
			Match:   Match{Status: 403, Code: "insufficient_credits", Has: []string{"details.credits", "details.required"}},
			Status:  402,
			Code:    "insufficient_credits",
			Message: "Insufficient credits. Required: {{details.required}}, available: {{details.credits}}",
			Examples: []Example{
				{Body: `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`},
			},
		},
		// Not in the migration table: an insufficient_credits error without
		// the numbers still moves to 402, like every other credits error.
		{
			Name: "insufficient_credits_bare", Match: Match{Status: 403, Code: "insufficient_credits"}, Status: 402, Code: "insufficient_credits",
			Examples: []Example{{Body: `{"error": "Insufficient credits", "code": "insufficient_credits"}`}},
		},
		{
			Name: "credits_exhausted", Match: Match{Status: 403, Code: "credits_exhausted"}, Status: 402, Code: "insufficient_credits",
			Examples: []Example{
				{Body: `{"error": "Credits exhausted. Credits reset on next billing cycle.", "code": "credits_exhausted", "details": {"plan": "1M", "credits": 0}}`},
			},
		},
		{
			Name: "trial_expired", Match: Match{Status: 403, Code: "trial_expired"}, Status: 402, Code: "trial_expired",
			Examples: []Example{{Body: `{"error": "Trial expired, please subscribe", "code": "trial_expired"}`}},
		},
		{
			Name: "key_limit_reached", Match: Match{Status: 403, Code: "key_limit_reached"}, Status: 403, Code: "key_limit_reached",
			Examples: []Example{
				{Body: `{"error": "API key limit reached", "code": "key_limit_reached", "details": {"active_keys": 5, "max_keys": 5, "plan": "1M"}}`},
			},
		},
		{
			Name: "invalid_payload", Match: Match{Status: 400, Code: "invalid_payload"}, Status: 400, Code: "invalid_payload", Fields: FieldsDetails,
			Examples: []Example{
				{Body: `{"error": "Invalid payload", "code": "invalid_payload", "details": {"content": ["This field is required."]}}`},
				{Body: `{"error": "Invalid payload", "code": "invalid_payload"}`},
			},
		},
		{
			Name: "serializer_fields", Match: Match{Status: 400, Shape: ShapeFields}, Status: 400, Code: "validation_error", Fields: FieldsBody,
			Examples: []Example{
				{Body: `{"content": ["This field is required."], "frames": ["Ensure this field has at least 10 elements.", "Not a valid list."], "non_field_errors": ["Unable to process the request."]}`},
			},
		},
		{
			Name: "pydantic_validation", Match: Match{Status: 422, Shape: ShapePydantic}, Status: 400, Code: "validation_error", Fields: FieldsPydantic,
			Examples: []Example{
				{Body: `{"detail": [{"type": "missing", "loc": ["body", "session_id"], "msg": "Field required", "input": null}]}`},
			},
		},
		// Not in the migration table: the envelope never answers 422 (its
		// spec: "Returned as 400 ... (not 422)"), whatever the body's shape.
		{
			Name: "unprocessable", Match: Match{Status: 422}, Status: 400, Code: "validation_error",
			Examples: []Example{{Body: `{"error": "Unprocessable"}`}},
		},
		{
			Name: "too_many_pending_jobs", Match: Match{Status: 429, Code: "too_many_pending_jobs"}, Status: 429, Code: "too_many_pending_jobs",
			Examples: []Example{
				{Body: `{"error": "Too many pending jobs. Wait for existing jobs to complete.", "code": "too_many_pending_jobs", "details": {"pending": 5, "limit": 5}}`},
			},
		},
		{
			Name: "rate_limit_exceeded", Match: Match{Status: 429}, Status: 429, Code: "rate_limit_exceeded", FallbackMessage: "Rate limit exceeded. Please try again later.",
			Examples: []Example{
				{Body: `{"detail": "Request was throttled. Expected available in 30 seconds."}`},
				{Body: ``},
			},
		},
		{
			Name: "internal_error", Match: Match{Status: 500}, Status: 500, Code: "internal_error", FallbackMessage: "Internal server error",
			Examples: []Example{{Body: `{"error": "Detector crashed"}`}, {Body: ``}},
		},
		{
			Name: "service_unavailable", Match: Match{Status: 503}, Status: 503, Code: "service_unavailable",
			Examples: []Example{{Body: `{"error": "No active detector services configured"}`}},
		},
	}
}
