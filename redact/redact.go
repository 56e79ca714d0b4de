// Package redact masks the values at configured JSON Pointers in a JSON
// body before the body is stored as a sample, so that personal data the
// legacy service or the candidate sends (emails, tokens, card numbers)
// never reaches the evidence file or the dashboard.
//
// A path is a JSON Pointer (RFC 6901, with its ~0 and ~1 escapes) in
// which a reference token "*" matches any object key or array index:
// /data/email, /data/*/token, /data/items/*/card/number. Masking replaces
// the whole value at every matching location, whatever its type, with the
// JSON string "[redacted]" and leaves every other byte of the document as
// it was, so a masked sample still reads like the original.
//
// Bodies are untrusted: they are validated before they are read, and one
// that is not JSON (or is cut short) is withheld whole, because there is no
// telling where its sensitive values are.
package redact

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// mask is what a masked value becomes.
const mask = `"` + Mask + `"`

var (
	errStart  = errors.New(`must be "" or start with "/"`)
	errEscape = errors.New(`"~" must be followed by "0" or "1"`)
)

// token is one compiled reference token of a pointer.
type token struct {
	// key is the unescaped token, compared with decoded object keys.
	key string
	// index is key as an array index, -1 when it is not one ("01", "-").
	index int
	// wild is set for "*", which matches every key and index.
	wild bool
}

// Paths is a compiled, immutable list of pointers. It is compiled once,
// when the config is loaded, so that masking a body parses no pointer; it
// is never modified afterwards, so it is safe for concurrent use. The zero
// value masks nothing.
type Paths struct {
	// pointers are the pointers as written, in order.
	pointers []string
	// envelope holds the pointers as configured.
	envelope [][]token
	// legacy holds them too, plus those starting with /data without that
	// first token.
	legacy [][]token
}

// PointerError is Compile's error: the first pointer that does not parse,
// by its position in the list, so that config validation can name the
// field.
type PointerError struct {
	Index   int
	Pointer string
	Err     error
}

func (e *PointerError) Error() string { return fmt.Sprintf("redact path %q: %v", e.Pointer, e.Err) }

func (e *PointerError) Unwrap() error { return e.Err }

// Compile parses pointers into Paths, so that a bad one is reported when
// the config is loaded rather than silently matching nothing. The error is
// a *PointerError naming the first bad pointer.
func Compile(pointers []string) (Paths, error) {
	var p Paths
	if len(pointers) > 0 {
		p.pointers = slices.Clone(pointers)
	}
	for i, s := range pointers {
		toks, err := parse(s)
		if err != nil {
			return Paths{}, &PointerError{Index: i, Pointer: s, Err: err}
		}
		p.envelope = append(p.envelope, toks)
		p.legacy = append(p.legacy, toks)
		if len(toks) > 0 && !toks[0].wild && toks[0].key == "data" {
			p.legacy = append(p.legacy, toks[1:])
		}
	}
	return p, nil
}

// Pointers returns the pointers Paths was compiled from, in order.
func (p Paths) Pointers() []string { return slices.Clone(p.pointers) }

// Equal reports whether p and q were compiled from the same pointers in the
// same order, and so mask alike.
func (p Paths) Equal(q Paths) bool { return slices.Equal(p.pointers, q.pointers) }

// parse splits a pointer into its unescaped reference tokens; the root
// pointer "" has none.
func parse(s string) ([]token, error) {
	if s == "" {
		return []token{}, nil
	}
	if s[0] != '/' {
		return nil, errStart
	}
	parts := strings.Split(s[1:], "/")
	toks := make([]token, len(parts))
	for i, part := range parts {
		key, err := unescape(part)
		if err != nil {
			return nil, err
		}
		toks[i] = token{key: key, index: arrayIndex(key), wild: key == "*"}
	}
	return toks, nil
}

// unescape decodes ~1 to "/" and ~0 to "~", in that order as RFC 6901
// has it, so that "~01" is "~1".
func unescape(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '~' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) || (s[i+1] != '0' && s[i+1] != '1') {
			return "", errEscape
		}
		if s[i+1] == '0' {
			b.WriteByte('~')
		} else {
			b.WriteByte('/')
		}
		i++
	}
	return b.String(), nil
}

