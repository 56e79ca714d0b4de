package deploy_test

// The monitoring files: the Prometheus rules (prometheus/), their
// PrometheusRule twin and the Grafana dashboard (grafana/). The checks here
// need nothing but Go: every PromQL expression is scanned for the metrics,
// labels and functions it names, and the thresholds are held against the
// config's defaults. TestPromtool runs promtool's own checks and unit tests
// when promtool is installed (CI installs it: the Debian package
// prometheus).

import (
	"context"
	"encoding/json"
	"fmt"
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
	readinessGroup   = "envelope_proxy_readiness"
	alertsGroup      = "envelope_proxy_alerts"
)

// exportedMetrics are the series a replica exports on /metrics, with their
// labels (a histogram's _bucket, _sum and _count each).
var exportedMetrics = map[string][]string{
	"envelope_proxy_requests_total":                   {"client", "mode", "code_class"},
	"envelope_proxy_unmapped_total":                   {"client", "legacy_status"},
	"envelope_proxy_upstream_errors_total":            {"client", "kind"},
	"envelope_proxy_shadow_total":                     {"client", "outcome"},
	"envelope_proxy_shadow_unmapped_total":            {"client"},
	"envelope_proxy_client_mode":                      {"client", "mode"},
	"envelope_proxy_rewrites_total":                   {"legacy_status", "legacy_code", "status", "code"},
	"envelope_proxy_passthrough_total":                {"reason"},
	"envelope_proxy_request_duration_seconds_bucket":  {"mode", "le"},
	"envelope_proxy_request_duration_seconds_sum":     {"mode"},
	"envelope_proxy_request_duration_seconds_count":   {"mode"},
	"envelope_proxy_upstream_duration_seconds_bucket": {"le"},
	"envelope_proxy_upstream_duration_seconds_sum":    {},
	"envelope_proxy_upstream_duration_seconds_count":  {},
	"envelope_proxy_config_reloads_total":             {"result"},
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

// closedLabelValues are the values of the labels that take a fixed set.
var closedLabelValues = map[string][]string{
	"mode":       {"legacy", "envelope", "shadow"},
	"code_class": {"1xx", "2xx", "3xx", "4xx", "5xx", "none"},
	"kind":       {"refused", "timeout", "reset", "other"},
	"outcome": {"match", "mismatch", "ignored", "candidate_error", "candidate_timeout",
		"dropped", "skipped_too_large", "skipped_method", "dry_run", "upstream_error"},
}

// promFuncs are the PromQL functions and aggregations an expression may
// call; an unknown name is most likely a typo.
var promFuncs = []string{
	"sum", "min", "max", "avg", "count", "group", "topk", "bottomk", "quantile", "count_values", "stddev", "stdvar",
	"rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets", "predict_linear",
	"histogram_quantile", "scalar", "vector", "time", "timestamp", "absent", "absent_over_time",
	"clamp", "clamp_min", "clamp_max", "abs", "round", "ceil", "floor", "sort", "sort_desc",
	"label_replace", "label_join", "sum_over_time", "avg_over_time", "min_over_time", "max_over_time",
	"count_over_time", "last_over_time", "quantile_over_time",
}

// The words of PromQL that are neither metrics nor functions.
var (
	promAggregators = []string{"sum", "min", "max", "avg", "count", "group", "topk", "bottomk", "quantile", "count_values", "stddev", "stdvar"}
	promGroupings   = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
	promKeywords    = []string{"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
)

// promSelector is one series selector of an expression.
type promSelector struct {
	metric   string
	matchers []promMatcher
}

// promMatcher is one label matcher of a selector.
type promMatcher struct {
	label, op, value string
}

// promRefs is what an expression names.
type promRefs struct {
	selectors []promSelector
	// groupings are the label lists of by, without, on, ignoring,
	// group_left and group_right.
	groupings [][]string
	funcs     []string
}

var (
	matcherRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)`)
	plainAlts = regexp.MustCompile(`^[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*$`)
)

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || isDigit(c) }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// skipString returns the index just past the string literal at s[i].
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string at offset %d", i)
}

// closing returns the index of the byte that closes the bracket at s[i],
// skipping string literals.
func closing(s string, i int, close byte) (int, error) {
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '"' || s[j] == '\'' || s[j] == '`':
			k, err := skipString(s, j)
			if err != nil {
				return 0, err
			}
			j = k - 1
		case s[j] == close:
			return j, nil
		}
	}
	return 0, fmt.Errorf("unclosed %q at offset %d", s[i], i)
}

