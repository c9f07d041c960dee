package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/sim"
)

// sharedRunner is one `convpipe run` of a shared ledger.
type sharedRunner struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
}

// sharedBackends are the ledgers that runs share: a SQLite file on this
// machine, and a PostgreSQL database.
var sharedBackends = []string{"sqlite", "postgres"}

// useBackend makes w's runs use a ledger of backend, which is "sqlite"
// (the workspace's ledger file) or "postgres" (a new database).
func (w *workspace) useBackend(backend string) {
	w.t.Helper()
	if backend == "postgres" {
		w.usePostgres()
	}
}

// backendName is what the notes call a shared ledger of backend.
func backendName(backend string) string {
	if backend == "postgres" {
		return "PostgreSQL"
	}
	return "SQLite"
}

// TestSharedLedgerRunners starts two runs at once on one export and one
// ledger (ledger.shared), a SQLite file and a PostgreSQL database in
// turn: they split its objects between them
// and every valid order is accepted exactly once. In the kill modes one
// of them is SIGKILLed while both send (once 150 orders are accepted, as
// the simulator answers a request, or as one arrives): the other takes
// over the killed run's object once its claim's lease lapses, sends again
// as maybe sent what the killed run was sending (the simulator refuses a
// duplicate of what it had accepted, and the sink settles it as
// accepted), and finishes the export alone. In "fault-storm" both finish
// through TestFaultStorm's storm of 5xx, dropped connections and 429s.
func TestSharedLedgerRunners(t *testing.T) {
	for _, backend := range sharedBackends {
		t.Run(backend, func(t *testing.T) {
			for _, mode := range []string{"both-finish", "killed-on-a-timer", "killed-at-an-answer", "killed-at-an-arrival", "fault-storm"} {
				t.Run(mode, func(t *testing.T) { testSharedRunners(t, backend, mode) })
			}
		})
	}
}

func testSharedRunners(t *testing.T, backend, mode string) {
	start := time.Now()
	k := &killer{}
	faults := sim.Faults{Latency: 5 * time.Millisecond}
	co := cfgOpts{Rate: "100/s", Workers: 4, LedgerExtra: "  shared: true\n  lease: 2s"}
	if mode == "fault-storm" {
		// TestFaultStorm's storm, under two runs at once.
		faults = sim.Faults{
			Latency: 2 * time.Millisecond, LatencyJitter: 2 * time.Millisecond,
			ErrorRate: 0.30, DropRate: 0.05, DropAfterRate: 0.02,
			TooManyRate: 0.01, TooManyBurst: 3, RetryAfter: time.Second,
			SpikeRate: 0.03, Spike: 300 * time.Millisecond,
		}
		co.MaxAttempts, co.RequestTimeout, co.BackoffMax = 25, "10s", "100ms"
	}
	w := newWorkspace(t, simOpts{cfg: sim.Config{Seed: 42, Faults: faults}, wrap: k.wrap}, co)
	w.useBackend(backend)
	var files []string
	for i := range 4 {
		files = append(files, w.gen(fmt.Sprintf("in/part-%d.csv", i), "-rows", fmt.Sprint(size(500, 2000)), "-seed", fmt.Sprint(11+i),
			"-first-id", fmt.Sprint(100001+100000*i)))
	}
	want := expectCSV(t, files...)
	ctx, cancel := context.WithTimeout(t.Context(), size(3*time.Minute, 10*time.Minute))
	defer cancel()
	var runs [2]sharedRunner
	for i := range runs {
		cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i] = sharedRunner{cmd, stdout, stderr}
	}
	kill := strings.HasPrefix(mode, "killed")
	switch mode {
	case "killed-on-a-timer":
		if !waitFor(time.Minute, func() bool { return len(acceptedIDs(w.sim)) >= 150 }) {
			t.Fatal("the runs accepted fewer than 150 orders in a minute")
		}
		if err := runs[0].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
	case "killed-at-an-answer":
		k.arm(runs[0].cmd.Process, 120, true, time.Millisecond)
	case "killed-at-an-arrival":
		k.arm(runs[0].cmd.Process, 120, false, 0)
	}
	for i, r := range runs {
		err := r.cmd.Wait()
		noPanic(t, r.stdout.String()+r.stderr.String())
		if i == 0 && kill {
			if ws, _ := r.cmd.ProcessState.Sys().(syscall.WaitStatus); !ws.Signaled() {
				t.Fatalf("run 0 ended before its kill: %v\n%s", err, clip(r.stderr.String(), 3000))
			}
			continue
		}
		if code := r.cmd.ProcessState.ExitCode(); code != exitOK {
			t.Fatalf("run %d: exit %d, want %d\n%s", i, code, exitOK, clip(r.stderr.String(), 4000))
		}
	}
	k.disarm()
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
	byRun := map[string]int{}
	maybe := 0
	for _, e := range w.export("--state", "accepted") {
		byRun[e.RunID]++
		if e.MaybeSent {
			maybe++
		}
	}
	if len(byRun) != 2 {
		t.Errorf("accepted orders by run: %v; want both runs to have sent some", byRun)
	}
	if dups := w.sim.Duplicates(); dups > maybe {
		t.Errorf("%d duplicate refusals at the simulator; only %d orders were ambiguous", dups, maybe)
	}
	var counts []int
	for _, n := range byRun {
		counts = append(counts, n)
	}
	note(t, "shared %s ledger, two runs at once, %s: %d orders (%d valid) in 4 objects, each valid order accepted once, none left pending; accepted by the two runs: %v; %d sent again as maybe sent, %d duplicate refusals; %s",
		backendName(backend), mode, want.total(), len(want.valid), counts, maybe, w.sim.Duplicates(), time.Since(start).Round(100*time.Millisecond))
}