// arrayIndex is s as an RFC 6901 array index ("0", or digits without a
// leading zero), -1 when it is not one.
func arrayIndex(s string) int {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return -1
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -1
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

// Empty reports whether p masks nothing, in which case bodies pass
// through without being parsed at all.
func (p Paths) Empty() bool {
	return len(p.envelope) == 0
}

// Envelope masks an envelope body, or the candidate's body, so that it can
// be stored: the pointers apply from the document root. The result is a
// new slice when anything was masked; body itself is never modified.
//
// The bool reports whether the body could be inspected. When p is not
// empty and body is not valid JSON (a body cut short included), a
// placeholder saying so replaces it, with false, because its sensitive
// values cannot be found.
func (p Paths) Envelope(body []byte) ([]byte, bool) {
	return redact(body, p.envelope)
}

// Legacy masks a legacy body, as Envelope does an envelope one. A legacy
// success body is the envelope's data itself (/data/email in the envelope
// is /email in the legacy body), so a pointer starting with /data applies
// both from the root and with that first token removed, and one set of
// pointers covers both formats.
func (p Paths) Legacy(body []byte) ([]byte, bool) {
	return redact(body, p.legacy)
}

// placeholder stands for a body that could not be inspected.
func placeholder(body []byte) []byte {
	return fmt.Appendf(nil, "[withheld: %d bytes, not JSON, and dashboard.redact is set]", len(body))
}

// span is the byte range [start, end) of one matched value.
type span struct{ start, end int }

// redact masks body at ptrs.
func redact(body []byte, ptrs [][]token) ([]byte, bool) {
	if len(ptrs) == 0 {
		return body, true
	}
	if !gjson.ValidBytes(body) {
		return placeholder(body), false
	}
	var w walker
	for _, ptr := range ptrs {
		if len(ptr) == 0 {
			// The root: the whole document, with the whitespace around it.
			w.spans = append(w.spans, span{0, len(body)})
		}
	}
	if len(w.spans) == 0 {
		w.walk(gjson.ParseBytes(body), ptrs)
	}
	return splice(body, w.spans)
}

// walker collects the spans of the matched values of one document.
type walker struct {
	spans []span
	// stack holds the pointer remainders live at each level of the walk:
	// a level appends its children's above its own and truncates them
	// back, so the walk allocates per document, not per value.
	stack [][]token
}

// walk visits v with the remainders of the pointers that reached it. A
// remainder that is used up matches v whole, and then nothing inside v is
// visited: its values are masked with it. Each value is visited once,
// with every pointer reaching it, so two pointers reaching the same value
// give one span, and the spans come in document order.
func (w *walker) walk(v gjson.Result, ptrs [][]token) {
	for _, ptr := range ptrs {
		if len(ptr) == 0 {
			w.spans = append(w.spans, span{v.Index, v.Index + len(v.Raw)})
			return
		}
	}
	if v.Type != gjson.JSON {
		return
	}
	array := v.IsArray()
	i := -1
	v.ForEach(func(key, value gjson.Result) bool {
		i++
		base := len(w.stack)
		for _, ptr := range ptrs {
			t := ptr[0]
			switch {
			case t.wild,
				array && t.index == i,
				!array && key.Str == t.key:
				w.stack = append(w.stack, ptr[1:])
			}
		}
		if len(w.stack) > base {
			w.walk(value, w.stack[base:])
			w.stack = w.stack[:base]
		}
		return true
	})
}

// splice replaces the spans of body with the mask, in a new slice. A span
// that starts inside the one before it (a value inside a masked one) is
// dropped; one out of range means the walk misread the document, and the
// body is withheld rather than stored half masked.
func splice(body []byte, spans []span) ([]byte, bool) {
	if len(spans) == 0 {
		return body, true
	}
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return a.start - b.start
		}
		return b.end - a.end // the outer of two spans starting together first
	})
	out := make([]byte, 0, len(body)+len(spans)*len(mask))
	prev := 0
	for _, s := range spans {
		if s.start < prev {
			continue
		}
		if s.start < 0 || s.end > len(body) || s.end <= s.start {
			return placeholder(body), false
		}
		out = append(out, body[prev:s.start]...)
		out = append(out, mask...)
		prev = s.end
	}
	return append(out, body[prev:]...), true
}
