package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"convpipe/pipeline"
)

// metricsSummary is a summary whose every figure differs, so that a
// figure under a wrong name or label shows.
var metricsSummary = pipeline.Summary{
	RunID: "R1", Seconds: 12.5, Stopped: "deadline reached", FileErrors: 1,
	Total: pipeline.Counts{
		Rows: 101, RowErrors: 2, Orders: 40, ToSend: 30, AlreadySent: 3, Invalid: 4, Skipped: 3,
		Accepted: 25, Rejected: 1, Failed: 2, Changed: 5, Unsent: 6, Requests: 33,
	},
	Reconcile: &pipeline.ReconcileSummary{Considered: 60, Tracked: 50, NotTracked: 7, Unknown: 3, Expired: 1, Requests: 9},
	Open: []pipeline.OpenProblem{{State: pipeline.StateInvalid, Count: 11, Oldest: time.Unix(1794000000, 0)},
		{State: pipeline.StateNotTracked, Count: 8, Oldest: time.Unix(1794500000, 0)}},
}

// wantMetrics are the samples runMetrics(metricsSummary, finished, 3)
// holds, by name and label value ("" when unlabelled).
func wantMetrics(finished time.Time) map[string]map[string]float64 {
	orders := map[string]float64{}
	for k, v := range orderOutcomes(metricsSummary.Total) {
		orders[k] = float64(v)
	}
	return map[string]map[string]float64{
		metricFinished:   {"": float64(finished.Unix())},
		metricDuration:   {"": 12.5},
		metricExitCode:   {"": 3},
		metricStopped:    {"": 1},
		metricFileErrors: {"": 1},
		metricRows:       {"": 101},
		metricRowErrors:  {"": 2},
		metricRequests:   {"": 33},
		metricOrders:     orders,
		metricBuildInfo:  {version: 1},
		// Reconciling, and what the ledger holds open (every problem
		// state, 0 when none; the oldest only where there is one).
		metricReconciled:        {"tracked": 50, "not_tracked": 7, "unknown": 3, "expired": 1},
		metricReconcileRequests: {"": 9},
		metricOpen:              {"invalid": 11, "rejected": 0, "failed": 0, "changed": 0, "not_tracked": 8},
		metricOpenOldest:        {"invalid": 1794000000, "not_tracked": 1794500000},
	}
}

// checkFamilies compares parsed metric families with want: the same
// names, each a gauge with help, the same samples; a family's one label
// (outcome, version) is the key, and labels in skip are ignored.
func checkFamilies(t *testing.T, got map[string]*dto.MetricFamily, want map[string]map[string]float64, skip ...string) {
	t.Helper()
	for name := range got {
		if _, ok := want[name]; !ok && name != "push_time_seconds" && name != "push_failure_time_seconds" {
			t.Errorf("unexpected metric %s", name)
		}
	}
	for name, samples := range want {
		mf, ok := got[name]
		if !ok {
			t.Errorf("metric %s missing", name)
			continue
		}
		if mf.GetType() != dto.MetricType_GAUGE || mf.GetHelp() == "" {
			t.Errorf("%s: type %v, help %q; want a gauge with help", name, mf.GetType(), mf.GetHelp())
		}
		seen := map[string]float64{}
		for _, m := range mf.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				if !contains(skip, l.GetName()) {
					key = l.GetValue()
				}
			}
			seen[key] = m.GetGauge().GetValue()
		}
		if fmt.Sprint(seen) != fmt.Sprint(samples) {
			t.Errorf("%s = %v, want %v", name, seen, samples)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// parseText parses the Prometheus text format with the library's parser.
func parseText(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the text does not parse: %v", err)
	}
	return mfs
}

