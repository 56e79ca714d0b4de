package redact

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tidwall/gjson"
)

// redactCase is one body masked at paths, with the expected result.
type redactCase struct {
	name  string
	paths []string
	// legacy masks with Legacy rather than Envelope.
	legacy bool
	in     string
	want   string
	// withheld expects the placeholder (and false) rather than want.
	withheld bool
}

var redactCases = []redactCase{
	{
		name:  "simple key",
		paths: []string{"/data/email"},
		in:    `{"data":{"email":"ann@example.com","name":"Ann"},"success":true}`,
		want:  `{"data":{"email":"[redacted]","name":"Ann"},"success":true}`,
	},
	{
		name:  "wildcard over an object",
		paths: []string{"/data/*/token"},
		in:    `{"data":{"a":{"token":"t1","x":1},"b":{"token":"t2"},"c":5,"d":{"tok":"t3"}}}`,
		want:  `{"data":{"a":{"token":"[redacted]","x":1},"b":{"token":"[redacted]"},"c":5,"d":{"tok":"t3"}}}`,
	},
	{
		name:  "wildcard over an array",
		paths: []string{"/data/items/*/card/number"},
		in:    `{"data":{"items":[{"card":{"number":"4111","exp":"12/30"}},{"card":{"number":4222}},{"nocard":true},7]}}`,
		want:  `{"data":{"items":[{"card":{"number":"[redacted]","exp":"12/30"}},{"card":{"number":"[redacted]"}},{"nocard":true},7]}}`,
	},
	{
		name:  "wildcard over a top-level array",
		paths: []string{"/*/id"},
		in:    `[{"id":1},{"id":2,"n":3},[4]]`,
		want:  `[{"id":"[redacted]"},{"id":"[redacted]","n":3},[4]]`,
	},
	{
		name:  "array index",
		paths: []string{"/data/1"},
		in:    `{"data":[10,20,30]}`,
		want:  `{"data":[10,"[redacted]",30]}`,
	},
	{
		name:  "leading zero and dash are not indexes",
		paths: []string{"/data/01", "/data/-", "/data/3"},
		in:    `{"data":[10,20,30]}`,
		want:  `{"data":[10,20,30]}`,
	},
	{
		name:  "index token on an object is a key",
		paths: []string{"/data/1"},
		in:    `{"data":{"1":"one","2":"two"}}`,
		want:  `{"data":{"1":"[redacted]","2":"two"}}`,
	},
	{
		name:  "root",
		paths: []string{""},
		in:    `{"data":{"email":"ann@example.com"}}`,
		want:  `"[redacted]"`,
	},
	{
		name:  "root with whitespace around a scalar",
		paths: []string{"", "/data"},
		in:    " \n 42 \n",
		want:  `"[redacted]"`,
	},
	{
		name:  "empty key",
		paths: []string{"/"},
		in:    `{"":1,"a":2}`,
		want:  `{"":"[redacted]","a":2}`,
	},
	{
		name:  "escapes",
		paths: []string{"/data/a~1b", "/data/m~0n"},
		in:    `{"data":{"a/b":1,"m~n":2,"a~1b":3,"m~0n":4}}`,
		want:  `{"data":{"a/b":"[redacted]","m~n":"[redacted]","a~1b":3,"m~0n":4}}`,
	},
	{
		name:  "escape order",
		paths: []string{"/data/~01"},
		in:    `{"data":{"~1":1,"/":2,"~/":3}}`,
		want:  `{"data":{"~1":"[redacted]","/":2,"~/":3}}`,
	},
	{
		name:  "key with dots and a star",
		paths: []string{"/data/a.b*c"},
		in:    `{"data":{"a.b*c":1,"a":{"b*c":2},"a.bxc":3,"a.b":{"c":4}}}`,
		want:  `{"data":{"a.b*c":"[redacted]","a":{"b*c":2},"a.bxc":3,"a.b":{"c":4}}}`,
	},
	{
		name:  "keys with gjson syntax",
		paths: []string{"/data/#", "/data/a?", "/data/b|c", "/data/@this"},
		in:    `{"data":{"#":[1],"a?":true,"ab":false,"b|c":0,"b":{"c":1},"@this":"x"}}`,
		want:  `{"data":{"#":"[redacted]","a?":"[redacted]","ab":false,"b|c":"[redacted]","b":{"c":1},"@this":"[redacted]"}}`,
	},
	{
		name:  "escaped keys in the document",
		paths: []string{"/data/é", `/data/a"b`, "/data/c~1d"},
		in:    `{"data":{"\u00e9":"x","a\"b":"y","c\/d":"z","e":"w"}}`,
		want:  `{"data":{"\u00e9":"[redacted]","a\"b":"[redacted]","c\/d":"[redacted]","e":"w"}}`,
	},
	{
		name:  "duplicate keys",
		paths: []string{"/data/email"},
		in:    `{"data":{"email":"a@x","name":"A","email":"b@x"},"data":{"email":"c@x"}}`,
		want:  `{"data":{"email":"[redacted]","name":"A","email":"[redacted]"},"data":{"email":"[redacted]"}}`,
	},
	{
		name:  "value types",
		paths: []string{"/data/*"},
		in:    `{"data":{"o":{"k":[1,{"z":"}"}]},"a":[1,[2],"]"],"n":-1.5e3,"z":null,"t":true,"f":false,"s":"he said \"hi\" \u00e9 ü \\","e":""},"success":true}`,
		want:  `{"data":{"o":"[redacted]","a":"[redacted]","n":"[redacted]","z":"[redacted]","t":"[redacted]","f":"[redacted]","s":"[redacted]","e":"[redacted]"},"success":true}`,
	},
	{
		name:  "nested matches",
		paths: []string{"/data/email", "/data", "/data/*"},
		in:    `{"data":{"email":"ann@example.com","n":1},"success":true}`,
		want:  `{"data":"[redacted]","success":true}`,
	},
	{
		name:  "one value reached by several pointers",
		paths: []string{"/data/email", "/data/*", "/*/email", "/data/email"},
		in:    `{"data":{"email":"ann@example.com"},"message":"ok"}`,
		want:  `{"data":{"email":"[redacted]"},"message":"ok"}`,
	},
	{
		name:  "no match",
		paths: []string{"/data/missing", "/data/email/x", "/success/0", "/errors/*/code"},
		in:    `{"data":{"email":"ann@example.com"},"success":true,"errors":[]}`,
		want:  `{"data":{"email":"ann@example.com"},"success":true,"errors":[]}`,
	},
	{
		name:     "not JSON",
		paths:    []string{"/data/email"},
		in:       `<html>ann@example.com</html>`,
		withheld: true,
	},
	{
		name:     "truncated JSON",
		paths:    []string{"/data/email"},
		in:       `{"data":{"email":"ann@example.com","name":"An`,
		withheld: true,
	},
	{
		name:     "trailing garbage",
		paths:    []string{"/data/email"},
		in:       `{"data":{"email":"ann@example.com"}} x`,
		withheld: true,
	},
	{
		name:     "empty body",
		paths:    []string{"/data/email"},
		in:       ``,
		withheld: true,
	},
	{
		name:  "empty paths leave a body that is not JSON alone",
		paths: nil,
		in:    `{"data":{"email":"ann@`,
		want:  `{"data":{"email":"ann@`,
	},
	{
		name:   "legacy strips /data",
		paths:  []string{"/data/email"},
		legacy: true,
		in:     `{"email":"a@x","name":"A","data":{"email":"b@x"}}`,
		want:   `{"email":"[redacted]","name":"A","data":{"email":"[redacted]"}}`,
	},
	{
		name:   "legacy /data is the whole body",
		paths:  []string{"/data"},
		legacy: true,
		in:     `[{"email":"a@x"}]`,
		want:   `"[redacted]"`,
	},
	{
		name:   "legacy strips only a literal /data",
		paths:  []string{"/*/email", "/datum/email"},
		legacy: true,
		in:     `{"email":"a@x","datum":{"email":"b@x"}}`,
		want:   `{"email":"a@x","datum":{"email":"[redacted]"}}`,
	},
	{
		name:   "legacy wildcard after /data",
		paths:  []string{"/data/*/token"},
		legacy: true,
		in:     `[{"token":"t1"},{"token":"t2","id":3}]`,
		want:   `[{"token":"[redacted]"},{"token":"[redacted]","id":3}]`,
	},
	{
		name:  "envelope does not strip /data",
		paths: []string{"/data/email"},
		in:    `{"email":"a@x"}`,
		want:  `{"email":"a@x"}`,
	},
	{
		name:  "pretty-printed",
		paths: []string{"/data/email", "/data/cards/*/number"},
		in:    "{\r\n  \"data\" : {\n\t\"email\"\t:\t\"ann@example.com\" ,\n    \"cards\": [\n      { \"number\" : 4111111111111111 },\n      {\"number\":\n \"4222\"\n}\n    ]\n  },\n  \"success\": true\n}\n",
		want:  "{\r\n  \"data\" : {\n\t\"email\"\t:\t\"[redacted]\" ,\n    \"cards\": [\n      { \"number\" : \"[redacted]\" },\n      {\"number\":\n \"[redacted]\"\n}\n    ]\n  },\n  \"success\": true\n}\n",
	},
}

