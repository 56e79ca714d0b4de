package redact

import "net/url"

// URLPassword returns a connection string fit for logs, pages and /config:
// a URL with its password (in the user info or a password parameter)
// replaced by Mask, or "(connection string)" for anything that does not
// parse as a URL with a scheme, such as PostgreSQL's key=value form, which
// may hold a password anywhere.
func URLPassword(raw string) string {
	if raw == "" || isEnvReference(raw) {
		// An environment variable's name holds no secret.
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Opaque != "" {
		return "(connection string)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", Mask)
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Value returns a configured secret fit for /config: ${NAME} as it is (an
// environment variable's name holds no secret), anything else Mask.
func Value(v string) string {
	if isEnvReference(v) {
		return v
	}
	return Mask
}

// isEnvReference reports a value that is only ${NAME}.
func isEnvReference(s string) bool {
	if len(s) < 4 || s[:2] != "${" || s[len(s)-1] != '}' {
		return false
	}
	for i := 2; i < len(s)-1; i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
