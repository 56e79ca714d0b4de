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
// Outcome.LegacyCode is the bounded "other".
func LegacyCode(body []byte) string {
	lb := parseLegacy(body)
	if !lb.hasCode {
		return ""
	}
	code := lb.code
	if len(code) > MaxLegacyCode {
		cut := MaxLegacyCode
		for cut > 0 && !utf8.RuneStart(code[cut]) {
			cut--
		}
		code = code[:cut]
	}
	return strings.Clone(code)
}
