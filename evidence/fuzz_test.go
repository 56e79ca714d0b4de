package evidence

import (
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
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
	b.group(groupKey{"GET /v1/credits", 403, "insufficient_credits"}).add(&event.Comparison{
		Outcome: event.OutcomeMismatch, Route: "GET /v1/credits", LegacyStatus: 403, LegacyCode: "insufficient_credits",
		Rule: "insufficient_credits", EnvelopeStatus: 402, CandidateStatus: 403, Paths: []string{"/message", "/errors/*/insufficient_credits"},
		LegacyLatency: 12 * time.Millisecond, CandidateLatency: 30 * time.Millisecond,
	}, outcomeMismatch)
	b.group(groupKey{"GET /v1/teapot", 418, "other"}).add(&event.Comparison{
		Outcome: event.OutcomeDryRun, Route: "GET /v1/teapot", LegacyStatus: 418, LegacyCode: "other", EnvelopeStatus: 500,
		Unmapped: true, LegacyNotJSON: true, LegacyLatency: time.Millisecond,
	}, outcomeDryRun)
	good, err := b.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"span":3600,"latency":{"-1":5,"99999":1,"x":2}}`))
	f.Add([]byte(`{"span":60,"routes":{"GET /x":{"compared":3,"mismatches":1}},"paths":{"/data/a":2}}`))
	f.Add([]byte(`{"span":60,"groups":[{"route":"GET /x","legacy_status":200,"legacy_code":"","outcomes":[1,2,3,4,5,6,7,8,9,10,11,12],"rules":{"r":1},"changes":[{"stage":"envelope","from":403,"to":402,"count":1}],"paths":{"/a":1},"legacy_latency":{"3":1,"-2":4}}]}`))
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
		if len(b.rewrites) > maxRewriteKeys+1 || len(b.unmapped) > maxUnmappedKeys+1 || len(b.groups) > maxGroupKeys+1 {
			t.Fatalf("bounds exceeded: %d rewrites, %d unmapped, %d groups", len(b.rewrites), len(b.unmapped), len(b.groups))
		}
		for k, g := range b.groups {
			if len(g.rules) > maxGroupRules+1 || len(g.changes) > maxGroupChanges+1 || len(g.paths) > maxGroupPaths+1 {
				t.Fatalf("group %.40q %d %.40q: bounds exceeded: %d rules, %d changes, %d paths", k.Route, k.Status, k.Code, len(g.rules), len(g.changes), len(g.paths))
			}
			if len(k.Route) > maxRouteLen || len(k.Code) > maxCodeLen {
				t.Fatalf("group key: got a route of %d bytes and a code of %d; want at most %d and %d", len(k.Route), len(k.Code), maxRouteLen, maxCodeLen)
			}
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
