package contract

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// Audit is what holding every envelope the rules make of their examples to
// the contract found, with the envelopes the proxy makes of its own: a
// wrapped success and its 400, 502 and 504.
type Audit struct {
	// Checked counts the envelopes held to the contract.
	Checked int
	// Violations are the envelopes the contract does not allow.
	Violations []AuditEntry
	// Extensions are the (status, code) pairs the contract allows only
	// as extensions it marks, each once: the list to take to the new
	// API's owners.
	Extensions []AuditEntry
	// Notes are examples their own rule does not rewrite: another rule
	// does, or none (the generic fallback, never checked: it is counted
	// as unmapped).
	Notes []AuditEntry
}

// AuditEntry is one envelope of the audit.
type AuditEntry struct {
	// Source names where the envelope came from: "rules[2] (my_rule),
	// example 1", "built-in rule trial_expired, example 0", "a wrapped
	// success", "the proxy's own 502".
	Source string
	Status int
	// Code is the envelope's error code, or "(fields)" for errors keyed
	// by field; "" for a success.
	Code    string
	Finding Finding
	// Note says what happened to an example another rule rewrote.
	Note string
}

// auditSuccess is the success the audit wraps: the envelope of a 200 whose
// data is any JSON value.
const auditSuccess = `{"id": 1}`

// Audit rewrites every example of rules (the configured rules) and of the
// built-in rules with both, as the proxy would, and holds each envelope to
// the contract, together with a wrapped success and the proxy's own
// errors.
func (d *Document) Audit(ctx context.Context, rules []transform.Rule) (Audit, error) {
	t, err := transform.New(rules)
	if err != nil {
		return Audit{}, fmt.Errorf("compiling rules: %w", err)
	}
	var a Audit
	seen := map[string]bool{}
	check := func(source, method, path string, status int, body []byte, r transform.Result) {
		code := r.Code
		if r.Fields {
			code = "(fields)"
		}
		e := AuditEntry{Source: source, Status: status, Code: code}
		e.Finding = d.Check(ctx, Envelope{Method: method, Path: path, Status: status, Body: body, Fields: r.Fields})
		a.Checked++
		switch {
		case e.Finding.Broken():
			a.Violations = append(a.Violations, e)
		case e.Finding.Extension != "":
			if key := strconv.Itoa(status) + " " + code; !seen[key] {
				seen[key] = true
				a.Extensions = append(a.Extensions, e)
			}
		}
	}
	all := append(slices.Clone(rules), transform.DefaultRules()...)
	for i, rule := range all {
		name := ruleName(i, len(rules), rule)
		for j, ex := range rule.Examples {
			source := fmt.Sprintf("%s, example %d", name, j)
			status := ex.Status
			if status == 0 {
				status = rule.Match.Status
			}
			h := http.Header{"Content-Type": {"application/json"}}
			sent, body, r := t.Transform(nil, status, h, []byte(ex.Body))
			method, path := ex.Method, ex.Path
			if method == "" {
				method = http.MethodGet
			}
			if path == "" {
				path = "/"
			}
			switch {
			case r.Action != transform.Rewrite:
				a.Notes = append(a.Notes, AuditEntry{Source: source, Status: status, Note: "not rewritten (" + string(r.Reason) + ")"})
				continue
			case r.Unmapped:
				a.Notes = append(a.Notes, AuditEntry{Source: source, Status: status, Note: "no rule matches it: the generic fallback answers, counted as unmapped"})
				continue
			case r.Rule != ruleLabel(i, rule):
				a.Notes = append(a.Notes, AuditEntry{Source: source, Status: status, Note: "rewritten by rule " + r.Rule + ", which comes first"})
			}
			check(source, method, path, sent, body, r)
		}
	}
	success := transform.AppendSuccess(nil, []byte(auditSuccess))
	check("a wrapped success", http.MethodGet, "/", http.StatusOK, success, transform.Result{Action: transform.Wrap, Status: http.StatusOK})
	for _, status := range []int{http.StatusBadRequest, http.StatusBadGateway, http.StatusGatewayTimeout} {
		code := transform.StatusCode(status)
		body := transform.AppendEnvelopeError(nil, code, transform.StatusText(status))
		check("the proxy's own "+strconv.Itoa(status), http.MethodGet, "/", status, body, transform.Result{Action: transform.Rewrite, Status: status, Code: code})
	}
	return a, nil
}

// ruleName names the i-th of the rules (n configured, then the built-in
// ones) as a person reads it.
func ruleName(i, n int, r transform.Rule) string {
	if i >= n {
		return "built-in rule " + r.Name
	}
	if r.Name == "" {
		return fmt.Sprintf("rules[%d]", i)
	}
	return fmt.Sprintf("rules[%d] (%s)", i, r.Name)
}

// ruleLabel is the name a Result gives the i-th rule.
func ruleLabel(i int, r transform.Rule) string {
	if r.Name == "" {
		return fmt.Sprintf("rules[%d]", i)
	}
	return r.Name
}
