package deploy_test

// The monitoring files: the Prometheus rules (prometheus/), their
// PrometheusRule twin and the Grafana dashboard (grafana/). promtool checks
// the PromQL and runs the rules' unit tests (TestPromtool); the other tests
// hold the files against the binary: the metrics and labels it exports and
// the readiness defaults the rules mirror.

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envelope-proxy/envelope-proxy/config"
	"go.yaml.in/yaml/v3"
)

// The monitoring files, relative to deploy/.
const (
	rulesFile        = "prometheus/rules.yml"
	rulesTestFile    = "prometheus/rules_test.yml"
	operatorRuleFile = "prometheus/prometheusrule.yaml"
	dashboardFile    = "grafana/envelope-proxy.json"
)

var (
	// optsRE finds a collector's options in the Go sources: its kind, its
	// name and, for a vector, its label names. gofmt puts the closing
	// brace of the options on a line of its own.
	optsRE = regexp.MustCompile(`(?s)prometheus\.(Counter|Gauge|Histogram|Summary)Opts\{\s*Name:\s*"(envelope_proxy_\w+)".*?\n\t*\}(?:\)|, \[\]string\{([^}]*)\})`)
	// quotedRE finds the strings of a label list.
	quotedRE = regexp.MustCompile(`"(\w+)"`)
	// metricRE finds the tokens of an expression shaped like metric names;
	// those of the binary start with envelope_proxy_, those of the
	// recording rules with client:envelope_proxy_.
	metricRE = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// exportedMetrics returns the series the binary exports, with their label
// names, read from the module's Go sources: a histogram exports _bucket
// (with le), _sum and _count, a summary itself (with quantile), _sum and
// _count.
func exportedMetrics(t *testing.T) map[string][]string {
	t.Helper()
	metrics := map[string][]string{}
	err := filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return err
		case d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata"):
			return filepath.SkipDir
		case d.IsDir() || filepath.Ext(p) != ".go" || strings.HasSuffix(p, "_test.go"):
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range optsRE.FindAllStringSubmatch(string(b), -1) {
			kind, name := m[1], m[2]
			var labels []string
			for _, l := range quotedRE.FindAllStringSubmatch(m[3], -1) {
				labels = append(labels, l[1])
			}
			switch kind {
			case "Histogram":
				metrics[name+"_bucket"] = append(slices.Clone(labels), "le")
				metrics[name+"_sum"], metrics[name+"_count"] = labels, labels
			case "Summary":
				metrics[name] = append(slices.Clone(labels), "quantile")
				metrics[name+"_sum"], metrics[name+"_count"] = labels, labels
			default:
				metrics[name] = labels
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(metrics) == 0 {
		t.Fatal("found no envelope_proxy_ metric in the Go sources")
	}
	return metrics
}

// promRules is a Prometheus rule file.
type promRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// rulesTest is a promtool unit test file.
type rulesTest struct {
	Tests []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// grafanaDashboard is the part of the dashboard that the checks read.
type grafanaDashboard struct {
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaPanel is one panel; a collapsed row holds more.
type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Datasource *grafanaDatasource `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Datasource *grafanaDatasource `json:"datasource"`
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaDatasource is a panel's or a query's data source.
type grafanaDatasource struct {
	UID string `json:"uid"`
}

// readYAML decodes a YAML file into out.
func readYAML(t *testing.T, file string, out any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

// readDashboard decodes the dashboard and returns its panels, those inside
// rows included.
func readDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel) {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var panels []grafanaPanel
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			panels = append(panels, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return d, panels
}

// TestMetricNames checks that every metric the rules, their unit tests and
// the dashboard name is one the binary exports or the rules record, and
// that each unit test's input series carries the labels the binary gives
// it, plus the job and instance of the scrape: promtool's unit tests prove
// the rules right only on series shaped like the real ones.
func TestMetricNames(t *testing.T) {
	exported := exportedMetrics(t)
	var rules promRules
	readYAML(t, rulesFile, &rules)
	var tests rulesTest
	readYAML(t, rulesTestFile, &tests)
	dashboard, panels := readDashboard(t)

	recorded := map[string]bool{}
	exprs := map[string][]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
			exprs[rulesFile] = append(exprs[rulesFile], r.Expr)
		}
	}
	var series []string
	for _, tc := range tests.Tests {
		for _, s := range tc.InputSeries {
			series = append(series, s.Series)
		}
		for _, e := range tc.PromQLExprTest {
			exprs[rulesTestFile] = append(exprs[rulesTestFile], e.Expr)
		}
	}
	exprs[rulesTestFile] = append(exprs[rulesTestFile], series...)
	for _, p := range panels {
		for _, q := range p.Targets {
			exprs[dashboardFile] = append(exprs[dashboardFile], q.Expr)
		}
	}
	for _, v := range dashboard.Templating.List {
		exprs[dashboardFile] = append(exprs[dashboardFile], v.Definition)
	}

	for _, file := range []string{rulesFile, rulesTestFile, dashboardFile} {
		t.Run(file, func(t *testing.T) {
			named := 0
			for _, e := range exprs[file] {
				for _, tok := range metricRE.FindAllString(e, -1) {
					_, isExported := exported[tok]
					switch {
					case strings.HasPrefix(tok, "envelope_proxy_") && !isExported:
						t.Errorf("got metric %q; want one the binary exports", tok)
					case strings.HasPrefix(tok, "client:") && !recorded[tok]:
						t.Errorf("got metric %q; want one %s records", tok, rulesFile)
					case isExported || recorded[tok]:
						named++
					}
				}
			}
			if named == 0 {
				t.Errorf("names no metric")
			}
		})
	}

	// The label names of the input series, by metric.
	seriesRE := regexp.MustCompile(`^\s*(envelope_proxy_\w+)\s*\{(.*)\}\s*$`)
	labelRE := regexp.MustCompile(`(\w+)\s*=\s*"`)
	labelSets := map[string]map[string]bool{}
	for _, s := range series {
		m := seriesRE.FindStringSubmatch(s)
		if m == nil {
			continue // a recorded series
		}
		if _, ok := exported[m[1]]; !ok {
			continue // reported above
		}
		var labels []string
		for _, l := range labelRE.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		if labelSets[m[1]] == nil {
			labelSets[m[1]] = map[string]bool{}
		}
		labelSets[m[1]][strings.Join(labels, ",")] = true
	}
	for _, metric := range slices.Sorted(maps.Keys(labelSets)) {
		t.Run(rulesTestFile+" labels of "+metric, func(t *testing.T) {
			want := append(slices.Clone(exported[metric]), "job", "instance")
			slices.Sort(want)
			for got := range labelSets[metric] {
				if got != strings.Join(want, ",") {
					t.Errorf("got %q; want %q", got, strings.Join(want, ","))
				}
			}
		})
	}
}

// TestRulesThresholds holds the numbers written in the rules against the
// config's readiness defaults, which the rules mirror: a changed default
// must change the rules too.
func TestRulesThresholds(t *testing.T) {
	rd := config.Default().Readiness
	var rules promRules
	readYAML(t, rulesFile, &rules)
	exprs := map[string]string{}
	var readiness []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs[r.Record+r.Alert] = r.Expr
			if g.Name == "envelope_proxy_readiness" {
				readiness = append(readiness, r.Expr)
			}
		}
	}
	const verdict = "client:envelope_proxy_readiness:verdict24h"
	for _, c := range []struct {
		rule, before string // the threshold follows before in rule's expr
		want         float64
		n            int // thresholds expected
	}{
		{verdict, "client:envelope_proxy_unmapped:increase24h >", float64(rd.MaxUnmapped), 2},
		{verdict, "client:envelope_proxy_shadow_mismatch:ratio24h >", rd.MaxMismatchRatio, 1},
		{verdict, "client:envelope_proxy_shadow_candidate_errors:ratio24h >", rd.MaxCandidateErrorsRatio, 1},
		{verdict, "client:envelope_proxy_upstream_errors:ratio24h >", rd.MaxUpstreamErrorsRatio, 1},
		{verdict, "client:envelope_proxy_shadow_compared:increase24h >=", float64(rd.MinRequests), 1},
		{verdict, "client:envelope_proxy_requests:increase24h >=", float64(rd.MinRequests), 1},
		{"EnvelopeProxyShadowMismatchRising", ") >", rd.MaxMismatchRatio, 1},
		{"EnvelopeProxyFlippedClientUpstreamErrors", ") >", rd.MaxUpstreamErrorsRatio, 1},
	} {
		t.Run(c.rule+" "+c.before, func(t *testing.T) {
			re := regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(c.before), " ", `\s*`) + `\s*(-?[0-9][0-9.e+-]*)`)
			ms := re.FindAllStringSubmatch(exprs[c.rule], -1)
			if len(ms) != c.n {
				t.Fatalf("got %d thresholds; want %d", len(ms), c.n)
			}
			for _, m := range ms {
				if got, err := strconv.ParseFloat(m[1], 64); err != nil || got != c.want {
					t.Errorf("got threshold %q; want %v, the config default", m[1], c.want)
				}
			}
		})
	}
	// Every range of the readiness group is the readiness window.
	for _, m := range regexp.MustCompile(`\[([^\]]+)\]`).FindAllStringSubmatch(strings.Join(readiness, "\n"), -1) {
		if d, err := time.ParseDuration(m[1]); err != nil || d != rd.Window {
			t.Errorf("got range [%s]; want the readiness window, %v", m[1], rd.Window)
		}
	}
}

