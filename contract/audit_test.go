package contract

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// TestDefaultsAgreeWithTheBuiltinContract keeps the default rules and the
// built-in contract agreeing: every envelope the defaults make of their
// examples, and every envelope the proxy makes of its own, is allowed;
// the ones allowed only as extensions are exactly those the README lists.
func TestDefaultsAgreeWithTheBuiltinContract(t *testing.T) {
	doc := builtinDoc(t)
	for _, r := range transform.DefaultRules() {
		if len(r.Examples) == 0 {
			t.Errorf("built-in rule %s has no example: the contract cannot be held to it", r.Name)
		}
	}
	a, err := doc.Audit(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range a.Violations {
		t.Errorf("violation: %s: %d %s: %s: %s", v.Source, v.Status, v.Code, v.Finding.Reason, v.Finding.Detail)
	}
	for _, n := range a.Notes {
		t.Errorf("note: %s: %s", n.Source, n.Note)
	}
	var got []string
	for _, e := range a.Extensions {
		got = append(got, strconv.Itoa(e.Status)+" "+e.Code)
	}
	slices.Sort(got)
	want := []string{
		"400 (fields)", "400 bad_request", "400 invalid_payload",
		"402 trial_expired", "403 key_limit_reached", "429 too_many_pending_jobs",
		"502 bad_gateway", "503 service_unavailable", "504 gateway_timeout",
	}
	if !slices.Equal(got, want) {
		t.Errorf("extensions:\n got %q\nwant %q", got, want)
	}
	for _, e := range a.Extensions {
		if e.Finding.Extension == "" {
			t.Errorf("extension %d %s has no note", e.Status, e.Code)
		}
	}
}

func TestAudit(t *testing.T) {
	builtin, jobs := builtinDoc(t), jobsDoc(t)
	tests := []struct {
		name       string
		doc        *Document
		rules      []transform.Rule
		violations []string // "source: status code reason"
		notes      []string // sources
	}{
		{
			name: "a rule emitting an undocumented code",
			doc:  builtin,
			rules: []transform.Rule{{
				Name: "payment", Match: transform.Match{Status: 403, Code: "payment_failed"}, Status: 402, Code: "payment_required",
				Examples: []transform.Example{{Body: `{"error": "Payment failed", "code": "payment_failed"}`}},
			}},
			violations: []string{"rules[0] (payment), example 0: 402 payment_required undocumented_code"},
		},
		{
			name: "a rule emitting an undocumented status",
			doc:  builtin,
			rules: []transform.Rule{{
				Match: transform.Match{Status: 409}, Status: 409, Code: "conflict",
				Examples: []transform.Example{{Body: `{"error": "Conflict"}`}},
			}},
			violations: []string{"rules[0], example 0: 409 conflict undocumented_status"},
		},
		{
			name: "a rule with a documented code",
			doc:  builtin,
			rules: []transform.Rule{{
				Name: "suspended", Match: transform.Match{Status: 403, Code: "account_suspended"}, Status: 402, Code: "account_suspended",
				Examples: []transform.Example{{Body: `{"error": "Suspended", "code": "account_suspended"}`}},
			}},
		},
		{
			name: "an example another rule rewrites first",
			doc:  builtin,
			rules: []transform.Rule{
				{Name: "all_403", Match: transform.Match{Status: 403}, Status: 403, Code: "insufficient_scope"},
				{Name: "late", Match: transform.Match{Status: 403, Code: "late"}, Status: 403, Code: "insufficient_scope",
					Examples: []transform.Example{{Body: `{"error": "x", "code": "late"}`}}},
			},
			notes: []string{"rules[1] (late), example 0"},
		},
		{
			name: "an example no rule matches",
			doc:  builtin,
			rules: []transform.Rule{{Name: "teapot", Match: transform.Match{Status: 418, Code: "tea"}, Status: 418, Code: "teapot",
				Examples: []transform.Example{{Status: 418, Body: `{"error": "x", "code": "coffee"}`}}}},
			notes: []string{"rules[0] (teapot), example 0"},
		},
		{
			name: "a route's own responses",
			doc:  jobs,
			rules: []transform.Rule{{
				Name: "gone", Match: transform.Match{Status: 404}, Status: 404, Code: "not_found",
				Examples: []transform.Example{
					{Body: `{"error": "no such job"}`, Path: "/v1/jobs/7"},
					{Body: `{"error": "no such thing"}`, Path: "/v1/things/7"},
				},
			}},
			violations: []string{"rules[0] (gone), example 1: 404 not_found undocumented_status"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.doc.Audit(context.Background(), tt.rules)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range a.Violations {
				if v.Source[0] == 'r' { // the configured rules' only
					got = append(got, v.Source+": "+strconv.Itoa(v.Status)+" "+v.Code+" "+v.Finding.Reason)
				}
			}
			if !slices.Equal(got, tt.violations) {
				t.Errorf("violations: got %q; want %q", got, tt.violations)
			}
			var notes []string
			for _, n := range a.Notes {
				if n.Source[0] == 'r' {
					notes = append(notes, n.Source)
				}
			}
			if !slices.Equal(notes, tt.notes) {
				t.Errorf("notes: got %q; want %q", notes, tt.notes)
			}
		})
	}
}