// quotaCase is one run of TestSharedQuota: the simulator's quota per
// window (which each run is configured with as sink.rate), the rows of
// each of the two objects, and the second run's --reserve.
type quotaCase struct {
	quota   int
	window  time.Duration
	rows    int
	reserve int // percent
}

// TestSharedQuota runs two runs of one account at once on a shared
// ledger, SQLite and PostgreSQL in turn, each configured with the account's whole quota (the
// simulator's), the second with --reserve: together they stay within the
// quota (no 429, no window over the quota at the simulator), the second
// never takes more than the quota less its reserve in a window, and
// every valid order is accepted once. Small: 60 requests per 5 s window,
// --reserve 40%. Full: the 6,000 per minute for about two
// minutes, without a reserve and then with 20%.
func TestSharedQuota(t *testing.T) {
	cases := size([]quotaCase{{60, 5 * time.Second, 800, 40}},
		[]quotaCase{{6000, time.Minute, 30000, 0}, {6000, time.Minute, 30000, 20}})
	for _, backend := range sharedBackends {
		t.Run(backend, func(t *testing.T) {
			for _, qc := range cases {
				t.Run(fmt.Sprintf("%d-per-%s-reserve-%d", qc.quota, qc.window, qc.reserve), func(t *testing.T) { testSharedQuota(t, backend, qc) })
			}
		})
	}
}

