package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// scanCase is one document for the Scanner with its expected verdict.
type scanCase struct {
	name  string
	input string
	valid bool
}

// nest returns depth copies of open, then inner, then depth copies of close.
func nest(depth int, open, inner, close string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// scanCases are the table for TestScanner and the seeds for FuzzScanner.
var scanCases = []scanCase{
	// Valid documents.
	{"empty object", `{}`, true},
	{"empty array", `[]`, true},
	{"spaced object", " \t\r\n{ } \r\n\t ", true},
	{"top string", `"x"`, true},
	{"top empty string", `""`, true},
	{"top int", `12`, true},
	{"top int spaced", " 12 ", true},
	{"top zero", `0`, true},
	{"top negative zero", `-0`, true},
	{"top true", `true`, true},
	{"top false", `false`, true},
	{"top null", `null`, true},
	{"big int", `9007199254740993`, true},
	{"huge int", strings.Repeat("9", 400), true},
	{"fraction and exponent", `-0.5e+10`, true},
	{"upper exponent", `1E5`, true},
	{"negative exponent", `[1e-5,2.5E-3,0e0,0.0,-1.25e+00]`, true},
	{"object", `{"a":1,"b":[true,false,null],"c":{"d":"e"},"f":-2.5}`, true},
	{"spaced object members", "{ \"a\" : 1 , \"b\" :\n[ 1 , 2 ] }", true},
	{"nested arrays", `[[[[]]],[],[[1]]]`, true},
	{"nested objects", `{"a":{"b":{"c":{}}}}`, true},
	{"simple escapes", `"\"\\\/\b\f\n\r\t"`, true},
	{"unicode escapes", `"\u00e9\uD83D\uDE00\uFFFF\u0000"`, true},
	{"lone surrogate escape", `"\ud800"`, true},
	{"raw utf8", `{"k":"héllo 世界 😀"}`, true},
	{"invalid utf8", "\"\xff\xfe\xc0\x80\"", true},
	{"invalid utf8 key", "{\"\xff\":1}", true},
	{"del byte", "\"\x7f\"", true},
	{"long string with escapes", `"` + strings.Repeat(`abcdefg\n\"\u00e9xyz`, 20) + `"`, true},
	{"depth at limit arrays", nest(maxScanDepth, "[", "", "]"), true},
	{"depth at limit mixed", nest(maxScanDepth/2, `[{"a":`, "1", "}]"), true},

	// Invalid documents.
	{"empty", ``, false},
	{"whitespace only", " \t\r\n", false},
	{"trailing garbage", `{}x`, false},
	{"two objects", `{} {}`, false},
	{"two numbers", `1 2`, false},
	{"two strings", `"a""b"`, false},
	{"two literals", `truefalse`, false},
	{"leading zero", `01`, false},
	{"negative leading zero", `-01`, false},
	{"lone minus", `-`, false},
	{"minus letter", `-a`, false},
	{"double minus", `--1`, false},
	{"plus sign", `+1`, false},
	{"trailing dot", `1.`, false},
	{"dot in array", `[1.]`, false},
	{"leading dot", `.5`, false},
	{"two dots", `1.5.3`, false},
	{"bare exponent", `1e`, false},
	{"exponent sign only", `1e+`, false},
	{"double exponent", `1e5e5`, false},
	{"hex number", `0x10`, false},
	{"NaN", `NaN`, false},
	{"Infinity", `-Infinity`, false},
	{"bad escape", `"\x"`, false},
	{"escaped quote only", `"\'"`, false},
	{"short unicode escape", `"\u12"`, false},
	{"non-hex unicode escape", `"\u12g4"`, false},
	{"unicode escape at end", `"\u`, false},
	{"control char in string", "\"a\x01b\"", false},
	{"raw tab in string", "\"a\tb\"", false},
	{"raw newline in string", "\"a\nb\"", false},
	{"nul in string", "\"\x00\"", false},
	{"unclosed string", `"abc`, false},
	{"unclosed array", `[`, false},
	{"unclosed object", `{`, false},
	{"unclosed array after value", `[1`, false},
	{"unclosed object after value", `{"a":1`, false},
	{"key without colon at end", `{"a"`, false},
	{"key without value", `{"a":`, false},
	{"trailing comma array", `[1,]`, false},
	{"trailing comma object", `{"a":1,}`, false},
	{"missing colon", `{"a" 1}`, false},
	{"number key", `{1:2}`, false},
	{"missing comma", `[1 2]`, false},
	{"mismatched closers", `[}`, false},
	{"mismatched closers object", `{]`, false},
	{"extra closer", `[1]]`, false},
	{"extra object closer", `{"a":1}}`, false},
	{"lone closer", `]`, false},
	{"lone comma", `,`, false},
	{"lone colon", `:`, false},
	{"leading comma", `[,1]`, false},
	{"short true", `tru`, false},
	{"bad true", `trux`, false},
	{"short null", `nul`, false},
	{"bad false", `falsy`, false},
	{"capital true", `True`, false},
	{"single quotes", `'a'`, false},
	{"nul byte", "\x00", false},
	{"byte order mark", "\xef\xbb\xbf{}", false},
	{"string then garbage", `"a"x`, false},
	{"garbage after spaced value", "[] \n x", false},
	{"depth over limit arrays", nest(maxScanDepth+1, "[", "", "]"), false},
	{"depth over limit objects", nest(maxScanDepth+1, `{"a":`, "1", "}"), false},
	{"depth at limit unclosed", strings.Repeat("[", maxScanDepth), false},
}

// scanResult feeds pieces to s after a Reset and reports whether the stream
// was accepted. It fails t if the Scanner breaks its own contract.
func scanResult(t testing.TB, s *Scanner, pieces ...[]byte) bool {
	t.Helper()
	s.Reset()
	var werr error
	for _, p := range pieces {
		n, err := s.Write(p)
		if werr != nil {
			if err == nil {
				t.Fatalf("Write after error: got %v; want an error", err)
			}
			continue
		}
		if err != nil {
			if n < 0 || n >= len(p) {
				t.Fatalf("Write error offset: got %d; want in [0, %d)", n, len(p))
			}
			werr = err
			continue
		}
		if n != len(p) {
			t.Fatalf("Write: got n=%d; want %d", n, len(p))
		}
	}
	cerr := s.Close()
	if werr != nil && cerr != werr {
		t.Fatalf("Close after Write error: got %v; want %v", cerr, werr)
	}
	if again := s.Close(); (again == nil) != (cerr == nil) {
		t.Fatalf("second Close: got %v; want %v", again, cerr)
	}
	return cerr == nil
}

// splitPoints returns where TestScanner splits an input of length n: every
// point for small inputs, a sample including both ends for large ones.
func splitPoints(n int) []int {
	step := 1
	if n > 512 {
		step = 61
	}
	var pts []int
	for i := 0; i <= n; i += step {
		pts = append(pts, i)
	}
	for i := max(0, n-3); i <= n; i++ {
		pts = append(pts, i)
	}
	return pts
}

func TestScanner(t *testing.T) {
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.input)
			if got := json.Valid(data); got != tc.valid {
				t.Fatalf("json.Valid(%.60q): got %v; want %v", tc.input, got, tc.valid)
			}
			var s Scanner
			if got := scanResult(t, &s, data); got != tc.valid {
				t.Errorf("whole: got %v; want %v (Close: %v)", got, tc.valid, s.Close())
			}
			bytewise := make([][]byte, len(data))
			for i := range data {
				bytewise[i] = data[i : i+1]
			}
			if got := scanResult(t, &s, bytewise...); got != tc.valid {
				t.Errorf("byte at a time: got %v; want %v (Close: %v)", got, tc.valid, s.Close())
			}
			for _, i := range splitPoints(len(data)) {
				if got := scanResult(t, &s, data[:i], data[i:]); got != tc.valid {
					t.Errorf("split at %d: got %v; want %v (Close: %v)", i, got, tc.valid, s.Close())
				}
			}
		})
	}
}

