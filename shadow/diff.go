package shadow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/envelope-proxy/envelope-proxy/routes"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"github.com/tidwall/gjson"
	"github.com/wI2L/jsondiff"
)

// normaliser holds what one config removes from both bodies before they
// are compared: the shadow.ignore pointers and, unless compare_messages is
// set, the human messages; and the tolerances it compares them with. It is
// immutable once built.
type normaliser struct {
	// ignore are the parsed shadow.ignore pointers; a "*" token matches
	// any object key or array index.
	ignore [][]string
	// compareMessages keeps /message and the errors entries' messages.
	compareMessages bool
	// tolerance, nullIsMissing and sets are shadow.tolerances (see
	// tolerance.go).
	tolerance     float64
	nullIsMissing bool
	sets          []setRule
}

// diffResult is the structural comparison of the dry run's envelope with
// the candidate's body.
type diffResult struct {
	// ops are the differences that count (after ignore and message
	// removal), as RFC 6902 operations with JSON Pointer paths. A body that
	// is not JSON on one side only, or two different non-JSON bodies, give
	// one "replace" of the whole document (path "").
	ops jsondiff.Patch
	// ignored reports bodies that differ only at ignored paths, and
	// learned bodies that differ only there and at paths learned as the
	// candidate's noise (with at least one of the latter).
	ignored bool
	learned bool
}

// parseIgnore parses shadow.ignore. A pointer must be "" or start with
// "/" (RFC 6901); the empty pointer, which would ignore whole documents,
// and malformed pointers are returned as invalid and left out.
func parseIgnore(ptrs []string) (parsed [][]string, invalid []string) {
	for _, p := range ptrs {
		if p == "" || p[0] != '/' {
			invalid = append(invalid, p)
			continue
		}
		toks := strings.Split(p[1:], "/")
		for i, t := range toks {
			toks[i] = unescapePointerToken(t)
		}
		parsed = append(parsed, toks)
	}
	return parsed, invalid
}

// unescapePointerToken undoes RFC 6901's escaping: ~1 is '/', ~0 is '~'.
func unescapePointerToken(t string) string {
	if !strings.Contains(t, "~") {
		return t
	}
	return strings.ReplaceAll(strings.ReplaceAll(t, "~1", "/"), "~0", "~")
}

// compare diffs two bodies. Empty (or blank) bodies on both sides are
// equal; JSON bodies are diffed structurally after normalisation; anything
// else is equal only when byte for byte identical. Invalid JSON never
// fails the comparison: it is a difference. learned are the pointers
// learned as the candidate's noise on this route, applied after the
// configured ones: bodies that differ only there are told apart from
// ignored ones.
func (n *normaliser) compare(envelope, candidate []byte, learned []string) diffResult {
	envBlank, candBlank := len(bytes.TrimSpace(envelope)) == 0, len(bytes.TrimSpace(candidate)) == 0
	if envBlank && candBlank {
		return diffResult{}
	}
	ev, envOK := decodeJSON(envelope)
	cv, candOK := decodeJSON(candidate)
	if !envOK || !candOK {
		if !envOK && !candOK && bytes.Equal(envelope, candidate) {
			return diffResult{}
		}
		return wholeDocumentDiff()
	}
	ev, cv = n.normalise(ev, cv)
	var rawEnv, rawCand []byte
	if len(n.ignore) > 0 {
		// Keep the documents before ignore-removal: when the result is
		// equal, they tell "ignored" from "match".
		var err1, err2 error
		rawEnv, err1 = encodeJSON(ev)
		rawCand, err2 = encodeJSON(cv)
		if err1 != nil || err2 != nil {
			return wholeDocumentDiff()
		}
		for _, toks := range n.ignore {
			ev, cv = removePointer(ev, toks), removePointer(cv, toks)
		}
	}
	ops, err := diffValues(ev, cv)
	if err != nil {
		return wholeDocumentDiff()
	}
	if len(ops) > 0 && len(learned) > 0 {
		// Parsed only here: most comparisons match, and need no noise.
		noise, _ := parseIgnore(learned)
		for _, toks := range noise {
			ev, cv = removePointer(ev, toks), removePointer(cv, toks)
		}
		rest, err := diffValues(ev, cv)
		if err != nil {
			return wholeDocumentDiff()
		}
		// The differences that count are those beyond the noise.
		return diffResult{ops: rest, learned: len(rest) == 0}
	}
	if len(ops) > 0 || len(n.ignore) == 0 {
		return diffResult{ops: ops}
	}
	raw, err := jsondiff.CompareJSON(rawEnv, rawCand, jsondiff.UnmarshalFunc(unmarshalNumbers))
	if err != nil {
		return diffResult{}
	}
	return diffResult{ignored: len(raw) > 0}
}

// wholeDocumentDiff is the difference between bodies that cannot be
// compared structurally.
func wholeDocumentDiff() diffResult {
	return diffResult{ops: jsondiff.Patch{{Type: jsondiff.OperationReplace, Path: ""}}}
}

// diffValues re-encodes two normalised documents and diffs them with
// jsondiff, decoding numbers as json.Number so that integers beyond 2^53
// are compared digit for digit.
func diffValues(a, b any) (jsondiff.Patch, error) {
	ab, err := encodeJSON(a)
	if err != nil {
		return nil, err
	}
	bb, err := encodeJSON(b)
	if err != nil {
		return nil, err
	}
	ops, err := jsondiff.CompareJSON(ab, bb, jsondiff.UnmarshalFunc(unmarshalNumbers))
	if err != nil {
		return nil, fmt.Errorf("diffing bodies: %w", err)
	}
	return ops, nil
}

