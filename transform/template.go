package transform

import (
	"errors"
	"fmt"
	"strings"
)

// A template is a message or code pattern compiled once at load time:
// literal text with {{path}} placeholders, where path is a gjson path into
// the legacy body, or one of the $-names below.
type template struct {
	segs []segment
}

type segment struct {
	lit     string
	path    string
	special special
}

type special uint8

const (
	specialNone special = iota
	// specialMessage is the legacy message: the first present of error,
	// message and detail (when a string).
	specialMessage
	// specialStatusCode is the code derived from the new status alone.
	specialStatusCode
	// specialStatusText is the reason phrase of the new status.
	specialStatusText
	// specialField and specialFieldMessage are the first field of a
	// per-field error and its first message.
	specialField
	specialFieldMessage
)

var specials = map[string]special{
	"$message":       specialMessage,
	"$status_code":   specialStatusCode,
	"$status_text":   specialStatusText,
	"$field":         specialField,
	"$field_message": specialFieldMessage,
}

var (
	errUnclosed    = errors.New("unclosed {{")
	errEmptyPath   = errors.New("empty {{}}")
	errUnknownName = errors.New("unknown name")
)

// parseTemplate compiles s. The empty string gives the empty template.
func parseTemplate(s string) (template, error) {
	var t template
	for s != "" {
		i := strings.Index(s, "{{")
		if i < 0 {
			t.segs = append(t.segs, segment{lit: s})
			break
		}
		if i > 0 {
			t.segs = append(t.segs, segment{lit: s[:i]})
		}
		j := strings.Index(s[i+2:], "}}")
		if j < 0 {
			return template{}, fmt.Errorf("%q: %w", s, errUnclosed)
		}
		name := strings.TrimSpace(s[i+2 : i+2+j])
		switch {
		case name == "":
			return template{}, errEmptyPath
		case strings.HasPrefix(name, "$"):
			sp, ok := specials[name]
			if !ok {
				return template{}, fmt.Errorf("{{%s}}: %w (one of $message, $status_code, $status_text, $field, $field_message)", name, errUnknownName)
			}
			t.segs = append(t.segs, segment{special: sp})
		default:
			t.segs = append(t.segs, segment{path: name})
		}
		s = s[i+2+j+2:]
	}
	return t, nil
}

// literal reports whether the template is fixed text, and that text.
func (t template) literal() (string, bool) {
	switch len(t.segs) {
	case 0:
		return "", true
	case 1:
		return t.segs[0].lit, t.segs[0].path == "" && t.segs[0].special == specialNone
	}
	return "", false
}

// renderContext is what placeholders are filled from.
type renderContext struct {
	lb     *legacyBody
	status int
	fields []fieldMessage
}

// render appends the template's text, unescaped, to dst. A path that is
// missing renders as nothing; a non-string value renders as its raw JSON.
func (t template) render(dst []byte, rc *renderContext) []byte {
	for _, s := range t.segs {
		switch {
		case s.path != "":
			if rc.lb.object {
				if v := getPath(rc.lb, s.path); v.Exists() {
					dst = append(dst, messageText(v)...)
				}
			}
		case s.special == specialMessage:
			dst = append(dst, rc.lb.message...)
		case s.special == specialStatusCode:
			dst = append(dst, StatusCode(rc.status)...)
		case s.special == specialStatusText:
			dst = append(dst, StatusText(rc.status)...)
		case s.special == specialField:
			if len(rc.fields) > 0 {
				dst = append(dst, rc.fields[0].field...)
			}
		case s.special == specialFieldMessage:
			if len(rc.fields) > 0 {
				dst = append(dst, rc.fields[0].msg...)
			}
		default:
			dst = append(dst, s.lit...)
		}
	}
	return dst
}
