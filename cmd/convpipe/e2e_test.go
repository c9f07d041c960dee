package main

// Tests over the built binary (issue 4, point 13): a run and its rerun,
// exit codes, the summary JSON and the metrics file, a run stopped by its
// deadline or maximum duration and resumed, a run stopped by SIGINT and
// resumed, two overlapping runs, and an order changed after acceptance.
//
// TestMain builds bin/convpipe and the sample generator once into a
// temporary folder. Every test starts the API simulator (package sim) in
// the test process, on 127.0.0.1, so that it can assert exactly what
// arrived, and points the binary at it through its configuration and the
// IMPACT_* environment variables. The reliability suite (issue 6) is in
// reliability_test.go; CONVPIPE_RELIABILITY=full runs it at full size and
// writes docs/reliability.md.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

var (
	// binPath is the convpipe binary built by TestMain; genPath the sample
	// generator (samples/gen).
	binPath, genPath string
	// repoRoot is the module's root folder.
	repoRoot string
)

// The credentials the tests' simulators accept. The token is random per
// test process, so that searching outputs for it cannot match by chance
// anything but a leak.
var (
	testSID   = "IRE2ETEST"
	testToken = "tok-" + randomHex(12)
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	started := time.Now()
	dir, err := os.MkdirTemp("", "convpipe-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	binPath, genPath = filepath.Join(dir, "convpipe"), filepath.Join(dir, "gen")
	for _, b := range []struct{ out, pkg string }{{binPath, "."}, {genPath, "convpipe/samples/gen"}} {
		cmd := exec.Command("go", "build", "-o", b.out, b.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: go build %s: %v\n%s", b.pkg, err, out)
			return 1
		}
	}
	code := m.Run()
	if fullSize() && !flagIsSet("test.run") {
		if err := writeReliabilityReport(filepath.Join(repoRoot, "docs", "reliability.md"), started, code); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: write docs/reliability.md:", err)
			if code == 0 {
				code = 1
			}
		}
	} else if fullSize() {
		fmt.Fprintln(os.Stderr, "e2e: -run is set: docs/reliability.md is written only by a run of the whole suite")
	}
	return code
}

// result is what one invocation of the binary did.
type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	maxRSS         int64 // the child's peak resident set, in bytes
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\n--- stdout:\n%s\n--- stderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout, clip(r.stderr, 6000))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n/2] + "\n…\n" + s[len(s)-n/2:]
}

// workspace is one test's folder: its input, configuration, ledger and
// simulator.
type workspace struct {
	t      *testing.T
	dir    string
	ledger string
	config string
	env    []string
	sim    *sim.Server
	url    string
	cfg    cfgOpts
	// umask, when set ("077"), is the umask the binary runs under (through
	// /bin/sh), not the test process'.
	umask string
}

// cfgOpts are the parts of the configuration a test varies.
type cfgOpts struct {
	Location string // source.location, relative to the workspace
	Rate     string
	Burst    int // sink.burst; default 1
	// MaxEventAge is mapping.max_event_age; default 3650d, so that the
	// test exports with fixed dates (testdata/bad, the rows written in
	// the tests) stay inside it whatever the date. The tests of the age
	// guard set impact's 88d.
	MaxEventAge    string
	Workers        int
	MaxAttempts    int
	RequestTimeout string
	BackoffMax     string
	Grace          string
	Mode           string
	MemoryBudget   string
	Progress       string
	LogFormat      string
	Ledger         string // ledger.path; default ledger/ledger.db
	URL            string // sink.base_url; default the simulator's
	Extra          string // appended to the sink section verbatim
	RunExtra       string // appended to the run section verbatim
	LedgerExtra    string // appended to the ledger section verbatim
}

func (o cfgOpts) withDefaults() cfgOpts {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.Location, "in/")
	def(&o.Rate, "200/s")
	def(&o.RequestTimeout, "10s")
	def(&o.BackoffMax, "200ms")
	def(&o.Grace, "10s")
	def(&o.Mode, "auto")
	def(&o.MemoryBudget, "64MiB")
	def(&o.Progress, "off")
	def(&o.LogFormat, "text")
	def(&o.MaxEventAge, "3650d")
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Burst == 0 {
		o.Burst = 1
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 10
	}
	return o
}

