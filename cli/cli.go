// Package cli implements envelope-proxy's commands: serve (the default),
// validate, transform, demo, ready and version. Each command takes its arguments
// and output streams and returns an exit code, so that tests run them
// in-process.
package cli

import (
	"flag"
	"fmt"
	"io"
	"os"
)

// Env is what a command runs with: the embedded default config and the
// process's streams.
type Env struct {
	// DefaultConfig is the YAML used when no config file is given.
	DefaultConfig []byte
	Stdin         io.Reader
	Stdout        io.Writer
	Stderr        io.Writer
	// Signals, when set, replaces the process's SIGINT, SIGTERM and SIGHUP,
	// so that tests can drive shutdown and reload.
	Signals <-chan os.Signal
	// Ready, when set, is called with the listeners' addresses once the
	// proxy serves.
	Ready func(client, admin string)
	// Getenv, when set, replaces os.Getenv for the commands' environment
	// variables.
	Getenv func(string) string
}

// Run dispatches args (without the program name) to a command.
func Run(args []string, env Env) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return Serve(args, env)
	case "validate":
		return Validate(args, env)
	case "transform":
		return Transform(args, env)
	case "demo":
		return Demo(args, env)
	case "ready":
		return Ready(args, env)
	case "contract":
		return Contract(args, env)
	case "suggest":
		return Suggest(args, env)
	case "version":
		fmt.Fprintln(env.Stdout, "envelope-proxy", Version())
		return 0
	case "help", "-h", "--help":
		usage(env.Stdout)
		return 0
	}
	fmt.Fprintf(env.Stderr, "envelope-proxy: unknown command %q\n", cmd)
	usage(env.Stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  envelope-proxy [serve] [-config config.yaml]   run the proxy
  envelope-proxy validate -config FILE           check a config, list every problem
  envelope-proxy transform [-config FILE] -status N [-header K:V ...] < body
                                                  rewrite one response offline
  envelope-proxy demo [-listen ADDR] [-exit]      legacy demo backend + proxy, side by side
  envelope-proxy ready -admin URL -client NAME    a client's readiness verdict: exit 0 ready,
                                                  1 not ready, 2 insufficient evidence, 3 no verdict
  envelope-proxy suggest -admin URL [-client NAME]
                                                  rules and shadow.ignore entries to paste, from the evidence
  envelope-proxy contract [-config FILE] [-openapi FILE]
                                                  hold the rules' examples to the new API's contract:
                                                  violations (exit 1), then extensions
  envelope-proxy version
`)
}

// newFlagSet returns a command's flag set. A bad flag is reported on
// env.Stderr with the usage and returned as an error instead of exiting the
// process, so that each command chooses its exit code and the tests run
// the commands in-process.
func newFlagSet(name string, env Env) *flag.FlagSet {
	fset := flag.NewFlagSet(name, flag.ContinueOnError)
	fset.SetOutput(env.Stderr)
	return fset
}

// DefaultEnv returns the Env of the running process.
func DefaultEnv(defaultConfig []byte) Env {
	return Env{DefaultConfig: defaultConfig, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}
