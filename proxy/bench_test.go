package proxy

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/internal/benchload"
	"github.com/envelope-proxy/envelope-proxy/transform"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkProxy measures whole requests over loopback through a plain
// httputil.ReverseProxy with a buffer pool and a pooled transport
// (bench/run.sh's baseline-tuned, the stricter of its two baselines) and
// through envelope-proxy for a legacy and an envelope client, side by side
// (the evidence package measures the same with the dashboard's evidence
// recorded). Its client
// shares the process and both cores with the proxy and the upstream, so it
// does not show what large copy buffers (copyPool) give on the 1 MiB
// pass-through: here they cost about 15% more time per request, while with
// the client in its own process (wrk, or a Go client) they about halve the
// proxy's CPU per request. bench/run.sh is the measure of throughput.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(benchload.Upstream())
	defer up.Close()
	target, _ := url.Parse(up.URL)
	pool := config.Default().Upstream
	baseline := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		BufferPool: &copyPool{},
		Transport:  &http.Transport{MaxIdleConns: pool.MaxIdleConns, MaxIdleConnsPerHost: pool.MaxIdleConnsPerHost, DisableCompression: true},
	})
	defer baseline.Close()
	cfg := testConfig(up.URL)
	cfg.MaxBodyBytes = config.DefaultMaxBodyBytes
	h, err := New(settingsOf(cfg), Options{})
	if err != nil {
		b.Fatal(err)
	}
	px := serveProxy(b, h)
	client := benchload.Client()
	for _, workload := range []string{"small", "credits", "large"} {
		for _, tc := range []struct{ target, url, key string }{
			// The baseline forwards the same key header unread, so every
			// target handles requests of the same shape.
			{"baseline-tuned", baseline.URL, legacyKey},
			{"legacy", px.URL, legacyKey},
			{"envelope", px.URL, envelopeKey},
		} {
			b.Run(workload+"/"+tc.target, func(b *testing.B) {
				b.SetBytes(int64(len(benchload.Workloads[workload].Body)))
				benchload.Run(b, client, tc.url, workload, tc.key)
			})
		}
	}
}

// benchBody is a response body that can be rewound, so that a benchmark
// iteration does not allocate its input.
type benchBody struct{ bytes.Reader }

func (*benchBody) Close() error { return nil }

// BenchmarkModifyResponse measures the rewrite of one upstream response on
// its own, without the network: the credits error rewrite and the buffered
// wraps of the small and 1 MiB success bodies, each identity-encoded and in
// every Content-Encoding the proxy decodes and re-encodes.
func BenchmarkModifyResponse(b *testing.B) {
	h, err := New(settingsOf(testConfig("http://127.0.0.1:1")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	s := h.current.Load()
	req := httptest.NewRequest("GET", "/x", nil)
	ex := &exchange{decision: Decision{Client: "acme", Mode: config.ModeEnvelope}}
	for _, workload := range []string{"credits", "small", "large"} {
		wb := benchload.Workloads[workload]
		type variant struct {
			name   string
			encode func([]byte) []byte
		}
		variants := []variant{{"identity", nil}}
		for _, e := range encodings {
			variants = append(variants, variant{e.name, e.encode})
		}
		for _, v := range variants {
			body := []byte(wb.Body)
			header := http.Header{"Content-Type": {"application/json"}}
			if v.encode != nil {
				body = v.encode(body)
				header["Content-Encoding"] = []string{v.name}
			}
			header["Content-Length"] = []string{itoa(len(body))}
			b.Run(workload+"/"+v.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(wb.Body)))
				rb := &benchBody{}
				resp := &http.Response{Request: req, Header: http.Header{}}
				for b.Loop() {
					rb.Reset(body)
					clear(resp.Header)
					maps.Copy(resp.Header, header)
					resp.StatusCode, resp.Body, resp.ContentLength = wb.Status, rb, int64(len(body))
					*ex = exchange{snap: s, decision: ex.decision}
					if err := ex.rewriteResponse(resp); err != nil {
						b.Fatal(err)
					}
					if ex.result.Action == transform.Pass {
						b.Fatalf("%s/%s passed unchanged (%s); want a rewrite", workload, v.name, ex.result.Reason)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		}
	}
}

// BenchmarkAccessLog measures one access log line of a rewritten error, on
// the same JSON encoder and buffered writer as serve's access log: it runs
// for every request when log.access_log is on (the default).
func BenchmarkAccessLog(b *testing.B) {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	out := &zapcore.BufferedWriteSyncer{WS: zapcore.AddSync(io.Discard), FlushInterval: time.Second}
	defer out.Stop()
	access := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(ec), out, zap.InfoLevel)).Named("access")
	h, err := New(settingsOf(testConfig("http://127.0.0.1:1")), Options{AccessLog: access})
	if err != nil {
		b.Fatal(err)
	}
	ex := &exchange{
		snap:           h.current.Load(),
		method:         "GET",
		path:           "/v1/orders",
		decision:       Decision{Client: "acme", Mode: config.ModeEnvelope, HasKey: true, KeyID: [4]byte{0xde, 0xad, 0xbe, 0xef}},
		upstreamStatus: 403,
		upstreamTime:   800 * time.Microsecond,
		result: transform.Result{Action: transform.Rewrite, Status: 402, Rule: "insufficient_credits",
			LegacyCode: "insufficient_credits", Code: "insufficient_credits"},
	}
	ex.w.status, ex.w.bytes = 402, 183
	b.ReportAllocs()
	for b.Loop() {
		ex.logAccess(time.Millisecond)
	}
}

// BenchmarkObserve measures the metrics of one finished exchange, which
// every request pays: a legacy pass, a success wrap and a rewritten error.
func BenchmarkObserve(b *testing.B) {
	h, err := New(settingsOf(testConfig("http://127.0.0.1:1")), Options{})
	if err != nil {
		b.Fatal(err)
	}
	snap := h.current.Load()
	cases := []struct {
		name string
		ex   exchange
	}{
		{"legacy", exchange{decision: Decision{Client: "acme", Mode: config.ModeLegacy}, upstreamStatus: 200,
			result: transform.Result{Action: transform.Pass, Status: 200}}},
		{"wrap", exchange{decision: Decision{Client: "acme", Mode: config.ModeEnvelope}, upstreamStatus: 200,
			result: transform.Result{Action: transform.Wrap, Status: 200}}},
		{"credits", exchange{decision: Decision{Client: "acme", Mode: config.ModeEnvelope}, upstreamStatus: 403,
			result: transform.Result{Action: transform.Rewrite, Status: 402, Rule: "insufficient_credits",
				LegacyCode: "insufficient_credits", Code: "insufficient_credits"}}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			ex := c.ex
			ex.snap = snap
			ex.w.status = ex.result.Status
			b.ReportAllocs()
			for b.Loop() {
				ex.observe(time.Millisecond)
			}
		})
	}
}