// configTemplate is configs/sample.yaml's mapping with the test's sink,
// ledger and run settings.
var configTemplate = template.Must(template.New("config").Parse(`# written by cmd/convpipe's end-to-end tests
source:
  location: {{.Location}}
mapping:
  order_key: [store, order_id]
  max_event_age: {{.MaxEventAge}}
  fields:
    EventTypeId: {const: "12345"}
    CampaignId: {const: "1000"}
    OrderId: "{store}-{order_id}"
    EventDate:
      column: created_at
      transforms:
        - time: {layout: "2006-01-02 15:04:05", layouts: [rfc3339], zone: Europe/Berlin}
    ClickId: {column: click_id, transforms: [trim]}
    CustomerId: customer_id
    CustomerEmail: {column: email, transforms: [hash]}
    OrderPromoCode: {column: promo_code, transforms: [trim, upper]}
    CurrencyCode: {column: currency, transforms: [trim, upper, {default: EUR}]}
    Text1: store
  items:
    ItemSku: sku
    ItemName: product_name
    ItemCategory: category
    ItemQuantity: {column: quantity, transforms: [integer]}
    ItemPrice: {column: unit_price, transforms: [number]}
    ItemDiscount: {column: discount, transforms: [number]}
  filters:
    - skip: order
      when: {column: status, in: [cancelled]}
      reason: order cancelled
group:
  mode: {{.Mode}}
  memory_budget: {{.MemoryBudget}}
  temp_dir: spill
sink:
  base_url: {{.URL}}
  rate: {{.Rate}}
  burst: {{.Burst}}
  workers: {{.Workers}}
  max_attempts: {{.MaxAttempts}}
  request_timeout: {{.RequestTimeout}}
  backoff_initial: 5ms
  backoff_max: {{.BackoffMax}}
{{.Extra}}
ledger:
  path: {{.Ledger}}
{{.LedgerExtra}}
run:
  grace: {{.Grace}}
  progress: "{{.Progress}}"
  progress_interval: 200ms
  log_format: {{.LogFormat}}
{{.RunExtra}}
`))

// simOpts chooses how newWorkspace starts the simulator.
type simOpts struct {
	cfg sim.Config
	// wrap, when set, wraps the simulator's handler (to kill the binary at
	// a chosen request, for example).
	wrap func(http.Handler) http.Handler
}

// newWorkspace makes a workspace with a simulator serving testSID and
// testToken, and writes its configuration.
func newWorkspace(t *testing.T, so simOpts, o cfgOpts) *workspace {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"in", "spill"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	so.cfg.AccountSID, so.cfg.AuthToken = testSID, testToken
	if so.cfg.CompleteAfter == 0 {
		so.cfg.CompleteAfter = time.Second
	}
	s := sim.New(so.cfg)
	var h http.Handler = s
	if so.wrap != nil {
		h = so.wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	w := &workspace{
		t: t, dir: dir, sim: s, url: srv.URL,
		env: childEnv(sinkEnv(testSID, testToken)...),
	}
	w.setConfig(o)
	return w
}

// sinkEnv returns the IMPACT_* variables for the given credentials.
func sinkEnv(sid, token string) []string {
	return []string{"IMPACT_ACCOUNT_SID=" + sid, "IMPACT_AUTH_TOKEN=" + token}
}

// childEnv is the test's environment without IMPACT_* and AWS_*, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "IMPACT_") || strings.HasPrefix(kv, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// setConfig writes the workspace's configuration file.
func (w *workspace) setConfig(o cfgOpts) {
	w.t.Helper()
	o = o.withDefaults()
	if o.Ledger == "" {
		o.Ledger = "ledger/ledger.db"
	}
	if o.URL == "" {
		o.URL = w.url
	}
	w.cfg = o
	w.ledger = filepath.Join(w.dir, o.Ledger)
	if filepath.IsAbs(o.Ledger) {
		w.ledger = o.Ledger
	}
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, o); err != nil {
		w.t.Fatal(err)
	}
	w.config = filepath.Join(w.dir, "convpipe.yaml")
	if err := os.WriteFile(w.config, b.Bytes(), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// path returns a path inside the workspace.
func (w *workspace) path(elem ...string) string {
	return filepath.Join(append([]string{w.dir}, elem...)...)
}

// command returns the binary's command in the workspace, not started.
func (w *workspace) command(ctx context.Context, args ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	cmd := exec.CommandContext(ctx, binPath, args...)
	if w.umask != "" {
		cmd = exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", "umask " + w.umask + ` && exec "$0" "$@"`, binPath}, args...)...)
	}
	cmd.Dir = w.dir
	cmd.Env = w.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	return cmd, &stdout, &stderr
}

// exec runs the binary to its end (at most three minutes) and returns
// what it did. A panic or a Go runtime crash in its output fails the test.
func (w *workspace) exec(args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd, stdout, stderr := w.command(ctx, args...)
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			r.maxRSS = int64(ru.Maxrss) * 1024 // KiB on Linux
		}
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		w.t.Fatalf("convpipe %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	noPanic(w.t, r.stdout+r.stderr)
	return r
}

// run runs `convpipe run` with the workspace's configuration.
func (w *workspace) run(args ...string) result {
	w.t.Helper()
	return w.exec(append([]string{"run", "--config", w.config}, args...)...)
}

// mustRun runs `convpipe run` and fails the test unless it exits with code.
func (w *workspace) mustRun(code int, args ...string) result {
	w.t.Helper()
	r := w.run(args...)
	if r.code != code {
		w.t.Fatalf("convpipe run %s: want exit %d\n%s", strings.Join(args, " "), code, r)
	}
	return r
}

// noPanic fails the test if out shows a panic or a runtime crash.
func noPanic(t *testing.T, out string) {
	t.Helper()
	for _, s := range []string{"panic:", "goroutine ", "fatal error:", "SIGSEGV"} {
		if strings.Contains(out, s) {
			t.Fatalf("output contains %q:\n%s", s, clip(out, 8000))
		}
	}
}

// export returns the ledger's entries (`convpipe ledger export --format
// jsonl`), with extra arguments such as --state.
func (w *workspace) export(args ...string) []pipeline.Entry {
	w.t.Helper()
	r := w.exec(append([]string{"ledger", "export", "--ledger", w.ledger, "--format", "jsonl"}, args...)...)
	if r.code != 0 {
		w.t.Fatalf("ledger export: %s", r)
	}
	var es []pipeline.Entry
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for {
		var e pipeline.Entry
		err := dec.Decode(&e)
		if err == io.EOF {
			break
		}
		if err != nil {
			w.t.Fatalf("ledger export: decode: %v\n%s", err, clip(r.stdout, 4000))
		}
		es = append(es, e)
	}
	return es
}

// summary reads a --summary-json file.
func readSummary(t *testing.T, path string) pipeline.Summary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("summary: %v", err)
	}
	var s pipeline.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("summary %s: %v\n%s", path, err, b)
	}
	return s
}

