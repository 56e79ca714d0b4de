package cli

import (
	"errors"
	"fmt"

	"github.com/envelope-proxy/envelope-proxy/config"
)

// Validate checks a config file and lists every problem, one per line.
func Validate(args []string, env Env) int {
	fset := newFlagSet("validate", env)
	path := fset.String("config", "config.yaml", "config file to check")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err == nil {
		warnings, cerr := contractWarnings(cfg, *path)
		if cerr != nil {
			fmt.Fprintf(env.Stderr, "%s: 1 problem(s):\n  %v\n", *path, cerr)
			return 1
		}
		for _, w := range warnings {
			fmt.Fprintf(env.Stderr, "%s: warning: %s\n", *path, w)
		}
		fmt.Fprintf(env.Stdout, "%s: OK\n", *path)
		return 0
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		fmt.Fprintf(env.Stderr, "%s: %d problem(s):\n", *path, len(errs))
		for _, e := range errs {
			fmt.Fprintf(env.Stderr, "  %s\n", e)
		}
		return 1
	}
	fmt.Fprintln(env.Stderr, err)
	return 1
}
