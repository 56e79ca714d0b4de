package redact

import "strings"

// Touches reports whether the value at pointer (a diff operation's path
// into an envelope body) is masked, holds a masked value, or lies inside
// one, so that a diff's value at that path is withheld whole rather than
// shown unmasked beside the masked bodies. An unparsable pointer touches.
func (p Paths) Touches(pointer string) bool {
	if p.Empty() {
		return false
	}
	toks, err := parse(pointer)
	if err != nil {
		return true
	}
	for _, ptr := range p.envelope {
		n := min(len(ptr), len(toks))
		match := true
		for i := range n {
			if !ptr[i].matches(toks[i].key) {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// matches reports whether the configured token t matches a concrete
// path token (an object key or an array index in decimal).
func (t token) matches(key string) bool {
	if t.wild || t.key == key {
		return true
	}
	return t.index >= 0 && key == strings.TrimLeft(key, "0") && t.key == key
}