// genStart is the date of the first generated order, unless a test says
// otherwise: 60 days before the tests began, taken once, so that two
// exports generated on either side of midnight still hold the same rows.
var genStart = time.Now().UTC().AddDate(0, 0, -60).Format(time.DateOnly)

// secondStart is the first date of a second export, 10 days after genStart.
var secondStart = time.Now().UTC().AddDate(0, 0, -50).Format(time.DateOnly)

// gen writes a sample export with samples/gen into the workspace.
func (w *workspace) gen(out string, args ...string) string {
	w.t.Helper()
	p := w.path(out)
	if !slices.Contains(args, "-start") {
		args = append(args, "-start", genStart)
	}
	cmd := exec.Command(genPath, append(args, "-out", p)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("gen %v: %v\n%s", args, err, b)
	}
	return p
}

// orders is what an export holds, by OrderId ("store-order_id").
type orders struct {
	valid   map[string]bool // to be accepted
	skipped map[string]bool // cancelled: left out by the filter
}

func (o orders) total() int { return len(o.valid) + len(o.skipped) }

// expectCSV reads well-formed generated CSV files and returns the orders
// they hold, as the sample mapping sees them.
func expectCSV(t *testing.T, paths ...string) orders {
	t.Helper()
	o := orders{valid: map[string]bool{}, skipped: map[string]bool{}}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		for _, r := range recs[1:] {
			id := r[col["store"]] + "-" + r[col["order_id"]]
			if r[col["status"]] == "cancelled" {
				o.skipped[id] = true
			} else {
				o.valid[id] = true
			}
		}
	}
	for id := range o.skipped {
		if o.valid[id] {
			t.Fatalf("order %s both cancelled and not: the generator changed", id)
		}
	}
	return o
}

// acceptedIDs returns how often the simulator accepted each OrderId.
func acceptedIDs(s *sim.Server) map[string]int {
	m := map[string]int{}
	for _, r := range s.Accepted() {
		m[r.OrderID]++
	}
	return m
}

