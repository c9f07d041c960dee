package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

// modKiller kills `corrections apply` from inside the simulator's handler
// at the target-th PUT or DELETE of the Actions resource: before the
// simulator takes it, or once its answer is written (while the binary
// records it).
type modKiller struct {
	mu     sync.Mutex
	proc   *os.Process
	target int
	after  bool
	n      int
}

func (k *modKiller) arm(p *os.Process, target int, after bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc, k.target, k.after, k.n = p, target, after, 0
}

func (k *modKiller) fire(r *http.Request) (bool, bool, *os.Process) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil || (r.Method != http.MethodPut && r.Method != http.MethodDelete) {
		return false, false, nil
	}
	k.n++
	if k.n != k.target {
		return false, false, nil
	}
	p := k.proc
	k.proc = nil
	return true, k.after, p
}

func (k *modKiller) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fire, after, p := k.fire(r)
		if fire && !after {
			_ = p.Kill()
		}
		h.ServeHTTP(w, r)
		if fire && after {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			_ = p.Kill()
		}
	})
}

// TestCorrectionCrashSafety kills `corrections apply` with SIGKILL at
// seeded random PUTs and DELETEs, before and after the simulator took
// them, while the simulator drops answers after taking changes and
// answers 5xx: a chain of applies ends with every correction applied
// exactly once, in impact and in the ledger.
func TestCorrectionCrashSafety(t *testing.T) {
	n, kills := size(24, 120), size(4, 12)
	for seed := uint64(1); seed <= uint64(size(2, 5)); seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) { correctionCrashChain(t, seed, n, kills) })
	}
}

func correctionCrashChain(t *testing.T, seed uint64, n, kills int) {
	rnd := rand.New(rand.NewPCG(seed, 7))
	k := &modKiller{}
	w := newWorkspace(t, simOpts{cfg: sim.Config{Seed: seed}, wrap: k.wrap}, cfgOpts{})
	b, _ := os.ReadFile(w.config)
	if err := os.WriteFile(w.config, []byte(strings.Replace(string(b), "      reason: order cancelled", correctionFilters, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	// Each order changes one way: a partial return, a new price, or a
	// cancellation; want is impact's amount after (or REVERSED).
	var first, second []orderLine
	want := map[string]string{}
	for i := range n {
		id := fmt.Sprint(5000 + i)
		first = append(first, orderLine{id, "paid", "SKU-A", "3", "10.00"}, orderLine{id, "paid", "SKU-B", "1", "4.00"})
		switch i % 3 {
		case 0:
			second = append(second, orderLine{id, "paid", "SKU-A", "1", "10.00"}, orderLine{id, "paid", "SKU-B", "1", "4.00"})
			want["berlin-"+id] = "14.00"
		case 1:
			second = append(second, orderLine{id, "paid", "SKU-A", "3", "9.00"}, orderLine{id, "paid", "SKU-B", "1", "4.00"})
			want["berlin-"+id] = "31.00"
		default:
			second = append(second, orderLine{id, "cancelled", "SKU-A", "3", "10.00"}, orderLine{id, "cancelled", "SKU-B", "1", "4.00"})
			want["berlin-"+id] = "REVERSED"
		}
	}
	writeExport(t, w, "orders_1.csv", first)
	w.mustRun(0)
	w.sim.Advance(time.Minute)
	writeExport(t, w, "orders_2.csv", second)
	w.mustRun(exitAttention) // finds the corrections, applies none
	w.sim.SetFaults(sim.Faults{DropAfterRate: 0.15, ErrorRate: 0.1})

	killed, done := 0, false
	for attempt := 0; attempt < kills+20 && !done; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd, stdout, stderr := w.command(ctx, "corrections", "apply", "--config", w.config, "--max-share", "100%")
		if err := cmd.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		if killed < kills {
			k.arm(cmd.Process, 1+rnd.IntN(max(n/3, 1)), rnd.IntN(2) == 0)
		}
		err := cmd.Wait()
		cancel()
		k.arm(nil, 0, false)
		noPanic(t, stdout.String()+stderr.String())
		switch {
		case cmd.ProcessState.ExitCode() == -1:
			killed++
		case err == nil:
			done = true
		case cmd.ProcessState.ExitCode() != exitAttention:
			t.Fatalf("corrections apply: %v\n%s\n%s", err, stdout, stderr)
		}
	}
	if !done {
		t.Fatalf("no apply finished with every correction applied after %d kills", killed)
	}
	w.sim.SetFaults(sim.Faults{})
	// Exactly once: one change taken per order, and impact's state.
	taken := map[string]int{}
	for _, m := range w.sim.Modifications() {
		taken[m.OrderID]++
	}
	for id, st := range want {
		a := action(t, w, id)
		got := a["Amount"]
		if st == "REVERSED" {
			got = a["State"]
		}
		if taken[id] != 1 || got != st {
			t.Errorf("%s: %d changes taken, %s, want one, %s", id, taken[id], got, st)
		}
		cs, e := ledgerCorrections(t, w, id)
		if len(cs) != 1 || cs[0].State != pipeline.CorrectionApplied || (st != "REVERSED" && e.State != pipeline.StateAccepted) {
			t.Errorf("%s: ledger %+v, entry %s", id, cs, e.State)
		}
	}
	note(t, "seed %d: %d orders (a third each partly returned, repriced, cancelled), corrections applied under 15%% answers dropped after the change was taken and 10%% 5xx; %d applies SIGKILLed at a PUT or DELETE (before or after the simulator took it), then one finished: every correction taken exactly once by impact and applied in the ledger", seed, n, killed)
}
