package proxy

import (
	"net/http"
)

// clientWriter is the client's ResponseWriter as the ReverseProxy sees it:
// it notes the status and size of what the client was sent, for metrics and
// the access log, and flushes every body write, so that a slow upstream's
// bytes reach the client as they arrive. Unwrap lets
// http.ResponseController, and so ReverseProxy's flushes and protocol
// upgrades, reach the real writer.
type clientWriter struct {
	http.ResponseWriter
	flusher http.Flusher
	status  int
	bytes   int64
}

func (w *clientWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *clientWriter) Write(p []byte) (int, error) {
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

func (w *clientWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
