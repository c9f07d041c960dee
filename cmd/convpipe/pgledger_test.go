package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
	"convpipe/sim"
)

// usePostgres puts the workspace's ledger in a new database of a real
// PostgreSQL that the test starts (CONVPIPE_LEDGER_URL, the password in
// PGPASSWORD), made with `ledger init`; w.ledger becomes its URL. It
// returns the server.
func (w *workspace) usePostgres() *pgtest.Server {
	w.t.Helper()
	srv, err := pgtest.Start()
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(srv.Close)
	if err := srv.CreateDatabase(w.t.Context(), "ledger"); err != nil {
		w.t.Fatal(err)
	}
	w.ledger = srv.URL("ledger")
	w.env = append(w.env, ledger.URLEnv+"="+w.ledger, "PGPASSWORD="+pgtest.Password)
	if r := w.exec("ledger", "init"); r.code != 0 {
		w.t.Fatalf("ledger init:\n%s", r)
	}
	return srv
}

// TestPostgresGoesAwayMidRun stops the database server while a run
// sends: the run stops sending and exits 1, saying the database went
// away; once the server is back, the next run finishes the work, and
// every valid order is accepted exactly once.
func TestPostgresGoesAwayMidRun(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 5 * time.Millisecond}}}, cfgOpts{Rate: "100/s", Workers: 4})
	srv := w.usePostgres()
	want := expectCSV(t, w.gen("in/orders.csv", "-rows", "1500", "-seed", "7"))
	cmd, stdout, stderr := w.command(t.Context(), "run", "--config", w.config)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !waitFor(time.Minute, func() bool { return len(acceptedIDs(w.sim)) >= 20 }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the run accepted nothing:\n%s\n%s", stdout, stderr)
	}
	srv.Stop()
	cmd.Wait()
	r := result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
	noPanic(t, r.stdout+r.stderr)
	sentAtStop := len(w.sim.Requests())
	if r.code != exitFatal || !strings.Contains(r.stderr, "ledger postgres://") {
		t.Fatalf("the run whose database went away: want exit 1 naming the ledger\n%s", r)
	}
	t.Logf("stopped after %d of %d orders; its last lines:\n%s", len(acceptedIDs(w.sim)), len(want.valid), clip(r.stderr, 1500))
	if len(acceptedIDs(w.sim)) == len(want.valid) {
		t.Fatal("the run finished before the database went away")
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// The port may have changed.
	w.env = append(w.env, ledger.URLEnv+"="+srv.URL("ledger"))
	w.ledger = srv.URL("ledger")
	w.mustRun(exitOK)
	if len(w.sim.Requests()) <= sentAtStop {
		t.Error("the second run sent nothing")
	}
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
}

// TestPostgresLedger runs the binary with its ledger in a real PostgreSQL
// (CONVPIPE_LEDGER_URL, the password in PGPASSWORD): a database without a
// ledger and a wrong password stop the run before any request; `ledger
// init` makes the ledger; a run, its rerun (nothing resent), `ledger
// export`, `show` and `runs` work on it; a second run while one holds the
// ledger exits 4; and the password appears in no output.
func TestPostgresLedger(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	if err := srv.CreateDatabase(t.Context(), "ledger"); err != nil {
		t.Fatal(err)
	}
	url := srv.URL("ledger")
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
	base := w.env
	w.env = append(append([]string{}, base...), ledger.URLEnv+"="+url, "PGPASSWORD="+pgtest.Password)
	secretFree := func(r result) {
		t.Helper()
		if strings.Contains(r.stdout+r.stderr, pgtest.Password) {
			t.Errorf("the output holds the database password:\n%s", r)
		}
	}

	checkRefusedRuns(t, w, base, url, secretFree)

	if r := w.exec("ledger", "init"); r.code != 0 || !strings.Contains(r.stdout, "is ready") {
		t.Fatalf("ledger init:\n%s", r)
	}
	r := w.mustRun(exitAttention)
	secretFree(r)
	got := acceptedIDs(w.sim)
	if len(got) == 0 {
		t.Fatalf("nothing accepted:\n%s", r)
	}
	if !strings.Contains(r.stdout, "ledger    postgres://"+pgtest.User+"@") || strings.Contains(r.stdout, "results file could not be written") {
		t.Errorf("the summary does not name the PostgreSQL ledger, or lacks the results file:\n%s", r.stdout)
	}
	if results, _ := filepath.Glob(w.ledger + ".results-*.csv"); len(results) != 1 {
		t.Errorf("results files next to ledger.path: %v", results)
	}
	before := len(w.sim.Requests())
	for _, args := range [][]string{nil, {"--all"}} {
		r := w.run(args...)
		secretFree(r)
		if n := len(w.sim.Requests()) - before; n != 0 || r.code > exitAttention {
			t.Fatalf("rerun %v made %d requests, want 0\n%s", args, n, r)
		}
	}

	r = w.exec("ledger", "export", "--format", "jsonl", "--state", "accepted")
	if r.code != 0 || strings.Count(r.stdout, "\n") != len(got) {
		t.Errorf("ledger export: want %d accepted entries\n%s", len(got), r)
	}
	var id string
	for id = range got {
		break
	}
	if r := w.exec("ledger", "show", id, "--ledger", url); r.code != 0 || !strings.Contains(r.stdout, `"state": "accepted"`) {
		t.Errorf("ledger show %s:\n%s", id, r)
	}
	if r := w.exec("ledger", "runs"); r.code != 0 || strings.Count(r.stdout, "\n") != 3 {
		t.Errorf("ledger runs: want three runs\n%s", r)
	}

	t.Setenv("PGPASSWORD", pgtest.Password)
	held, err := ledger.OpenPostgres(t.Context(), url, "", ledger.Options{Command: "the test", Account: testSID})
	if err != nil {
		t.Fatal(err)
	}
	if err := held.BeginRun(t.Context(), pipeline.RunInfo{ID: "holder-run"}); err != nil {
		t.Fatal(err)
	}
	r = w.mustRun(exitLocked)
	held.Close()
	if !strings.Contains(r.stderr, "locked by another run") || !strings.Contains(r.stderr, "run holder-run") {
		t.Errorf("a run while another holds the ledger: want exit 4 naming the holder\n%s", r)
	}
	// The entries are the run's account's; another account's view is
	// empty, and --account names what the ledger holds.
	if r := w.exec("ledger", "export", "--account", testSID); r.code != 0 || strings.Count(r.stdout, ",accepted,") != len(got) {
		t.Errorf("ledger export --account %s:\n%s", testSID, r)
	}
	if r := w.exec("ledger", "runs", "--account", "IRNOBODY"); r.code != exitUsage || !strings.Contains(r.stderr, "holds nothing of it (it holds: "+testSID+")") {
		t.Errorf("ledger runs --account of an unknown account:\n%s", r)
	}
}

