package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"convpipe/sim"
)

// sharedRunner is one `convpipe run` of a shared ledger.
type sharedRunner struct {
	cmd            *exec.Cmd
	stdout, stderr *bytes.Buffer
}

// TestSharedLedgerRunners starts two runs at once on one export and one
// PostgreSQL ledger (ledger.shared): they split its objects between them
// and every valid order is accepted exactly once. In "kill", one of them
// is SIGKILLed while both send: the other takes over the killed run's
// object once its claim's lease lapses, sends again as maybe sent what the
// killed run was sending (the simulator refuses a duplicate of what it
// had accepted, and the sink settles it as accepted), and finishes the
// export alone.
func TestSharedLedgerRunners(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := "both-finish"
		if kill {
			name = "one-killed"
		}
		t.Run(name, func(t *testing.T) { testSharedRunners(t, kill) })
	}
}

func testSharedRunners(t *testing.T, kill bool) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 5 * time.Millisecond}}},
		cfgOpts{Rate: "100/s", Workers: 4, LedgerExtra: "  shared: true\n  lease: 2s"})
	w.usePostgres()
	var files []string
	for i := range 4 {
		files = append(files, w.gen(fmt.Sprintf("in/part-%d.csv", i), "-rows", "500", "-seed", fmt.Sprint(11+i),
			"-first-id", fmt.Sprint(100001+100000*i)))
	}
	want := expectCSV(t, files...)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var runs [2]sharedRunner
	for i := range runs {
		cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		runs[i] = sharedRunner{cmd, stdout, stderr}
	}
	if kill {
		if !waitFor(time.Minute, func() bool { return len(acceptedIDs(w.sim)) >= 150 }) {
			t.Fatal("the runs accepted fewer than 150 orders in a minute")
		}
		if err := runs[0].cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
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
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)
	byRun := map[string]int{}
	for _, e := range w.export("--state", "accepted") {
		byRun[e.RunID]++
	}
	if len(byRun) != 2 {
		t.Errorf("accepted orders by run: %v; want both runs to have sent some", byRun)
	}
	note(t, "shared PostgreSQL ledger, two runs at once (%s): %d orders (%d valid) in 4 objects, each valid order accepted once; accepted by run: %v; %d duplicate refusals of ambiguous sends",
		map[bool]string{false: "both finish", true: "one SIGKILLed mid-run, the other takes over after the 2s lease"}[kill],
		want.total(), len(want.valid), byRun, w.sim.Duplicates())
}