// TestRulesTested requires rules_test.yml to exercise every rule of
// rules.yml, each alert both firing and not, so that promtool's unit tests
// cover what the rules promise.
func TestRulesTested(t *testing.T) {
	var rules promRules
	readYAML(t, rulesFile, &rules)
	var tests rulesTest
	readYAML(t, rulesTestFile, &tests)
	read, fires, silent := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, e := range tc.PromQLExprTest {
			for _, tok := range metricRE.FindAllString(e.Expr, -1) {
				read[tok] = true
			}
		}
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			t.Run(r.Record+r.Alert, func(t *testing.T) {
				switch {
				case r.Record != "" && !read[r.Record]:
					t.Errorf("no promql_expr_test reads %s", r.Record)
				case r.Alert != "" && !fires[r.Alert]:
					t.Errorf("no alert_rule_test expects %s to fire", r.Alert)
				case r.Alert != "" && !silent[r.Alert]:
					t.Errorf("no alert_rule_test expects %s not to fire", r.Alert)
				}
			})
		}
	}
}

// TestPrometheusRule checks that the PrometheusRule holds exactly the
// groups of rules.yml, of which it is a copy for the Prometheus Operator.
func TestPrometheusRule(t *testing.T) {
	var rules struct {
		Groups any `yaml:"groups"`
	}
	readYAML(t, rulesFile, &rules)
	var operator struct {
		Kind string `yaml:"kind"`
		Spec struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}
	readYAML(t, operatorRuleFile, &operator)
	if operator.Kind != "PrometheusRule" {
		t.Fatalf("got kind %q; want %q", operator.Kind, "PrometheusRule")
	}
	if rules.Groups == nil || !reflect.DeepEqual(operator.Spec.Groups, rules.Groups) {
		t.Errorf("%s: spec.groups differ from the groups of %s; regenerate it (the command is at its top)", operatorRuleFile, rulesFile)
	}
}

