// Package routes names a request path by its route template
// ("/v1/jobs/{id}"), so that what is kept per route (shadow report groups,
// contract violations) does not grow with the ids in the paths and stays
// short whatever the path.
package routes

import (
	"strings"
)

// The route templating limits. A template is a report group's name, so it
// must not carry an id (the report would grow with traffic) and must stay
// short whatever the path.
const (
	// MaxSegments is the number of path segments kept; deeper paths
	// end in "/{more}".
	MaxSegments = 16
	// MaxSegmentLen is the longest literal segment kept; a longer one is
	// an id or a blob in all but name.
	MaxSegmentLen = 64
	// idPlaceholder replaces id-like segments.
	idPlaceholder = "{id}"
)

// Templates name a request path by its route template: the first
// explicit template (shadow.routes) that matches, else the path with
// id-like segments collapsed to {id}. It is immutable once built.
type Templates struct {
	templates []Template
}

// Template is one explicit path template ("/v1/jobs/{id}"), split into
// segments.
type Template struct {
	text string
	segs []string
	// wild[i] reports a {name} segment, which matches any segment.
	wild []bool
}

// Compile compiles one template. A template without a leading slash gets
// one, so that "v1/jobs/{id}" and "/v1/jobs/{id}" mean the same.
func Compile(t string) Template {
	t = strings.TrimSpace(t)
	if !strings.HasPrefix(t, "/") {
		t = "/" + t
	}
	segs := strings.Split(t[1:], "/")
	wild := make([]bool, len(segs))
	for i, s := range segs {
		wild[i] = len(s) >= 2 && s[0] == '{' && s[len(s)-1] == '}'
	}
	return Template{text: t, segs: segs, wild: wild}
}

// Matches reports whether path fits the template: the same number of
// segments, the literal ones equal.
func (t *Template) Matches(path string) bool {
	rest := strings.TrimPrefix(path, "/")
	return t.matches(rest, strings.Count(rest, "/")+1)
}

// New compiles the shadow.routes templates; empty ones are left out.
func New(templates []string) *Templates {
	r := &Templates{templates: make([]Template, 0, len(templates))}
	for _, t := range templates {
		if strings.TrimSpace(t) == "" {
			continue
		}
		r.templates = append(r.templates, Compile(t))
	}
	return r
}

// Name returns path's route template. An explicit template matches a
// path with the same number of segments whose literal segments are equal;
// the first such template wins over the heuristic.
func (r *Templates) Name(path string) string {
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	rest := path[1:]
	n := strings.Count(rest, "/") + 1
	for i := range r.templates {
		if r.templates[i].matches(rest, n) {
			return r.templates[i].text
		}
	}
	return collapseRoute(rest)
}

// matches reports whether the path (without its leading slash, with n
// segments) fits t.
func (t *Template) matches(rest string, n int) bool {
	if n != len(t.segs) {
		return false
	}
	for i := 0; i < n; i++ {
		seg, tail, _ := strings.Cut(rest, "/")
		rest = tail
		if !t.wild[i] && seg != t.segs[i] {
			return false
		}
	}
	return true
}

// collapseRoute builds the heuristic template of a path given without its
// leading slash: id-like segments become {id}, overlong ones are
// shortened, and at most MaxSegments segments are kept.
func collapseRoute(rest string) string {
	return CollapseSegments(rest, idPlaceholder, IsID)
}

// IsID reports a path segment collapseRoute replaces.
func IsID(seg string) bool { return isIDSegment(seg) || len(seg) > MaxSegmentLen }

// CollapseSegments writes each "/"-separated segment of rest after a "/",
// replacing with placeholder those collapsed reports, and ends with
// "/{more}" after MaxSegments segments.
func CollapseSegments(rest, placeholder string, collapsed func(string) bool) string {
	var b strings.Builder
	b.Grow(len(rest) + 1)
	for i := 0; ; i++ {
		if i == MaxSegments {
			b.WriteString("/{more}")
			break
		}
		seg, tail, more := strings.Cut(rest, "/")
		b.WriteByte('/')
		if collapsed(seg) {
			b.WriteString(placeholder)
		} else {
			b.WriteString(seg)
		}
		if !more {
			break
		}
		rest = tail
	}
	return b.String()
}

// isIDSegment reports a path segment that names one resource rather than a
// kind of resource: a number, a UUID, a long hex string (16 or more
// characters), or a base62-looking token (20 or more characters of
// letters, digits, '-' or '_', with both letters and digits).
func isIDSegment(s string) bool {
	if s == "" {
		return false
	}
	if isDigits(s) || isUUID(s) {
		return true
	}
	if len(s) >= 16 && isHex(s) {
		return true
	}
	return len(s) >= 20 && isBase62ish(s)
}

// isDigits reports a non-empty string of ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isHex reports a non-empty string of hex digits, either case.
func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func isHexByte(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// isUUID reports the 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHexByte(s[i]) {
				return false
			}
		}
	}
	return true
}

// isBase62ish reports letters, digits, '-' and '_' only, with at least one
// letter and one digit: a generated token, not a word.
func isBase62ish(s string) bool {
	var letter, digit bool
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'):
			letter = true
		case c == '-' || c == '_':
		default:
			return false
		}
	}
	return letter && digit
}
