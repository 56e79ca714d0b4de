package shadow

import (
	"slices"
	"testing"
)

func TestNormaliserCompare(t *testing.T) {
	tests := []struct {
		name         string
		ignore       []string
		messages     bool
		env, cand    string
		wantOps      []string
		wantIgnored  bool
		wantNoIgnore []string // invalid pointers
	}{
		{name: "both empty", env: "", cand: " \n"},
		{name: "equal", env: `{"a":[1,2]}`, cand: `{"a":[1,2]}`},
		{name: "array element differs", env: `{"a":[1,2]}`, cand: `{"a":[1,3]}`, wantOps: []string{"/a/1"}},
		{name: "array grows", env: `{"a":[1]}`, cand: `{"a":[1,2]}`, wantOps: []string{"/a/-"}},
		{name: "big integers", env: `{"n":9007199254740993}`, cand: `{"n":9007199254740992}`, wantOps: []string{"/n"}},
		{name: "wildcard key", ignore: []string{"/meta/*"}, env: `{"meta":{"a":1,"b":2},"x":1}`, cand: `{"meta":{"a":3},"x":1}`, wantIgnored: true},
		{name: "wildcard index", ignore: []string{"/a/*/t"}, env: `{"a":[{"t":1,"v":1},{"t":2,"v":2}]}`, cand: `{"a":[{"t":5,"v":1},{"t":6,"v":2}]}`, wantIgnored: true},
		{name: "wildcard index, other field differs", ignore: []string{"/a/*/t"}, env: `{"a":[{"t":1,"v":1}]}`, cand: `{"a":[{"t":5,"v":9}]}`, wantOps: []string{"/a/0/v"}},
		{name: "explicit index", ignore: []string{"/a/0"}, env: `{"a":[1,2]}`, cand: `{"a":[9,2]}`, wantIgnored: true},
		{name: "escaped pointer", ignore: []string{"/a~1b/c~0d"}, env: `{"a/b":{"c~d":1}}`, cand: `{"a/b":{"c~d":2}}`, wantIgnored: true},
		{name: "ignored path absent", ignore: []string{"/nope/*/x"}, env: `{"a":1}`, cand: `{"a":1}`},
		{name: "ignore through a scalar", ignore: []string{"/a/b"}, env: `{"a":1}`, cand: `{"a":2}`, wantOps: []string{"/a"}},
		{name: "messages removed", env: `{"message":"a","errors":[{"c":["a"]}]}`, cand: `{"message":"b","errors":[{"c":["b","c"]}]}`},
		{name: "messages kept", messages: true, env: `{"message":"a"}`, cand: `{"message":"b"}`, wantOps: []string{"/message"}},
		{name: "odd errors shape survives", env: `{"errors":"x"}`, cand: `{"errors":[1,"y",null]}`, wantOps: []string{"/errors"}},
		{name: "not JSON, equal bytes", env: `<html>`, cand: `<html>`},
		{name: "not JSON, different", env: `<html>`, cand: `<body>`, wantOps: []string{""}},
		{name: "trailing data", env: `{"a":1}`, cand: `{"a":1} {"a":2}`, wantOps: []string{""}},
		{name: "one side empty", env: `{"a":1}`, cand: ``, wantOps: []string{""}},
		{name: "deep nesting", env: `{"a":1}`, cand: deepArray(20000), wantOps: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n normaliser
			n.ignore, _ = parseIgnore(tt.ignore)
			n.compareMessages = tt.messages
			got := n.compare([]byte(tt.env), []byte(tt.cand), nil)
			var ops []string
			for _, op := range got.ops {
				ops = append(ops, op.Path)
			}
			if !slices.Equal(ops, tt.wantOps) {
				t.Errorf("ops: got %q; want %q", ops, tt.wantOps)
			}
			if got.ignored != tt.wantIgnored {
				t.Errorf("ignored: got %v; want %v", got.ignored, tt.wantIgnored)
			}
		})
	}
}

