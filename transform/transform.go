package transform

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/tidwall/gjson"
)

// Action is what happens to a response.
type Action uint8

const (
	// Pass sends the legacy response unchanged.
	Pass Action = iota
	// Wrap puts a 2xx JSON body into the success envelope.
	Wrap
	// Rewrite replaces an error body with the error envelope.
	Rewrite
)

// Reason says why a rewritable response was passed unchanged; it is the
// label of the passthrough metric.
type Reason string

// The passthrough reasons.
const (
	ReasonNone     Reason = ""
	ReasonOversize Reason = "oversize"
	ReasonNotJSON  Reason = "not_json"
	ReasonMigrated Reason = "migrated"
	ReasonEncoding Reason = "encoding"
)

// Result describes what a rewrite did, for metrics, logs and the shadow
// comparison. Its strings never point into a body: codes a rule does not
// name are reported as "other".
type Result struct {
	Action Action
	Reason Reason
	// Status is the status sent to the client.
	Status int
	// Code is the envelope error code ("" for success and passthrough).
	Code string
	// LegacyCode is the legacy "code" when a rule names it, "other" for
	// any other code, "" when the body had none.
	LegacyCode string
	// Rule is the name of the rule that matched, "" for the fallback.
	Rule string
	// Unmapped reports an error that no rule matched: the migration's
	// blind spot.
	Unmapped bool
	// Fields reports an error whose errors entries are keyed by field
	// rather than by code.
	Fields bool
}

// OtherCode is the metric label for codes no rule names.
const OtherCode = "other"

// Transformer rewrites legacy responses with a compiled rule set. It is
// immutable and safe for concurrent use.
type Transformer struct {
	rules []rule
	// codes interns every code the rules name, so that outcomes carry
	// bounded, body-independent strings.
	codes   map[string]string
	scratch sync.Pool
}

// rewriteScratch is the per-rewrite working memory, pooled so that a
// rewrite allocates nothing it does not return.
type rewriteScratch struct {
	msg    []byte
	code   []byte
	fields []fieldMessage
	paths  pathCache
}

// New compiles rules followed by DefaultRules.
func New(rules []Rule) (*Transformer, error) {
	all := append(append([]Rule(nil), rules...), DefaultRules()...)
	t := &Transformer{rules: make([]rule, 0, len(all)), codes: make(map[string]string)}
	t.scratch.New = func() any { return new(rewriteScratch) }
	for i, r := range all {
		c, err := compileRule(i, r)
		if err != nil {
			return nil, err
		}
		t.rules = append(t.rules, c)
		for _, code := range []string{r.Match.Code, c.staticCode} {
			if code != "" {
				t.codes[code] = code
			}
		}
	}
	return t, nil
}

func (t *Transformer) intern(code string) string {
	if code == "" {
		return ""
	}
	if c, ok := t.codes[code]; ok {
		return c
	}
	return OtherCode
}

// Decide returns what to do with a response from its status and content
// type, before its body is read. Error statuses are always rewritten (a
// load balancer's HTML page must not reach an envelope client); success
// bodies only when they are JSON; every other status passes.
func Decide(status int, contentType string) (Action, Reason) {
	switch {
	case status >= 400:
		return Rewrite, ReasonNone
	case status >= 200 && status < 300 && status != http.StatusNoContent && status != http.StatusPartialContent:
		if IsJSON(contentType) {
			return Wrap, ReasonNone
		}
		return Pass, ReasonNotJSON
	}
	return Pass, ReasonNone
}

// IsJSON reports whether a Content-Type names JSON: application/json or any
// structured-syntax suffix +json, parameters ignored.
func IsJSON(contentType string) bool {
	mt := contentType
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = mt[:i]
	}
	mt = strings.TrimSpace(mt)
	if strings.EqualFold(mt, "application/json") {
		return true
	}
	return len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json") && strings.Contains(mt, "/")
}