// parseMatchers parses the inside of a selector's braces.
func parseMatchers(s string) ([]promMatcher, error) {
	var ms []promMatcher
	for strings.TrimSpace(s) != "" {
		m := matcherRE.FindStringSubmatch(s)
		if m == nil {
			return nil, fmt.Errorf("bad label matchers %q", s)
		}
		ms = append(ms, promMatcher{label: m[1], op: m[2], value: m[3]})
		s = s[len(m[0]):]
	}
	return ms, nil
}

// scanPromQL scans a PromQL expression (with Grafana's $variables) for the
// metrics, labels and functions it names. It is no parser: it knows
// enough of the syntax to tell a metric from a function, a keyword or a
// label, and to find unbalanced brackets and unknown words.
func scanPromQL(expr string) (promRefs, error) {
	var r promRefs
	s := expr
	depth := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			if j := strings.IndexByte(s[i:], '\n'); j >= 0 {
				i += j
			} else {
				i = len(s)
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(s, i)
			if err != nil {
				return r, err
			}
			i = j
		case c == '[':
			j, err := closing(s, i, ']')
			if err != nil {
				return r, err
			}
			i = j + 1
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return r, fmt.Errorf("unbalanced ) at offset %d", i)
			}
			i++
		case c == '{' || c == '}' || c == ']':
			return r, fmt.Errorf("%q at offset %d outside a selector (a selector must name its metric)", c, i)
		case c == '$':
			i++
			for i < len(s) && (isIdentByte(s[i]) || s[i] == '{' || s[i] == '}') {
				i++
			}
		case isDigit(c) || c == '.' && i+1 < len(s) && isDigit(s[i+1]):
			for i < len(s) && (isDigit(s[i]) || s[i] == '.') {
				i++
			}
			if i+1 < len(s) && (s[i] == 'e' || s[i] == 'E') && (isDigit(s[i+1]) || s[i+1] == '-' || s[i+1] == '+') {
				i += 2
				for i < len(s) && isDigit(s[i]) {
					i++
				}
			}
			for i < len(s) && isIdentStart(s[i]) && s[i] != ':' { // a duration's unit
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentByte(s[j]) {
				j++
			}
			word := s[i:j]
			i = j
			k := i
			for k < len(s) && strings.ContainsRune(" \t\r\n", rune(s[k])) {
				k++
			}
			lower := strings.ToLower(word)
			switch {
			case slices.Contains(promGroupings, lower):
				if k < len(s) && s[k] == '(' {
					end, err := closing(s, k, ')')
					if err != nil {
						return r, err
					}
					var list []string
					for l := range strings.SplitSeq(s[k+1:end], ",") {
						if l = strings.TrimSpace(l); l != "" {
							list = append(list, l)
						}
					}
					r.groupings = append(r.groupings, list)
					i = end + 1
				}
			case slices.Contains(promKeywords, lower):
			case slices.Contains(promAggregators, word) || k < len(s) && s[k] == '(':
				r.funcs = append(r.funcs, word)
			default:
				sel := promSelector{metric: word}
				if k < len(s) && s[k] == '{' {
					end, err := closing(s, k, '}')
					if err != nil {
						return r, err
					}
					if sel.matchers, err = parseMatchers(s[k+1 : end]); err != nil {
						return r, err
					}
					i = end + 1
				}
				r.selectors = append(r.selectors, sel)
			}
		default:
			i++
		}
	}
	if depth != 0 {
		return r, fmt.Errorf("%d unclosed (", depth)
	}
	return r, nil
}