// TestLedgerAccounts: the ledger keeps each account's entries and runs
// apart; `convpipe ledger` reads the only account a ledger holds, and
// asks for --account when it holds several.
func TestLedgerAccounts(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
	w.mustRun(exitAttention)
	accepted := len(acceptedIDs(w.sim))
	if r := w.exec("ledger", "runs", "--ledger", w.ledger); r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("ledger runs of a ledger of one account:\n%s", r)
	}
	// A run of another account (which the simulator refuses: 401) is
	// recorded under that account, and finds nothing of the first one's.
	w.env = childEnv(sinkEnv("IROTHER", testToken)...)
	if r := w.run(); r.code != exitFatal || !strings.Contains(r.stdout, "0 already sent") {
		t.Fatalf("a run of another account:\n%s", r)
	}
	r := w.exec("ledger", "export", "--ledger", w.ledger)
	if r.code != exitUsage || !strings.Contains(r.stderr, "holds the accounts "+testSID+", IROTHER: choose one with --account") {
		t.Errorf("ledger export of a ledger of two accounts:\n%s", r)
	}
	r = w.exec("ledger", "export", "--ledger", w.ledger, "--account", testSID)
	if r.code != 0 || strings.Count(r.stdout, ",accepted,") != accepted {
		t.Errorf("ledger export --account %s: want %d accepted\n%s", testSID, accepted, r)
	}
	if r := w.exec("ledger", "runs", "--ledger", w.ledger, "--account", "IROTHER"); r.code != 0 || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("ledger runs --account IROTHER:\n%s", r)
	}
}

// checkRefusedRuns checks that a run on a database without a ledger, and
// one with a wrong password, exit 1 before any request; it leaves w with
// the right password.
func checkRefusedRuns(t *testing.T, w *workspace, base []string, url string, secretFree func(result)) {
	t.Helper()
	r := w.mustRun(exitFatal)
	secretFree(r)
	if !strings.Contains(r.stderr, "holds no convpipe ledger") || !strings.Contains(r.stderr, "ledger init") || len(w.sim.Requests()) != 0 {
		t.Fatalf("a run on a database without a ledger: want exit 1, no request, and how to make one\n%s", r)
	}
	w.env = append(append([]string{}, base...), ledger.URLEnv+"="+url, "PGPASSWORD=wrong-"+pgtest.Password)
	r = w.mustRun(exitFatal)
	secretFree(r)
	if !strings.Contains(r.stderr, "password authentication failed") || len(w.sim.Requests()) != 0 {
		t.Fatalf("a run with a wrong password: want exit 1 and no request\n%s", r)
	}
	w.env = append(append([]string{}, base...), ledger.URLEnv+"="+url, "PGPASSWORD="+pgtest.Password)
}
