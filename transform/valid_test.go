package transform

import (
	"encoding/json"
	"strings"
	"testing"
)

// tooDeepOnly reports whether encoding/json rejects data only for nesting
// past its depth limit, which Valid deliberately does not have.
func tooDeepOnly(data []byte) bool {
	var raw json.RawMessage
	err := json.Unmarshal(data, &raw)
	return err != nil && strings.Contains(err.Error(), "exceeded max depth")
}

func TestValid(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.valid || tooDeepOnly([]byte(tc.input))
			if got := Valid([]byte(tc.input)); got != want {
				t.Errorf("Valid(%.40q): got %v; want %v", tc.input, got, want)
			}
		})
	}
}

// TestValidSetsNoDepthLimit pins the one difference from encoding/json:
// well-formed nesting deeper than its limit is valid, unclosed nesting is
// not.
func TestValidSetsNoDepthLimit(t *testing.T) {
	cases := []struct {
		name  string
		input string
		want  bool
	}{
		{"arrays", nest(4*maxScanDepth, "[", "", "]"), true},
		{"objects", nest(4*maxScanDepth, `{"a":`, "1", "}"), true},
		{"unclosed", strings.Repeat("[", 4*maxScanDepth), false},
		{"one too many closers", nest(4*maxScanDepth, "[", "", "]") + "]", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Valid([]byte(tc.input)); got != tc.want {
				t.Errorf("Valid: got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestValidAllocs(t *testing.T) {
	data := benchJSON(64 << 10)
	allocs := testing.AllocsPerRun(100, func() {
		if !Valid(data) {
			t.Fatalf("Valid: got false; want true")
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per run: got %v; want %v", allocs, 0)
	}
}

// FuzzValid checks Valid against encoding/json.Valid, which may only differ
// on a body it rejects for its depth limit.
func FuzzValid(f *testing.F) {
	for _, tc := range scanCases {
		if len(tc.input) <= 4096 {
			f.Add([]byte(tc.input))
		}
	}
	f.Add(benchJSON(2048))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := Valid(data), json.Valid(data)
		if got != want && !(got && tooDeepOnly(data)) {
			t.Fatalf("Valid(%q): got %v; want %v", data, got, want)
		}
	})
}