// checkRefs reports, as errors, what in refs is unknown: a function, a
// metric (known are the exported ones and the recorded ones, each with
// its labels), a label or a label value outside its closed set.
func checkRefs(refs promRefs, recorded map[string][]string) []string {
	var errs []string
	allLabels := slices.Clone(targetLabels)
	for _, ls := range exportedMetrics {
		allLabels = append(allLabels, ls...)
	}
	for _, f := range refs.funcs {
		if !slices.Contains(promFuncs, f) {
			errs = append(errs, fmt.Sprintf("unknown function %s", f))
		}
	}
	for _, g := range refs.groupings {
		for _, l := range g {
			if !slices.Contains(allLabels, l) {
				errs = append(errs, fmt.Sprintf("grouping by unknown label %s", l))
			}
		}
	}
	for _, sel := range refs.selectors {
		metricLabels, ok := exportedMetrics[sel.metric]
		if ok {
			metricLabels = append(slices.Clone(metricLabels), targetLabels...)
		} else if metricLabels, ok = recorded[sel.metric]; !ok {
			errs = append(errs, fmt.Sprintf("unknown metric %s", sel.metric))
			continue
		}
		for _, m := range sel.matchers {
			if !slices.Contains(metricLabels, m.label) {
				errs = append(errs, fmt.Sprintf("%s has no label %s", sel.metric, m.label))
				continue
			}
			closed, ok := closedLabelValues[m.label]
			if !ok || strings.Contains(m.value, "$") {
				continue
			}
			var values []string
			switch {
			case m.op == "=" || m.op == "!=":
				values = []string{m.value}
			case plainAlts.MatchString(m.value):
				values = strings.Split(m.value, "|")
			}
			for _, v := range values {
				if !slices.Contains(closed, v) {
					errs = append(errs, fmt.Sprintf("%s{%s%s%q}: %s is no %s", sel.metric, m.label, m.op, m.value, v, m.label))
				}
			}
		}
	}
	return errs
}

// promRules is a Prometheus rule file.
type promRules struct {
	Groups []promRuleGroup `yaml:"groups"`
}

// promRuleGroup is one group of a rule file.
type promRuleGroup struct {
	Name     string     `yaml:"name"`
	Interval string     `yaml:"interval"`
	Rules    []promRule `yaml:"rules"`
}

// promRule is a recording rule (Record set) or an alert (Alert set).
type promRule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// name is the recorded metric or the alert's name.
func (r promRule) name() string { return r.Record + r.Alert }

// readRules decodes rules.yml, strictly.
func readRules(t *testing.T) promRules {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f promRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return f
}

// group returns the group called name, failing if there is none.
func (f promRules) group(t *testing.T, name string) promRuleGroup {
	t.Helper()
	for _, g := range f.Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("%s: no group %s", rulesFile, name)
	return promRuleGroup{}
}

// recordedMetrics returns every metric recorded in f, with its labels: the
// recording rules aggregate by client alone.
func (f promRules) recordedMetrics() map[string][]string {
	m := map[string][]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				m[r.Record] = []string{"client"}
			}
		}
	}
	return m
}

