package redact

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
)

// Mask replaces a credential wherever a sample would hold it.
const Mask = "[redacted]"

// minSecretLen is the shortest credential scrubbed wherever it appears;
// shorter values would scrub ordinary text.
const minSecretLen = 6

// Secrets are one request's credential values, longest first so that a
// value containing another is scrubbed whole. A legacy error may echo the
// key it refused, or a cookie: samples are scrubbed of them before they
// are kept.
type Secrets []string

// Credentials collects the credential values of a request's headers: the
// routing key header, Authorization, Proxy-Authorization, Cookie, and any
// header named like a token, key, secret, password, session or signature
// (see Sensitive); for "Bearer <token>" the token alone too, and for a
// cookie each value.
func Credentials(keyHeader string, h http.Header) Secrets {
	var s Secrets
	for name, values := range h {
		if !Sensitive(name, keyHeader) {
			continue
		}
		for _, v := range values {
			s.add(v)
			if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
				s.add(cred)
			}
			for _, part := range strings.Split(v, ";") {
				if _, cv, ok := strings.Cut(part, "="); ok {
					s.add(cv)
				}
			}
		}
	}
	slices.SortFunc(s, func(a, b string) int { return len(b) - len(a) })
	return s
}

func (s *Secrets) add(v string) {
	v = strings.TrimSpace(v)
	if len(v) >= minSecretLen && !slices.Contains(*s, v) {
		*s = append(*s, v)
	}
}

// Sensitive reports a header whose value is a credential: keyHeader,
// Authorization, Proxy-Authorization, Cookie, Set-Cookie, and any header
// named like a token, key, secret, password, session or signature.
func Sensitive(name, keyHeader string) bool {
	name = http.CanonicalHeaderKey(name)
	switch name {
	case http.CanonicalHeaderKey(keyHeader), "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie":
		return true
	}
	lower := strings.ToLower(name)
	for _, word := range [...]string{"auth", "token", "key", "secret", "password", "session", "signature", "cookie"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// String replaces every secret in v with Mask.
func (s Secrets) String(v string) string {
	for _, secret := range s {
		if strings.Contains(v, secret) {
			v = strings.ReplaceAll(v, secret, Mask)
		}
	}
	return v
}

// Bytes replaces every secret in b with Mask; b itself is returned when
// it holds none.
func (s Secrets) Bytes(b []byte) []byte {
	for _, secret := range s {
		if bytes.Contains(b, []byte(secret)) {
			b = bytes.ReplaceAll(b, []byte(secret), []byte(Mask))
		}
	}
	return b
}

// Longest returns the length of the longest secret, 0 when there is none.
func (s Secrets) Longest() int {
	if len(s) == 0 {
		return 0
	}
	return len(s[0])
}
