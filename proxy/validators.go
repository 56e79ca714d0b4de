package proxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// An envelope client's entity tags are the upstream's with a marker: the
// opaque tag "v1" becomes "v1.env-<fingerprint>", where the fingerprint
// names the rules the envelope was made with. A marked tag never compares
// equal to the legacy one, even weakly, so a cache or a client that kept a
// body in one format never has it confirmed fresh (304) for the other: not
// after a client is flipped to the envelope, not after it is rolled back.
// A body the proxy rewrote gets a weak tag (its bytes are the envelope's,
// not the upstream's); one passed unchanged keeps the upstream's strength.
// A rules change changes the fingerprint, so envelopes made under the old
// rules are fetched again instead of revalidated.
const tagMarker = ".env-"

// rulesFingerprint names a rule set in entity tags: the first four bytes of
// the SHA-256 of the rules and the built-in rules, in hex.
func rulesFingerprint(rules []transform.Rule) string {
	if len(rules) == 0 {
		rules = nil
	}
	// Examples change nothing the rules do: they are left out, so that
	// documenting a rule does not change every entity tag.
	b, err := json.Marshal(struct{ Rules, Defaults []transform.Rule }{withoutExamples(rules), withoutExamples(transform.DefaultRules())})
	if err != nil {
		// Rules are plain data; should one ever fail to encode, a fixed
		// name still marks the tags, and a rules change then just keeps
		// revalidating instead of refetching.
		return "00000000"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:4])
}

// withoutExamples is rules with their examples left out.
func withoutExamples(rules []transform.Rule) []transform.Rule {
	if rules == nil {
		return nil
	}
	out := make([]transform.Rule, len(rules))
	for i, r := range rules {
		r.Examples = nil
		out[i] = r
	}
	return out
}

// splitTag splits an entity tag into its opaque part (without quotes) and
// whether it is weak; ok is false for what is not an entity tag.
func splitTag(tag string) (opaque string, weak, ok bool) {
	tag = strings.TrimSpace(tag)
	if rest, found := strings.CutPrefix(tag, "W/"); found {
		tag, weak = rest, true
	}
	if len(tag) < 2 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return "", false, false
	}
	return tag[1 : len(tag)-1], weak, true
}

// markTag returns the envelope client's form of an upstream entity tag,
// weak when weak is set or the upstream's is; tag itself when it is not
// an entity tag.
func (s *snapshot) markTag(tag string, weak bool) string {
	opaque, upstreamWeak, ok := splitTag(tag)
	if !ok {
		return tag
	}
	prefix := `"`
	if weak || upstreamWeak {
		prefix = `W/"`
	}
	return prefix + opaque + s.tagSuffix + `"`
}

// unmarkTag returns the upstream's strong tag behind an envelope client's
// marked tag, and false for a tag the proxy did not mark with the rules in
// force.
func (s *snapshot) unmarkTag(tag string) (string, bool) {
	opaque, _, ok := splitTag(tag)
	if !ok {
		return "", false
	}
	upstream, marked := strings.CutSuffix(opaque, s.tagSuffix)
	if !marked {
		return "", false
	}
	return `"` + upstream + `"`, true
}

// translatePreconditions rewrites an envelope client's conditional request
// for the upstream, which knows only its own tags. If-None-Match keeps "*"
// and the marked tags, unmarked: any other tag names a body in the other
// format (kept before a flip), which must not be confirmed fresh, so it is
// dropped, and with it the header when nothing is left. If-Match keeps its
// tags, unmarked where marked: it is about the resource's state, not its
// format. If-Modified-Since goes: a date cannot say which format the
// client's copy is in, so the client gets the body again rather than a 304
// for a copy that may be legacy bytes. Range and If-Range go too: the
// proxy serves ranges of the envelope itself (ranges.go).
func (s *snapshot) translatePreconditions(h http.Header) {
	delete(h, "If-Modified-Since")
	delete(h, "Range")
	delete(h, "If-Range")
	if v, ok := h["If-None-Match"]; ok {
		if out := s.translateTags(v, false); out == "" {
			delete(h, "If-None-Match")
		} else {
			h["If-None-Match"] = []string{out}
		}
	}
	if v, ok := h["If-Match"]; ok {
		h["If-Match"] = []string{s.translateTags(v, true)}
	}
}

// translateTags rewrites a list of tags (the field's lines, each a comma
// separated list) for the upstream: marked tags unmarked, and unmarked ones
// kept when keepUnmarked is set, else dropped.
func (s *snapshot) translateTags(lines []string, keepUnmarked bool) string {
	var out []string
	for _, line := range lines {
		for _, tag := range splitTagList(line) {
			if tag == "*" {
				out = append(out, tag)
			} else if up, ok := s.unmarkTag(tag); ok {
				out = append(out, up)
			} else if keepUnmarked {
				out = append(out, tag)
			}
		}
	}
	return strings.Join(out, ", ")
}

// splitTagList splits a list of entity tags, minding commas inside the
// quotes of an opaque tag.
func splitTagList(list string) []string {
	var tags []string
	quoted, start := false, 0
	for i := 0; i < len(list); i++ {
		switch list[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				if t := strings.TrimSpace(list[start:i]); t != "" {
					tags = append(tags, t)
				}
				start = i + 1
			}
		}
	}
	if t := strings.TrimSpace(list[start:]); t != "" {
		tags = append(tags, t)
	}
	return tags
}

// markValidators gives an envelope client's response the validators of
// its format: the entity tag marked (weak when the body was rewritten),
// and no Last-Modified where the body may be an envelope (a rewritten
// body, or a 304 confirming one), since a date cannot tell the formats
// apart. A 304 carries the tag the client sent for the copy it confirms.
func (ex *exchange) markValidators(resp *http.Response) {
	s := ex.snap
	h := resp.Header
	rewritten := ex.result.Action != transform.Pass
	if rewritten || resp.StatusCode == http.StatusNotModified {
		delete(h, "Last-Modified")
	}
	tags, ok := h["Etag"]
	if !ok || len(tags) == 0 {
		return
	}
	if resp.StatusCode == http.StatusNotModified {
		// The confirmed copy is the client's: its tag, or, when the
		// client sent none of the upstream's (If-None-Match: *), a weak
		// one, which a cache matches whatever the copy's strength.
		if sent := ex.sentTag(tags[0]); sent != "" {
			h["Etag"] = []string{sent}
		} else {
			h["Etag"] = []string{s.markTag(tags[0], true)}
		}
		return
	}
	h["Etag"] = []string{s.markTag(tags[0], rewritten)}
}

// sentTag returns the tag in the client's If-None-Match that the upstream's
// tag confirms, "" when none does.
func (ex *exchange) sentTag(upstream string) string {
	opaque, _, ok := splitTag(upstream)
	if !ok {
		return ""
	}
	for _, tag := range splitTagList(ex.ifNoneMatch) {
		if up, ok := ex.snap.unmarkTag(tag); ok && up == `"`+opaque+`"` {
			return tag
		}
	}
	return ""
}