func TestParseIgnore(t *testing.T) {
	parsed, invalid := parseIgnore([]string{"/a/*/b", "", "a/b", "/"})
	if got, want := len(parsed), 2; got != want {
		t.Errorf("parsed: got %d; want %d", got, want)
	}
	if want := []string{"", "a/b"}; !slices.Equal(invalid, want) {
		t.Errorf("invalid: got %q; want %q", invalid, want)
	}
}

// deepArray is n nested arrays: more than encoding/json accepts.
func deepArray(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}

func TestCollapsePointer(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"/message", "/message"},
		{"/data/items/3/price", "/data/items/*/price"},
		{"/data/items/-", "/data/items/*"},
		{"/data/by_id/507f1f77bcf86cd799439011/name", "/data/by_id/*/name"},
		{"/errors/0/insufficient_credits/0", "/errors/*/insufficient_credits/*"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := collapsePointer(tt.in); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestTolerances(t *testing.T) {
	tests := []struct {
		name          string
		numbers       float64
		nullIsMissing bool
		sets          map[string]string
		env, cand     string
		wantOps       []string
	}{
		{name: "numbers differ without a tolerance", env: `{"p":1.0001}`, cand: `{"p":1.0002}`, wantOps: []string{"/p"}},
		{name: "numbers within the tolerance", numbers: 0.001, env: `{"p":1.0001,"q":[100,200]}`, cand: `{"p":1.0002,"q":[100.05,199.9]}`},
		{name: "numbers beyond the tolerance", numbers: 0.001, env: `{"p":100}`, cand: `{"p":100.2}`, wantOps: []string{"/p"}},
		{name: "a number and a string are not numbers", numbers: 0.5, env: `{"p":1}`, cand: `{"p":"1"}`, wantOps: []string{"/p"}},
		{name: "zero and a tiny number", numbers: 0.01, env: `{"p":0}`, cand: `{"p":1e-9}`, wantOps: []string{"/p"}},
		{name: "big integers within the tolerance", numbers: 1e-9, env: `{"n":9007199254740993}`, cand: `{"n":9007199254740992}`},
		{name: "null differs from missing by default", env: `{"a":1,"b":null}`, cand: `{"a":1}`, wantOps: []string{"/b"}},
		{name: "null equals missing", nullIsMissing: true, env: `{"a":1,"b":null,"c":{"d":null}}`, cand: `{"a":1,"c":{}}`},
		{name: "null still differs from a value", nullIsMissing: true, env: `{"b":null}`, cand: `{"b":0}`, wantOps: []string{"/b"}},
		{name: "arrays in order by default", env: `{"data":{"items":[{"id":1},{"id":2}]}}`, cand: `{"data":{"items":[{"id":2},{"id":1}]}}`, wantOps: []string{"/data/items/0/id", "/data/items/1/id"}},
		{name: "arrays as sets by key", sets: map[string]string{"/data/items": "id"},
			env: `{"data":{"items":[{"id":1,"v":"a"},{"id":2,"v":"b"}]}}`, cand: `{"data":{"items":[{"id":2,"v":"b"},{"id":1,"v":"a"}]}}`},
		{name: "a set element that differs", sets: map[string]string{"/data/items": "id"},
			env: `{"data":{"items":[{"id":1,"v":"a"},{"id":2,"v":"b"}]}}`, cand: `{"data":{"items":[{"id":2,"v":"x"},{"id":1,"v":"a"}]}}`, wantOps: []string{"/data/items/1/v"}},
		{name: "sets under a wildcard", sets: map[string]string{"/data/*/tags": "k"},
			env: `{"data":[{"tags":[{"k":"a"},{"k":"b"}]}]}`, cand: `{"data":[{"tags":[{"k":"b"},{"k":"a"}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := normaliser{tolerance: tt.numbers, nullIsMissing: tt.nullIsMissing}
			n.sets, _ = parseSets(tt.sets)
			got := n.compare([]byte(tt.env), []byte(tt.cand), nil)
			var ops []string
			for _, op := range got.ops {
				ops = append(ops, op.Path)
			}
			slices.Sort(ops)
			if !slices.Equal(ops, tt.wantOps) {
				t.Errorf("ops: got %q; want %q", ops, tt.wantOps)
			}
		})
	}
}
