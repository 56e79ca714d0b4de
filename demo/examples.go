package demo

// Examples are the legacy responses the demo backend serves, one per path
// under /examples/. The first twelve are the legacy spec's own examples;
// their bodies are the same bytes as transform/testdata/<name>.legacy.json
// (demo_test.go checks that).
var Examples = []Example{
	{Name: "missing_api_key", Status: 401, ContentType: "application/json", Note: "Missing API Key (legacy spec)", Body: `{
"error": "API key is required. Please provide it in X-API-Key header."
}
`},
	{Name: "invalid_api_key", Status: 401, ContentType: "application/json", Note: "Invalid API Key (legacy spec)", Body: `{
"error": "Invalid API key."
}
`},
	{Name: "expired_api_key", Status: 401, ContentType: "application/json", Note: "Expired or Inactive API Key (legacy spec)", Body: `{
"error": "API key is invalid, inactive, or expired."
}
`},
	{Name: "missing_scope", Status: 403, ContentType: "application/json", Note: "Missing Required Scope (legacy spec)", Body: `{
"detail": "API key does not have required scope: AI Detector"
}
`},
	{Name: "key_limit_reached", Status: 403, ContentType: "application/json", Note: "API Key Limit Reached (legacy spec)", Body: `{
"error": "API key limit reached",
"code": "key_limit_reached",
"details": {
"active_keys": 5,
"max_keys": 5,
"plan": "1M"
}
}
`},
	{Name: "invalid_payload", Status: 400, ContentType: "application/json", Note: "Invalid Request Payload (legacy spec)", Body: `{
"error": "Invalid payload",
"code": "invalid_payload",
"details": {
"content": ["This field is required."]
}
}
`},
	{Name: "insufficient_credits", Status: 403, ContentType: "application/json", Note: "Insufficient Credits (legacy spec)", Body: `{
"error": "Insufficient credits",
"code": "insufficient_credits",
"details": {
"credits": 50,
"required": 120
}
}
`},
	{Name: "credits_exhausted", Status: 403, ContentType: "application/json", Note: "Credits Exhausted (legacy spec)", Body: `{
"error": "Credits exhausted. Credits reset on next billing cycle.",
"code": "credits_exhausted",
"details": {
"plan": "1M",
"credits": 0
}
}
`},
	{Name: "trial_expired", Status: 403, ContentType: "application/json", Note: "Trial Expired (legacy spec)", Body: `{
"error": "Trial expired, please subscribe",
"code": "trial_expired"
}
`},
	{Name: "rate_limit_throttled", Status: 429, ContentType: "application/json", Note: "Rate Limit Exceeded (legacy spec; body from the framework's throttle)", Body: `{"detail": "Request was throttled. Expected available in 30 seconds."}
`},
	{Name: "too_many_pending_jobs", Status: 429, ContentType: "application/json", Note: "Too Many Pending Jobs (legacy spec)", Body: `{
"error": "Too many pending jobs. Wait for existing jobs to complete.",
"code": "too_many_pending_jobs",
"details": {
"pending": 5,
"limit": 5
}
}
`},
	{Name: "service_unavailable", Status: 503, ContentType: "application/json", Note: "Service Unavailable (legacy spec)", Body: `{
"error": "No active detector services configured"
}
`},
	{Name: "serializer_fields", Status: 400, ContentType: "application/json", Note: "Serializer field errors", Body: `{"content": ["This field is required."], "frames": ["Ensure this field has at least 10 elements.", "Not a valid list."], "non_field_errors": ["Unable to process the request."]}
`},
	{Name: "pydantic_validation", Status: 422, ContentType: "application/json", Note: "FastAPI validation error", Body: `{"detail": [{"type": "missing", "loc": ["body", "session_id"], "msg": "Field required", "input": null}, {"type": "uuid_parsing", "loc": ["body", "items", 0, "job_id"], "msg": "Input should be a valid UUID", "input": "x"}, {"type": "string_too_short", "loc": ["body", "session_id"], "msg": "String should have at least 1 character", "input": ""}]}
`},
	{Name: "internal_error_html", Status: 500, ContentType: "text/html", Note: "An HTML error page", Body: `<html><head><title>500 Internal Server Error</title></head><body><h1>Server Error (500)</h1></body></html>
`},
	{Name: "not_found_with_code", Status: 404, ContentType: "application/json", Note: "An error code no rule names (the generic fallback)", Body: `{"error": "Job not found", "code": "job_not_found"}
`},
	{Name: "success_object", Status: 200, ContentType: "application/json", Note: "A success body with a big integer and unicode escapes", Body: `{"id": 9007199254740993, "zeta": "first key", "alpha": "caf\u00e9 \ud83d\ude00", "score": 0.10000000000000000555, "nested": {"b": [1, 2.50, -0e+0], "a": null}}
`},
}
