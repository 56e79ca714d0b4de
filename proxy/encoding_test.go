package proxy

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
)

// encodings lists every Content-Encoding the proxy re-encodes, with an
// independent encoder and decoder for each, so the tests do not check the
// proxy's codecs against themselves.
var encodings = []struct {
	name   string
	encode func([]byte) []byte
	decode func([]byte) ([]byte, error)
}{
	{"gzip", func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}, func(b []byte) ([]byte, error) {
		r, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}},
	{"deflate", func(b []byte) []byte {
		var buf bytes.Buffer
		w := zlib.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}, func(b []byte) ([]byte, error) {
		r, err := zlib.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(r)
	}},
	{"br", func(b []byte) []byte {
		var buf bytes.Buffer
		w := brotli.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}, func(b []byte) ([]byte, error) {
		return io.ReadAll(brotli.NewReader(bytes.NewReader(b)))
	}},
	{"zstd", func(b []byte) []byte {
		w, _ := zstd.NewWriter(nil)
		return w.EncodeAll(b, nil)
	}, func(b []byte) ([]byte, error) {
		r, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return io.ReadAll(r)
	}},
}

func TestCompressedBodies(t *testing.T) {
	small := `{"id": 9007199254740993, "name": "caf\u00e9"}`
	large := `{"items": [` + string(bytes.Repeat([]byte(`{"id": 1, "text": "some text"},`), 4000)) + `{"id": 2}]}`
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		want       string
	}{
		{"error", 403, `{"error": "Trial expired, please subscribe", "code": "trial_expired"}`, 402,
			`{"data":null,"success":false,"message":"Trial expired, please subscribe","errors":[{"trial_expired":["Trial expired, please subscribe"]}]}`},
		{"small success", 200, small, 200, `{"data":` + small + `,"success":true,"message":"OK"}`},
		{"success larger than max_body_bytes", 200, large, 200, `{"data":` + large + `,"success":true,"message":"OK"}`},
	}
	for _, enc := range encodings {
		for _, tc := range tests {
			t.Run(enc.name+"/"+tc.name, func(t *testing.T) {
				encoded := enc.encode([]byte(tc.body))
				url := startProxy(t, fixed(tc.status, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {enc.name}}, string(encoded)), nil)
				// Three rounds: the later ones re-encode with pooled encoders,
				// reset from the round before.
				for round := 1; round <= 3; round++ {
					got := do(t, "GET", url+"/", envelopeKey, http.Header{"Accept-Encoding": {enc.name}})
					if got.err != nil {
						t.Fatalf("round %d: read: %v", round, got.err)
					}
					if got.status != tc.wantStatus {
						t.Errorf("status: got %d; want %d", got.status, tc.wantStatus)
					}
					if g := got.header.Get("Content-Encoding"); g != enc.name {
						t.Errorf("Content-Encoding: got %q; want %q", g, enc.name)
					}
					if cl := got.header.Get("Content-Length"); cl != "" && cl != itoa(len(got.body)) {
						t.Errorf("Content-Length: got %s; want %d", cl, len(got.body))
					}
					plain, err := enc.decode(got.body)
					if err != nil {
						t.Fatalf("round %d: decoding the proxy's body: %v", round, err)
					}
					if string(plain) != tc.want {
						t.Errorf("round %d: body: got %.300q; want %.300q", round, plain, tc.want)
					}
				}
			})
		}
	}
}

func TestRawDeflateIsDecoded(t *testing.T) {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	io.WriteString(w, `{"error":"Invalid API key."}`)
	w.Close()
	url := startProxy(t, fixed(401, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"deflate"}}, buf.String()), nil)
	got := do(t, "GET", url+"/", envelopeKey, nil)
	r, err := zlib.NewReader(bytes.NewReader(got.body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(r)
	want := `{"data":null,"success":false,"message":"Invalid API key.","errors":[{"invalid_key":["Invalid API key."]}]}`
	if string(plain) != want {
		t.Errorf("got %q; want %q", plain, want)
	}
}

// TestCorruptGzip checks a buffered body that does not decode in its
// declared encoding: an envelope client gets the proxy's 502, counted as
// an upstream error of kind bad_encoding, never the bytes labelled as what
// they are not; a legacy client gets them unchanged.
func TestCorruptGzip(t *testing.T) {
	good := encodings[0].encode([]byte(`{"id": 1}`))
	truncated := good[:len(good)-6]
	corrupt := append([]byte(nil), good...)
	corrupt[12] ^= 0xff
	for _, tc := range []struct {
		name   string
		status int
		body   []byte
	}{
		{"truncated success", 200, truncated},
		{"corrupt success", 200, corrupt},
		{"corrupt error", 500, corrupt},
		{"garbage labelled gzip", 403, []byte("not gzip at all")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			up := httptest.NewServer(fixed(tc.status, http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}, string(tc.body)))
			t.Cleanup(up.Close)
			url := proxyTo(t, up.URL, nil, Options{Metrics: m})
			got := do(t, "GET", url+"/", envelopeKey, nil)
			checkUpstreamFailure(t, got, m, "acme", true, http.StatusBadGateway, upstreamBadEncoding)
			if g := got.header.Get("Content-Encoding"); g != "" {
				t.Errorf("Content-Encoding: got %q; want none on the proxy's own answer", g)
			}
			got = do(t, "GET", url+"/", legacyKey, nil)
			if got.status != tc.status || !bytes.Equal(got.body, tc.body) || got.header.Get("Content-Encoding") != "gzip" {
				t.Errorf("legacy client: got %d %q (%q); want %d %q, gzip, unchanged", got.status, got.body, got.header.Get("Content-Encoding"), tc.status, tc.body)
			}
		})
	}
}