func testSharedQuota(t *testing.T, backend string, qc quotaCase) {
	quota, window := qc.quota, qc.window
	w := newWorkspace(t, simOpts{cfg: sim.Config{Quota: quota, Window: window, Faults: sim.Faults{Latency: 2 * time.Millisecond}}},
		cfgOpts{Rate: fmt.Sprintf("%d/%s", quota, window), Workers: 4, LedgerExtra: "  shared: true\n  lease: 2s"})
	w.useBackend(backend)
	var files []string
	for i := range 2 {
		files = append(files, w.gen(fmt.Sprintf("in/part-%d.csv", i), "-rows", fmt.Sprint(qc.rows), "-seed", fmt.Sprint(21+i),
			"-first-id", fmt.Sprint(100001+100000*i)))
	}
	want := expectCSV(t, files...)
	ctx, cancel := context.WithTimeout(t.Context(), size(4*time.Minute, 10*time.Minute))
	defer cancel()
	args := [][]string{{"--summary-json", "a.json"}, {"--summary-json", "b.json"}}
	if qc.reserve > 0 {
		args[1] = append(args[1], "--reserve", fmt.Sprintf("%d%%", qc.reserve))
	}
	var runs []sharedRunner
	for _, a := range args {
		cmd, stdout, stderr := w.command(ctx, append([]string{"run", "--config", w.config}, a...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, sharedRunner{cmd, stdout, stderr})
	}
	for i, r := range runs {
		r.cmd.Wait()
		noPanic(t, r.stdout.String()+r.stderr.String())
		if code := r.cmd.ProcessState.ExitCode(); code != exitOK {
			t.Fatalf("run %d: exit %d\n%s", i, code, clip(r.stderr.String(), 4000))
		}
	}
	checkExactlyOnce(t, w.sim, want.valid)
	reserving := readSummary(t, w.path("b.json")).RunID
	runOf := map[string]string{}
	for _, e := range w.export() {
		runOf[e.Key.OrderID] = e.RunID
	}
	perWindow, reservingPer := map[int64]int{}, map[int64]int{}
	tooMany := 0
	var first, last time.Time
	for _, q := range w.sim.Requests() {
		if q.Method != "POST" {
			continue
		}
		if q.Status == 429 {
			tooMany++
		}
		win := q.Time.UnixNano() / int64(window)
		perWindow[win]++
		if runOf[q.OrderID] == reserving {
			reservingPer[win]++
		}
		if first.IsZero() || q.Time.Before(first) {
			first = q.Time
		}
		if q.Time.After(last) {
			last = q.Time
		}
	}
	if tooMany > 0 {
		t.Errorf("the simulator answered %d requests with 429", tooMany)
	}
	ceiling := quota * (100 - qc.reserve) / 100
	for win, n := range perWindow {
		at := time.Unix(0, win*int64(window)).UTC().Format(time.TimeOnly)
		if n > quota {
			t.Errorf("window %s: %d requests, over the quota %d", at, n, quota)
		}
		if m := reservingPer[win]; m > ceiling {
			t.Errorf("window %s: the run with --reserve %d%% sent %d requests, over %d", at, qc.reserve, m, ceiling)
		}
	}
	full, sent := 0, 0 // the windows wholly inside the runs
	for win, n := range perWindow {
		start := time.Unix(0, win*int64(window))
		if start.After(first) && start.Add(window).Before(last) {
			full++
			sent += n
		}
	}
	rate := "no whole window"
	if full > 0 {
		rate = fmt.Sprintf("%.0f%% of the quota in the %d whole windows", 100*float64(sent)/float64(full*quota), full)
	}
	note(t, "shared quota (%s ledger), two runs of one account at once, each configured with the whole quota (%d per %s), the second with --reserve %d%%: %d requests, %d with 429, most in one window %d, most of the second run in one window %d; %s; each of %d valid orders accepted once",
		backendName(backend), quota, window, qc.reserve, posts(w.sim), tooMany, maxOf(perWindow), maxOf(reservingPer), rate, len(want.valid))
}

func maxOf(m map[int64]int) int {
	n := 0
	for _, v := range m {
		n = max(n, v)
	}
	return n
}

// TestParseReserve: --reserve takes a percentage or a fraction, needs a
// shared ledger (PostgreSQL or SQLite), and names itself when it is
// wrong.
func TestParseReserve(t *testing.T) {
	shared := ledger.Config{URL: "postgres://u@127.0.0.1/l", Shared: true}
	for _, tc := range []struct {
		in   string
		lc   ledger.Config
		want float64
		err  string
	}{
		{"", ledger.Config{}, 0, ""},
		{"20%", shared, 0.2, ""},
		{"0.25", shared, 0.25, ""},
		{" 0 % ", shared, 0, ""},
		{"100%", shared, 0, "less than all"},
		{"-5%", shared, 0, "at least 0"},
		{"lots", shared, 0, `"lots"`},
		{"20%", ledger.Config{URL: "postgres://u@127.0.0.1/l"}, 0, "ledger.shared"},
		{"20%", ledger.Config{Path: "l.db", Shared: true}, 0.2, ""},
		{"20%", ledger.Config{Path: "l.db"}, 0, "ledger.shared"},
	} {
		got, err := parseReserve(tc.in, tc.lc)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseReserve(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "--reserve")):
			t.Errorf("parseReserve(%q) = %v, %v; want an error about --reserve saying %q", tc.in, got, err, tc.err)
		}
	}
}

