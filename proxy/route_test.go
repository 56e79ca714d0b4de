package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/envelope-proxy/envelope-proxy/config"
)

func TestRouterOrder(t *testing.T) {
	c := testConfig("http://127.0.0.1:1")
	c.Routing.OverrideHeader = "X-Response-Format"
	c.Routing.Rollout = []config.Cohort{{Name: "all-in", Percent: 100, Mode: config.ModeShadow}}
	r := NewRouter(&c.Routing)
	tests := []struct {
		name       string
		key        string
		override   string
		wantClient string
		wantMode   config.Mode
	}{
		{"listed client", envelopeKey, "", "acme", config.ModeEnvelope},
		{"override wins", envelopeKey, "legacy", "acme", config.ModeLegacy},
		{"cohort", "someone-else", "", "all-in", config.ModeShadow},
		{"no key is default", "", "", "default", config.ModeLegacy},
		{"override without key", "", "envelope", "default", config.ModeEnvelope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", "/", nil)
			if tc.key != "" {
				req.Header.Set("X-API-Key", tc.key)
			}
			if tc.override != "" {
				req.Header.Set("X-Response-Format", tc.override)
			}
			d := r.Route(req)
			if d.Client != tc.wantClient || d.Mode != tc.wantMode {
				t.Errorf("got %q %q; want %q %q", d.Client, d.Mode, tc.wantClient, tc.wantMode)
			}
			if tc.key != "" && d.KeyIDString() != digest(tc.key)[:8] {
				t.Errorf("key id: got %q; want %q", d.KeyIDString(), digest(tc.key)[:8])
			}
		})
	}
}

// TestCohortsAreStable checks that cohort membership depends on the key
// alone (two routers built separately agree, as replicas must) and that
// the shares match the percentages.
func TestCohortsAreStable(t *testing.T) {
	c := testConfig("http://127.0.0.1:1")
	c.Routing.Rollout = []config.Cohort{{Percent: 10, Mode: config.ModeEnvelope}, {Percent: 25, Mode: config.ModeShadow}}
	a, b := NewRouter(&c.Routing), NewRouter(&c.Routing)
	counts := map[string]int{}
	const n = 20000
	for i := range n {
		req, _ := http.NewRequest("GET", "/", nil)
		req.Header.Set("X-API-Key", fmt.Sprintf("key-%d", i))
		da, db := a.Route(req), b.Route(req)
		if da != db {
			t.Fatalf("key-%d: replicas disagree: %+v vs %+v", i, da, db)
		}
		counts[da.Client]++
	}
	for name, want := range map[string]float64{"rollout-0-envelope": 0.10, "rollout-1-shadow": 0.25, "default": 0.65} {
		got := float64(counts[name]) / n
		if got < want-0.02 || got > want+0.02 {
			t.Errorf("%s: got share %.3f; want %.2f±0.02", name, got, want)
		}
	}
	// A fixed key always lands in the same cohort, across restarts and
	// versions: this pins the hash.
	req, _ := http.NewRequest("GET", "/", nil)
	req.Header.Set("X-API-Key", "key-1")
	if got := a.Route(req).Client; got != "default" {
		t.Errorf("key-1: got %q; want %q (the cohort hash changed)", got, "default")
	}
}

func BenchmarkRoute(b *testing.B) {
	for _, n := range []int{10, 10000} {
		c := testConfig("http://127.0.0.1:1")
		for i := range n {
			c.Routing.Clients = append(c.Routing.Clients, config.Client{Name: fmt.Sprintf("c%d", i), KeysSHA256: []string{digest(fmt.Sprint("k", i))}, Mode: config.ModeEnvelope})
		}
		c.Routing.Rollout = []config.Cohort{{Percent: 10, Mode: config.ModeEnvelope}}
		c.Routing.OverrideHeader = "X-Response-Format"
		r := NewRouter(&c.Routing)
		for _, key := range []string{"k5", "unlisted-key"} {
			req, _ := http.NewRequest("GET", "/", nil)
			req.Header.Set("X-API-Key", "sk_live_0123456789abcdefghijklmnopqrstuv"+key)
			b.Run(fmt.Sprintf("clients=%d/%s", n, key), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					_ = r.Route(req)
				}
			})
		}
	}
}