// TestRules checks rules.yml without promtool: its groups and names, that
// every expression names only exported or earlier recorded metrics, with
// their real labels, aggregated by client alone, and the alerts' labels
// and annotations.
func TestRules(t *testing.T) {
	f := readRules(t)
	var names []string
	for _, g := range f.Groups {
		names = append(names, g.Name)
	}
	run(t, []check{eq("groups", strings.Join(names, " "), readinessGroup+" "+alertsGroup)})

	recordRE := regexp.MustCompile(`^client:envelope_proxy_[a-z0-9_]+:(increase|ratio|verdict)24h$`)
	recorded := map[string][]string{} // the recording rules so far
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if _, err := time.ParseDuration(g.Interval); err != nil {
			t.Errorf("group %s: interval %q: %v", g.Name, g.Interval, err)
		}
		for _, r := range g.Rules {
			t.Run(r.name(), func(t *testing.T) {
				switch {
				case (r.Record == "") == (r.Alert == ""):
					t.Fatalf("record %q, alert %q: want exactly one", r.Record, r.Alert)
				case seen[r.name()]:
					t.Errorf("%s is defined twice", r.name())
				case g.Name == readinessGroup && r.Record == "":
					t.Errorf("alert in group %s", g.Name)
				case g.Name == alertsGroup && r.Alert == "":
					t.Errorf("recording rule in group %s", g.Name)
				}
				seen[r.name()] = true
				refs, err := scanPromQL(r.Expr)
				if err != nil {
					t.Fatalf("expr: %v\n%s", err, r.Expr)
				}
				for _, e := range checkRefs(refs, recorded) {
					t.Errorf("expr: %s", e)
				}
				// One series per client: every aggregation and join is by
				// client alone.
				for _, gr := range refs.groupings {
					if !slices.Equal(gr, []string{"client"}) {
						t.Errorf("expr groups by (%s); want (client)", strings.Join(gr, ", "))
					}
				}
				if r.Record != "" {
					if !recordRE.MatchString(r.Record) {
						t.Errorf("record %s does not match %s", r.Record, recordRE)
					}
					if !strings.Contains(r.Expr, "by (client)") && !strings.Contains(r.Expr, "client:") {
						t.Errorf("record %s neither sums by (client) nor uses a client: rule", r.Record)
					}
					return
				}
				if !strings.HasPrefix(r.Alert, "EnvelopeProxy") {
					t.Errorf("alert %s: want the EnvelopeProxy prefix", r.Alert)
				}
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("for %q: %v", r.For, err)
				}
				if !slices.Contains([]string{"info", "warning", "critical"}, r.Labels["severity"]) {
					t.Errorf("severity %q: want info, warning or critical", r.Labels["severity"])
				}
				for _, a := range []string{"summary", "description"} {
					if !strings.Contains(r.Annotations[a], "{{ $labels.client }}") {
						t.Errorf("annotation %s %q does not name the client", a, r.Annotations[a])
					}
				}
				if !strings.Contains(r.Annotations["runbook"], "/dashboard/#client={{ $labels.client }}") {
					t.Errorf("annotation runbook %q: want the dashboard's page of the client", r.Annotations["runbook"])
				}
				if !strings.Contains(r.Expr, "envelope_proxy_client_mode{mode=") {
					t.Errorf("alert %s is not joined on the client's mode", r.Alert)
				}
			})
			if r.Record != "" {
				recorded[r.Record] = []string{"client"}
			}
		}
	}
}