// TestSharedLedgerGoesAway stops the database server while two runs share
// it: both stop sending and exit 1 naming the ledger; once the server is
// back, a run finishes the work (the dead runs' claims lapse), and every
// valid order is accepted exactly once.
func TestSharedLedgerGoesAway(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 5 * time.Millisecond}}},
		cfgOpts{Rate: "100/s", Workers: 4, LedgerExtra: "  shared: true\n  lease: 2s"})
	srv := w.usePostgres()
	var files []string
	for i := range 2 {
		files = append(files, w.gen(fmt.Sprintf("in/part-%d.csv", i), "-rows", "800", "-seed", fmt.Sprint(31+i),
			"-first-id", fmt.Sprint(100001+100000*i)))
	}
	want := expectCSV(t, files...)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var runs []sharedRunner
	for range 2 {
		cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs = append(runs, sharedRunner{cmd, stdout, stderr})
	}
	if !waitFor(time.Minute, func() bool { return len(acceptedIDs(w.sim)) >= 40 }) {
		t.Fatal("the runs accepted fewer than 40 orders in a minute")
	}
	srv.Stop()
	for i, r := range runs {
		r.cmd.Wait()
		out := r.stdout.String() + r.stderr.String()
		noPanic(t, out)
		if code := r.cmd.ProcessState.ExitCode(); code != exitFatal || !strings.Contains(r.stderr.String(), "ledger postgres://") {
			t.Fatalf("run %d, whose database went away: exit %d, want 1 naming the ledger\n%s", i, code, clip(r.stderr.String(), 3000))
		}
	}
	if len(acceptedIDs(w.sim)) == len(want.valid) {
		t.Fatal("the runs finished before the database went away")
	}
	sentAtStop := len(w.sim.Requests())
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, ledger.URLEnv+"="+srv.URL("ledger")) // the port may have changed
	w.ledger = srv.URL("ledger")
	w.mustRun(exitOK)
	if len(w.sim.Requests()) <= sentAtStop {
		t.Error("the run after the restart sent nothing")
	}
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
}

// TestSharedSQLiteLedger: while a run shares a SQLite ledger
// (ledger.shared, here with --reserve, which a SQLite ledger takes), a
// run of the same ledger that does not share exits 4 naming the shared
// run; the shared run says nothing against SQLite and finishes the
// export, every valid order accepted once.
func TestSharedSQLiteLedger(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 5 * time.Millisecond}}},
		cfgOpts{Rate: "10/s", Workers: 2, LedgerExtra: "  shared: true"})
	want := expectCSV(t, w.gen("in/orders.csv", "-rows", "300", "-seed", "5"))
	b, err := os.ReadFile(w.config)
	if err != nil {
		t.Fatal(err)
	}
	alone := w.path("alone.yaml") // the same without ledger.shared
	unshared := strings.Replace(string(b), "  shared: true\n", "", 1)
	if unshared == string(b) {
		t.Fatalf("no ledger.shared in the configuration:\n%s", b)
	}
	if err := os.WriteFile(alone, []byte(unshared), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd, _, stderr := w.command(ctx, "run", "--config", w.config, "--reserve", "20%")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Some 55 orders at 8 a second (10/s less the reserve): the run alone
	// starts seconds before the shared one ends.
	if !waitFor(time.Minute, func() bool { return len(acceptedIDs(w.sim)) >= 5 }) {
		t.Fatal("the shared run accepted fewer than 5 orders in a minute")
	}
	r := w.exec("run", "--config", alone)
	if r.code != exitLocked || !strings.Contains(r.stderr, "sharing it with runs of ledger.shared") {
		t.Errorf("a run alone beside a shared one: want exit 4 naming the shared run\n%s", r)
	}
	cmd.Wait()
	noPanic(t, stderr.String())
	if code := cmd.ProcessState.ExitCode(); code != exitOK {
		t.Fatalf("the shared run: exit %d\n%s", code, clip(stderr.String(), 4000))
	}
	for _, s := range []string{"PostgreSQL", "one run at a time", "level=WARN"} {
		if strings.Contains(stderr.String(), s) {
			t.Errorf("the shared run on SQLite says %q:\n%s", s, clip(stderr.String(), 4000))
		}
	}
	checkExactlyOnce(t, w.sim, want.valid)
}
