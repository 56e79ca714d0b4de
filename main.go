// Command envelope-proxy is a reverse proxy that rewrites a legacy API's
// responses into the JSON envelope, per client. See README.md.
package main

import (
	_ "embed"
	"os"

	"github.com/envelope-proxy/envelope-proxy/cli"
)

// defaultConfig is config.yaml, the documented defaults, built into the
// binary so that it runs with no file.
//
//go:embed config.yaml
var defaultConfig []byte

func main() { os.Exit(run()) }

func run() int {
	return cli.Run(os.Args[1:], cli.DefaultEnv(defaultConfig))
}
