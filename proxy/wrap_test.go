package proxy

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// seededJSON returns a JSON array of about n bytes whose content depends on
// seed, so that two responses of the same size still differ in every
// record: one client getting bytes of another's response shows.
func seededJSON(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := []byte{'['}
	for len(b) < n {
		b = fmt.Appendf(b, `{"seed":%d,"v":"%016x","f":%g,"s":"caf\u00e9 \"%d\""},`, seed, r.Uint64(), r.Float64(), r.IntN(1000))
	}
	b[len(b)-1] = ']'
	return b
}

// TestBufferedWrapConcurrent sends many envelope requests at once for
// buffered bodies of many sizes, each body different, and checks every
// response byte for byte: the envelope is built in the buffer the body was
// read into and copied out from there, so a buffer handed to two exchanges
// at once, or given back to the wrong pool, shows as a body with another
// request's bytes. Invalid bodies pass unchanged from the same buffers.
func TestBufferedWrapConcurrent(t *testing.T) {
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		seed, _ := strconv.ParseUint(q.Get("seed"), 10, 64)
		size, _ := strconv.Atoi(q.Get("size"))
		body := seededJSON(seed, size)
		if q.Get("invalid") != "" {
			body = append(body, ',')
		}
		w.Header().Set("Content-Type", "application/json")
		if q.Get("chunked") == "" {
			w.Header().Set("Content-Length", itoa(len(body)))
		}
		w.WriteHeader(200)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		w.Write(body[len(body)/2:])
	})
	url := startProxy(t, up, func(c *config.Config) { c.MaxBodyBytes = 1 << 20 })
	type request struct {
		size    int
		chunked bool
		invalid bool
	}
	requests := []request{
		{100, false, false}, {5000, false, false}, {40 << 10, false, false}, {300 << 10, false, false},
		{1<<20 - 200, false, false}, {300 << 10, true, false}, {1<<20 - 200, true, false},
		{40 << 10, false, true}, {300 << 10, true, true},
	}
	const clients, rounds = 6, 2
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range rounds * len(requests) {
				rq := requests[(i+c)%len(requests)]
				seed := uint64(c*1000 + i)
				u := fmt.Sprintf("%s/items?seed=%d&size=%d", url, seed, rq.size)
				body := seededJSON(seed, rq.size)
				want := `{"data":` + string(body) + `,"success":true,"message":"OK"}`
				if rq.chunked {
					u += "&chunked=1"
				}
				if rq.invalid {
					u += "&invalid=1"
					want = string(body) + ","
				}
				got := do(t, "GET", u, envelopeKey, nil)
				if got.err != nil || got.status != 200 || string(got.body) != want {
					t.Errorf("%+v seed %d: got %d, %d bytes %.60q, %v; want 200, %d bytes %.60q",
						rq, seed, got.status, len(got.body), got.body, got.err, len(want), want)
					return
				}
				// A passed body keeps the upstream's framing; a wrapped one
				// is buffered whole and gets its length.
				if cl := got.header.Get("Content-Length"); cl != itoa(len(want)) && !(rq.chunked && rq.invalid) {
					t.Errorf("%+v seed %d: Content-Length: got %q; want %d", rq, seed, cl, len(want))
				}
			}
		})
	}
	wg.Wait()
}