// posts counts the conversion requests the simulator saw.
func posts(s *sim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

// checkExactlyOnce checks that the simulator accepted every order of want
// once and nothing else.
func checkExactlyOnce(t *testing.T, s *sim.Server, want map[string]bool) {
	t.Helper()
	got := acceptedIDs(s)
	var missing, extra, twice []string
	for id := range want {
		if got[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range got {
		if !want[id] {
			extra = append(extra, id)
		}
		if n > 1 {
			twice = append(twice, id)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	slices.Sort(twice)
	if len(missing)+len(extra)+len(twice) > 0 {
		t.Fatalf("simulator: %d of %d orders accepted; missing %d %v; unexpected %d %v; accepted more than once %d %v",
			len(got), len(want), len(missing), head(missing), len(extra), head(extra), len(twice), head(twice))
	}
}

func head(s []string) []string {
	if len(s) > 10 {
		return s[:10]
	}
	return s
}

// checkLedger checks the ledger's entries against the export and the
// simulator: every valid order accepted (with the simulator's submission
// id when it has one), every cancelled one skipped, nothing pending or
// failed, no other order keys. It returns the entries by state.
func checkLedger(t *testing.T, w *workspace, want orders) map[pipeline.State]int {
	t.Helper()
	subs := map[string]string{}
	for _, r := range w.sim.Accepted() {
		subs[r.OrderID] = r.SubmissionID
	}
	byState := map[pipeline.State]int{}
	seen := map[string]bool{}
	for _, e := range w.export() {
		byState[e.State]++
		if strings.HasPrefix(e.Key.EventType, "!") {
			continue
		}
		id := e.Key.OrderID
		if seen[id] {
			t.Errorf("ledger: %s twice", e.Key)
		}
		seen[id] = true
		switch {
		case want.valid[id]:
			if e.State != pipeline.StateAccepted {
				t.Errorf("ledger: %s is %s, want accepted (%+v)", e.Key, e.State, e.Messages)
			}
			// A maybe-sent order answered QUEUED as a duplicate holds the
			// duplicate's submission, not the first one.
			if !e.MaybeSent && e.SubmissionID != "" && subs[id] != "" && e.SubmissionID != subs[id] {
				t.Errorf("ledger: %s has submission %s, the simulator recorded %s", e.Key, e.SubmissionID, subs[id])
			}
		case want.skipped[id]:
			if e.State != pipeline.StateSkipped {
				t.Errorf("ledger: %s is %s, want skipped", e.Key, e.State)
			}
		default:
			t.Errorf("ledger: unexpected entry %s (%s)", e.Key, e.State)
		}
	}
	if n := len(seen); n != want.total() {
		t.Errorf("ledger: %d order entries, the export has %d orders", n, want.total())
	}
	if byState[pipeline.StatePending] > 0 || byState[pipeline.StateFailed] > 0 {
		t.Errorf("ledger: %d pending, %d failed left", byState[pipeline.StatePending], byState[pipeline.StateFailed])
	}
	return byState
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return cond()
}

// TestRunAndRerun runs the bundled sample export, then again (nothing
// read, nothing sent), then again with --all (everything read, nothing
// sent); it checks the summary JSON and the metrics file against the
// simulator and the ledger.
func TestRunAndRerun(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))

	r := w.mustRun(exitAttention, "--summary-json", "s1.json", "--metrics-file", "m1.prom")
	got := acceptedIDs(w.sim)
	if len(got) == 0 {
		t.Fatalf("nothing accepted:\n%s", r)
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	s := readSummary(t, w.path("s1.json"))
	tot := s.Total
	if tot.Accepted != int64(len(got)) || tot.Requests != int64(posts(w.sim)) || tot.Failed+tot.Rejected+tot.Unsent != 0 {
		t.Errorf("summary: accepted %d, requests %d, failed %d, rejected %d, unsent %d; simulator: %d accepted of %d requests",
			tot.Accepted, tot.Requests, tot.Failed, tot.Rejected, tot.Unsent, len(got), posts(w.sim))
	}
	if tot.RowErrors == 0 || tot.Invalid == 0 || tot.Skipped == 0 {
		t.Errorf("summary: the sample's bad rows, invalid and cancelled orders are missing: %+v", tot)
	}
	if tot.ToSend != tot.Accepted || tot.Orders != tot.ToSend+tot.Invalid+tot.Skipped {
		t.Errorf("summary: counts do not add up: %+v", tot)
	}
	if len(s.Objects) != 2 || s.FileErrors != 0 {
		t.Errorf("summary: objects %+v, file errors %d", s.Objects, s.FileErrors)
	}
	// The ledger agrees.
	states := map[pipeline.State]int{}
	for _, e := range w.export() {
		states[e.State]++
		if e.State == pipeline.StateAccepted && got[e.Key.OrderID] != 1 {
			t.Errorf("ledger has %s accepted; the simulator did not accept it", e.Key)
		}
	}
	if int64(states[pipeline.StateAccepted]) != tot.Accepted || int64(states[pipeline.StateSkipped]) != tot.Skipped ||
		int64(states[pipeline.StateInvalid]) != tot.Invalid+tot.RowErrors || states[pipeline.StatePending] != 0 {
		t.Errorf("ledger states %v do not match the summary %+v", states, tot)
	}
	// The metrics file says the same.
	m := readFile(t, w.path("m1.prom"))
	for _, line := range []string{
		fmt.Sprintf(`convpipe_last_run_orders{outcome="accepted"} %d`, tot.Accepted),
		fmt.Sprintf(`convpipe_last_run_orders{outcome="invalid"} %d`, tot.Invalid),
		fmt.Sprintf(`convpipe_last_run_orders{outcome="grouped"} %d`, tot.Orders),
		fmt.Sprintf("convpipe_last_run_requests %d", posts(w.sim)),
		fmt.Sprintf("convpipe_last_run_rows %d", tot.Rows),
		"convpipe_last_run_exit_code 3",
		"convpipe_last_run_stopped_early 0",
		"# TYPE convpipe_last_run_orders gauge",
	} {
		if !strings.Contains(m, line+"\n") {
			t.Errorf("metrics file lacks %q:\n%s", line, m)
		}
	}
	// The human summary and the results file.
	for _, want := range []string{"ATTENTION", "ledger    ledger/ledger.db", "results   "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	results, _ := filepath.Glob(w.ledger + ".results-*.csv")
	if len(results) != 1 {
		t.Fatalf("results files: %v", results)
	}
	if rs := readFile(t, results[0]); strings.Count(rs, ",accepted,") != len(got) {
		t.Errorf("results file has %d accepted lines, want %d", strings.Count(rs, ",accepted,"), len(got))
	}

	before := len(w.sim.Requests())
	t.Run("rerun", func(t *testing.T) {
		r := w.mustRun(exitOK, "--summary-json", "s2.json", "--metrics-file", "m2.prom")
		if n := len(w.sim.Requests()) - before; n != 0 {
			t.Fatalf("the rerun made %d requests, want 0\n%s", n, r)
		}
		s := readSummary(t, w.path("s2.json"))
		if s.Total.Rows != 0 || s.Total.Requests != 0 || len(s.Objects) != 2 || !s.Objects[0].Unchanged || !s.Objects[1].Unchanged {
			t.Errorf("rerun summary: %+v", s)
		}
		if !strings.Contains(readFile(t, w.path("m2.prom")), "convpipe_last_run_exit_code 0\n") {
			t.Error("rerun metrics: exit code is not 0")
		}
	})
	t.Run("rerun --all", func(t *testing.T) {
		r := w.run("--all", "--summary-json", "s3.json")
		if n := len(w.sim.Requests()) - before; n != 0 {
			t.Fatalf("the --all rerun made %d requests, want 0\n%s", n, r)
		}
		s := readSummary(t, w.path("s3.json"))
		if s.Total.AlreadySent != tot.Accepted || s.Total.Accepted != 0 || s.Total.ToSend != 0 {
			t.Errorf("--all rerun: already sent %d (want %d), accepted %d, to send %d", s.Total.AlreadySent, tot.Accepted, s.Total.Accepted, s.Total.ToSend)
		}
		// It read the bad rows again: still exit 3.
		if r.code != exitAttention {
			t.Errorf("--all rerun: exit %d, want 3 (the sample's bad rows)", r.code)
		}
	})
	t.Run("ledger runs and show", func(t *testing.T) {
		r := w.exec("ledger", "runs", "--ledger", w.ledger)
		if r.code != 0 || strings.Count(r.stdout, "\n") != 3 || strings.Contains(r.stdout, "unfinished") {
			t.Errorf("ledger runs: want three finished runs\n%s", r)
		}
		var id string
		for id = range got {
			break
		}
		r = w.exec("ledger", "show", id, "--ledger", w.ledger)
		if r.code != 0 || !strings.Contains(r.stdout, `"state": "accepted"`) {
			t.Errorf("ledger show %s:\n%s", id, r)
		}
		if r := w.exec("ledger", "show", "no-such-order", "--ledger", w.ledger); r.code != exitFatal || !strings.Contains(r.stderr, "not in the ledger") {
			t.Errorf("ledger show of an unknown order:\n%s", r)
		}
	})
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// TestExitCodes checks each documented exit code and its message.
func TestExitCodes(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{})
	w.gen("in/orders.csv", "-rows", "60", "-seed", "7")
	want := expectCSV(t, w.path("in/orders.csv"))
	badCfg := w.path("bad.yaml")
	if err := os.WriteFile(badCfg, []byte(strings.Replace(readFile(t, w.config), "  grace:", "  graze: 1s\n  grace:", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	zeroRate := w.path("zero-rate.yaml")
	if err := os.WriteFile(zeroRate, []byte(strings.Replace(readFile(t, w.config), "rate: 200/s", "rate: 0/s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		env    []string
		code   int
		stderr string
	}{
		{"usage: unknown flag", []string{"run", "--config", w.config, "--no-such-flag"}, nil, exitUsage, "unknown flag: --no-such-flag"},
		{"usage: no config", []string{"run"}, nil, exitUsage, "--config is required"},
		{"usage: bad duration", []string{"run", "--config", w.config, "--max-duration", "soon"}, nil, exitUsage, "max-duration"},
		{"config: unknown key", []string{"run", "--config", badCfg}, nil, exitUsage, "graze"},
		{"config: bad value names the key", []string{"run", "--config", zeroRate}, nil, exitUsage, "sink.rate"},
		{"config: bad --rate", []string{"run", "--config", w.config, "--rate", "fast"}, nil, exitUsage, "sink.rate"},
		{"config: missing file", []string{"run", "--config", w.path("nope.yaml")}, nil, exitUsage, "nope.yaml"},
		{"config: no account", []string{"run", "--config", w.config}, childEnv("IMPACT_AUTH_TOKEN=" + testToken), exitUsage, "IMPACT_ACCOUNT_SID"},
		{"fatal: wrong token", []string{"run", "--config", w.config}, childEnv(sinkEnv(testSID, "wrong-"+testToken)...), exitFatal, "401"},
		{"ok", []string{"run", "--config", w.config}, nil, exitOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := posts(w.sim)
			w.env = tc.env
			if w.env == nil {
				w.env = childEnv(sinkEnv(testSID, testToken)...)
			}
			r := w.exec(tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("want exit %d and %q on stderr\n%s", tc.code, tc.stderr, r)
			}
			switch tc.code {
			case exitUsage:
				if n := posts(w.sim) - before; n != 0 {
					t.Errorf("%d requests sent despite the usage error", n)
				}
			case exitFatal:
				// A 401 stops the run at once: one request per worker at most.
				if n := posts(w.sim) - before; n > w.cfg.Workers {
					t.Errorf("%d requests after a 401, want at most %d", n, w.cfg.Workers)
				}
			}
		})
	}
	w.env = childEnv(sinkEnv(testSID, testToken)...)
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)

	t.Run("attention: bad rows", func(t *testing.T) {
		f, err := os.OpenFile(w.path("in/orders.csv"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintln(f, "999999,berlin,2026-11-21 09:14:02,paid")
		f.Close()
		r := w.mustRun(exitAttention)
		if !strings.Contains(r.stderr, "in/orders.csv:") || !strings.Contains(r.stdout, "1 malformed rows") {
			t.Errorf("no clear message about the malformed row:\n%s", r)
		}
	})
	t.Run("locked", func(t *testing.T) {
		// Hold the ledger's lock as a run would (flock on <ledger>.lock).
		f, err := os.OpenFile(w.ledger+".lock", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		before := len(w.sim.Requests())
		r := w.run("--all", "--retry-rejected")
		if r.code != exitLocked || !strings.Contains(r.stderr, "lock") {
			t.Fatalf("want exit 4 and a message about the lock\n%s", r)
		}
		if n := len(w.sim.Requests()) - before; n != 0 {
			t.Errorf("%d requests sent without the lock", n)
		}
		// Reading the ledger works while it is locked.
		if r := w.exec("ledger", "export", "--ledger", w.ledger); r.code != 0 {
			t.Errorf("ledger export while locked:\n%s", r)
		}
	})
}

// TestStopAndResume stops runs with --max-duration, --deadline and SIGINT
// while orders are in flight, and resumes them: the stopped run exits 0
// with its summary, lets in-flight requests finish and records them;
// nothing is left pending; the next run sends the rest; every order is
// accepted once.
func TestStopAndResume(t *testing.T) {
	tests := []struct {
		name string
		args func() []string
		// signal, when set, is sent once this many orders were accepted.
		signal  os.Signal
		stopped string
	}{
		{"max-duration", func() []string { return []string{"--max-duration", "1s"} }, nil, "maximum duration 1s reached"},
		{"deadline", func() []string {
			return []string{"--deadline", time.Now().Add(1500 * time.Millisecond).Format(time.RFC3339Nano)}
		}, nil, "deadline"},
		{"SIGINT", func() []string { return nil }, os.Interrupt, "stopped by interrupt"},
		{"SIGTERM", func() []string { return nil }, syscall.SIGTERM, "stopped by terminated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// 20 orders a second with 150 ms answers: requests are in
			// flight whenever the run is stopped.
			w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 150 * time.Millisecond}}},
				cfgOpts{Rate: "20/s", Progress: "log"})
			w.gen("in/orders.csv", "-rows", "400", "-seed", "11")
			want := expectCSV(t, w.path("in/orders.csv"))

			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			args := append([]string{"run", "--config", w.config, "--summary-json", "s1.json", "--metrics-file", "m1.prom"}, tc.args()...)
			cmd, stdout, stderr := w.command(ctx, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var signalled time.Time
			if tc.signal != nil {
				if !waitFor(30*time.Second, func() bool { return len(w.sim.Accepted()) >= 10 }) {
					t.Fatal("no conversion arrived")
				}
				signalled = time.Now()
				if err := cmd.Process.Signal(tc.signal); err != nil {
					t.Fatal(err)
				}
			}
			err := cmd.Wait()
			r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
			noPanic(t, r.stdout+r.stderr)
			if err != nil && r.code != 0 {
				t.Fatalf("the stopped run must exit 0 (what it did was fine)\n%s", r)
			}
			if !strings.Contains(r.stdout, "stopped early: "+tc.stopped) || !strings.Contains(r.stdout, "not sent (stopped)") {
				t.Errorf("summary does not say it stopped (%q):\n%s", tc.stopped, r)
			}
			s := readSummary(t, w.path("s1.json"))
			if !strings.Contains(s.Stopped, tc.stopped) || s.Total.Accepted >= int64(len(want.valid)) {
				t.Errorf("summary JSON: stopped %q, accepted %d of %d", s.Stopped, s.Total.Accepted, len(want.valid))
			}
			if s.Total.Failed != 0 || s.Total.Accepted != int64(len(w.sim.Accepted())) {
				t.Errorf("in-flight requests did not finish: summary %d accepted, %d failed; simulator %d accepted",
					s.Total.Accepted, s.Total.Failed, len(w.sim.Accepted()))
			}
			if !strings.Contains(readFile(t, w.path("m1.prom")), "convpipe_last_run_stopped_early 1\n") {
				t.Error("metrics: stopped_early is not 1")
			}
			for _, q := range w.sim.Requests() {
				if q.Status != 200 {
					t.Errorf("a request ended with status %d: in-flight requests must finish", q.Status)
				}
			}
			if tc.signal != nil {
				if !strings.Contains(r.stderr, "stopping: no new requests") {
					t.Errorf("no log line about the signal:\n%s", r.stderr)
				}
				// Orders already handed to a worker may still go out; no more.
				late := 0
				for _, q := range w.sim.Requests() {
					if q.Time.After(signalled.Add(50 * time.Millisecond)) {
						late++
					}
				}
				if late > w.cfg.Workers {
					t.Errorf("%d requests started after the signal, want at most %d (workers)", late, w.cfg.Workers)
				}
			}
			stoppedAt := len(w.sim.Accepted())
			entries := w.export()
			for _, e := range entries {
				if e.State == pipeline.StatePending {
					t.Errorf("%s left pending", e.Key)
				}
			}
			if got := countState(entries, pipeline.StateAccepted); got != stoppedAt {
				t.Errorf("ledger has %d accepted, the simulator %d", got, stoppedAt)
			}
			if !strings.Contains(r.stderr, "msg=progress") {
				t.Errorf("no progress lines in the log (progress: log):\n%s", clip(r.stderr, 3000))
			}

			// The next run resumes.
			w.sim.SetFaults(sim.Faults{})
			w.setConfig(cfgOpts{Rate: "500/s"})
			w.mustRun(exitOK, "--summary-json", "s2.json")
			s2 := readSummary(t, w.path("s2.json"))
			// What the stopped run said was left: exactly what it read and
			// did not send, and about what it did not read, within 10% of
			// what the next run sent.
			if s.NotRead == nil || !strings.Contains(r.stdout, "not read  1 object not read to the end") {
				t.Errorf("the stopped run does not say what it did not read: %+v\n%s", s.NotRead, r.stdout)
			} else if left, said := s2.Total.ToSend, s.Total.Unsent+s.Total.Failed+s.NotRead.EstimatedOrders; math.Abs(float64(said-left)) > 0.1*float64(left) {
				t.Errorf("the stopped run said %d orders were left (%d read, not sent; about %d not read); the next run sent %d",
					said, s.Total.Unsent, s.NotRead.EstimatedOrders, left)
			}
			if s2.Total.AlreadySent != int64(stoppedAt) || s2.Total.Accepted != int64(len(want.valid)-stoppedAt) {
				t.Errorf("resume: already sent %d (want %d), accepted %d (want %d)", s2.Total.AlreadySent, stoppedAt, s2.Total.Accepted, len(want.valid)-stoppedAt)
			}
			checkExactlyOnce(t, w.sim, want.valid)
			checkLedger(t, w, want)
			if w.sim.Duplicates() != 0 {
				t.Errorf("%d duplicates: a clean stop leaves nothing ambiguous", w.sim.Duplicates())
			}
		})
	}
}

func countState(es []pipeline.Entry, st pipeline.State) int {
	n := 0
	for _, e := range es {
		if e.State == st {
			n++
		}
	}
	return n
}

// TestSecondSignalAborts sends SIGINT twice while answers are slow: the
// run aborts its in-flight requests at once, records them as failed (and
// as maybe sent), and the next run settles them as accepted, once.
func TestSecondSignalAborts(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Rate: "100/s", Grace: "60s"})
	w.gen("in/orders.csv", "-rows", "60", "-seed", "5")
	want := expectCSV(t, w.path("in/orders.csv"))
	w.sim.SlowNext(1000, 30*time.Second) // every answer's body takes 30 s

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return len(w.sim.Accepted()) >= w.cfg.Workers }) {
		t.Fatal("no conversion arrived")
	}
	start := time.Now()
	_ = cmd.Process.Signal(os.Interrupt)
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	_ = cmd.Wait()
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode(), elapsed: time.Since(start)}
	noPanic(t, r.stdout+r.stderr)
	if r.elapsed > 20*time.Second {
		t.Fatalf("the second signal did not abort the 30 s answers\n%s", r)
	}
	if !strings.Contains(r.stderr, "aborted") || !strings.Contains(r.stdout, "stopped early") {
		t.Errorf("no abort message or no summary:\n%s", r)
	}
	if r.code != exitAttention {
		t.Errorf("exit %d, want 3: aborted sends are failed\n%s", r.code, r)
	}
	aborted := 0
	for _, e := range w.export() {
		switch e.State {
		case pipeline.StatePending:
			t.Errorf("%s left pending", e.Key)
		case pipeline.StateFailed:
			aborted++
			if !e.MaybeSent {
				t.Errorf("%s aborted after the request was sent, but not marked maybe sent", e.Key)
			}
		}
	}
	if aborted == 0 {
		t.Error("no aborted send recorded as failed")
	}
	w.sim.SlowNext(0, 0)
	w.mustRun(exitOK)
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
	if d := w.sim.Duplicates(); d != aborted {
		t.Errorf("%d duplicates at the simulator, want %d (one per aborted send)", d, aborted)
	}
}

// TestOverlappingRuns starts a second run while a first one sends: the
// second exits at once with code 4, names the holder and sends nothing.
func TestOverlappingRuns(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Rate: "10/s"})
	w.gen("in/orders.csv", "-rows", "200", "-seed", "3")
	want := expectCSV(t, w.path("in/orders.csv"))
	// The second run sends to its own simulator, so that any request it
	// made would show.
	other := sim.NewTestServer(t, sim.Config{AccountSID: testSID, AuthToken: testToken})
	second := w.path("second.yaml")
	if err := os.WriteFile(second, []byte(strings.Replace(readFile(t, w.config), w.url, other.URL(), 1)), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(30*time.Second, func() bool { return len(w.sim.Accepted()) >= 2 }) {
		t.Fatal("the first run sent nothing")
	}
	r := w.exec("run", "--config", second, "--all")
	if r.code != exitLocked {
		t.Fatalf("second run: want exit 4\n%s", r)
	}
	if r.elapsed > 5*time.Second {
		t.Errorf("the second run took %s to give up; it must exit at once", r.elapsed)
	}
	for _, s := range []string{"locked", fmt.Sprintf("pid %d", cmd.Process.Pid)} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("second run's message lacks %q:\n%s", s, r.stderr)
		}
	}
	if n := len(other.Requests()); n != 0 {
		t.Errorf("the second run made %d requests", n)
	}
	// plan and ledger export read the ledger while the first run holds it.
	if r := w.exec("plan", "--config", w.config, "--all"); r.code != exitOK {
		t.Errorf("plan while a run holds the lock:\n%s", r)
	}
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("first run: %v\n%s\n%s", err, stdout, stderr)
	}
	w.setConfig(cfgOpts{})
	w.mustRun(exitOK)
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
}

