package proxy

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// serveRange answers an envelope client's Range itself, since the upstream
// never sees it (its 206 would be a slice of the legacy bytes): a 200 of
// known length becomes a 206 with one slice of exactly what the client
// would get whole, envelope or not. Anything else gets the whole body, as
// RFC 9110 section 14.2 allows: several ranges, a range that cannot be
// satisfied, a body of unknown length, or an If-Range that does not name
// this representation (compared strongly, so the weak tag of a rewritten
// body never matches, and a date only when it is the Last-Modified sent).
func (ex *exchange) serveRange(resp *http.Response) {
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 0 || ex.headAsGet {
		return
	}
	if ex.ifRange != "" && !ifRangeMatches(ex.ifRange, resp.Header) {
		return
	}
	first, last, ok := parseRange(ex.rangeSpec, resp.ContentLength)
	if !ok {
		return
	}
	size := resp.ContentLength
	n := last - first + 1
	resp.StatusCode, resp.Status = http.StatusPartialContent, ""
	resp.ContentLength = n
	h := resp.Header
	h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
	h["Content-Range"] = []string{"bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) + "/" + strconv.FormatInt(size, 10)}
	resp.Body = &rangeBody{ReadCloser: resp.Body, skip: first, remain: n}
	// The slice is copied from the body as it is read, not from the
	// buffer it may lie in.
	ex.copyBufs.direct = nil
}

// parseRange reads one byte range of a body of size bytes: "bytes=a-b",
// "bytes=a-" or "bytes=-n". ok is false for anything else, for several
// ranges, and for a range that does not overlap the body.
func parseRange(spec string, size int64) (first, last int64, ok bool) {
	r, found := strings.CutPrefix(strings.TrimSpace(spec), "bytes=")
	if !found || strings.Contains(r, ",") {
		return 0, 0, false
	}
	a, b, found := strings.Cut(strings.TrimSpace(r), "-")
	if !found {
		return 0, 0, false
	}
	if a == "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 || size == 0 {
			return 0, 0, false
		}
		return max(size-n, 0), size - 1, true
	}
	first, err := strconv.ParseInt(a, 10, 64)
	if err != nil || first < 0 || first >= size {
		return 0, 0, false
	}
	last = size - 1
	if b != "" {
		l, err := strconv.ParseInt(b, 10, 64)
		if err != nil || l < first {
			return 0, 0, false
		}
		last = min(l, size-1)
	}
	return first, last, true
}

// ifRangeMatches reports whether an If-Range validator names the response's
// representation: an entity tag compared strongly, or a date equal to the
// Last-Modified sent.
func ifRangeMatches(v string, h http.Header) bool {
	if _, weak, ok := splitTag(v); ok {
		etag := h.Get("Etag")
		_, etagWeak, etagOK := splitTag(etag)
		return !weak && etagOK && !etagWeak && strings.TrimSpace(v) == etag
	}
	lm := h.Get("Last-Modified")
	return lm != "" && strings.TrimSpace(v) == lm
}

// rangeBody reads one slice of a body: it discards the first skip bytes,
// then ends after remain.
type rangeBody struct {
	io.ReadCloser
	skip, remain int64
}

func (r *rangeBody) Read(p []byte) (int, error) {
	for r.skip > 0 {
		n, err := r.ReadCloser.Read(p[:min(int64(len(p)), r.skip)])
		r.skip -= int64(n)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
	if r.remain <= 0 {
		return 0, io.EOF
	}
	n, err := r.ReadCloser.Read(p[:min(int64(len(p)), r.remain)])
	r.remain -= int64(n)
	if err == io.EOF && r.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	if r.remain == 0 && err == nil {
		err = io.EOF
	}
	return n, err
}
