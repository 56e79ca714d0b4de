package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/demo"
)

// The demo's two clients. Their keys are public on purpose: only their
// SHA-256 digests go into the config, as in production.
const (
	demoLegacyKey   = "demo-legacy-key"
	demoEnvelopeKey = "demo-envelope-key"
	demoShadowKey   = "demo-shadow-key"
)

// Demo starts the legacy demo backend and the proxy in front of it, sends
// every example through both a legacy and an envelope client, prints them
// side by side with curl lines to try, and keeps serving until interrupted
// (or exits at once with -exit).
func Demo(args []string, env Env) int {
	fset := newFlagSet("demo", env)
	listen := fset.String("listen", "127.0.0.1:8080", "the proxy's address")
	adminListen := fset.String("admin", "127.0.0.1:9901", "the admin listener's address (the migration dashboard)")
	exit := fset.Bool("exit", false, "print the side-by-side comparison and exit")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	backendLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(env.Stderr, "demo backend:", err)
		return 1
	}
	backend := &http.Server{Handler: demo.Backend(), ReadHeaderTimeout: 5 * time.Second}
	go backend.Serve(backendLn)
	defer backend.Close()

	cfg := config.Default()
	cfg.Listen = *listen
	cfg.AdminListen = *adminListen
	cfg.StateDir = ""
	cfg.Log = config.Log{Level: "error"}
	// The demo sends a dozen requests per client; let that be enough
	// evidence for a verdict on the dashboard.
	cfg.Readiness.MinRequests = 10
	cfg.Upstream.URL = "http://" + backendLn.Addr().String()
	cfg.Server.ShutdownTimeout = 2 * time.Second
	cfg.Routing.OverrideHeader = "X-Response-Format"
	cfg.Routing.Clients = []config.Client{
		{Name: "demo-legacy", KeysSHA256: []string{sha256Hex(demoLegacyKey)}, Mode: config.ModeLegacy},
		{Name: "demo-envelope", KeysSHA256: []string{sha256Hex(demoEnvelopeKey)}, Mode: config.ModeEnvelope},
		{Name: "demo-shadow", KeysSHA256: []string{sha256Hex(demoShadowKey)}, Mode: config.ModeShadow},
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	logs, err := newLogs(cfg.Log, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	defer logs.sync()
	signals, stopSignals := processSignals(env, syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()
	// stop ends serve from within its ready hook: the demo's own signal.
	stop := make(chan os.Signal, 1)
	merged := make(chan os.Signal, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case sig := <-signals:
			merged <- sig
		case sig := <-stop:
			merged <- sig
		case <-done:
		}
	}()
	status := 0
	err = serve(cfg, "", nil, logs, merged, func(addr, admin string) {
		base := "http://" + addr
		if err := printComparison(env.Stdout, base); err != nil {
			fmt.Fprintln(env.Stderr, "demo:", err)
			status = 1
			stop <- syscall.SIGTERM
			return
		}
		printCurls(env.Stdout, base)
		fmt.Fprintf(env.Stdout, "\nMigration dashboard (each client's verdict and its evidence): http://%s/\n", admin)
		fmt.Fprintf(env.Stdout, "  envelope-proxy ready -admin http://%s -client demo-envelope\n", admin)
		fmt.Fprintf(env.Stdout, "  envelope-proxy suggest -admin http://%s   # rules for what fell to the fallback, ready to paste\n", admin)
		if *exit {
			stop <- syscall.SIGTERM
			return
		}
		fmt.Fprintln(env.Stdout, "\nServing; press Ctrl-C to stop.")
	})
	if err != nil {
		fmt.Fprintln(env.Stderr, "demo:", err)
		return 1
	}
	return status
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func printComparison(w io.Writer, base string) error {
	fmt.Fprintf(w, "envelope-proxy demo: a legacy backend with every example of the legacy spec, and the proxy at %s.\n", base)
	fmt.Fprintf(w, "Client %q is in legacy mode, client %q in envelope mode; %q is in shadow mode (legacy bytes, the envelope computed on the side).\n", demoLegacyKey, demoEnvelopeKey, demoShadowKey)
	client := &http.Client{Timeout: 10 * time.Second}
	for _, e := range demo.Examples {
		fmt.Fprintf(w, "\n== %s  (%s)\n", e.Path(), e.Note)
		for _, c := range []struct{ label, key string }{{"legacy  ", demoLegacyKey}, {"envelope", demoEnvelopeKey}, {"", demoShadowKey}} {
			req, err := http.NewRequest("GET", base+e.Path(), nil)
			if err != nil {
				return err
			}
			req.Header.Set("X-API-Key", c.key)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if c.label != "" {
				fmt.Fprintf(w, "   %s %d %s\n", c.label, resp.StatusCode, oneLine(body))
			}
		}
	}
	return nil
}

// oneLine compacts a JSON body for display; other bodies are shown as
// they are, shortened.
func oneLine(b []byte) string {
	var buf bytes.Buffer
	if json.Compact(&buf, b) == nil {
		b = buf.Bytes()
	} else {
		b = bytes.Join(bytes.Fields(b), []byte(" "))
	}
	if len(b) > 240 {
		return string(b[:240]) + "…"
	}
	return string(b)
}

func printCurls(w io.Writer, base string) {
	fmt.Fprintf(w, "\nTry it yourself:\n")
	fmt.Fprintf(w, "  curl -i -H 'X-API-Key: %s' %s/examples/insufficient_credits\n", demoLegacyKey, base)
	fmt.Fprintf(w, "  curl -i -H 'X-API-Key: %s' %s/examples/insufficient_credits\n", demoEnvelopeKey, base)
	fmt.Fprintf(w, "  curl -i -H 'X-API-Key: %s' -H 'X-Response-Format: envelope' %s/examples/pydantic_validation\n", demoLegacyKey, base)
	fmt.Fprintf(w, "  curl -i %s/examples/success_object   # no key: the default mode, legacy\n", base)
}
