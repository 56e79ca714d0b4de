package transform

import (
	"errors"
	"net/http"
	"strings"
	"testing"
)

func TestRuleCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{"bad match status", Rule{Match: Match{Status: 99}}, "rules[0].match.status: 99 is not an HTTP status"},
		{"bad new status", Rule{Status: 700}, "rules[0].status: 700 is not a response status"},
		{"bad shape", Rule{Match: Match{Shape: "blob"}}, `rules[0].match.shape: "blob" is not one of`},
		{"bad fields", Rule{Fields: "everywhere"}, `rules[0].fields: "everywhere" is not one of`},
		{"bad regexp", Rule{Match: Match{Message: "(unclosed"}}, "rules[0].match.message: error parsing regexp"},
		{"unclosed template", Rule{Message: "Hello {{error"}, "rules[0].message:"},
		{"unknown special", Rule{Code: "{{$nope}}"}, "rules[0].code: {{$nope}}: unknown name"},
		{"empty placeholder", Rule{FallbackMessage: "{{ }}"}, "rules[0].fallback_message: empty {{}}"},
		{"empty has path", Rule{Match: Match{Has: []string{"a", ""}}}, "rules[0].match.has[1]: empty path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New([]Rule{tc.rule})
			var re *RuleError
			if !errors.As(err, &re) {
				t.Fatalf("got %v; want a *RuleError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %q; want prefix %q", err.Error(), tc.want)
			}
		})
	}
}

