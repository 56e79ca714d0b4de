package proxy

import (
	"io"
	"net/http"
)

// responseRecorder notes the status and size of what the client was sent,
// for metrics and the access log, and flushes every body write, so that a
// slow upstream's bytes reach the client as they arrive. Unwrap lets
// http.ResponseController, and so ReverseProxy's flushes and protocol
// upgrades, reach the real writer.
type responseRecorder struct {
	http.ResponseWriter
	flusher http.Flusher
	status  int
	bytes   int64
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	if err == nil && w.flusher != nil {
		w.flusher.Flush()
	}
	return n, err
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// countingBody counts the bytes of a request body as the upstream reads
// it, and tees them aside for a shadowed exchange.
type countingBody struct {
	io.ReadCloser
	n       int64
	capture *shadowCapture
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if c := b.capture; n > 0 && c.active && !c.reqTruncated {
		if capture(&c.reqBody, p[:n], c.maxRequestBytes) {
			c.reqTruncated = true
			c.reqBody = nil
		}
	}
	return n, err
}