func TestRedact(t *testing.T) {
	for _, c := range redactCases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.paths)
			if err != nil {
				t.Fatalf("Compile(%q): %v", c.paths, err)
			}
			in := []byte(c.in)
			orig := bytes.Clone(in)
			mask := p.Envelope
			if c.legacy {
				mask = p.Legacy
			}
			got, ok := mask(in)
			if !bytes.Equal(in, orig) {
				t.Errorf("input modified: got %q; want %q", in, orig)
			}
			want, wantOK := c.want, true
			if c.withheld {
				want, wantOK = fmt.Sprintf("[withheld: %d bytes, not JSON, and dashboard.redact is set]", len(c.in)), false
			}
			if string(got) != want {
				t.Errorf("got %q; want %q", got, want)
			}
			if ok != wantOK {
				t.Errorf("ok: got %v; want %v", ok, wantOK)
			}
			if ok && !p.Empty() && !gjson.ValidBytes(got) {
				t.Errorf("output is not JSON: %q", got)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	for _, c := range []struct {
		name    string
		pointer string
		err     string
	}{
		{"root", "", ""},
		{"empty key", "/", ""},
		{"escapes", "/a~0~1b/*", ""},
		{"no leading slash", "email", `redact path "email": must be "" or start with "/"`},
		{"relative", "data/email", `redact path "data/email": must be "" or start with "/"`},
		{"bad escape", "/data/a~2", `redact path "/data/a~2": "~" must be followed by "0" or "1"`},
		{"trailing tilde", "/data/a~", `redact path "/data/a~": "~" must be followed by "0" or "1"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile([]string{"/data/ok", c.pointer})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.err {
				t.Errorf("got %q; want %q", got, c.err)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	var zero Paths
	none, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	root, err := Compile([]string{""})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		p    Paths
		want bool
	}{
		{"zero value", zero, true},
		{"no pointers", none, true},
		{"root", root, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.p.Empty(); got != c.want {
				t.Errorf("got %v; want %v", got, c.want)
			}
			body := []byte(`not JSON`)
			got, ok := c.p.Legacy(body)
			if c.want && (!ok || !bytes.Equal(got, body)) {
				t.Errorf("got %q, %v; want %q, true", got, ok, body)
			}
		})
	}
}

// TestConcurrent masks with one Paths from many goroutines, for the race
// detector.
func TestConcurrent(t *testing.T) {
	p, err := Compile([]string{"/data/*/token", "/data/email"})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"data":{"email":"a@x","s":{"token":"t"}}}`)
	want := `{"data":{"email":"[redacted]","s":{"token":"[redacted]"}}}`
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				if got, _ := p.Legacy(body); string(got) != want {
					t.Errorf("got %q; want %q", got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

// fuzzPaths are the fixed path sets the fuzz target masks with.
var fuzzPaths = []string{
	"/data/email\x00/data/*/token\x00/data/items/*/card/number\x00/errors/0",
	"/*/*",
	"/data\x00/data/0\x00/*/a~1b",
	"",
}

func FuzzRedact(f *testing.F) {
	for _, c := range redactCases {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"data":{"items":[{"card":{"number":"4111"}},{"card":{"number":[1,{"x":"]"}]}}]},"errors":[{"code":"E1"}]}`))
	f.Add([]byte(`[[1,2],{"a/b":{"c":"\"}"}},[]]`))
	f.Add([]byte(`{"data":{"email":"\\","token":{"token":"t"}},"data":[{"a":1}]}`))
	sets := make([]Paths, len(fuzzPaths))
	for i, s := range fuzzPaths {
		p, err := Compile(strings.Split(s, "\x00"))
		if err != nil {
			f.Fatal(err)
		}
		sets[i] = p
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		orig := bytes.Clone(body)
		valid := gjson.ValidBytes(body)
		for i, p := range sets {
			for _, mask := range []func([]byte) ([]byte, bool){p.Envelope, p.Legacy} {
				out, ok := mask(body)
				if !bytes.Equal(body, orig) {
					t.Fatalf("paths %d: input modified: got %q; want %q", i, body, orig)
				}
				if !valid {
					want := fmt.Sprintf("[withheld: %d bytes, not JSON, and dashboard.redact is set]", len(body))
					if ok || string(out) != want {
						t.Fatalf("paths %d: got %q, %v; want %q, false", i, out, ok, want)
					}
					continue
				}
				if !ok || !gjson.ValidBytes(out) {
					t.Fatalf("paths %d: %q gave %q, %v; want JSON, true", i, body, out, ok)
				}
				again, ok := mask(out)
				if !ok || !bytes.Equal(again, out) {
					t.Fatalf("paths %d: masking %q again: got %q; want %q", i, body, again, out)
				}
				if fuzzPaths[i] == "/*/*" {
					checkDepthTwo(t, body, out)
				}
			}
		}
	})
}

// checkDepthTwo checks, without the package's walk, that out is body
// masked at /*/*: the same containers, with every value inside a
// top-level container masked.
func checkDepthTwo(t *testing.T, body, out []byte) {
	t.Helper()
	in, got := gjson.ParseBytes(body), gjson.ParseBytes(out)
	if in.Type != gjson.JSON {
		if string(out) != string(body) {
			t.Fatalf("scalar %q: got %q; want it unchanged", body, out)
		}
		return
	}
	ins, gots := children(in), children(got)
	if len(ins) != len(gots) {
		t.Fatalf("%q: got %d top-level values in %q; want %d", body, len(gots), out, len(ins))
	}
	for i := range ins {
		if ins[i].Type != gjson.JSON {
			if gots[i].Raw != ins[i].Raw {
				t.Fatalf("%q: got %s in %q; want %s", body, gots[i].Raw, out, ins[i].Raw)
			}
			continue
		}
		if gots[i].Type != gjson.JSON {
			t.Fatalf("%q: got %s in %q; want a container", body, gots[i].Raw, out)
		}
		want, vs := children(ins[i]), children(gots[i])
		if len(vs) != len(want) {
			t.Fatalf("%q: got %d values in %q; want %d", body, len(vs), out, len(want))
		}
		for _, v := range vs {
			if v.Raw != `"[redacted]"` {
				t.Fatalf("%q: got %s in %q; want it masked", body, v.Raw, out)
			}
		}
	}
}

// children lists the values directly inside v.
func children(v gjson.Result) []gjson.Result {
	var rs []gjson.Result
	v.ForEach(func(_, r gjson.Result) bool {
		rs = append(rs, r)
		return true
	})
	return rs
}

func BenchmarkEnvelope(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"data":{"token":"tok_8f3a9c","items":[`)
	for i := range 14 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"email":"user%d@example.com","name":"User Number %d","card":{"number":"4111 1111 1111 %04d","exp":"12/30"},"tags":["a","b"]}`, i, i, i, i)
	}
	sb.WriteString(`]},"success":true,"message":"ok","errors":[]}`)
	body := []byte(sb.String())
	p, err := Compile([]string{"/data/token", "/data/items/*/email", "/data/items/*/card/number"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := p.Envelope(body); !ok {
			b.Fatal("not inspected")
		}
	}
}

func TestTouches(t *testing.T) {
	p, err := Compile([]string{"/data/email", "/data/*/token"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pointer string
		want          bool
	}{
		{"exact", "/data/email", true},
		{"inside", "/data/email/0", true},
		{"ancestor", "/data", true},
		{"root", "", true},
		{"wildcard", "/data/items/token", true},
		{"wildcard index", "/data/3/token", true},
		{"may hold a wildcard match", "/data/name", true},
		{"sibling", "/meta/name", false},
		{"other branch", "/errors/0/code", false},
		{"wildcard sibling", "/data/items/id", false},
		{"bad escape", "/data/~2", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Touches(tc.pointer); got != tc.want {
				t.Errorf("Touches(%q): got %v; want %v", tc.pointer, got, tc.want)
			}
		})
	}
	if (Paths{}).Touches("/data/email") {
		t.Errorf("empty Paths touches /data/email")
	}
}