// TestRulesThresholds holds the numbers written in the rules against the
// config's readiness defaults, which the rules mirror: a changed default
// must change the rules too.
func TestRulesThresholds(t *testing.T) {
	rd := config.Default().Readiness
	f := readRules(t)
	exprs := map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			exprs[r.name()] = r.Expr
		}
	}
	num := `\s*(-?[0-9.e+-]+)`
	rows := []struct {
		rule, re string
		want     float64
		n        int // matches expected
	}{
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_unmapped:increase24h >` + num, float64(rd.MaxUnmapped), 2},
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_shadow_mismatch:ratio24h >` + num, rd.MaxMismatchRatio, 1},
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_shadow_candidate_errors:ratio24h >` + num, rd.MaxCandidateErrorsRatio, 1},
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_upstream_errors:ratio24h >` + num, rd.MaxUpstreamErrorsRatio, 1},
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_shadow_compared:increase24h >=` + num, float64(rd.MinRequests), 1},
		{"client:envelope_proxy_readiness:verdict24h", `client:envelope_proxy_requests:increase24h >=` + num, float64(rd.MinRequests), 1},
		{"EnvelopeProxyShadowMismatchRising", `\)\s*>` + num + `\s*and on`, rd.MaxMismatchRatio, 1},
		{"EnvelopeProxyFlippedClientUpstreamErrors", `\)\s*>` + num + `\s*and on`, rd.MaxUpstreamErrorsRatio, 1},
	}
	for _, row := range rows {
		t.Run(row.rule+" "+row.re, func(t *testing.T) {
			ms := regexp.MustCompile(row.re).FindAllStringSubmatch(exprs[row.rule], -1)
			if len(ms) != row.n {
				t.Fatalf("%d matches; want %d", len(ms), row.n)
			}
			for _, m := range ms {
				got, err := strconv.ParseFloat(m[1], 64)
				if err != nil || got != row.want {
					t.Errorf("threshold %s; want %v, the config default", m[1], row.want)
				}
			}
		})
	}
	// Every range of the readiness group is the readiness window.
	rangeRE := regexp.MustCompile(`\[([^\]]+)\]`)
	for _, r := range f.group(t, readinessGroup).Rules {
		for _, m := range rangeRE.FindAllStringSubmatch(r.Expr, -1) {
			if d, err := time.ParseDuration(m[1]); err != nil || d != rd.Window {
				t.Errorf("%s: range [%s]; want the readiness window %v", r.Record, m[1], rd.Window)
			}
		}
	}
}

// TestRulesTested requires every rule of rules.yml to be exercised by
// rules_test.yml, each alert both firing and not, and the test's input
// series to carry the labels the proxy exports.
func TestRulesTested(t *testing.T) {
	f := readRules(t)
	b, err := os.ReadFile(rulesTestFile)
	if err != nil {
		t.Fatal(err)
	}
	var rt struct {
		RuleFiles []string `yaml:"rule_files"`
		Tests     []struct {
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
	if err := yaml.Unmarshal(b, &rt); err != nil {
		t.Fatalf("%s: %v", rulesTestFile, err)
	}
	run(t, []check{eq("rule_files", strings.Join(rt.RuleFiles, " "), filepath.Base(rulesFile))})
	exprs := map[string]bool{}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, s := range tc.InputSeries {
			refs, err := scanPromQL(s.Series)
			if err != nil || len(refs.selectors) != 1 {
				t.Errorf("series %q: not one selector (%v)", s.Series, err)
				continue
			}
			for _, e := range checkRefs(refs, nil) {
				t.Errorf("series %q: %s", s.Series, e)
			}
		}
		for _, e := range tc.PromQLExprTest {
			refs, err := scanPromQL(e.Expr)
			if err != nil {
				t.Errorf("expr %q: %v", e.Expr, err)
			}
			for _, sel := range refs.selectors {
				exprs[sel.metric] = true
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
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			switch {
			case r.Record != "" && !exprs[r.Record]:
				t.Errorf("%s: no promql_expr_test reads %s", rulesTestFile, r.Record)
			case r.Alert != "" && !fires[r.Alert]:
				t.Errorf("%s: no alert_rule_test expects %s to fire", rulesTestFile, r.Alert)
			case r.Alert != "" && !silent[r.Alert]:
				t.Errorf("%s: no alert_rule_test expects %s not to fire", rulesTestFile, r.Alert)
			}
		}
	}
}

// TestPrometheusRule checks that the PrometheusRule holds exactly the
// groups of rules.yml.
func TestPrometheusRule(t *testing.T) {
	objs := decodeFile(t, operatorRuleFile)
	if len(objs) != 1 {
		t.Fatalf("%s: %d objects; want 1", operatorRuleFile, len(objs))
	}
	o := objs[0]
	run(t, []check{
		eq("apiVersion", o.APIVersion, "monitoring.coreos.com/v1"),
		eq("kind", o.Kind, "PrometheusRule"),
		eq("name", o.Metadata.Name, proxyName),
	})
	var spec struct {
		Groups any `yaml:"groups"`
	}
	decodeSpec(t, o, &spec)
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups any `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	if spec.Groups == nil || !reflect.DeepEqual(spec.Groups, rules.Groups) {
		t.Errorf("%s: spec.groups differ from the groups of %s; regenerate it (the command is at its top)", operatorRuleFile, rulesFile)
	}
}

// grafanaDashboard is the part of the dashboard JSON that the checks read.
type grafanaDashboard struct {
	UID           string            `json:"uid"`
	Title         string            `json:"title"`
	SchemaVersion int               `json:"schemaVersion"`
	Links         []json.RawMessage `json:"links"`
	Panels        []grafanaPanel    `json:"panels"`
	Templating    struct {
		List []grafanaVariable `json:"list"`
	} `json:"templating"`
}

