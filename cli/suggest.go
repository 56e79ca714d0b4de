package cli

import (
	"fmt"
	"net/url"
)

// Suggest prints what a running proxy suggests adding to its config, read
// from its admin API: a rules: block for the unmapped errors and for the
// errors the candidate consistently answers otherwise, and a
// shadow.ignore block for the candidate's learned noise, each entry under
// a comment that says why. `envelope-proxy validate` accepts the output
// as it is; paste it into the config and the proxy reloads it.
func Suggest(args []string, env Env) int {
	fset := newFlagSet("suggest", env)
	admin, timeout := adminFlags(fset)
	client := fset.String("client", "", "only this client's evidence (a config name); empty: every client's")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	if fset.NArg() > 0 {
		fmt.Fprintln(env.Stderr, "suggest: unexpected arguments:", fset.Args())
		return 2
	}
	q := url.Values{"format": {"yaml"}}
	if *client != "" {
		q.Set("client", *client)
	}
	body, err := adminGet(*admin, "/api/suggestions?"+q.Encode(), adminToken(env), *timeout)
	if err != nil {
		fmt.Fprintln(env.Stderr, "suggest:", err)
		return 1
	}
	env.Stdout.Write(body)
	return 0
}
