package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
	"convpipe/sim"
)

var (
	// binDir holds the binaries buildBins builds.
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "convpipe-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	pgtest.StopShared()
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildBins builds convpipe and convpipe-bench into binDir, once, and
// returns their paths.
func buildBins(t *testing.T, root string) (convpipe, bench string) {
	t.Helper()
	convpipe, bench = filepath.Join(binDir, "convpipe"), filepath.Join(binDir, "convpipe-bench")
	buildOnce.Do(func() {
		for _, b := range []struct{ out, pkg string }{{convpipe, "./cmd/convpipe"}, {bench, "./cmd/convpipe-bench"}} {
			cmd := exec.Command(goTool(), "build", "-o", b.out, b.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return convpipe, bench
}

// rerunSetup builds the binaries, writes an export of rows rows in dir
// and starts an API simulator; the working directory is then the
// repository's root (writeConfig reads the sample configuration there).
func rerunSetup(t *testing.T, rows int) (b *bench, dir, data, apiURL string, s *sim.Server) {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(wd, "..", "..")
	b = &bench{repeat: 1, started: time.Now()}
	b.convpipe, b.self = buildBins(t, root)
	t.Chdir(root)
	dir = t.TempDir()
	data = filepath.Join(dir, "orders.csv")
	writeOrders(t, data, rows)
	s = sim.New(sim.Config{})
	apiURL, err = s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return b, dir, data, apiURL, s
}

// TestFillPostgresThenRerun fills a PostgreSQL ledger through the fill
// subcommand (-ledger-url) from a small export, checks that it holds
// every order accepted, then runs the real convpipe binary with --all
// over it as figure 5 does (rerunOnce): every order already sent,
// nothing sent.
func TestFillPostgresThenRerun(t *testing.T) {
	b, dir, data, apiURL, s := rerunSetup(t, 3000)
	dbURL := pgtest.NewDatabase(t) // PGPASSWORD is set in this process
	cfg := filepath.Join(dir, "config.yaml")
	if err := writeRerunConfig(cfg, dir, data, apiURL, dbURL); err != nil {
		t.Fatal(err)
	}
	if err := fillMain([]string{"-config", cfg, "-ledger-url", dbURL}); err != nil {
		t.Fatal(err)
	}
	accepted := acceptedIn(t, dbURL)
	if accepted == 0 {
		t.Fatal("the fill wrote no accepted entry")
	}
	r, sum, err := b.rerunOnce(cfg, dir, []string{"PGPASSWORD=" + pgtest.Password}, "--all")
	if err != nil {
		t.Fatal(err)
	}
	if err := rerunAllOK(sum, accepted); err != nil {
		t.Errorf("convpipe run --all over the filled ledger: %v", err)
	}
	if sum.Total.Orders != accepted {
		t.Errorf("the run read %d orders, the ledger holds %d accepted", sum.Total.Orders, accepted)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("the simulator received %d requests, want none", n)
	}
	if strings.Contains(r.Cmd, pgtest.Password) || !strings.Contains(r.Cmd, "PGPASSWORD=…") {
		t.Errorf("the command the report shows: %s", r.Cmd)
	}
	if after := acceptedIn(t, dbURL); after != accepted {
		t.Errorf("after the rerun the ledger holds %d accepted entries, before %d", after, accepted)
	}
}

// TestRerunPG runs figure 5's PostgreSQL part (rerunPG: its own server,
// the fill as a child, VACUUM, the runs, the facts) over a small export.
func TestRerunPG(t *testing.T) {
	b, _, data, apiURL, s := rerunSetup(t, 2000)
	b.work = t.TempDir()
	r, err := b.rerunPG(data, apiURL, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Entries == 0 || r.Accepted != r.Entries || r.Sum.Total.Orders != r.Entries || r.Sum.Total.AlreadySent != r.Entries {
		t.Errorf("ledger: %d entries, %d accepted; the run: %d orders, %d already sent", r.Entries, r.Accepted, r.Sum.Total.Orders, r.Sum.Total.AlreadySent)
	}
	if n := len(s.Requests()); n != 0 {
		t.Errorf("the simulator received %d requests, want none", n)
	}
	text := r.text() + r.verdict().Why + r.All.Cmd
	if strings.Contains(text, pgtest.Password) {
		t.Errorf("the report holds the password: %s", text)
	}
	if v := r.verdict(); !strings.Contains(v.Figure, "PostgreSQL") || v.Met == nil {
		t.Errorf("verdict: %+v", v)
	}
}

// acceptedIn returns the accepted entries of the rerun account in the
// PostgreSQL ledger at dbURL.
func acceptedIn(t *testing.T, dbURL string) int64 {
	t.Helper()
	led, err := ledger.Config{URL: dbURL}.OpenReadOnly(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	if err := led.SetAccount(sim.DefaultAccountSID); err != nil {
		t.Fatal(err)
	}
	counts, err := led.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range counts {
		if st != pipeline.StateAccepted {
			t.Errorf("the fill left %d entries %s", n, st)
		}
	}
	return counts[pipeline.StateAccepted]
}

func TestFillNeedsOneLedger(t *testing.T) {
	for _, args := range [][]string{
		{"-config", "c.yaml"},
		{"-config", "c.yaml", "-ledger", "l.db", "-ledger-url", "postgres://u@127.0.0.1:1/db"},
	} {
		if err := fillMain(args); err == nil || !strings.Contains(err.Error(), "either -ledger") {
			t.Errorf("fill %v: %v, want the error that asks for either ledger", args, err)
		}
	}
}

// TestPairedRunsWithABaseline: the floor, the two discard runs and, with
// a baseline binary (here this one), the baseline's two runs alternate
// in rounds over one export and configuration, and each median run read
// every row; the verdict divides this code's rates by the baseline's.
func TestPairedRunsWithABaseline(t *testing.T) {
	b, dir, data, _, _ := rerunSetup(t, 600)
	b.work, b.baseline, b.baselineRev = dir, b.self, "self"
	b.report = newReport()
	runs, err := b.pairedRuns(tpFormats[0], data)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"floor", "discard/sorted", "discard/sorted/1", "baseline/sorted", "baseline/sorted/1"} {
		r, ok := runs[k]
		if !ok {
			t.Fatalf("no %s run among %v", k, runs)
		}
		if r.Rows != 600 {
			t.Errorf("%s read %d rows, want 600", k, r.Rows)
		}
	}
	if got := runs["baseline/sorted/1"].Procs; got != "1" {
		t.Errorf("the baseline's one-core run has GOMAXPROCS %s", got)
	}
	if !strings.Contains(runs["baseline/sorted"].Cmd, b.self+" discard") {
		t.Errorf("baseline command %q", runs["baseline/sorted"].Cmd)
	}
	for _, k := range []string{"baseline/sorted", "baseline/sorted/1"} {
		// The same binary on both sides: the rounds' ratios are near 1.
		if r := b.baselineRatios[k]; r < 0.2 || r > 5 {
			t.Errorf("%s: median ratio %.2f", k, r)
		}
	}
	results := map[string]tpRun{}
	for k, r := range runs {
		results["CSV/"+k] = r
	}
	b.baselineVerdict(results)
	if len(b.report.verdicts) != 1 || !strings.Contains(b.report.verdicts[0].Measured, "on 2 cores") {
		t.Fatalf("verdicts %+v", b.report.verdicts)
	}
	b.baseline = ""
	if runs, err = b.pairedRuns(tpFormats[0], data); err != nil || len(runs) != 3 {
		t.Fatalf("without a baseline: %d runs, %v", len(runs), err)
	}
}