// TestChangedAfterAcceptance edits an accepted order in the export: the
// next run, reading the changed object (new ETag) or everything (--all),
// reports it as changed, sends nothing and exits 3; once the edit is
// undone the order is accepted again in the ledger.
func TestChangedAfterAcceptance(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("all=", all), func(t *testing.T) {
			w := newWorkspace(t, simOpts{}, cfgOpts{})
			p := w.gen("in/orders.csv", "-rows", "80", "-seed", "21")
			want := expectCSV(t, p)
			w.mustRun(exitOK)
			checkExactlyOnce(t, w.sim, want.valid)
			original := readFile(t, p)

			// A corrected amount on the first line of a valid order.
			recs, err := csv.NewReader(strings.NewReader(original)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			var changed string
			for _, r := range recs[1:] {
				if id := r[1] + "-" + r[0]; want.valid[id] {
					changed = id
					r[13] = "1.23"
					break
				}
			}
			var b bytes.Buffer
			cw := csv.NewWriter(&b)
			_ = cw.WriteAll(recs)
			if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if !all {
				// The ETag of a local file is its size and modification time.
				_ = os.Chtimes(p, time.Now(), time.Now().Add(time.Minute))
			}
			var args []string
			if all {
				args = []string{"--all"}
			}
			before := len(w.sim.Requests())
			r := w.mustRun(exitAttention, append(args, "--summary-json", "s.json")...)
			if n := len(w.sim.Requests()) - before; n != 0 {
				t.Errorf("%d requests for a changed order; it must not be resent", n)
			}
			s := readSummary(t, w.path("s.json"))
			if s.Total.Changed != 1 || s.Total.AlreadySent != int64(len(want.valid)-1) || s.Total.ToSend != 0 {
				t.Errorf("summary: changed %d, already sent %d, to send %d", s.Total.Changed, s.Total.AlreadySent, s.Total.ToSend)
			}
			if !strings.Contains(r.stdout, "1 orders changed after acceptance") {
				t.Errorf("summary does not report the change:\n%s", r.stdout)
			}
			es := w.export("--state", "changed")
			if len(es) != 1 || es[0].Key.OrderID != changed || len(es[0].Messages) == 0 || !strings.Contains(es[0].Messages[0].Text, "correction") {
				t.Fatalf("ledger export --state changed: want %s with a message about a correction, got %+v", changed, es)
			}
			// Still reported on the next run; accepted again once undone.
			w.mustRun(exitAttention, "--all")
			if err := os.WriteFile(p, []byte(original), 0o644); err != nil {
				t.Fatal(err)
			}
			w.mustRun(exitOK, "--all")
			checkLedger(t, w, want)
			checkExactlyOnce(t, w.sim, want.valid)
		})
	}
}

// mu guards figures, which the reliability tests fill for
// docs/reliability.md.
var (
	mu      sync.Mutex
	figures []figure
)

type figure struct {
	test string
	text string
}

// note records a line for docs/reliability.md and logs it.
func note(t *testing.T, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	t.Log(s)
	mu.Lock()
	figures = append(figures, figure{test: t.Name(), text: s})
	mu.Unlock()
}

// flagIsSet reports whether the test flag name was given.
func flagIsSet(name string) bool {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-"+name+"=") || strings.HasPrefix(a, "--"+name+"=") || a == "-"+name || a == "--"+name {
			return true
		}
	}
	return false
}