// AppendError appends the error envelope for a legacy error response to
// dst. When the body is already an envelope (a partly migrated backend) it
// appends nothing and reports Pass with ReasonMigrated.
func (t *Transformer) AppendError(dst []byte, status int, body []byte) ([]byte, Result) {
	lb := parseLegacy(body)
	o := Result{Action: Rewrite, Status: status}
	if lb.hasCode {
		o.LegacyCode = t.intern(lb.code)
	}
	if lb.envelope {
		o.Action, o.Reason = Pass, ReasonMigrated
		return dst, o
	}
	sc := t.scratch.Get().(*rewriteScratch)
	defer t.putScratch(sc)
	lb.paths = &sc.paths

	r := t.match(status, &lb)
	rc := renderContext{lb: &lb, status: status}
	var msgT, fallbackT template
	var codeT template
	if r != nil {
		o.Rule = r.name
		if r.status != 0 {
			o.Status = r.status
		}
		rc.status = o.Status
		if r.fields != FieldsNone {
			sc.fields = collectFields(&lb, r.fields, sc.fields[:0])
			rc.fields = sc.fields
		}
		msgT, fallbackT, codeT = r.message, r.fallback, r.code
	} else {
		o.Unmapped = true
	}

	// The message: the rule's template, its fallback, the legacy message,
	// the field summary, or the status text, first non-empty wins.
	msg := sc.msg[:0]
	switch {
	case len(msgT.segs) > 0:
		msg = msgT.render(msg, &rc)
	case len(rc.fields) > 0:
		msg = fieldSummary(msg, rc.fields)
	default:
		msg = append(msg, lb.message...)
	}
	if len(msg) == 0 {
		msg = fallbackT.render(msg, &rc)
	}
	if len(msg) == 0 {
		msg = append(msg, StatusText(o.Status)...)
	}
	sc.msg = msg

	// The code: the rule's literal or template, else the legacy code, else
	// one derived from the status.
	var code string
	switch {
	case r != nil && r.staticCode != "":
		code, o.Code = r.staticCode, r.staticCode
	case r != nil && len(codeT.segs) > 0:
		sc.code = codeT.render(sc.code[:0], &rc)
		code = viewString(sc.code)
		o.Code = t.intern(code)
	case lb.hasCode && lb.code != "":
		code, o.Code = lb.code, t.intern(lb.code)
	}
	if code == "" {
		code = StatusCode(o.Status)
		o.Code = code
	}

	if len(rc.fields) > 0 {
		o.Fields = true
		dst = appendErrorHead(dst, viewString(msg))
		dst = appendFieldErrors(dst, rc.fields)
		dst = append(dst, "]}"...)
	} else {
		dst = appendCodeError(dst, code, viewString(msg))
	}
	return dst, o
}

func (t *Transformer) match(status int, lb *legacyBody) *rule {
	for i := range t.rules {
		if t.rules[i].matches(status, lb) {
			return &t.rules[i]
		}
	}
	return nil
}

// putScratch returns sc to the pool with its path cache cleared, so that a
// pooled scratch never holds results that point into a finished body (the
// caller's, which a pure function must not keep).
func (t *Transformer) putScratch(sc *rewriteScratch) {
	sc.paths = pathCache{}
	t.scratch.Put(sc)
}

// getPath reads a gjson path from the legacy body through its path cache,
// which AppendError sets before any rule or template reads a path.
func getPath(lb *legacyBody, path string) gjson.Result {
	c := lb.paths
	for i := range c.n {
		if c.paths[i] == path {
			return c.found[i]
		}
	}
	r := gjson.Get(lb.json, path)
	if c.n < len(c.paths) {
		c.paths[c.n], c.found[c.n] = path, r
		c.n++
	}
	return r
}

// Transform rewrites one complete, decoded legacy response: the pure form of
// what the proxy does, used by the transform command and by tests. It edits
// h in place (Content-Type, Content-Length, validators) and returns the new
// status and body; a passed body is returned as given. Bodies with a
// Content-Encoding other than identity are passed: decode them first.
func (t *Transformer) Transform(dst []byte, status int, h http.Header, body []byte) (int, []byte, Result) {
	action, reason := Decide(status, h.Get("Content-Type"))
	if action != Pass {
		if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			action, reason = Pass, ReasonEncoding
		}
	}
	switch action {
	case Wrap:
		if !Valid(body) {
			return status, body, Result{Action: Pass, Reason: ReasonNotJSON, Status: status}
		}
		dst = AppendSuccess(dst, body)
		SetRewrittenHeaders(h, len(dst))
		return status, dst, Result{Action: Wrap, Status: status}
	case Rewrite:
		out, o := t.AppendError(dst, status, body)
		if o.Action == Pass {
			return status, body, o
		}
		SetRewrittenHeaders(h, len(out))
		return o.Status, out, o
	}
	return status, body, Result{Action: Pass, Reason: reason, Status: status}
}

// SetRewrittenHeaders fixes the headers of a response whose body was
// rewritten: JSON content type, the new length (or none when length < 0,
// for a stream of unknown length), a weakened ETag since the bytes changed,
// and no digests or ranges that described the old bytes.
//
// The keys are written in canonical form directly, and the header takes
// fresh value slices (never one shared with another response), so the
// call costs one small allocation (two for a length of three digits or
// more) and no key canonicalization.
func SetRewrittenHeaders(h http.Header, length int) {
	vals := make([]string, 2)
	vals[0] = "application/json"
	h["Content-Type"] = vals[0:1:1]
	if length >= 0 {
		vals[1] = strconv.Itoa(length)
		h["Content-Length"] = vals[1:2:2]
	} else {
		delete(h, "Content-Length")
	}
	if etags := h["Etag"]; len(etags) > 0 {
		if e := etags[0]; strings.HasPrefix(e, `"`) {
			h["Etag"] = []string{"W/" + e}
		}
	}
	for _, k := range digestHeaders {
		delete(h, k)
	}
}

// digestHeaders describe the exact bytes of a representation and become
// false when the body is rewritten.
var digestHeaders = [...]string{"Content-Md5", "Digest", "Content-Digest", "Repr-Digest", "Accept-Ranges", "Content-Range"}

// String returns the action's name, as used in logs.
func (a Action) String() string {
	switch a {
	case Wrap:
		return "wrap"
	case Rewrite:
		return "rewrite"
	case Pass:
		return "pass"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}
