package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"convpipe/pipeline"
)

// promRef is what one PromQL expression refers to: metric names, and
// labels with the values it matches them against.
type promRef struct {
	metrics []string
	labels  map[string][]string // label name: the values of its matchers ("" for by/without/on)
}

// promKeywords are PromQL's words that are neither metrics nor labels.
var promKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"inf": true, "nan": true,
}

// grafanaVar is a Grafana variable ($__rate_interval, ${interval});
// outside a string, a duration where it can stand.
var grafanaVar = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

// parsePromRefs reads the metric names and label matchers of a PromQL
// expression: a lexer, not a full parser, but one that knows strings,
// label matchers, grouping clauses, function calls and ranges.
func parsePromRefs(expr string) (promRef, error) {
	ref := promRef{labels: map[string][]string{}}
	toks, err := promTokens(expr)
	if err != nil {
		return ref, err
	}
	braces, brackets := 0, 0
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		next := ""
		if i+1 < len(toks) {
			next = toks[i+1]
		}
		switch {
		case tk == "{":
			braces++
		case tk == "}":
			braces--
		case tk == "[":
			brackets++
		case tk == "]":
			brackets--
		case brackets > 0 || !isIdent(tk):
		case braces > 0:
			// name op "value", op one of = != =~ !~
			j := i + 1
			for j < len(toks) && strings.Contains("=!~", toks[j]) {
				j++
			}
			if j == i+1 || j >= len(toks) || !strings.HasPrefix(toks[j], `"`) {
				return ref, fmt.Errorf("a label matcher without an operator and a string at %s", tk)
			}
			ref.labels[tk] = append(ref.labels[tk], strings.Trim(toks[j], `"`))
			i = j
		case tk == "by" || tk == "without" || tk == "on" || tk == "ignoring" || tk == "group_left" || tk == "group_right":
			if next != "(" {
				continue
			}
			for i += 2; i < len(toks) && toks[i] != ")"; i++ {
				if isIdent(toks[i]) {
					ref.labels[toks[i]] = append(ref.labels[toks[i]], "")
				}
			}
		case next == "(" || next == "by" || next == "without" || promKeywords[strings.ToLower(tk)]:
			// a function or aggregation (sum by (x) (...)), or a keyword
		default:
			ref.metrics = append(ref.metrics, tk)
		}
	}
	return ref, nil
}

func isIdent(s string) bool {
	return s != "" && (unicode.IsLetter(rune(s[0])) || s[0] == '_' || s[0] == ':')
}

// promTokens splits expr into strings (double-quoted, with escapes),
// identifiers, numbers and single punctuation or operator characters.
func promTokens(expr string) ([]string, error) {
	var toks []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '$':
			n := len(grafanaVar.FindString(expr[i:]))
			if n == 0 {
				return nil, fmt.Errorf("a lone $ in %q", expr)
			}
			toks = append(toks, "1m")
			i += n
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string in %q", expr)
			}
			toks = append(toks, `"`+expr[i+1:j]+`"`)
			i = j + 1
		case isIdent(string(c)) || c >= '0' && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (unicode.IsLetter(rune(expr[j])) || unicode.IsDigit(rune(expr[j])) || strings.IndexByte("_:.", expr[j]) >= 0) {
				j++
			}
			toks = append(toks, expr[i:j])
			i = j
		default:
			toks = append(toks, string(c))
			i++
		}
	}
	return toks, nil
}

// knownMetrics are the names convpipe's registry holds, and those a real
// Pushgateway adds to a group once convpipe pushed to it.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	// metricsSummary has every figure, those of reconciling included.
	mfs, err := runMetrics(metricsSummary, time.Now(), 0).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	gw := startPushgateway(t)
	if err := pushMetrics(t.Context(), gw.url, "acme", runMetrics(metricsSummary, time.Now(), 0)); err != nil {
		t.Fatal(err)
	}
	for name := range gw.metrics(t) {
		names[name] = true
	}
	if !names["push_time_seconds"] {
		t.Fatal("the Pushgateway shows no push_time_seconds")
	}
	return names
}

