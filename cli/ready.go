package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/envelope-proxy/envelope-proxy/evidence"
	"github.com/envelope-proxy/envelope-proxy/verdict"
)

// The ready command's exit codes, for rollout pipelines to gate on.
const (
	readyExitReady        = 0
	readyExitNotReady     = 1
	readyExitInsufficient = 2
	// readyExitNoVerdict covers everything that yields no verdict: an
	// unreachable or refusing admin listener, an unknown client, a bad
	// flag.
	readyExitNoVerdict = 3
)

// TokenEnv names the environment variable the ready and suggest commands
// read the admin token from, so that it stays out of process listings.
const TokenEnv = "ENVELOPE_PROXY_ADMIN_TOKEN"

// Ready prints one client's readiness verdict with its reasons, read from
// a running proxy's admin API, and exits 0 when ready, 1 when not ready,
// 2 on insufficient evidence and 3 when there is no verdict to be had.
func Ready(args []string, env Env) int {
	fset := newFlagSet("ready", env)
	admin, timeout := adminFlags(fset)
	client := fset.String("client", "", "the client's config name (or a cohort's, or default)")
	asJSON := fset.Bool("json", false, "print the client's summary as JSON instead of text")
	if err := fset.Parse(args); err != nil {
		return readyExitNoVerdict
	}
	if *client == "" || fset.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "ready: -client NAME is required (and nothing else)")
		return readyExitNoVerdict
	}
	sum, err := fetchVerdict(*admin, *client, adminToken(env), *timeout)
	if err != nil {
		fmt.Fprintf(env.Stderr, "ready: %s: no verdict: %v\n", *client, err)
		return readyExitNoVerdict
	}
	if *asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(sum)
	} else {
		fmt.Fprintf(env.Stdout, "%s (%s, %s): %s\n", sum.Name, sum.Kind, sum.Mode, sum.Verdict.State)
		for _, r := range sum.Verdict.Reasons {
			fmt.Fprintf(env.Stdout, "  - %s\n", r)
		}
	}
	switch sum.Verdict.State {
	case verdict.Ready:
		return readyExitReady
	case verdict.NotReady:
		return readyExitNotReady
	case verdict.InsufficientEvidence:
		return readyExitInsufficient
	}
	fmt.Fprintf(env.Stderr, "ready: %s: unknown verdict %q\n", *client, sum.Verdict.State)
	return readyExitNoVerdict
}

// fetchVerdict reads GET /api/clients/{name}.
func fetchVerdict(admin, client, token string, timeout time.Duration) (*evidence.ClientSummary, error) {
	body, err := adminGet(admin, "/api/clients/"+url.PathEscape(client), token, timeout)
	if errors.Is(err, errNotFound) {
		return nil, errors.New("no such client (not in config, no evidence in the window)")
	}
	if err != nil {
		return nil, err
	}
	var d evidence.ClientSummary
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("decoding the admin API's answer: %w", err)
	}
	return &d, nil
}

// errNotFound is an admin API's 404.
var errNotFound = errors.New("not found")

// adminGet reads path (with its query) from the admin API at admin,
// sending token as a bearer token when it is set.
func adminGet(admin, path, token string, timeout time.Duration) ([]byte, error) {
	base, err := url.Parse(strings.TrimRight(admin, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("-admin %q is not an http(s) URL", admin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.String()+path, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API unreachable: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return body, nil
	case http.StatusNotFound:
		return nil, errNotFound
	case http.StatusUnauthorized:
		return nil, fmt.Errorf("the admin listener wants its token (set %s)", TokenEnv)
	}
	return nil, fmt.Errorf("admin API answered %s", resp.Status)
}

// adminFlags are the flags of a command that reads the admin API: its URL
// and how long to wait for it.
func adminFlags(fset *flag.FlagSet) (admin *string, timeout *time.Duration) {
	return fset.String("admin", "http://127.0.0.1:9901", "the proxy's admin URL"),
		fset.Duration("timeout", 10*time.Second, "how long to wait for the admin API")
}

// adminToken is the admin token from the environment.
func adminToken(env Env) string {
	if env.Getenv != nil {
		return env.Getenv(TokenEnv)
	}
	return os.Getenv(TokenEnv)
}
