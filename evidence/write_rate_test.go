package evidence

import (
	"fmt"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/event"
	"github.com/envelope-proxy/envelope-proxy/transform"
)

// BenchmarkWriteRate measures what one replica writes to the store per
// minute with n clients that each get traffic every second (envelope wraps,
// credits rewrites, an unmapped error now and then): the rows and the bytes
// of a minute's batches, reported as rows/min and bytes/min. The time per
// operation is the cost of taking and encoding one flush's batch.
func BenchmarkWriteRate(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			c := start()
			r := New(testConfig("").Settings, Options{Replica: "r1", Now: c.now, FlushInterval: time.Hour, MaintainInterval: time.Hour})
			defer r.Close()
			names := make([]string, n)
			for i := range names {
				names[i] = fmt.Sprintf("client-%04d", i)
			}
			flushes := int(time.Minute / DefaultFlushInterval)
			var rows, bytes int
			b.ReportAllocs()
			for b.Loop() {
				rows, bytes = 0, 0
				for f := range flushes {
					for s := range int(DefaultFlushInterval / time.Second) {
						for i, name := range names {
							ev := event.Request{Client: name, Envelope: true, Status: 200, LegacyStatus: 200, Action: transform.Wrap, Added: 300 * time.Microsecond}
							if (i+s)%3 == 0 {
								ev = event.Request{Client: name, Envelope: true, Status: 402, LegacyStatus: 403, Action: transform.Rewrite,
									LegacyCode: "insufficient_credits", Code: "insufficient_credits", Added: 400 * time.Microsecond}
							}
							if (i+s+f)%97 == 0 {
								ev = event.Request{Client: name, Envelope: true, Status: 418, LegacyStatus: 418, Action: transform.Rewrite,
									Unmapped: true, UnmappedCode: "teapot", Code: "http_418", Added: 300 * time.Microsecond}
							}
							r.RecordRequest(&ev)
						}
						c.advance(time.Second)
					}
					batch := r.take(int64(f + 1))
					rows += len(batch.deltas)
					for _, d := range batch.deltas {
						bytes += len(d.Data)
					}
					r.written(batch)
				}
			}
			b.ReportMetric(float64(rows), "rows/min")
			b.ReportMetric(float64(bytes), "bytes/min")
		})
	}
}