// TestGrafanaDashboard checks what Grafana itself would not report: every
// query goes to the datasource variable, so that the dashboard works on
// any Prometheus, and the panels have unique ids and do not overlap.
func TestGrafanaDashboard(t *testing.T) {
	_, panels := readDashboard(t)
	ids := map[int]bool{}
	for i, p := range panels {
		t.Run(fmt.Sprintf("panel %d", p.ID), func(t *testing.T) {
			if p.ID <= 0 || ids[p.ID] {
				t.Errorf("got id %d; want a positive id of its own", p.ID)
			}
			ids[p.ID] = true
			if p.Type == "row" {
				return
			}
			if p.Datasource == nil {
				t.Errorf("got no datasource; want uid %q", "${datasource}")
			} else if p.Datasource.UID != "${datasource}" {
				t.Errorf("got datasource uid %q; want %q", p.Datasource.UID, "${datasource}")
			}
			for _, q := range p.Targets {
				if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
					t.Errorf("query %s: got datasource uid %q; want %q", q.RefID, q.Datasource.UID, "${datasource}")
				}
			}
			g := p.GridPos
			for _, o := range panels[:i] {
				h := o.GridPos
				if o.Type != "row" && g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("got gridPos %+v, overlapping panel %d's %+v; want no overlap", g, o.ID, h)
				}
			}
		})
	}
}

// grafanaVarRE matches a Grafana variable in a query.
var grafanaVarRE = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// TestPromtool lets promtool check the rules (rules.yml and the
// PrometheusRule's copy), run their unit tests and parse the dashboard's
// queries (as recording rules, with the Grafana variables replaced).
// promtool comes with the Debian package prometheus; CI must have it,
// elsewhere the test skips without it.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("promtool is not on PATH; CI must install it (apt-get install -y prometheus): %v", err)
		}
		t.Skip("promtool is not on PATH; install it (apt-get install prometheus) to check and unit-test the rules")
	}
	promtoolRun := func(t *testing.T, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput(); err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// checkGroups writes groups as a rule file and checks it.
	checkGroups := func(t *testing.T, groups any) {
		t.Helper()
		b, err := yaml.Marshal(map[string]any{"groups": groups})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "rules.yml")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		promtoolRun(t, "check", "rules", file)
	}

	t.Run("check rules", func(t *testing.T) { promtoolRun(t, "check", "rules", rulesFile) })
	t.Run("test rules", func(t *testing.T) { promtoolRun(t, "test", "rules", rulesTestFile) })
	t.Run("check PrometheusRule", func(t *testing.T) {
		var operator struct {
			Spec struct {
				Groups any `yaml:"groups"`
			} `yaml:"spec"`
		}
		readYAML(t, operatorRuleFile, &operator)
		checkGroups(t, operator.Spec.Groups)
	})
	t.Run("dashboard queries", func(t *testing.T) {
		_, panels := readDashboard(t)
		subst := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "24h", "client": ".*"}
		var rules []map[string]string
		for _, p := range panels {
			for _, q := range p.Targets {
				expr := grafanaVarRE.ReplaceAllStringFunc(q.Expr, func(v string) string {
					name := grafanaVarRE.FindStringSubmatch(v)[1]
					if s, ok := subst[name]; ok {
						return s
					}
					t.Errorf("panel %d query %s: got variable %s; want one of the dashboard's", p.ID, q.RefID, v)
					return v
				})
				rules = append(rules, map[string]string{"record": fmt.Sprintf("grafana_panel_%d_%s", p.ID, strings.ToLower(q.RefID)), "expr": expr})
			}
		}
		checkGroups(t, []any{map[string]any{"name": "grafana", "rules": rules}})
	})
}