// TestMetricsLint: the names and help of the metrics pass the client
// library's linter (promlint: units, _total only on counters, no
// camelCase, base units).
func TestMetricsLint(t *testing.T) {
	problems, err := testutil.GatherAndLint(runMetrics(metricsSummary, time.Now(), 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsFile: the textfile parses with expfmt's parser into exactly
// the summary's figures, and replaces an earlier one.
func TestMetricsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "convpipe.prom")
	writeFile(t, path, "stale text, not metrics\n")
	finished := time.Unix(1795000000, 0)
	if err := writeMetricsFile(path, runMetrics(metricsSummary, finished, 3)); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	checkFamilies(t, parseText(t, f), wantMetrics(finished))
	if left, _ := filepath.Glob(path + ".tmp-*"); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestCheckPushURL: what --metrics-push accepts.
func TestCheckPushURL(t *testing.T) {
	for raw, ok := range map[string]bool{
		"": true, "http://127.0.0.1:9091": true, "https://u:p@push.example/": true,
		"127.0.0.1:9091": false, "ftp://x": false, "http://": false, "http://[::1": false,
	} {
		if err := checkPushURL(raw); (err == nil) != ok {
			t.Errorf("checkPushURL(%q) = %v, want ok %v", raw, err, ok)
		} else if err != nil && strings.Contains(err.Error(), "p@") {
			t.Errorf("the error shows the URL's password: %v", err)
		}
	}
}

// TestMetricsPush pushes to a real Pushgateway on loopback: the figures
// arrive grouped by job and account, a second push replaces the first,
// and a push the gateway refuses or cannot get is an error.
func TestMetricsPush(t *testing.T) {
	gw := startPushgateway(t)
	finished := time.Unix(1795000000, 0)
	if err := pushMetrics(t.Context(), gw.url, "acme", runMetrics(pipeline.Summary{}, finished, 0)); err != nil {
		t.Fatal(err)
	}
	if err := pushMetrics(t.Context(), gw.url, "acme", runMetrics(metricsSummary, finished, 3)); err != nil {
		t.Fatal(err)
	}
	got := gw.metrics(t)
	checkFamilies(t, got, wantMetrics(finished), "job", "account", "instance")
	for _, m := range got[metricExitCode].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["job"] != "convpipe" || labels["account"] != "acme" {
			t.Errorf("grouping labels %v, want job=convpipe, account=acme", labels)
		}
	}
	if _, ok := got["push_time_seconds"]; !ok {
		t.Error("the gateway recorded no push_time_seconds")
	}

	t.Run("refused", func(t *testing.T) {
		// A path the gateway does not serve: 404.
		err := pushMetrics(t.Context(), gw.url+"/no/such/prefix", "acme", runMetrics(metricsSummary, finished, 0))
		if err == nil || !strings.Contains(err.Error(), "push to http://127.0.0.1") || !strings.Contains(err.Error(), "404") {
			t.Errorf("a push to a wrong path: %v, want an error naming the gateway and the status", err)
		}
	})
	t.Run("nobody listens", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://user:hunter2@" + l.Addr().String()
		l.Close()
		err = pushMetrics(t.Context(), url, "acme", runMetrics(metricsSummary, finished, 0))
		if err == nil {
			t.Fatal("a push to a closed port succeeded")
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
}

// TestRunMetricsPush: `convpipe run --metrics-push` pushes the run's
// figures (the same as its textfile's); a push that fails makes a run
// that was all good exit 3 and the summary say so.
func TestRunMetricsPush(t *testing.T) {
	gw := startPushgateway(t)
	w := newWorkspace(t, simOpts{}, cfgOpts{})
	w.gen("in/orders.csv", "-rows", "30", "-seed", "12")
	w.mustRun(exitOK, "--metrics-push", gw.url, "--metrics-account", "shop-1", "--metrics-file", "m.prom")
	f, err := os.Open(w.path("m.prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	file := parseText(t, f)
	pushed := gw.metrics(t)
	for name, mf := range file {
		if name == metricFinished || name == metricDuration {
			continue // the push comes a moment before the file
		}
		want := mf.GetMetric()
		got := pushed[name].GetMetric()
		if len(got) != len(want) {
			t.Errorf("%s: %d samples pushed, %d in the file", name, len(got), len(want))
			continue
		}
		for i := range want {
			if got[i].GetGauge().GetValue() != want[i].GetGauge().GetValue() {
				t.Errorf("%s: pushed %v, file %v", name, got[i], want[i])
			}
		}
	}
	if v := pushed[metricOrders]; v == nil || len(v.GetMetric()) != len(orderOutcomes(pipeline.Counts{})) {
		t.Errorf("pushed orders: %v", v)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	r := w.mustRun(exitAttention, "--all", "--metrics-push", closed, "--metrics-file", "m2.prom")
	if !strings.Contains(r.stdout, "ATTENTION the metrics could not be pushed") || strings.Contains(r.stdout, "OK ") {
		t.Errorf("the summary does not say the push failed:\n%s", r)
	}
	if !strings.Contains(readFile(t, w.path("m2.prom")), metricExitCode+" 3\n") {
		t.Error("the textfile does not carry exit code 3")
	}
	if r := w.run("--metrics-push", "localhost:9091"); r.code != exitUsage || !strings.Contains(r.stderr, "--metrics-push") {
		t.Errorf("a --metrics-push without a scheme: exit %d, want 2 naming the flag\n%s", r.code, r)
	}
}

// pushgateway is a Pushgateway running on loopback for one test.
type pushgateway struct {
	url string
}

// metrics returns what the gateway exposes, parsed.
func (g *pushgateway) metrics(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(g.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	all := parseText(t, bytes.NewReader(body))
	mine := map[string]*dto.MetricFamily{}
	for name, mf := range all {
		if strings.HasPrefix(name, "convpipe_") || strings.HasPrefix(name, "push_") {
			mine[name] = mf
		}
	}
	return mine
}

var pushgatewayOnce struct {
	sync.Once
	bin string
	err error
}

// pushgatewayBinary returns the Pushgateway binary: $PUSHGATEWAY (set by
// `make test`), else .tools/bin/pushgateway, built there first from the
// version pinned in tools/go.mod if missing (as `make tools` does).
func pushgatewayBinary() (string, error) {
	pushgatewayOnce.Do(func() {
		if p := os.Getenv("PUSHGATEWAY"); p != "" {
			pushgatewayOnce.bin = p
			return
		}
		bin := filepath.Join(repoRoot, ".tools", "bin", "pushgateway")
		pushgatewayOnce.bin = bin
		if _, err := os.Stat(bin); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "github.com/prometheus/pushgateway")
		cmd.Dir = filepath.Join(repoRoot, "tools")
		cmd.Env = append(os.Environ(), "GOBIN="+filepath.Dir(bin), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			pushgatewayOnce.err = fmt.Errorf("install the Pushgateway: %v\n%s", err, out)
		}
	})
	return pushgatewayOnce.bin, pushgatewayOnce.err
}

// startPushgateway starts a Pushgateway on a free loopback port, without
// persistence, and waits until it is ready; it stops with the test.
func startPushgateway(t *testing.T) *pushgateway {
	t.Helper()
	bin, err := pushgatewayBinary()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // the free port may be taken before the gateway binds it
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		var log bytes.Buffer
		cmd := exec.Command(bin, "--web.listen-address="+addr, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-done })
		if waitReady(t.Context(), "http://"+addr+"/-/ready", done) {
			return &pushgateway{url: "http://" + addr}
		}
		t.Logf("the Pushgateway on %s did not start:\n%s", addr, log.String())
	}
	t.Fatal("the Pushgateway did not start")
	return nil
}

// waitReady polls url until it answers 200, the process ends (done) or
// 30 seconds pass.
func waitReady(ctx context.Context, url string, done <-chan struct{}) bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-done:
			return false
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}