// grafanaDatasource is a panel's, a query's or a variable's data source.
type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// grafanaPanel is one panel; a row holds more when collapsed.
type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		Datasource *grafanaDatasource `json:"datasource"`
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// grafanaVariable is one template variable.
type grafanaVariable struct {
	Name       string             `json:"name"`
	Type       string             `json:"type"`
	Query      json.RawMessage    `json:"query"`
	Definition string             `json:"definition"`
	Datasource *grafanaDatasource `json:"datasource"`
	Multi      bool               `json:"multi"`
	IncludeAll bool               `json:"includeAll"`
}

// readDashboard decodes the dashboard and returns it with its panels,
// those inside rows included.
func readDashboard(t *testing.T) (grafanaDashboard, []grafanaPanel, []byte) {
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
	return d, panels, b
}

// TestGrafanaDashboard checks the dashboard: it parses, its panels are
// core ones with unique ids that do not overlap, every query goes to the
// datasource variable and names only exported or recorded metrics, and
// the readiness table reads the recording rules.
func TestGrafanaDashboard(t *testing.T) {
	d, panels, raw := readDashboard(t)
	recorded := readRules(t).recordedMetrics()
	run(t, []check{
		eq("uid", d.UID, proxyName),
		eq("title", d.Title, proxyName),
		eq("links", strconv.Itoa(len(d.Links)), "0"),
		{name: "schemaVersion", got: strconv.Itoa(d.SchemaVersion), want: "36 or more", holds: d.SchemaVersion >= 36},
		{name: "no external address", got: strconv.FormatBool(strings.Contains(string(raw), "://")), want: "false", holds: !strings.Contains(string(raw), "://")},
	})

	vars := map[string]grafanaVariable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	ds, client := vars["datasource"], vars["client"]
	var dsQuery string
	_ = json.Unmarshal(ds.Query, &dsQuery)
	var clientQuery struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(client.Query, &clientQuery); err != nil {
		_ = json.Unmarshal(client.Query, &clientQuery.Query) // the older, plain string form
	}
	const labelValues = "label_values(envelope_proxy_requests_total, client)"
	run(t, []check{
		eq("datasource variable type", ds.Type, "datasource"),
		eq("datasource variable query", dsQuery, "prometheus"),
		eq("client variable type", client.Type, "query"),
		eq("client variable query", clientQuery.Query, labelValues),
		eq("client variable definition", client.Definition, labelValues),
		eq("client variable multi", strconv.FormatBool(client.Multi), "true"),
		eq("client variable includeAll", strconv.FormatBool(client.IncludeAll), "true"),
		eq("client variable datasource", fmt.Sprint(client.Datasource), fmt.Sprint(&grafanaDatasource{Type: "prometheus", UID: "${datasource}"})),
	})

	ids := map[int]string{}
	used := map[string]bool{}
	for i, p := range panels {
		t.Run(fmt.Sprintf("panel %d %s", p.ID, p.Title), func(t *testing.T) {
			if p.ID <= 0 {
				t.Errorf("id %d; want a positive id", p.ID)
			} else if other, dup := ids[p.ID]; dup {
				t.Errorf("id %d is also %q's", p.ID, other)
			}
			ids[p.ID] = p.Title
			if !slices.Contains([]string{"timeseries", "table", "stat", "row"}, p.Type) {
				t.Errorf("type %s; want a core timeseries, table, stat or row", p.Type)
			}
			if p.Type == "row" {
				return
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("datasource %v; want uid ${datasource}", p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("no query")
			}
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("gridPos %+v outside the 24 columns", g)
			}
			for _, q := range panels[:i] {
				h := q.GridPos
				if q.Type != "row" && g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("gridPos %+v overlaps panel %d's %+v", g, q.ID, h)
				}
			}
			for _, q := range p.Targets {
				if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
					t.Errorf("query %s: datasource %v; want uid ${datasource}", q.RefID, q.Datasource)
				}
				refs, err := scanPromQL(q.Expr)
				if err != nil {
					t.Errorf("query %s: %v\n%s", q.RefID, err, q.Expr)
					continue
				}
				if len(refs.selectors) == 0 {
					t.Errorf("query %s names no metric", q.RefID)
				}
				for _, e := range checkRefs(refs, recorded) {
					t.Errorf("query %s: %s", q.RefID, e)
				}
				for _, sel := range refs.selectors {
					used[sel.metric] = true
				}
			}
		})
	}
	for _, m := range []string{
		"client:envelope_proxy_readiness:verdict24h",
		"client:envelope_proxy_requests:increase24h",
		"client:envelope_proxy_shadow_compared:increase24h",
		"client:envelope_proxy_shadow_mismatch:ratio24h",
		"client:envelope_proxy_shadow_candidate_errors:ratio24h",
		"client:envelope_proxy_unmapped:increase24h",
		"client:envelope_proxy_upstream_errors:ratio24h",
		"envelope_proxy_request_duration_seconds_bucket",
		"envelope_proxy_shadow_total",
	} {
		if !used[m] {
			t.Errorf("no panel reads %s", m)
		}
	}
}

