package evidence

import (
	"testing"
)

// FuzzDecodeBucket feeds arbitrary rows to the decoder of stored buckets:
// the file is not trusted more than traffic, so a row must decode within
// the live bounds or be refused, never panic.
func FuzzDecodeBucket(f *testing.F) {
	b := newBucket(600, minute)
	b.Requests, b.Classes[1] = 3, 3
	b.latency.add(1000)
	bump(&b.rewrites, rewriteKey{403, "insufficient_credits", 402, "insufficient_credits"}, rewriteKey{}, maxRewriteKeys, 2)
	bump(&b.unmapped, unmappedKey{418, "teapot"}, unmappedKey{}, maxUnmappedKeys, 1)
	b.addRoute("GET /x", routeCounts{Compared: 2, Mismatches: 1})
	good, err := b.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"span":3600,"latency":{"-1":5,"99999":1,"x":2}}`))
	f.Add([]byte(`{"span":61}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := decodeBucket(600, data)
		if err != nil {
			return
		}
		if b.span != minute && b.span != hour {
			t.Fatalf("span: got %d", b.span)
		}
		if len(b.rewrites) > maxRewriteKeys+1 || len(b.unmapped) > maxUnmappedKeys+1 || len(b.routes) > maxRouteKeys+1 || len(b.paths) > maxPathKeys+1 {
			t.Fatalf("bounds exceeded: %d rewrites, %d unmapped, %d routes, %d paths", len(b.rewrites), len(b.unmapped), len(b.routes), len(b.paths))
		}
		again, err := b.encode()
		if err != nil {
			t.Fatalf("re-encoding a decoded bucket: %v", err)
		}
		if _, err := decodeBucket(600, again); err != nil {
			t.Fatalf("decoding a re-encoded bucket: %v", err)
		}
	})
}
