package transform

import (
	"strings"
	"unicode/utf8"
)

// MaxLegacyCode bounds a legacy code returned by LegacyCode: codes come
// from untrusted bodies and end up as keys of stored evidence.
const MaxLegacyCode = 64

// LegacyCode returns the "code" of a legacy error body as the rules read
// it (a string), copied so that it outlives the body and cut to
// MaxLegacyCode bytes on a character boundary; "" when the body is not a
// JSON object or has no string code. It names an unmapped error, whose
// Result.LegacyCode is the bounded "other".
func LegacyCode(body []byte) string {
	lb := parseLegacy(body)
	if !lb.hasCode {
		return ""
	}
	code, _ := CutString(lb.code, MaxLegacyCode)
	return strings.Clone(code)
}

// LegacyMessage returns the message of a legacy error body as the rules
// read it (the first string among error, message and detail), copied; ""
// when there is none. It lets a suggested rule match one codeless error by
// its message.
func LegacyMessage(body []byte) string {
	lb := parseLegacy(body)
	if !lb.hasMsg {
		return ""
	}
	return strings.Clone(lb.message)
}

// CutString cuts s to at most n bytes without splitting a UTF-8 sequence,
// and reports whether it cut. Every text the proxy keeps from untrusted
// traffic (codes, sample bodies, header values) is bounded with it, so a
// kept text is always valid where the original was.
func CutString(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut], true
}
