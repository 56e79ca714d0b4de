package transform

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/tidwall/gjson"
)

// BenchmarkAppendError measures every row of the mapping table through the
// rewrite the proxy runs on buffered error bodies.
func BenchmarkAppendError(b *testing.B) {
	tr := newDefault(b)
	for _, tc := range goldenCases {
		if tc.wantAction != Rewrite {
			continue
		}
		body := readGolden(&testing.T{}, tc.name, "legacy")
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			dst := make([]byte, 0, 4096)
			for b.Loop() {
				dst, _ = tr.AppendError(dst[:0], tc.status, body)
			}
		})
	}
}

// successBody builds a realistic success body of about n bytes.
func successBody(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"items":[`)
	for i := 0; buf.Len() < n-64; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"id":%d,"name":"item \"%d\"","score":%d.25,"ok":true,"tags":["a","b"]}`, 9007199254740993+i, i, i)
	}
	buf.WriteString(`]}`)
	return buf.Bytes()
}

// BenchmarkWrap measures the buffered success path: validity check and
// the envelope around the untouched bytes.
func BenchmarkWrap(b *testing.B) {
	for _, size := range []int{1 << 10, 100 << 10, 1 << 20} {
		body := successBody(size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			dst := make([]byte, 0, len(body)+WrapOverhead)
			for b.Loop() {
				if !gjson.ValidBytes(body) {
					b.Fatal("invalid")
				}
				dst = AppendSuccess(dst[:0], body)
			}
		})
	}
}
