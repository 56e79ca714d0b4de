// Command backend is the fast legacy backend of the load benchmark
// (bench/run.sh). Every body is precomputed at start, every response has a
// Content-Length, and nothing is logged, so that the backend costs as
// little CPU as possible next to the proxy under test.
//
//	GET /small            200, a ~200-byte JSON object (big integer, unicode escapes)
//	GET /credits          403, the legacy insufficient_credits error
//	GET /large            200, a valid JSON array of exactly 1 MiB
//	GET /huge?bytes=N     200, a valid JSON array of exactly N bytes, generated while it is sent
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// small is served by /small: a big integer that float64 would round
// (9007199254740993 = 2^53+1) and unicode escapes, which a proxy that
// decodes and re-encodes the body would change.
const small = `{"id":9007199254740993,"name":"caf\u00e9 \u2603","price":12.50,"tags":["alpha","beta","gamma"],` +
	`"active":true,"created_at":"2024-01-15T10:30:00Z","owner":{"id":42,"email":"user@example.com"},"note":null}`

// credits is served by /credits with status 403.
const credits = `{"error": "Insufficient credits", "code": "insufficient_credits", "details": {"credits": 50, "required": 120}}`

// record is one element of the /large and /huge arrays: strings, numbers,
// a nested array and an escape, so that a JSON scanner sees a realistic mix
// of tokens rather than a single long string.
const record = `{"id":9007199254740993,"name":"item \u00e9","tags":["a","b"],"value":3.14159,"ok":true,"text":"lorem ipsum dolor sit amet"}`

const largeSize = 1 << 20 // /large: exactly 1 MiB

// chunkRecords is how many ",record" units one chunk of /huge holds
// (about 1 MiB per write).
var chunkRecords = (1 << 20) / (len(record) + 1)

// hugeChunk is ",record" repeated chunkRecords times: /huge writes slices of
// it, each a whole number of ",record" units.
var hugeChunk = buildChunk()

func buildChunk() []byte {
	unit := "," + record
	b := make([]byte, 0, len(unit)*chunkRecords)
	for range chunkRecords {
		b = append(b, unit...)
	}
	return b
}

// writeArray writes a valid JSON array of exactly n bytes (n >= 2) to w:
// "[" record ("," record)* spaces "]", or "[" spaces "]" when n is too
// small for one record. Whitespace before "]" is valid JSON and pads the
// array to the exact size.
func writeArray(w io.Writer, n int64) error {
	if n < 2 {
		return fmt.Errorf("a JSON array has at least 2 bytes, not %d", n)
	}
	unit := int64(len(record) + 1)
	if n < 2+int64(len(record)) {
		return writeSpacesClosed(w, []byte("["), n-2)
	}
	if _, err := io.WriteString(w, "["+record); err != nil {
		return err
	}
	left := n - 2 - int64(len(record)) // bytes between the first record and "]"
	units := left / unit
	for units > 0 {
		k := min(units, int64(chunkRecords))
		if _, err := w.Write(hugeChunk[:k*unit]); err != nil {
			return err
		}
		units -= k
	}
	return writeSpacesClosed(w, nil, left%unit)
}

// writeSpacesClosed writes head, pad spaces and "]".
func writeSpacesClosed(w io.Writer, head []byte, pad int64) error {
	b := make([]byte, 0, len(head)+int(pad)+1)
	b = append(b, head...)
	for range pad {
		b = append(b, ' ')
	}
	b = append(b, ']')
	_, err := w.Write(b)
	return err
}

// sliceWriter collects writes into a byte slice (to precompute /large).
type sliceWriter struct{ b []byte }

func (s *sliceWriter) Write(p []byte) (int, error) { s.b = append(s.b, p...); return len(p), nil }

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "listen address (loopback)")
	flag.Parse()

	large := &sliceWriter{b: make([]byte, 0, largeSize)}
	if err := writeArray(large, largeSize); err != nil || len(large.b) != largeSize {
		log.Fatalf("building /large: %v (%d bytes)", err, len(large.b))
	}

	smallBody, creditsBody, largeBody := []byte(small), []byte(credits), large.b
	smallLen, creditsLen, largeLen := strconv.Itoa(len(smallBody)), strconv.Itoa(len(creditsBody)), strconv.Itoa(len(largeBody))
	jsonType := []string{"application/json"}

	serve := func(status int, length string, body []byte) http.HandlerFunc {
		lengthHdr := []string{length}
		return func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h["Content-Type"] = jsonType
			h["Content-Length"] = lengthHdr
			w.WriteHeader(status)
			w.Write(body)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /small", serve(http.StatusOK, smallLen, smallBody))
	mux.HandleFunc("GET /credits", serve(http.StatusForbidden, creditsLen, creditsBody))
	mux.HandleFunc("GET /large", serve(http.StatusOK, largeLen, largeBody))
	// /slow answers /small after 100 ms: with 1,000 keep-alive clients it
	// keeps that many requests in flight through the proxy.
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		serve(http.StatusOK, smallLen, smallBody)(w, r)
	})
	mux.HandleFunc("GET /huge", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("bytes"), 10, 64)
		if err != nil || n < 2 {
			http.Error(w, "bytes: an integer >= 2", http.StatusBadRequest)
			return
		}
		h := w.Header()
		h["Content-Type"] = jsonType
		h["Content-Length"] = []string{strconv.FormatInt(n, 10)}
		w.WriteHeader(http.StatusOK)
		writeArray(w, n) // an error is the client going away
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