// grafanaVarRE matches a Grafana variable in a query.
var grafanaVarRE = regexp.MustCompile(`\$\{?(\w+)(?::\w+)?\}?`)

// TestPromtool runs promtool's checks: the rules' syntax, their unit
// tests, and the dashboard's queries (as recording rules, with the Grafana
// variables replaced). promtool comes with the Debian package prometheus;
// CI must have it, elsewhere the test skips without it.
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
		out, err := exec.CommandContext(ctx, promtool, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	t.Run("check rules", func(t *testing.T) { promtoolRun(t, "check", "rules", rulesFile) })
	t.Run("test rules", func(t *testing.T) { promtoolRun(t, "test", "rules", rulesTestFile) })
	t.Run("dashboard queries", func(t *testing.T) {
		_, panels, _ := readDashboard(t)
		subst := map[string]string{"__rate_interval": "5m", "__interval": "1m", "__range": "24h", "client": ".*"}
		var rules []map[string]string
		for _, p := range panels {
			for _, q := range p.Targets {
				expr := grafanaVarRE.ReplaceAllStringFunc(q.Expr, func(v string) string {
					name := grafanaVarRE.FindStringSubmatch(v)[1]
					if s, ok := subst[name]; ok {
						return s
					}
					t.Errorf("panel %d query %s: unknown variable %s", p.ID, q.RefID, v)
					return v
				})
				rules = append(rules, map[string]string{"record": fmt.Sprintf("grafana_panel_%d_%s", p.ID, strings.ToLower(q.RefID)), "expr": expr})
			}
		}
		b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "grafana", "rules": rules}}})
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "grafana.yml")
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		promtoolRun(t, "check", "rules", file)
	})
}

// TestScanPromQL checks the scanner the other checks rely on, on the
// mistakes it is there to catch.
func TestScanPromQL(t *testing.T) {
	for _, c := range []struct {
		expr string
		errs int // from scanPromQL or checkRefs
	}{
		{`sum by (client) (rate(envelope_proxy_requests_total{client=~"$client"}[$__rate_interval]))`, 0},
		{`histogram_quantile(0.99, sum by (mode, le) (rate(envelope_proxy_request_duration_seconds_bucket[5m]))) offset 1h`, 0},
		{"# a comment naming no_such_metric\nenvelope_proxy_shadow_total{outcome=~\"match|mismatch\"} > 1e-3", 0},
		{`envelope_proxy_requests_totl`, 1},
		{`sum by (client) (increse(envelope_proxy_requests_total[5m]))`, 1},
		{`sum by (clinet) (envelope_proxy_requests_total)`, 1},
		{`envelope_proxy_request_duration_seconds_bucket{client="a"}`, 1},
		{`envelope_proxy_shadow_total{outcome="candidate_errors"}`, 1},
		{`envelope_proxy_shadow_total{outcome=~"match|mismatches"}`, 1},
		{`sum(envelope_proxy_requests_total`, 1},
		{`{__name__="envelope_proxy_requests_total"}`, 1},
	} {
		refs, err := scanPromQL(c.expr)
		n := len(checkRefs(refs, nil))
		if err != nil {
			n++
		}
		if n != c.errs {
			t.Errorf("%q: %d errors (%v, %v); want %d", c.expr, n, err, checkRefs(refs, nil), c.errs)
		}
	}
}
