package cli

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/envelope-proxy/envelope-proxy/transform"
)

// headerFlags collects repeated -header K:V flags.
type headerFlags http.Header

func (h headerFlags) String() string { return "" }

func (h headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("%q is not K:V", v)
	}
	http.Header(h).Add(strings.TrimSpace(k), strings.TrimSpace(val))
	return nil
}

// Transform rewrites one legacy response read from stdin with the config's
// rules and prints what an envelope client would get: status line, headers
// and body. It is the offline way to try a rule.
func Transform(args []string, env Env) int {
	fset := newFlagSet("transform", env)
	path := fset.String("config", "config.yaml", "config file whose rules to use")
	status := fset.Int("status", 0, "the legacy response's HTTP status (required)")
	header := headerFlags{"Content-Type": {"application/json"}}
	fset.Var(header, "header", "a legacy response header K:V (repeatable; Content-Type defaults to application/json)")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if *status < 100 || *status > 599 {
		fmt.Fprintln(env.Stderr, "transform: -status must be an HTTP status (100-599)")
		return 2
	}
	cfg, _, _, err := loadConfig(fset, *path, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	tr, err := transform.New(cfg.Rules)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	body, err := io.ReadAll(io.LimitReader(env.Stdin, cfg.MaxBodyBytes+1))
	if err != nil {
		fmt.Fprintln(env.Stderr, "reading body:", err)
		return 1
	}
	h := http.Header(header)
	if ct := h.Values("Content-Type"); len(ct) > 1 {
		h["Content-Type"] = ct[1:]
	}
	var (
		newStatus = *status
		out       = body
		o         transform.Result
	)
	if int64(len(body)) > cfg.MaxBodyBytes {
		o = transform.Result{Action: transform.Pass, Reason: transform.ReasonOversize, Status: *status}
	} else {
		newStatus, out, o = tr.Transform(nil, *status, h, body)
	}
	fmt.Fprintf(env.Stdout, "HTTP/1.1 %d %s\n", newStatus, http.StatusText(newStatus))
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range h {
			if !yield(k) {
				return
			}
		}
	}) {
		for _, v := range h[k] {
			fmt.Fprintf(env.Stdout, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(env.Stdout)
	env.Stdout.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		fmt.Fprintln(env.Stdout)
	}
	rule := o.Rule
	if o.Unmapped {
		rule = "(generic fallback: unmapped)"
	}
	fmt.Fprintf(env.Stderr, "action=%s reason=%s rule=%s code=%s\n", o.Action, o.Reason, rule, o.Code)
	return 0
}
