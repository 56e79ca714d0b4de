package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/envelope-proxy/envelope-proxy/config"
	"github.com/envelope-proxy/envelope-proxy/contract"
)

// Contract holds every envelope the rules make of their examples, and the
// proxy's own, to the new API's contract, and lists the violations, then
// apart from them the extensions: the list a platform team takes to the new
// API's owners. It exits 1 when there is a violation.
func Contract(args []string, env Env) int {
	fset := newFlagSet("contract", env)
	path := fset.String("config", "config.yaml", "config file whose rules and contract.openapi to use")
	openapi := fset.String("openapi", "", "OpenAPI 3.0/3.1 document to hold the envelopes to, instead of the config's contract.openapi")
	if err := fset.Parse(args); err != nil {
		return 2
	}
	cfg, source, _, err := loadConfig(fset, *path, env)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	var doc *contract.Document
	if *openapi != "" {
		doc, err = contract.Load(*openapi)
	} else {
		doc, err = contractDocument(cfg, source)
	}
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	a, err := doc.Audit(context.Background(), cfg.Rules)
	if err != nil {
		fmt.Fprintln(env.Stderr, err)
		return 1
	}
	writeAudit(env.Stdout, doc.Name(), &a)
	if len(a.Violations) > 0 {
		return 1
	}
	return 0
}

// writeAudit prints an audit: violations, extensions, notes, and a count.
func writeAudit(w io.Writer, name string, a *contract.Audit) {
	fmt.Fprintf(w, "contract: %s\n", name)
	if len(a.Violations) > 0 {
		fmt.Fprintf(w, "\nviolations: envelopes the contract does not allow (%d)\n", len(a.Violations))
		for _, e := range a.Violations {
			fmt.Fprintf(w, "  %s: %s: %s: %s\n", e.Source, statusCode(e), e.Finding.Reason, e.Finding.Detail)
		}
	}
	if len(a.Extensions) > 0 {
		fmt.Fprintf(w, "\nextensions: allowed by the contract only as extensions of the new API's documentation (%d)\n", len(a.Extensions))
		for _, e := range a.Extensions {
			fmt.Fprintf(w, "  %s (%s): %s\n", statusCode(e), e.Source, e.Finding.Extension)
		}
	}
	if len(a.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes: examples their own rule does not rewrite (%d)\n", len(a.Notes))
		for _, e := range a.Notes {
			fmt.Fprintf(w, "  %s: %s\n", e.Source, e.Note)
		}
	}
	fmt.Fprintf(w, "\n%d envelopes checked: %d violations, %d extensions\n", a.Checked, len(a.Violations), len(a.Extensions))
}

// statusCode is "402 trial_expired", or the status alone for a success.
func statusCode(e contract.AuditEntry) string {
	if e.Code == "" {
		return fmt.Sprint(e.Status)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Code)
}

// contractWarnings holds cfg's rules to its contract for validate: the
// document must load (a problem, like any other of the config), and the
// envelopes it does not allow are warnings.
func contractWarnings(cfg *config.Config, source string) (warnings []string, err error) {
	doc, err := contractDocument(cfg, source)
	if err != nil {
		return nil, err
	}
	a, err := doc.Audit(context.Background(), cfg.Rules)
	if err != nil {
		return nil, err
	}
	for _, e := range a.Violations {
		warnings = append(warnings, fmt.Sprintf("%s: %s is not allowed by %s: %s: %s (see envelope-proxy contract)", e.Source, statusCode(e), doc.Name(), e.Finding.Reason, e.Finding.Detail))
	}
	return warnings, nil
}