func TestScannerErrors(t *testing.T) {
	tests := []struct {
		name   string
		pieces []string
		n      int // offset within the failing piece; -1 if only Close fails
		want   string
	}{
		{"bad escape", []string{`{"a":"b\`, `x"}`}, 0, `invalid character 'x' in string escape code at offset 8`},
		{"trailing garbage", []string{`{} `, ` x`}, 1, `invalid character 'x' after top-level value at offset 4`},
		{"control char", []string{"[\"a\x01\"]"}, 3, `invalid character '\x01' in string literal at offset 3`},
		{"literal", []string{`[tr`, `ux]`}, 1, `invalid character 'x' in literal true (expecting 'e') at offset 4`},
		{"hex escape", []string{`"\u12`, `3g"`}, 1, `invalid character 'g' in \u hexadecimal character escape at offset 6`},
		{"number then letter", []string{`[12`, `a]`}, 0, `invalid character 'a' after array element at offset 3`},
		{"depth", []string{strings.Repeat("[", maxScanDepth+1)}, maxScanDepth, `invalid character '[' exceeded max depth at offset 10000`},
		{"incomplete", []string{`{"a":`, `[1`}, -1, `unexpected end of JSON input at offset 7`},
		{"incomplete number", []string{`-`}, -1, `unexpected end of JSON input at offset 1`},
		{"empty", []string{"", "  "}, -1, `unexpected end of JSON input: no value at offset 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Scanner
			var err error
			for i, p := range tt.pieces {
				var n int
				n, err = s.Write([]byte(p))
				if err == nil {
					continue
				}
				if i != len(tt.pieces)-1 || n != tt.n {
					t.Fatalf("Write error in piece %d at %d: got %v; want piece %d at %d", i, n, err, len(tt.pieces)-1, tt.n)
				}
				if _, again := s.Write([]byte(" ")); again != err {
					t.Errorf("later Write: got %v; want %v", again, err)
				}
			}
			if err == nil {
				if tt.n != -1 {
					t.Fatalf("Write: got no error; want one at %d", tt.n)
				}
				err = s.Close()
			}
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %q; want %q", fmt.Sprint(err), tt.want)
			}
			if cerr := s.Close(); cerr == nil || cerr.Error() != tt.want {
				t.Errorf("Close: got %q; want %q", fmt.Sprint(cerr), tt.want)
			}
		})
	}
}

func TestScannerReset(t *testing.T) {
	var s Scanner
	if _, err := s.Write([]byte(`[[{"a":`)); err != nil {
		t.Fatalf("Write: got %v; want %v", err, nil)
	}
	s.Reset()
	if _, err := s.Write([]byte(`x`)); err == nil {
		t.Fatalf("Write after Reset: got %v; want an error", err)
	}
	s.Reset()
	if _, err := s.Write([]byte(`"ok"`)); err != nil {
		t.Fatalf("Write after Reset: got %v; want %v", err, nil)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got %v; want %v", err, nil)
	}
}

func TestScannerAllocs(t *testing.T) {
	data := benchJSON(64 << 10)
	deep := []byte(nest(maxScanDepth/2, `[{"a":`, "1", "}]"))
	var s Scanner
	scanResult(t, &s, deep) // grow the stack once
	allocs := testing.AllocsPerRun(20, func() {
		s.Reset()
		for p := data; len(p) > 0; {
			k := min(len(p), 4<<10)
			if _, err := s.Write(p[:k]); err != nil {
				t.Fatalf("Write: got %v; want %v", err, nil)
			}
			p = p[k:]
		}
		s.Reset()
		if _, err := s.Write(deep); err != nil {
			t.Fatalf("Write: got %v; want %v", err, nil)
		}
	})
	if allocs != 0 {
		t.Errorf("allocations per run: got %v; want %v", allocs, 0)
	}
}

// FuzzScanner checks the Scanner against json.Valid for the data fed in up
// to three pieces, and its error text and offset against encoding/json's.
func FuzzScanner(f *testing.F) {
	for _, tc := range scanCases {
		if len(tc.input) <= 4096 {
			f.Add([]byte(tc.input), uint16(len(tc.input)/3), uint16(2*len(tc.input)/3))
		}
	}
	f.Add(benchJSON(2048), uint16(700), uint16(1300))
	var s Scanner
	f.Fuzz(func(t *testing.T, data []byte, split1, split2 uint16) {
		a, b := int(split1)%(len(data)+1), int(split2)%(len(data)+1)
		if a > b {
			a, b = b, a
		}
		want := json.Valid(data)
		if got := scanResult(t, &s, data[:a], data[a:b], data[b:]); got != want {
			t.Fatalf("split %d,%d: got %v; want %v (Close: %v)", a, b, got, want, s.Close())
		}
		if want {
			return
		}
		var raw json.RawMessage
		var jerr *json.SyntaxError
		if !errors.As(json.Unmarshal(data, &raw), &jerr) {
			t.Fatalf("json.Unmarshal: got %T; want *json.SyntaxError", jerr)
		}
		var serr *scanError
		if !errors.As(s.Close(), &serr) {
			t.Fatalf("Close: got %T; want *scanError", s.Close())
		}
		if s.state != stError {
			// Only end of input is wrong: encoding/json reports that
			// as unexpected, or as a bad ' ' it feeds itself at the end.
			if jerr.Offset != int64(len(data)) || jerr.Error() != "unexpected end of JSON input" &&
				!strings.HasPrefix(jerr.Error(), "invalid character ' ' ") {
				t.Fatalf("got %q at end; want %q at %d", serr.msg, jerr.Error(), jerr.Offset-1)
			}
			return
		}
		if serr.msg != jerr.Error() || serr.offset != jerr.Offset-1 {
			t.Fatalf("got %q at %d; want %q at %d", serr.msg, serr.offset, jerr.Error(), jerr.Offset-1)
		}
	})
}

// benchJSON returns a deterministic JSON array of API-like records, at least
// n bytes long: ids, names, text with escapes, floats, booleans, nulls and
// nested arrays and objects.
func benchJSON(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "Zürich", "naïve", "日本"}
	word := func() string { return words[r.IntN(len(words))] }
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":%d,"uuid":"%08x-%04x-%04x","name":"%s %s",`, 100000+i, r.Uint32(), r.IntN(1<<16), r.IntN(1<<16), word(), word())
		fmt.Fprintf(&b, `"email":"%s.%d@example.com","active":%t,"score":%s,`, word(), i, r.IntN(2) == 0, strconv.FormatFloat(r.Float64()*1000, 'f', 2, 64))
		fmt.Fprintf(&b, `"balance":%s,"deleted_at":null,`, strconv.FormatFloat(r.NormFloat64()*1e6, 'g', -1, 64))
		fmt.Fprintf(&b, `"bio":"%s said \"%s\"\nthen left for %s \u00e9t\u00e9\t(%d).",`, word(), word(), word(), r.IntN(100))
		fmt.Fprintf(&b, `"tags":["%s","%s","%s"],"scores":[%d,%d,%d,%.3f],`, word(), word(), word(), r.IntN(100), r.IntN(1000), -r.IntN(10), r.Float64())
		fmt.Fprintf(&b, `"address":{"street":"%d %s Street","city":"%s","zip":"%05d","geo":[%.6f,%.6f]}}`, r.IntN(999), word(), word(), r.IntN(99999), r.Float64()*180-90, r.Float64()*360-180)
	}
	b.WriteByte(']')
	return b.Bytes()
}

func BenchmarkScanner(b *testing.B) {
	const chunk = 32 << 10
	sizes := []struct {
		name   string
		n      int
		indent bool
	}{
		{"1KB", 1 << 10, false},
		{"100KB", 100 << 10, false},
		{"1MiB", 1 << 20, false},
		{"1MiB-indented", 1 << 20, true},
	}
	// whole are the checks of a whole body beside the incremental Scanner:
	// encoding/json's, the package's own and gjson's.
	whole := []struct {
		name  string
		valid func([]byte) bool
	}{
		{"json.Valid", json.Valid},
		{"Valid", Valid},
		{"gjson.ValidBytes", gjson.ValidBytes},
	}
	for _, size := range sizes {
		data := benchJSON(size.n)
		if size.indent {
			var buf bytes.Buffer
			if err := json.Indent(&buf, data, "", "  "); err != nil {
				b.Fatal(err)
			}
			data = buf.Bytes()
		}
		b.Run(size.name+"/Scanner", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			var s Scanner
			for b.Loop() {
				s.Reset()
				for p := data; len(p) > 0; {
					k := min(len(p), chunk)
					if _, err := s.Write(p[:k]); err != nil {
						b.Fatal(err)
					}
					p = p[k:]
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, v := range whole {
			b.Run(size.name+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					if !v.valid(data) {
						b.Fatal(v.name + ": got false; want true")
					}
				}
			})
		}
	}
}
