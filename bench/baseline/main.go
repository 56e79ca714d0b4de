// Command baseline is the reference point of the load benchmark
// (bench/run.sh): a plain httputil.ReverseProxy with a buffer pool, and
// nothing else. envelope-proxy's numbers are read as ratios to it.
//
// -transport picks the upstream transport:
//
//   - default: none set, so ReverseProxy uses http.DefaultTransport. This is
//     the issue's "plain httputil.ReverseProxy with a buffer pool, no
//     rewrite", read literally: the baseline its targets are stated
//     against. Its MaxIdleConnsPerHost is 2, so with 32 clients most
//     requests dial a new upstream connection; that, and not the proxying,
//     is most of its cost on small responses. It also asks the upstream
//     for gzip (Accept-Encoding), which the bench backend ignores.
//   - tuned: the same proxy with the upstream connection pool sized as
//     envelope-proxy's defaults size it (config.Default().Upstream),
//     and compression left to the client as envelope-proxy leaves it. It is
//     the stricter comparison: Go's reverse proxy at its cheapest, so that
//     the ratios to it are the cost of envelope-proxy's routing and
//     rewriting, not of proxying.
//
// -legacy-http (with -transport tuned) adds the three things envelope-proxy
// does at the HTTP level for a legacy client beyond proxying, and nothing
// else of envelope-proxy: X-Forwarded-For, -Host and -Proto on the upstream
// request, the upstream timeout (the transport's ResponseHeaderTimeout, at
// envelope-proxy's default) and a Vary naming the key header on every
// response. Its ratio to the tuned proxy is what that behaviour costs in
// net/http, and legacy mode's ratio to it what envelope-proxy's own code
// (routing, metrics, evidence) costs.
package main

import (
	"flag"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// bufferPool hands httputil.ReverseProxy 32 KiB copy buffers.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b *bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b *bufferPool) Put(x []byte) { b.p.Put(&x) }

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "listen address (loopback)")
	upstream := flag.String("upstream", "http://127.0.0.1:9000", "the backend")
	transportName := flag.String("transport", "default", "upstream transport: default (http.DefaultTransport) or tuned")
	legacyHTTP := flag.Bool("legacy-http", false, "add X-Forwarded-*, the upstream timeout and Vary, as envelope-proxy does for a legacy client (needs -transport tuned)")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("-upstream: %v", err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		BufferPool: newBufferPool(),
	}
	switch *transportName {
	case "default":
	case "tuned":
		u := config.Default().Upstream
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = u.MaxIdleConns
		t.MaxIdleConnsPerHost = u.MaxIdleConnsPerHost
		t.IdleConnTimeout = u.IdleConnTimeout
		t.DisableCompression = true
		rp.Transport = t
		if *legacyHTTP {
			addLegacyHTTP(rp, t, target)
		}
	default:
		log.Fatalf("-transport %q: want default or tuned", *transportName)
	}
	if *legacyHTTP && *transportName != "tuned" {
		log.Fatal("-legacy-http needs -transport tuned")
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Fatal(srv.Serve(ln))
}

// varyValues is the Vary added to every response by -legacy-http: the key
// header envelope-proxy routes on (routing.header's default), one shared
// slice as envelope-proxy shares it, so that adding it allocates nothing.
// A response with a Vary of its own keeps it unmerged, where envelope-proxy
// merges the two; the bench backend sends none.
var varyValues = []string{config.Default().Routing.Header}

// addLegacyHTTP gives rp and t what envelope-proxy adds for a legacy
// client at the HTTP level: X-Forwarded-*, the upstream timeout and Vary.
func addLegacyHTTP(rp *httputil.ReverseProxy, t *http.Transport, target *url.URL) {
	t.ResponseHeaderTimeout = config.Default().Upstream.Timeout
	rp.Rewrite = func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.SetXForwarded()
	}
	rp.ModifyResponse = func(resp *http.Response) error {
		if _, ok := resp.Header["Vary"]; !ok {
			resp.Header["Vary"] = varyValues
		}
		return nil
	}
}