// decodeJSON decodes exactly one JSON value, numbers as json.Number. It
// reports false for invalid JSON, trailing data, or a blank body.
func decodeJSON(b []byte) (any, bool) {
	var v any
	if err := unmarshalNumbers(b, &v); err != nil {
		return nil, false
	}
	return v, true
}

// errTrailingData reports bytes after the JSON value.
var errTrailingData = errors.New("trailing data after JSON value")

// unmarshalNumbers is json.Unmarshal with UseNumber: big integers survive
// the round trip.
func unmarshalNumbers(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errTrailingData
	}
	return nil
}

// encodeJSON encodes a decoded document; json.Number values are written
// as their original digits.
func encodeJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding JSON: %w", err)
	}
	return b, nil
}

// stripMessages removes the human texts of an envelope, so that only the
// status and the codes are compared: /message is dropped, and every
// errors entry ({code: [messages]}) keeps its codes with empty lists.
func stripMessages(v any) any {
	m, ok := v.(map[string]any)
	if !ok {
		return v
	}
	delete(m, "message")
	errs, ok := m["errors"].([]any)
	if !ok {
		return v
	}
	for _, e := range errs {
		if entry, ok := e.(map[string]any); ok {
			for code := range entry {
				entry[code] = []any{}
			}
		}
	}
	return v
}

// removePointer removes what toks points to from v and returns the new v
// (an array that loses an element is a new slice). A "*" token matches
// every key of an object or every element of an array; a path that does
// not exist is not an error.
func removePointer(v any, toks []string) any {
	if len(toks) == 0 {
		return v
	}
	tok, last := toks[0], len(toks) == 1
	switch t := v.(type) {
	case map[string]any:
		if tok == "*" {
			if last {
				clear(t)
				return t
			}
			for k, child := range t {
				t[k] = removePointer(child, toks[1:])
			}
			return t
		}
		child, ok := t[tok]
		if !ok {
			return t
		}
		if last {
			delete(t, tok)
		} else {
			t[tok] = removePointer(child, toks[1:])
		}
		return t
	case []any:
		if tok == "*" {
			if last {
				return []any{}
			}
			for i := range t {
				t[i] = removePointer(t[i], toks[1:])
			}
			return t
		}
		i, ok := arrayIndex(tok, len(t))
		if !ok {
			return t
		}
		if last {
			return slices.Delete(t, i, i+1)
		}
		t[i] = removePointer(t[i], toks[1:])
		return t
	}
	return v
}

// arrayIndex parses an RFC 6901 array index (digits, no leading zero)
// within an array of length n.
func arrayIndex(tok string, n int) (int, bool) {
	if tok == "" || (len(tok) > 1 && tok[0] == '0') || len(tok) > 9 {
		return 0, false
	}
	i := 0
	for j := 0; j < len(tok); j++ {
		c := tok[j]
		if c < '0' || c > '9' {
			return 0, false
		}
		i = i*10 + int(c-'0')
	}
	return i, i < n
}

// collapsePointer names a differing JSON Pointer for the report: array
// indices (and the "-" append position) become "*", as do object keys that
// look like ids, so that a list of 1,000 items differing at the same field
// counts as one path. Like a route, it keeps at most routes.MaxSegments
// tokens of at most routes.MaxSegmentLen bytes.
func collapsePointer(p string) string {
	if p == "" {
		return ""
	}
	return routes.CollapseSegments(strings.TrimPrefix(p, "/"), "*", isPointerID)
}

// isPointerID reports a JSON Pointer token collapsePointer replaces.
func isPointerID(tok string) bool { return tok == "-" || routes.IsID(tok) }

// noise diffs two answers of the candidate to the same request, normalised
// as a comparison is (messages, tolerances, configured ignores), and
// returns the collapsed pointers at which they differ: the candidate's
// noise. Answers that are not both JSON, or whose whole documents differ,
// teach nothing.
func (n *normaliser) noise(a, b []byte) []string {
	av, okA := decodeJSON(a)
	bv, okB := decodeJSON(b)
	if !okA || !okB {
		return nil
	}
	av, bv = n.normalise(av, bv)
	for _, toks := range n.ignore {
		av, bv = removePointer(av, toks), removePointer(bv, toks)
	}
	ops, err := diffValues(av, bv)
	if err != nil {
		return nil
	}
	for _, op := range ops {
		if op.Path == "" {
			return nil
		}
	}
	return collapsedPaths(ops)
}

// normalise is what both documents go through before any diff: messages
// stripped unless compared, then the opt-in tolerances.
func (n *normaliser) normalise(a, b any) (any, any) {
	if !n.compareMessages {
		a, b = stripMessages(a), stripMessages(b)
	}
	return n.relax(a, b)
}

// collapsedPaths are the distinct collapsed pointers ops touch, at most
// maxPaths of them.
func collapsedPaths(ops jsondiff.Patch) []string {
	var paths []string
	for _, op := range ops {
		if len(paths) == maxPaths {
			break
		}
		if p := collapsePointer(op.Path); !containsString(paths, p) {
			paths = append(paths, p)
		}
	}
	return paths
}

// envelopeCode is an envelope's first error code, the key of its first
// errors entry, cut to a code's length; "" for a success or a body that is
// not an envelope error.
func envelopeCode(body []byte) string {
	if !gjson.ValidBytes(body) {
		return ""
	}
	code := gjson.GetBytes(body, "errors.0.@keys.0").String()
	code, _ = transform.CutString(code, transform.MaxLegacyCode)
	return code
}
