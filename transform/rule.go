package transform

import (
	"fmt"
	"regexp"
)

// Rule maps one kind of legacy error to its envelope. Rules are tried in
// order and the first whose Match fits wins; an error no rule matches falls
// to the generic fallback (same status, the legacy code or one derived from
// the status), which is reported as unmapped.
type Rule struct {
	// Name identifies the rule in metrics, logs and the shadow report.
	Name string `yaml:"name,omitempty" json:"name,omitempty"`
	// Match selects the legacy responses the rule applies to.
	Match Match `yaml:"match" json:"match"`
	// Status is the new HTTP status; 0 keeps the legacy one.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Code is the envelope error code, a template; empty derives it from
	// the new status.
	Code string `yaml:"code,omitempty" json:"code,omitempty"`
	// Message is the envelope message, a template where {{path}} is a gjson
	// path into the legacy body. Empty means the legacy message, or for
	// per-field errors the first field's first message prefixed with the
	// field name.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	// FallbackMessage is used when Message renders empty; when both do, the
	// new status's reason phrase is used.
	FallbackMessage string `yaml:"fallback_message,omitempty" json:"fallback_message,omitempty"`
	// Fields makes one errors entry per field instead of {code: [message]}.
	Fields FieldsFrom `yaml:"fields,omitempty" json:"fields,omitempty"`
	// Examples are legacy responses the rule is meant for. They change
	// nothing the proxy does: `envelope-proxy contract` rewrites each and
	// holds the envelope to the new API's contract.
	Examples []Example `yaml:"examples,omitempty" json:"examples,omitempty"`
}

// Example is one legacy response: its status (0 is the rule's
// match.status) and its body, and the request it answers (method, GET by
// default, and path), which chooses the operation of an OpenAPI document
// that describes routes.
type Example struct {
	Status int    `yaml:"status,omitempty" json:"status,omitempty"`
	Body   string `yaml:"body" json:"body"`
	Method string `yaml:"method,omitempty" json:"method,omitempty"`
	Path   string `yaml:"path,omitempty" json:"path,omitempty"`
}

// Match is the condition part of a Rule. Every set field must hold.
type Match struct {
	// Status is the legacy HTTP status; 0 matches any.
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Code is the legacy "code" value; empty matches any or none.
	Code string `yaml:"code,omitempty" json:"code,omitempty"`
	// Message is a regular expression (RE2) the legacy message must match.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	// Shape is the form of the legacy body.
	Shape Shape `yaml:"shape,omitempty" json:"shape,omitempty"`
	// Has lists gjson paths that must exist in the legacy body.
	Has []string `yaml:"has,omitempty" json:"has,omitempty"`
}

// RuleError reports an invalid rule: its position in the list given to New
// and the field at fault, as a YAML path relative to the rule.
type RuleError struct {
	Index int
	Field string
	Err   error
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("rules[%d].%s: %v", e.Index, e.Field, e.Err)
}

func (e *RuleError) Unwrap() error { return e.Err }

// rule is a Rule compiled for matching.
type rule struct {
	name       string
	match      Match
	re         *regexp.Regexp
	status     int
	code       template
	staticCode string // the code when it is a literal, else ""
	message    template
	fallback   template
	fields     FieldsFrom
}

// compileRule checks r and prepares it for matching.
func compileRule(i int, r Rule) (rule, error) {
	bad := func(field string, err error) (rule, error) {
		return rule{}, &RuleError{Index: i, Field: field, Err: err}
	}
	c := rule{name: r.Name, match: r.Match, status: r.Status, fields: r.Fields}
	if c.name == "" {
		c.name = fmt.Sprintf("rules[%d]", i)
	}
	if s := r.Match.Status; s != 0 && (s < 100 || s > 599) {
		return bad("match.status", fmt.Errorf("%d is not an HTTP status (100-599)", s))
	}
	if s := r.Status; s != 0 && (s < 200 || s > 599) {
		return bad("status", fmt.Errorf("%d is not a response status (200-599)", s))
	}
	switch r.Match.Shape {
	case ShapeAny, ShapeError, ShapeDetail, ShapeFields, ShapePydantic, ShapeNotJSON:
	default:
		return bad("match.shape", fmt.Errorf("%q is not one of error, detail, fields, pydantic, not_json", r.Match.Shape))
	}
	switch r.Fields {
	case FieldsNone, FieldsDetails, FieldsBody, FieldsPydantic:
	default:
		return bad("fields", fmt.Errorf("%q is not one of details, body, pydantic", r.Fields))
	}
	for j, p := range r.Match.Has {
		if p == "" {
			return bad(fmt.Sprintf("match.has[%d]", j), fmt.Errorf("empty path"))
		}
	}
	for j, ex := range r.Examples {
		status := ex.Status
		if status == 0 {
			status = r.Match.Status
		}
		if status < 400 || status > 599 {
			return bad(fmt.Sprintf("examples[%d].status", j), fmt.Errorf("%d is not an error status (400-599); set it, or the rule's match.status", status))
		}
	}
	if r.Match.Message != "" {
		re, err := regexp.Compile(r.Match.Message)
		if err != nil {
			return bad("match.message", err)
		}
		c.re = re
	}
	var err error
	if c.code, err = parseTemplate(r.Code); err != nil {
		return bad("code", err)
	}
	c.staticCode, _ = c.code.literal()
	if c.message, err = parseTemplate(r.Message); err != nil {
		return bad("message", err)
	}
	if c.fallback, err = parseTemplate(r.FallbackMessage); err != nil {
		return bad("fallback_message", err)
	}
	return c, nil
}

// matches reports whether the rule applies to a legacy error.
func (r *rule) matches(status int, lb *legacyBody) bool {
	m := &r.match
	if m.Status != 0 && m.Status != status {
		return false
	}
	if m.Code != "" && (!lb.hasCode || lb.code != m.Code) {
		return false
	}
	if m.Shape != ShapeAny && m.Shape != lb.shape {
		return false
	}
	if r.re != nil && (!lb.hasMsg || !r.re.MatchString(lb.message)) {
		return false
	}
	if len(m.Has) > 0 {
		if !lb.object {
			return false
		}
		for _, p := range m.Has {
			if !getPath(lb, p).Exists() {
				return false
			}
		}
	}
	return true
}
