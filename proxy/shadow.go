package proxy

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/event"
)

// shadowCapture holds what a shadowed exchange tees aside, each part
// bounded by the shadow config.
type shadowCapture struct {
	active bool
	// replayable reports a request the comparison may replay to the
	// candidate: only then is its body captured.
	replayable      bool
	reqHeader       http.Header
	respHeader      http.Header
	respBody        []byte
	respTruncated   bool
	maxRequestBytes int64
	maxBodyBytes    int64
}

// admitShadow decides, once per request, whether a shadow-mode exchange is
// captured: never CONNECT or protocol upgrades, and only what the
// comparison admits (its sample). Every method is dry-run; the request
// body is captured only for a request the comparison may replay.
func (ex *exchange) admitShadow(r *http.Request) {
	s := ex.snap
	if s.shadow == nil || ex.decision.Mode != config.ModeShadow || r.Method == http.MethodConnect || isUpgrade(r) {
		return
	}
	admitted, replayable := s.shadow.Admit(ex.decision.Client, r.Method, r.URL.Path, ex.decision.KeyHash)
	if !admitted {
		return
	}
	ex.shadow = shadowCapture{active: true, replayable: replayable, maxRequestBytes: s.settings.ShadowMaxRequestBytes, maxBodyBytes: s.settings.ShadowMaxBodyBytes}
}

// capture appends p to *buf while it stays within limit, and reports
// whether it had to stop.
func capture(buf *[]byte, p []byte, limit int64) (truncated bool) {
	if int64(len(*buf)+len(p)) > limit {
		return true
	}
	*buf = append(*buf, p...)
	return false
}

// teeBody copies a response body aside for the comparison while the client
// gets it unchanged and unhurried; past the limit it stops copying.
type teeBody struct {
	io.ReadCloser
	c *shadowCapture
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 && !t.c.respTruncated {
		if capture(&t.c.respBody, p[:n], t.c.maxBodyBytes) {
			t.c.respTruncated = true
			t.c.respBody = nil
		}
	}
	return n, err
}

// submitShadow hands a finished shadowed exchange to the comparison. It
// runs after the client's response is complete.
func (ex *exchange) submitShadow(elapsed time.Duration) {
	s := ex.snap
	c := &ex.shadow
	var body []byte
	var truncated bool
	if ex.reqBody != nil {
		body, truncated = ex.reqBody.take()
	}
	s.shadow.Submit(&event.Capture{
		Client:          ex.decision.Client,
		KeyHash:         ex.decision.KeyHash,
		Start:           ex.start,
		Method:          ex.method,
		Path:            ex.path,
		RawQuery:        ex.rawQuery,
		Header:          c.reqHeader,
		Body:            body,
		BodyTruncated:   truncated,
		BodyNotCaptured: !c.replayable,
		LegacyStatus:    ex.upstreamStatus,
		LegacyHeader:    c.respHeader,
		LegacyBody:      c.respBody,
		LegacyTruncated: c.respTruncated,
		LegacyLatency:   elapsed,
		UpstreamError:   ex.upstreamError,
		Transformer:     s.transformer,
		Migrated:        ex.upstreamStatus >= 200 && ex.upstreamStatus < 300 && s.migrated(ex.path),
	})
	*c = shadowCapture{}
}

// isUpgrade reports a protocol upgrade request.
func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Connection"), "upgrade") || r.Header.Get("Upgrade") != ""
}
