package transform

import "github.com/tidwall/gjson"

// The fixed parts of a success envelope. A 2xx body B is sent as
// successPrefix + B + successSuffix, so B is never re-encoded.
const (
	successPrefix = `{"data":`
	successSuffix = `,"success":true,"message":"OK"}`
)

// SuccessPrefix returns the bytes sent before a wrapped success body.
func SuccessPrefix() string { return successPrefix }

// SuccessSuffix returns the bytes sent after a wrapped success body.
func SuccessSuffix() string { return successSuffix }

// WrapOverhead is the number of bytes the success envelope adds to a body;
// the proxy adds it to a known upstream Content-Length.
const WrapOverhead = len(successPrefix) + len(successSuffix)

// AppendSuccess appends the success envelope around data to dst.
func AppendSuccess(dst, data []byte) []byte {
	dst = append(dst, successPrefix...)
	dst = append(dst, data...)
	return append(dst, successSuffix...)
}

// appendString appends s as a JSON string. Quotes, backslashes, control
// characters and invalid UTF-8 are escaped or replaced, so no legacy text
// can break out of the string it is placed in.
//
// gjson.AppendJSONString decides every escape; it appends byte by byte,
// so the run of bytes it would copy unchanged (printable ASCII other than
// the quote, the backslash and the HTML-escaped <, > and &) is copied
// here in one append first, and gjson gets only the rest, if any. Most
// messages are plain ASCII and never reach it.
func appendString(dst []byte, s string) []byte {
	i := 0
	for i < len(s) && plainJSONByte[s[i]] {
		i++
	}
	dst = append(dst, '"')
	dst = append(dst, s[:i]...)
	if i == len(s) {
		return append(dst, '"')
	}
	// gjson opens the rest with its own quote: drop it.
	mark := len(dst)
	dst = gjson.AppendJSONString(dst, s[i:])
	return append(dst[:mark], dst[mark+1:]...)
}

// plainJSONByte marks the bytes a JSON string holds as they are, whatever
// gjson's HTML escaping setting: printable ASCII but ", \, <, > and &.
var plainJSONByte = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendErrorHead appends everything of an error envelope up to the first
// entry of its errors list.
func appendErrorHead(dst []byte, message string) []byte {
	dst = append(dst, `{"data":null,"success":false,"message":`...)
	dst = appendString(dst, message)
	return append(dst, `,"errors":[`...)
}

// appendCodeError appends the complete error envelope with a single entry
// {code: [message]}.
func appendCodeError(dst []byte, code, message string) []byte {
	dst = appendErrorHead(dst, message)
	dst = append(dst, '{')
	dst = appendString(dst, code)
	dst = append(dst, ":["...)
	dst = appendString(dst, message)
	return append(dst, "]}]}"...)
}

// AppendLegacyError appends a body in the legacy error format, used when the
// proxy itself must answer a legacy client (upstream unreachable).
func AppendLegacyError(dst []byte, code, message string) []byte {
	dst = append(dst, `{"error":`...)
	dst = appendString(dst, message)
	dst = append(dst, `,"code":`...)
	dst = appendString(dst, code)
	return append(dst, '}')
}

// AppendEnvelopeError appends a complete error envelope with a single
// entry {code: [message]}, used when the proxy itself must answer an
// envelope client (upstream unreachable or timed out); AppendLegacyError is
// its legacy counterpart.
func AppendEnvelopeError(dst []byte, code, message string) []byte {
	return appendCodeError(dst, code, message)
}