func TestUserRules(t *testing.T) {
	tr, err := New([]Rule{
		// Overrides a default: account_suspended is 402 in the envelope spec.
		{Name: "suspended", Match: Match{Status: 403, Code: "account_suspended"}, Status: 402, Code: "account_suspended"},
		// Templates read any gjson path, with a fallback.
		{Name: "frames", Match: Match{Status: 400, Code: "insufficient_frames", Has: []string{"details.required"}}, Code: "insufficient_frames",
			Message: `Insufficient frames. Model "{{details.model}}" requires {{details.required}} frames, received {{details.received}}.`},
		{Name: "by_message", Match: Match{Status: 409, Message: `(?i)already closed`}, Code: "session_closed", Message: "{{$message}} ({{$status_text}}, {{$status_code}})"},
		{Name: "code_from_body", Match: Match{Status: 404, Shape: ShapeError}, Code: "{{details.kind}}_missing"},
		{Name: "empty_message", Match: Match{Status: 410}, Message: "{{missing.path}}", FallbackMessage: "Gone for good"},
		{Name: "not_json", Match: Match{Status: 502, Shape: ShapeNotJSON}, Code: "upstream_down", Message: "The service is restarting"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantRule   string
		wantCode   string
		want       string
	}{
		{"override default", 403, `{"error":"Suspended","code":"account_suspended"}`, 402, "suspended", "account_suspended",
			`{"data":null,"success":false,"message":"Suspended","errors":[{"account_suspended":["Suspended"]}]}`},
		{"template paths", 400, `{"error":"x","code":"insufficient_frames","details":{"model":"10","required":10,"received":5}}`, 400, "frames", "insufficient_frames",
			`{"data":null,"success":false,"message":"Insufficient frames. Model \"10\" requires 10 frames, received 5.","errors":[{"insufficient_frames":["Insufficient frames. Model \"10\" requires 10 frames, received 5."]}]}`},
		{"message regexp and specials", 409, `{"message":"Session Already Closed"}`, 409, "by_message", "session_closed",
			`{"data":null,"success":false,"message":"Session Already Closed (Conflict, conflict)","errors":[{"session_closed":["Session Already Closed (Conflict, conflict)"]}]}`},
		{"regexp does not match", 409, `{"message":"other"}`, 409, "", "conflict",
			`{"data":null,"success":false,"message":"other","errors":[{"conflict":["other"]}]}`},
		{"dynamic code is labelled other", 404, `{"error":"No job","details":{"kind":"job"}}`, 404, "code_from_body", "other",
			`{"data":null,"success":false,"message":"No job","errors":[{"job_missing":["No job"]}]}`},
		{"fallback message", 410, `{"error":"ignored"}`, 410, "empty_message", "http_410",
			`{"data":null,"success":false,"message":"Gone for good","errors":[{"http_410":["Gone for good"]}]}`},
		{"not_json shape", 502, `<html>down</html>`, 502, "not_json", "upstream_down",
			`{"data":null,"success":false,"message":"The service is restarting","errors":[{"upstream_down":["The service is restarting"]}]}`},
		{"has path missing falls through", 400, `{"error":"Not enough frames","code":"insufficient_frames"}`, 400, "", "insufficient_frames",
			`{"data":null,"success":false,"message":"Not enough frames","errors":[{"insufficient_frames":["Not enough frames"]}]}`},
		{"credits without numbers", 403, `{"error":"Insufficient credits","code":"insufficient_credits"}`, 402, "insufficient_credits_bare", "insufficient_credits",
			`{"data":null,"success":false,"message":"Insufficient credits","errors":[{"insufficient_credits":["Insufficient credits"]}]}`},
		{"invalid_payload without details", 400, `{"error":"Invalid payload","code":"invalid_payload"}`, 400, "invalid_payload", "invalid_payload",
			`{"data":null,"success":false,"message":"Invalid payload","errors":[{"invalid_payload":["Invalid payload"]}]}`},
		{"field values that are not strings", 400, `{"error":"Invalid payload","code":"invalid_payload","details":{"items":[{"id":["bad"]}],"count":3,"empty":[]}}`, 400, "invalid_payload", "invalid_payload",
			`{"data":null,"success":false,"message":"items: {\"id\":[\"bad\"]}","errors":[{"items":["{\"id\":[\"bad\"]}"]},{"count":["3"]}]}`},
		{"duplicate keys merge", 400, `{"a":["one"],"b":["two"],"a":["three"]}`, 400, "serializer_fields", "validation_error",
			`{"data":null,"success":false,"message":"a: one","errors":[{"a":["one","three"]},{"b":["two"]}]}`},
		{"scope regexp must match", 403, `{"detail":"You do not have permission."}`, 403, "", "forbidden",
			`{"data":null,"success":false,"message":"You do not have permission.","errors":[{"forbidden":["You do not have permission."]}]}`},
		{"empty body", 404, ``, 404, "", "not_found",
			`{"data":null,"success":false,"message":"Not Found","errors":[{"not_found":["Not Found"]}]}`},
		{"non-object JSON", 500, `["boom"]`, 500, "internal_error", "internal_error",
			`{"data":null,"success":false,"message":"Internal server error","errors":[{"internal_error":["Internal server error"]}]}`},
		{"non-string code ignored", 418, `{"error":"x","code":42}`, 418, "", "http_418",
			`{"data":null,"success":false,"message":"x","errors":[{"http_418":["x"]}]}`},
		{"unregistered status", 599, `{}`, 599, "", "http_599",
			`{"data":null,"success":false,"message":"HTTP 599","errors":[{"http_599":["HTTP 599"]}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, o := tr.AppendError(nil, tc.status, []byte(tc.body))
			if string(got) != tc.want {
				t.Errorf("body: got %q; want %q", got, tc.want)
			}
			if o.Status != tc.wantStatus || o.Rule != tc.wantRule || o.Code != tc.wantCode {
				t.Errorf("outcome: got status=%d rule=%q code=%q; want status=%d rule=%q code=%q",
					o.Status, o.Rule, o.Code, tc.wantStatus, tc.wantRule, tc.wantCode)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		status     int
		ct         string
		wantAction Action
		wantReason Reason
	}{
		{200, "application/json", Wrap, ReasonNone},
		{200, "application/json; charset=utf-8", Wrap, ReasonNone},
		{200, "Application/JSON", Wrap, ReasonNone},
		{201, "application/problem+json", Wrap, ReasonNone},
		{200, "text/csv", Pass, ReasonNotJSON},
		{200, "image/png", Pass, ReasonNotJSON},
		{200, "text/event-stream", Pass, ReasonNotJSON},
		{200, "", Pass, ReasonNotJSON},
		{200, "+json", Pass, ReasonNotJSON},
		{204, "application/json", Pass, ReasonNone},
		{206, "application/json", Pass, ReasonNone},
		{101, "", Pass, ReasonNone},
		{301, "application/json", Pass, ReasonNone},
		{304, "application/json", Pass, ReasonNone},
		{400, "text/html", Rewrite, ReasonNone},
		{503, "", Rewrite, ReasonNone},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status)+"/"+tc.ct, func(t *testing.T) {
			a, r := Decide(tc.status, tc.ct)
			if a != tc.wantAction || r != tc.wantReason {
				t.Errorf("got %v %q; want %v %q", a, r, tc.wantAction, tc.wantReason)
			}
		})
	}
}

func TestTransformPasses(t *testing.T) {
	tr := newDefault(t)
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantReason Reason
	}{
		{"ndjson labelled json", 200, http.Header{"Content-Type": {"application/json"}}, "{\"a\":1}\n{\"a\":2}\n", ReasonNotJSON},
		{"truncated json", 200, http.Header{"Content-Type": {"application/json"}}, `{"a":[1,2`, ReasonNotJSON},
		{"empty json body", 200, http.Header{"Content-Type": {"application/json"}}, ``, ReasonNotJSON},
		{"csv", 200, http.Header{"Content-Type": {"text/csv"}}, "a,b\n1,2\n", ReasonNotJSON},
		{"gzip still encoded", 200, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, "\x1f\x8b", ReasonEncoding},
		{"encoded error", 500, http.Header{"Content-Encoding": {"br"}}, "\x00", ReasonEncoding},
		{"envelope error", 403, http.Header{"Content-Type": {"application/json"}}, `{"success":false,"data":null,"message":"m","errors":[]}`, ReasonMigrated},
		{"redirect", 302, http.Header{"Location": {"/x"}}, ``, ReasonNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.header.Clone()
			status, body, o := tr.Transform(nil, tc.status, tc.header, []byte(tc.body))
			if status != tc.status || string(body) != tc.body || o.Action != Pass || o.Reason != tc.wantReason {
				t.Errorf("got %d %q %v %q; want %d %q pass %q", status, body, o.Action, o.Reason, tc.status, tc.body, tc.wantReason)
			}
			if len(before) != len(tc.header) {
				t.Errorf("headers changed: got %v; want %v", tc.header, before)
			}
		})
	}
}

func TestEnvelopeNotDetectedWithoutBooleanSuccess(t *testing.T) {
	tr := newDefault(t)
	body := `{"success":"yes","data":1,"error":"x"}`
	_, out, o := tr.Transform(nil, 400, http.Header{}, []byte(body))
	if o.Action != Rewrite {
		t.Fatalf("got %v %q; want a rewrite", o.Action, out)
	}
}
