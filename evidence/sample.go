package evidence

import (
	"strconv"

	"github.com/envelope-proxy/envelope-proxy/redact"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// maxCodeLen bounds a legacy code as kept: codes come from untrusted
// bodies (and from the store, trusted no more).
const maxCodeLen = transform.MaxLegacyCode

// clip cuts s to at most n bytes, on a rune boundary.
func clip(s string, n int) string {
	cut, _ := transform.CutString(s, n)
	return cut
}

// sampleText is the stored form of a legacy body: the dashboard.redact
// paths masked over the whole body, then cut to limit bytes. A body that
// was already cut short cannot be masked reliably, so with redact paths
// set it is withheld.
func sampleText(paths redact.Paths, body []byte, truncated bool, limit int) string {
	if truncated && !paths.Empty() {
		return "[withheld: " + strconv.Itoa(len(body)) + "+ bytes, too large to redact, and dashboard.redact is set]"
	}
	masked, _ := paths.Legacy(body)
	s := string(masked)
	if len(s) > limit || truncated {
		return clip(s, limit) + "…"
	}
	return s
}