// checkExpr checks the names and labels one expression refers to.
func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	ref, err := parsePromRefs(expr)
	if err != nil {
		t.Errorf("%s: %v", where, err)
		return
	}
	if len(ref.metrics) == 0 {
		t.Errorf("%s: %q refers to no metric", where, expr)
	}
	for _, m := range ref.metrics {
		if !known[m] {
			t.Errorf("%s: %q: metric %s is not in convpipe's registry nor the Pushgateway's", where, expr, m)
		}
	}
	outcomes := orderOutcomes(pipeline.Counts{})
	for label, values := range ref.labels {
		if !slices.Contains([]string{"account", "job", "instance", "outcome", "version", "verdict", "state"}, label) {
			t.Errorf("%s: %q: label %s: convpipe's metrics have no such label", where, expr, label)
		}
		if label != "outcome" {
			continue
		}
		for _, v := range values {
			for _, alt := range strings.Split(v, "|") {
				if _, ok := outcomes[alt]; v != "" && !ok {
					t.Errorf("%s: %q: outcome %q is not one of convpipe_last_run_orders' outcomes", where, expr, alt)
				}
			}
		}
	}
}

// dashboardExprs returns every "expr" and templating "query" string in
// a Grafana dashboard, with where it is.
func dashboardExprs(v any, where string, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && (k == "expr" || k == "definition" || (k == "query" && strings.Contains(s, "("))) {
				title, _ := x["refId"].(string)
				out[where+"/"+title+"/"+k] = s
			}
			sub := where
			if t, ok := x["title"].(string); ok {
				sub = where + "/" + t
			}
			dashboardExprs(e, sub, out)
		}
	case []any:
		for _, e := range x {
			dashboardExprs(e, where, out)
		}
	}
}

// TestDashboardAndAlerts: every expression of the Grafana dashboard and
// of the alerting rules refers only to metrics that convpipe's registry
// holds (or that the Pushgateway adds), with their labels and outcomes.
func TestDashboardAndAlerts(t *testing.T) {
	known := knownMetrics(t)
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "grafana", "convpipe-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("convpipe-dashboard.json: %v", err)
	}
	exprs := map[string]string{}
	dashboardExprs(dash, "dashboard", exprs)
	if len(exprs) < 10 {
		t.Fatalf("the dashboard has %d expressions", len(exprs))
	}
	used := map[string]bool{}
	for where, e := range exprs {
		e = strings.TrimSuffix(strings.TrimPrefix(e, "label_values("), ", account)")
		checkExpr(t, where, e, known)
		ref, _ := parsePromRefs(e)
		for _, m := range ref.metrics {
			used[m] = true
		}
	}
	for name := range known {
		if strings.HasPrefix(name, "convpipe_") && !used[name] {
			t.Errorf("the dashboard does not show %s", name)
		}
	}

	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	f, err := os.Open(filepath.Join(repoRoot, "deploy", "prometheus", "convpipe-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("convpipe-alerts.yaml: %v", err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			checkExpr(t, "alert "+r.Alert, r.Expr, known)
			if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("alert %s: no severity or summary", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Error("convpipe-alerts.yaml: no rules")
	}
}

// TestParsePromRefs: what the expression lexer finds.
func TestParsePromRefs(t *testing.T) {
	for expr, want := range map[string]string{
		`time() - max by (account) (convpipe_last_run_timestamp_seconds{account=~"$account"})`: "[convpipe_last_run_timestamp_seconds] account:[ $account]",
		`sum by (outcome) (convpipe_last_run_orders{outcome=~"a|b", job="x"}) > bool 3`:        "[convpipe_last_run_orders] job:[x] outcome:[ a|b]",
		`min_over_time(up[49h]) == 1 or on (job) absent(foo)`:                                  "[up foo] job:[]",
		`rate(x_total[$__rate_interval]) offset 1h`:                                            "[x_total]",
	} {
		ref, err := parsePromRefs(expr)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%v", ref.metrics)
		keys := make([]string, 0, len(ref.labels))
		for k := range ref.labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			got += fmt.Sprintf(" %s:%v", k, ref.labels[k])
		}
		if got != want {
			t.Errorf("parsePromRefs(%q) = %s, want %s", expr, got, want)
		}
	}
}
