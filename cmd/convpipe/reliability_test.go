package main

// The reliability suite (issue 6) over the built binary: crash safety
// under SIGKILL, fault storms, the bad input corpus (testdata/bad, plus
// large files generated here), secrets and personal data, storage faults
// and ambiguous sends. `make test` runs it at a small size;
// CONVPIPE_RELIABILITY=full (`make reliability`) at full size, and then
// TestMain writes the figures to docs/reliability.md.

import (
	"bytes"
	"crypto/sha1"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"convpipe/pipeline"
	"convpipe/sim"
)

// fullSize reports whether the suite runs at full size.
func fullSize() bool { return os.Getenv("CONVPIPE_RELIABILITY") == "full" }

// size picks the small or the full figure.
func size[T any](small, full T) T {
	if fullSize() {
		return full
	}
	return small
}

// killer kills the binary from inside the simulator's handler: when the
// target-th conversion request of a run arrives (before the simulator
// handles it), or once its answer has been written (while the binary
// records it).
type killer struct {
	mu     sync.Mutex
	proc   *os.Process
	target int
	after  bool
	pause  time.Duration
	n      int
	fired  bool
}

func (k *killer) arm(p *os.Process, target int, after bool, pause time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc, k.target, k.after, k.pause, k.n, k.fired = p, target, after, pause, 0, false
}

func (k *killer) disarm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.proc, k.target = nil, 0
}

// count counts a request and says whether it is the one to kill at.
func (k *killer) count(r *http.Request) (fire, after bool, pause time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Method != http.MethodPost || k.proc == nil || k.fired {
		return false, false, 0
	}
	k.n++
	if k.n < k.target {
		return false, false, 0
	}
	k.fired = true
	return true, k.after, k.pause
}

func (k *killer) kill() {
	k.mu.Lock()
	p := k.proc
	k.mu.Unlock()
	if p != nil {
		_ = p.Kill()
	}
}

func (k *killer) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fire, after, pause := k.count(r)
		if fire && !after {
			k.kill()
		}
		h.ServeHTTP(w, r)
		if fire && after {
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			time.Sleep(pause)
			k.kill()
		}
	})
}

// crashScenario is one export sent through a chain of killed runs.
type crashScenario struct {
	name     string
	rows     int
	kills    int
	latency  time.Duration
	rate     string
	workers  int
	scatter  bool
	parquet  bool
	twoFiles bool
	budget   string
	// postgres keeps the ledger in a real PostgreSQL instead of SQLite.
	postgres bool
}

// TestCrashSafety kills runs with SIGKILL at seeded random moments (on a
// timer: while starting, reading, sending or recording; at the arrival of
// a chosen request; right after the simulator answered, while the answer
// is being recorded), resumes each time, and checks after every kill that
// the ledger knows every order the simulator accepted, and at the end
// that every valid order was accepted exactly once and the ledger holds
// no pending entry and adds up to the export.
func TestCrashSafety(t *testing.T) {
	scenarios := size([]crashScenario{
		{name: "csv-scattered", rows: 1500, kills: 6, latency: 5 * time.Millisecond, rate: "150/s", workers: 4, scatter: true, budget: "256KiB"},
		{name: "csv-postgres-ledger", rows: 1000, kills: 5, latency: 5 * time.Millisecond, rate: "150/s", workers: 4, postgres: true},
	}, []crashScenario{
		{name: "csv-scattered-postgres-ledger", rows: 6000, kills: 6, latency: 10 * time.Millisecond, rate: "200/s", workers: 4, scatter: true, budget: "256KiB", postgres: true},
		{name: "csv-sorted-no-latency", rows: 6000, kills: 6, rate: "200/s", workers: 4},
		{name: "csv-scattered-spilling", rows: 6000, kills: 6, latency: 10 * time.Millisecond, rate: "200/s", workers: 4, scatter: true, budget: "256KiB"},
		{name: "parquet", rows: 6000, kills: 6, latency: 5 * time.Millisecond, rate: "200/s", workers: 4, parquet: true},
		{name: "csv-and-parquet-8-workers", rows: 6000, kills: 6, latency: 20 * time.Millisecond, rate: "300/s", workers: 8, twoFiles: true},
	})
	totalKills := 0
	moments := map[string]int{}
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			k, m := crashChain(t, sc, uint64(1000+i))
			totalKills += k
			for what, n := range m {
				moments[what] += n
			}
		})
	}
	if min := size(5, 20); totalKills < min && !t.Failed() {
		t.Errorf("only %d runs were killed, want at least %d", totalKills, min)
	}
	var parts []string
	for what, n := range moments {
		parts = append(parts, fmt.Sprintf("%s: %d", what, n))
	}
	sort.Strings(parts)
	note(t, "SIGKILLs in total: %d (%s)", totalKills, strings.Join(parts, "; "))
}

// crashChain runs one scenario and returns how many runs it killed and at
// which moments.
func crashChain(t *testing.T, sc crashScenario, seed uint64) (int, map[string]int) {
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed, seed*7919))
	k := &killer{}
	w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: sc.latency, LatencyJitter: sc.latency / 2}}, wrap: k.wrap},
		cfgOpts{Rate: sc.rate, Workers: sc.workers, MemoryBudget: sc.budget, Grace: "5s"})
	if sc.postgres {
		w.usePostgres()
	}
	genArgs := []string{"-rows", fmt.Sprint(sc.rows), "-seed", fmt.Sprint(seed)}
	if sc.scatter {
		genArgs = append(genArgs, "-scatter")
	}
	var want orders
	switch {
	case sc.parquet:
		w.gen("in/orders.parquet", append(genArgs, "-format", "parquet")...)
		want = expectCSV(t, w.gen("expect.csv", genArgs...))
	case sc.twoFiles:
		second := append(genArgs, "-first-id", "500001", "-start", secondStart)
		a := w.gen("in/a.csv", genArgs...)
		w.gen("in/b.parquet", append(second, "-format", "parquet")...)
		want = expectCSV(t, a, w.gen("expect-b.csv", second...))
	default:
		want = expectCSV(t, w.gen("in/orders.csv", genArgs...))
	}

	moments := map[string]int{}
	kills := 0
	finished := false // a run of the chain ended before its kill
	for i := 0; i < sc.kills; i++ {
		ctx := t.Context()
		cmd, stdout, stderr := w.command(ctx, "run", "--config", w.config)
		postsBefore := posts(w.sim)
		spillBefore := countFiles(t, w.path("spill"))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var moment string
		var momentMu sync.Mutex
		var timer *time.Timer
		// killNow kills the run and says at which moment it was.
		killNow := func(what string) {
			momentMu.Lock()
			defer momentMu.Unlock()
			inflight := 0
			for _, q := range w.sim.Requests() {
				if q.Status == sim.StatusInFlight {
					inflight++
				}
			}
			defer func() { _ = cmd.Process.Kill() }()
			switch {
			case what != "":
				moment = what
			case posts(w.sim) == postsBefore:
				moment = "timer, before the first request (starting, reading, grouping)"
			case inflight > 0:
				moment = "timer, requests in flight"
			default:
				moment = "timer, between requests (ledger writes)"
			}
		}
		exited := make(chan struct{})
		mode := rng.IntN(3)
		if i == 0 {
			mode = 3 // the first kill of a chain falls while reading
		}
		switch mode {
		case 0:
			// A random moment: starting, reading, sending or recording.
			d := time.Duration(5+rng.IntN(size(300, 600))) * time.Millisecond
			timer = time.AfterFunc(d, func() { killNow("") })
		case 1:
			k.arm(cmd.Process, 1+rng.IntN(20), false, 0)
			moment = "at a request's arrival, before the simulator recorded it"
		case 2:
			k.arm(cmd.Process, 1+rng.IntN(20), true, time.Duration(rng.IntN(3000))*time.Microsecond)
			moment = "after the simulator answered, while the answer is recorded"
		case 3:
			if sc.budget == "" {
				d := time.Duration(2+rng.IntN(40)) * time.Millisecond
				timer = time.AfterFunc(d, func() { killNow("") })
				break
			}
			// Grouping spills rows to temporary files: kill when the
			// first appears.
			go func() {
				for {
					select {
					case <-exited:
						return
					case <-time.After(time.Millisecond):
					}
					if countFiles(t, w.path("spill")) > spillBefore {
						killNow("while reading, grouping spilled rows to disk")
						return
					}
					// A spill that came and went between two looks (a
					// busy machine can sleep this loop for longer than
					// the files live) is missed: kill at the first
					// request instead of letting the run finish.
					if posts(w.sim) > postsBefore {
						killNow("")
						return
					}
				}
			}()
		}
		err := cmd.Wait()
		close(exited)
		if timer != nil {
			timer.Stop()
		}
		k.disarm()
		noPanic(t, stdout.String()+stderr.String())
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			// The run ended before its moment came.
			if err != nil && cmd.ProcessState.ExitCode() != exitOK {
				t.Fatalf("run %d: %v\n%s\n%s", i, err, stdout, clip(stderr.String(), 4000))
			}
			t.Logf("run %d finished before it was killed", i)
			finished = true
			break
		}
		kills++
		momentMu.Lock()
		moments[moment]++
		momentMu.Unlock()

		// Nothing lost: every order the simulator accepted is in the
		// ledger, as pending (sent, answer not recorded) or accepted.
		known := map[string]pipeline.State{}
		if _, err := os.Stat(w.ledger); err == nil || sc.postgres {
			r := w.exec("ledger", "export", "--ledger", w.ledger, "--format", "jsonl")
			switch {
			case r.code != 0 && strings.Contains(r.stderr, "schema version 0"):
				// Killed while creating the ledger: the next run creates
				// its tables.
				moments["— of these, while the ledger file was being created"]++
			case r.code != 0:
				t.Fatalf("ledger export after kill %d: %s", i, r)
			default:
				for _, e := range w.export() {
					known[e.Key.OrderID] = e.State
				}
			}
		}
		for id := range acceptedIDs(w.sim) {
			if st := known[id]; st != pipeline.StatePending && st != pipeline.StateAccepted {
				t.Errorf("after kill %d (%s): %s was accepted by the simulator, the ledger has it as %q", i, moment, id, st)
			}
		}
		for id, st := range known {
			if st == pipeline.StateAccepted && acceptedIDs(w.sim)[id] == 0 {
				t.Errorf("after kill %d: the ledger has %s accepted, the simulator never accepted it", i, id)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}

	final := []string{"--summary-json", "final.json"}
	if finished {
		// The export was read to its end and marked done: a plain run
		// would rightly skip it as unchanged. Read it again so the
		// final counts can be checked against the export.
		final = append(final, "--all")
	}
	r := w.mustRun(exitOK, final...)
	// Spill files of killed runs stay behind: no later run removes them.
	leftover := countFiles(t, w.path("spill"))
	checkExactlyOnce(t, w.sim, want.valid)
	states := checkLedger(t, w, want)
	s := readSummary(t, w.path("final.json"))
	if s.Total.Orders != int64(want.total()) || s.Total.AlreadySent+s.Total.Accepted != int64(len(want.valid)) || s.Total.Skipped != int64(len(want.skipped)) {
		t.Errorf("final run's counts do not add up to the export (%d orders, %d valid, %d cancelled): %+v\n%s",
			want.total(), len(want.valid), len(want.skipped), s.Total, r)
	}
	maybe := 0
	for _, e := range w.export("--state", "accepted") {
		if e.MaybeSent {
			maybe++
		}
	}
	dups := w.sim.Duplicates()
	if dups > maybe || dups > kills*sc.workers {
		t.Errorf("%d duplicate refusals at the simulator; only %d orders were ambiguous (%d kills × %d workers at most)", dups, maybe, kills, sc.workers)
	}
	files := 1
	if sc.twoFiles {
		files = 2
	}
	note(t, "%s: %d × %d rows, %d orders (%d valid, %d cancelled); %d runs killed, then a final resume; %d requests, %d conversions accepted (each once), %d duplicate refusals of ambiguous sends settled as accepted; ledger: %d accepted, %d skipped, 0 pending; %d spill files of killed runs left in group.temp_dir after the final run; %s",
		sc.name, files, sc.rows, want.total(), len(want.valid), len(want.skipped), kills, posts(w.sim), len(w.sim.Accepted()), dups,
		states[pipeline.StateAccepted], states[pipeline.StateSkipped], leftover, time.Since(start).Round(100*time.Millisecond))
	return kills, moments
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return nil
	})
	return n
}

// TestFaultStorm sends through a simulator that answers 30% of requests
// with 5xx, drops 5% of connections before and 2% after recording, starts
// 429 bursts with Retry-After and has latency spikes: every valid order is
// accepted once, the run ends within its retry budget (sink.max_attempts
// 25) and the summary, the ledger and the simulator agree on the counts.
func TestFaultStorm(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend+"-ledger", func(t *testing.T) { testFaultStorm(t, backend) })
	}
}

// testFaultStorm is TestFaultStorm with the ledger on backend.
func testFaultStorm(t *testing.T, backend string) {
	faults := sim.Faults{
		Latency: 2 * time.Millisecond, LatencyJitter: 2 * time.Millisecond,
		ErrorRate: 0.30, DropRate: 0.05, DropAfterRate: 0.02,
		TooManyRate: 0.01, TooManyBurst: 3, RetryAfter: time.Second,
		SpikeRate: 0.03, Spike: size(300*time.Millisecond, 2*time.Second),
	}
	w := newWorkspace(t, simOpts{cfg: sim.Config{Seed: 42, Faults: faults}},
		cfgOpts{Rate: "300/s", Workers: 4, MaxAttempts: 25, RequestTimeout: "10s", BackoffMax: "100ms"})
	if backend == "postgres" {
		w.usePostgres()
	}
	want := expectCSV(t, w.gen("in/orders.csv", "-rows", fmt.Sprint(size(700, 4500)), "-seed", "99"))

	r := w.mustRun(exitOK, "--summary-json", "s.json", "--metrics-file", "m.prom")
	checkExactlyOnce(t, w.sim, want.valid)
	checkLedger(t, w, want)

	s := readSummary(t, w.path("s.json"))
	var attempts, maxAttempts, maybe int
	for _, e := range w.export("--state", "accepted") {
		attempts += e.Attempts
		maxAttempts = max(maxAttempts, e.Attempts)
		if e.MaybeSent {
			maybe++
		}
		if e.Attempts > 25 {
			t.Errorf("%s took %d attempts, over sink.max_attempts 25", e.Key, e.Attempts)
		}
	}
	counts := w.sim.Counts()
	var fivexx, ambiguous int
	for st, n := range counts {
		if st >= 500 {
			fivexx += n
		}
	}
	for _, q := range w.sim.Requests() {
		if q.Status == sim.StatusDropped && q.Recorded {
			ambiguous++
		}
	}
	if s.Total.Accepted != int64(len(want.valid)) || s.Total.Failed != 0 || s.Total.Rejected != 0 {
		t.Errorf("summary: %+v, want %d accepted and nothing else", s.Total, len(want.valid))
	}
	if s.Total.Requests != int64(posts(w.sim)) || int64(attempts) != s.Total.Requests {
		t.Errorf("requests: summary %d, ledger attempts %d, simulator %d", s.Total.Requests, attempts, posts(w.sim))
	}
	if !strings.Contains(readFile(t, w.path("m.prom")), fmt.Sprintf("convpipe_last_run_requests %d\n", posts(w.sim))) {
		t.Error("metrics file: requests differ from the simulator's")
	}
	if dups := w.sim.Duplicates(); dups > ambiguous || dups > maybe {
		t.Errorf("%d duplicates at the simulator, but only %d ambiguous drops (%d maybe-sent entries)", dups, ambiguous, maybe)
	}
	if counts[http.StatusTooManyRequests] == 0 || fivexx == 0 || counts[sim.StatusDropped] == 0 {
		t.Errorf("the storm did not happen: %v", counts)
	}
	note(t, "%s ledger: %d orders (%d valid): %d requests: %d answered 5xx, %d dropped (%d of them after recording), %d answered 429; %d duplicate refusals settled as accepted; every valid order accepted once; at most %d attempts for one order (budget 25); summary, ledger attempts and simulator agree on %d requests; %s (spikes %s, Retry-After 1s)",
		map[string]string{"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend], want.total(), len(want.valid), posts(w.sim), fivexx, counts[sim.StatusDropped], ambiguous, counts[http.StatusTooManyRequests],
		w.sim.Duplicates(), maxAttempts, s.Total.Requests, r.elapsed.Round(100*time.Millisecond), faults.Spike)
}

// badCase is one file of the bad input corpus.
type badCase struct {
	name string
	// files are copied from testdata/bad or made by make into in/.
	files []string
	make  func(t *testing.T, w *workspace)
	code  int
	// validateCode is validate's exit code when it differs from code.
	validateCode *int
	// valid are the OrderIds that must be accepted.
	valid []string
	// validate are strings `convpipe validate` must print (file:line:
	// Field "value": text).
	validate []string
	// keys are ledger keys that must be recorded as invalid or rejected,
	// each naming its file (and line); field, when set, is the field their
	// first message must name.
	keys  []string
	field map[string]string
}

// TestBadInput runs every file of the bad input corpus through `convpipe
// run` and `convpipe validate`: a clear error naming file, row and field;
// no panic; the valid rows of the same file (or of a good file beside an
// unreadable one) accepted; exit code 3.
func TestBadInput(t *testing.T) {
	start := time.Now()
	row := func(id string, quantity, price string) string {
		return fmt.Sprintf("%s,berlin,2026-11-21 09:14:02,paid,C%s,user%s@example.com,clk_%s,,EUR,SKU-1,Anvil,tools,%s,%s,0.00\n", id, id, id, id, quantity, price)
	}
	header := "order_id,store,created_at,status,customer_id,email,click_id,promo_code,currency,sku,product_name,category,quantity,unit_price,discount\n"
	a64, b65 := "berlin-"+strings.Repeat("a", 57), "berlin-"+strings.Repeat("b", 58)
	cases := []badCase{
		{name: "truncated CSV", files: []string{"truncated.csv"}, code: exitAttention, valid: []string{"berlin-1", "berlin-2"},
			validate: []string{`in/truncated.csv:4: extraneous or missing " in quoted-field`}, keys: []string{"!row/in/truncated.csv:4"}},
		{name: "wrong column counts", files: []string{"columns.csv"}, code: exitAttention, valid: []string{"berlin-11", "berlin-13"},
			validate: []string{"in/columns.csv:3: 5 fields, the header has 15", "in/columns.csv:5: 17 fields, the header has 15"},
			keys:     []string{"!row/in/columns.csv:3", "!row/in/columns.csv:5"}},
		{name: "unbalanced quotes", files: []string{"quotes.csv"}, code: exitAttention, valid: []string{"berlin-21", "berlin-23"},
			validate: []string{`in/quotes.csv:3: extraneous or missing " in quoted-field`}, keys: []string{"!row/in/quotes.csv:3"}},
		{name: "invalid UTF-8", files: []string{"utf8.csv"}, code: exitAttention, valid: []string{"berlin-31", "berlin-33"},
			validate: []string{"in/utf8.csv:3: product_name: not UTF-8"}, keys: []string{"!row/in/utf8.csv:3"},
			field: map[string]string{"!row/in/utf8.csv:3": "product_name"}},
		{name: "10 MB field", code: exitAttention, valid: []string{"berlin-41", "berlin-43"},
			make: func(t *testing.T, w *workspace) {
				writeFile(t, w.path("in/bigfield.csv"), header+row("41", "1", "10.00")+row("42", "1", strings.Repeat("9", 10<<20))+row("43", "1", "10.00"))
			},
			// Over source.csv.max_record_bytes (default 1 MiB): the record
			// is cut off before the CSV parser holds it.
			validate: []string{"in/bigfield.csv:3: record of more than 1 MiB (source.csv.max_record_bytes)"}, keys: []string{"!row/in/bigfield.csv:3"}},
		{name: "binary file named .csv", files: []string{"binary.csv", "good.csv"}, code: exitAttention, valid: []string{"berlin-111", "berlin-112"},
			validate: []string{"in/binary.csv: binary data"}, keys: []string{"!file/in/binary.csv"}},
		{name: "truncated Parquet", files: []string{"good.csv"}, code: exitAttention, valid: []string{"berlin-111", "berlin-112"},
			make: func(t *testing.T, w *workspace) {
				b := []byte(readFile(t, w.gen("whole.parquet", "-rows", "200", "-format", "parquet")))
				writeFile(t, w.path("in/truncated.parquet"), string(b[:len(b)*2/3]))
			},
			validate: []string{"in/truncated.parquet: not Parquet or truncated"}, keys: []string{"!file/in/truncated.parquet"}},
		{name: "corrupt Parquet", files: []string{"good.csv"}, code: exitAttention, valid: []string{"berlin-111", "berlin-112"},
			make: func(t *testing.T, w *workspace) {
				b := []byte(readFile(t, w.gen("whole.parquet", "-rows", "200", "-format", "parquet")))
				for i := len(b) / 3; i < len(b)/3+64; i++ {
					b[i] ^= 0x5a
				}
				writeFile(t, w.path("in/corrupt.parquet"), string(b))
			},
			validate: []string{"in/corrupt.parquet: "}, keys: []string{"!file/in/corrupt.parquet"}},
		// An empty object is zero rows, not an error (issue 7, point 9).
		{name: "empty file", files: []string{"empty.csv", "good.csv"}, code: exitOK, valid: []string{"berlin-111", "berlin-112"}},
		{name: "header alone", files: []string{"header_only.csv", "good.csv"}, code: exitOK, valid: []string{"berlin-111", "berlin-112"}},
		{name: "mapped column missing", files: []string{"missing_column.csv", "good.csv"}, code: exitAttention, valid: []string{"berlin-111", "berlin-112"},
			validate: []string{`in/missing_column.csv: header does not fit the mapping: column "click_id" (fields.ClickId) is missing`},
			keys:     []string{"!file/in/missing_column.csv"}},
		{name: "duplicate header names", files: []string{"duplicate_header.csv", "good.csv"}, code: exitAttention, valid: []string{"berlin-111", "berlin-112"},
			validate: []string{`in/duplicate_header.csv:1: header: duplicate column names "sku"`}, keys: []string{"!file/in/duplicate_header.csv"}},
		{name: "numbers", files: []string{"numbers.csv"}, code: exitAttention, valid: []string{"berlin-73", "berlin-74"},
			validate: []string{`in/numbers.csv:2: ItemQuantity1 "fifty": integer: not a number`, `in/numbers.csv:3: ItemPrice1 "1.234,56": number: not a number`},
			keys:     []string{"12345/berlin-71", "12345/berlin-72"},
			field:    map[string]string{"12345/berlin-71": "ItemQuantity1", "12345/berlin-72": "ItemPrice1"}},
		{name: "dates", files: []string{"dates.csv"}, code: exitAttention, valid: []string{"berlin-81"},
			validate: []string{`in/dates.csv:3: EventDate "yesterday"`, `in/dates.csv:4: EventDate "2026-13-45 25:61:00"`, `in/dates.csv:5: EventDate "2099-01-01T10:00:00+01:00": in the future`},
			keys:     []string{"12345/berlin-82", "12345/berlin-83", "12345/berlin-84"},
			field:    map[string]string{"12345/berlin-82": "EventDate", "12345/berlin-83": "EventDate", "12345/berlin-84": "EventDate"}},
		{name: "negative quantities", files: []string{"negative.csv"}, code: exitAttention, valid: []string{"berlin-92"},
			validate: []string{`in/negative.csv:2: ItemQuantity1 "-2": must be a whole number greater than 0`, `in/negative.csv:4: ItemQuantity1 "0"`},
			keys:     []string{"12345/berlin-91", "12345/berlin-93"}, field: map[string]string{"12345/berlin-91": "ItemQuantity1"}},
		{name: "10,000 lines in one order", code: exitAttention, valid: []string{"berlin-122"},
			make: func(t *testing.T, w *workspace) {
				var b strings.Builder
				b.WriteString(header)
				for range 10000 {
					b.WriteString(row("121", "1", "10.00"))
				}
				b.WriteString(row("122", "1", "10.00"))
				writeFile(t, w.path("in/bigorder.csv"), b.String())
			},
			// Over mapping.max_items (default 1,000): invalid before it is
			// sent, naming the order's first and last line.
			validate: []string{`in/bigorder.csv:2, in/bigorder.csv:10001: Items: 10000 lines: at most 1000 items per conversion (mapping.max_items)`},
			keys:     []string{"12345/berlin-121"}, field: map[string]string{"12345/berlin-121": "Items"}},
		{name: "OrderId of 65 characters", files: []string{"order_id_length.csv"}, code: exitAttention, valid: []string{a64},
			validate: []string{`in/order_id_length.csv:3: OrderId "` + b65 + `": too long: 65 characters, at most 64`},
			keys:     []string{"12345/" + b65}, field: map[string]string{"12345/" + b65: "OrderId"}},
		{name: "plain e-mail in CustomerId", files: []string{"email_customer_id.csv"}, code: exitAttention, valid: []string{"berlin-101"},
			validate: []string{`in/email_customer_id.csv:3: CustomerId "<e-mail redacted>": must not be an e-mail address`},
			keys:     []string{"12345/berlin-102"}, field: map[string]string{"12345/berlin-102": "CustomerId"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkspace(t, simOpts{}, cfgOpts{})
			for _, f := range tc.files {
				writeFile(t, w.path("in", f), readFile(t, filepath.Join("testdata", "bad", f)))
			}
			if tc.make != nil {
				tc.make(t, w)
			}
			r := w.run()
			if r.code != tc.code {
				t.Fatalf("run: want exit %d\n%s", tc.code, r)
			}
			want := map[string]bool{}
			for _, id := range tc.valid {
				want[id] = true
			}
			checkExactlyOnce(t, w.sim, want)
			if tc.code == exitAttention && !strings.Contains(r.stdout, "ATTENTION") {
				t.Errorf("the summary does not ask for attention:\n%s", r.stdout)
			}

			v := w.exec("validate", "--config", w.config, "--limit", "0")
			vcode := tc.code
			if tc.validateCode != nil {
				vcode = *tc.validateCode
			}
			if v.code != vcode {
				t.Errorf("validate: want exit %d\n%s", vcode, v)
			}
			for _, s := range tc.validate {
				if !strings.Contains(v.stdout, s) {
					t.Errorf("validate does not say %q:\n%s", s, clip(v.stdout, 4000))
				}
			}
			entries := map[string]pipeline.Entry{}
			for _, e := range w.export() {
				entries[e.Key.String()] = e
				if e.State == pipeline.StateAccepted && !want[e.Key.OrderID] {
					t.Errorf("ledger: %s accepted", e.Key)
				}
			}
			for _, key := range tc.keys {
				e, ok := entries[key]
				if !ok {
					t.Errorf("ledger: no entry %s; entries: %v", key, keysOf(entries))
					continue
				}
				if e.State != pipeline.StateInvalid && e.State != pipeline.StateRejected {
					t.Errorf("ledger: %s is %s, want invalid or rejected", key, e.State)
				}
				if len(e.Messages) == 0 || e.Messages[0].Text == "" {
					t.Errorf("ledger: %s has no message", key)
					continue
				}
				if f := tc.field[key]; f != "" && e.Messages[0].Field != f {
					t.Errorf("ledger: %s's message names field %q, want %q", key, e.Messages[0].Field, f)
				}
				if len(e.Refs) == 0 || !strings.HasPrefix(e.Refs[0].Object, "in/") || (!strings.HasPrefix(key, "!file/") && e.Refs[0].Line == 0) {
					t.Errorf("ledger: %s does not name its file and line: %+v", key, e.Refs)
				}
				if strings.HasPrefix(key, "!") && !strings.Contains(r.stderr, e.Refs[0].Object) {
					t.Errorf("the log does not name %s:\n%s", e.Refs[0].Object, clip(r.stderr, 3000))
				}
				t.Logf("%s: %s: %s %q", key, e.State, e.Messages[0].Field, clip(e.Messages[0].Text, 300))
				if tc.validateCode != nil {
					note(t, "%s: passes convpipe's checks; the API (the simulator, body limit 1 MiB) answers %d %q; recorded %s", tc.name, e.HTTPStatus, e.Messages[0].Text, e.State)
				}
			}
		})
	}
	note(t, "%d cases of bad input, each through `convpipe run` and `convpipe validate`: errors name file, line and field, valid rows accepted, no panic, exit codes as documented; %s",
		len(cases), time.Since(start).Round(100*time.Millisecond))
}

func keysOf(m map[string]pipeline.Entry) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSecretsAndPersonalData runs every command with a known token and
// known plain e-mail addresses (in their column and in wrong ones), then
// searches everything convpipe wrote — stdout, stderr in text and JSON at
// debug level, the ledger and its WAL (also as a SIGKILLed run left it),
// the lock file, the results files, the summary, the metrics and the
// dry-run payloads — for the token and the addresses: none may appear.
func TestSecretsAndPersonalData(t *testing.T) {
	w := newWorkspace(t, simOpts{cfg: sim.Config{Seed: 3, Faults: sim.Faults{ErrorRate: 0.1, DropAfterRate: 0.05}}}, cfgOpts{MaxAttempts: 25})
	gen := w.gen("in/orders.csv", "-rows", "300", "-seed", "8")
	pii := "order_id,store,created_at,status,customer_id,email,click_id,promo_code,currency,sku,product_name,category,quantity,unit_price,discount\n" +
		"1,berlin,2026-11-21 09:14:02,paid,C1,Alice.Secret@Example.com ,clk_1,,EUR,SKU-1,Anvil,tools,bob.secret@example.com,1.00,0.00\n" +
		"2,berlin,carol.secret@example.com,paid,C2,alice.secret@example.com,clk_2,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n" +
		"3,berlin,2026-11-21 09:14:02,paid,C3,alice.secret@example.com,dave.secret@example.com,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n" +
		"erin.secret@example.com,berlin,2026-11-21 09:14:02,paid,C4,alice.secret@example.com,clk_4,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n" +
		"5,berlin,2026-11-21 09:14:02,paid,C5,frank.secret@example.com,clk_5,,EUR,SKU-1,Anvil,tools,1,1.00,0.00,gina.secret@example.com\n" +
		"6,berlin,2026-11-21 09:14:02,paid,C6,h\xffarry.secret@example.com,clk_6,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n" +
		"7,berlin,2026-11-21 09:14:02,paid,ivan.secret@example.com,ivan.secret@example.com,clk_7,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n" +
		"8,berlin,2026-11-21 09:14:02,paid,C8,Judy.Secret@Example.com,clk_8,,EUR,SKU-1,Anvil,tools,1,1.00,0.00\n"
	writeFile(t, w.path("in/pii.csv"), pii)
	literal := "lit-" + randomHex(8)
	wrong := "wrong-" + randomHex(8)
	secrets := []string{testToken, literal, wrong}
	// Every plain address of the input, as it is and normalised.
	addrRe := regexp.MustCompile(`(?i)[a-z0-9._%+\xff-]+@example\.com`)
	var addrs []string
	for _, a := range addrRe.FindAllString(readFile(t, gen)+pii, -1) {
		addrs = append(addrs, a, strings.ToLower(a))
	}

	var outputs []string
	keep := func(r result) result {
		outputs = append(outputs, r.stdout, r.stderr)
		return r
	}
	keep(w.mustRun(exitAttention, "--log-level", "debug", "--summary-json", "s1.json", "--metrics-file", "m1.prom"))
	keep(w.mustRun(exitAttention, "--all", "--retry-rejected", "--log-level", "debug", "--log-format", "json", "--summary-json", "s2.json"))
	keep(w.exec("validate", "--config", w.config, "--limit", "100"))
	keep(w.exec("validate", "--config", w.config, "--limit", "100", "--log-format", "json"))
	keep(w.exec("plan", "--config", w.config, "--all", "--limit", "20"))
	keep(w.run("--dry-run", "--all", "--retry-rejected", "--dry-run-out", "dry.jsonl"))
	for _, args := range [][]string{
		{"ledger", "export", "--format", "csv"}, {"ledger", "export", "--format", "jsonl"},
		{"ledger", "show", "berlin-1"}, {"ledger", "show", "berlin-2"}, {"ledger", "runs"},
	} {
		keep(w.exec(append(args, "--ledger", w.ledger)...))
	}

	// A wrong token (401) and a token written in the configuration.
	w.env = childEnv(sinkEnv(testSID, wrong)...)
	gen2 := w.gen("in/more.csv", "-rows", "200", "-seed", "9", "-first-id", "700001")
	if r := keep(w.run("--log-level", "debug")); r.code != exitFatal {
		t.Errorf("wrong token: want exit 1\n%s", r)
	}
	w.env = childEnv(sinkEnv(testSID, testToken)...)
	lit := w.path("literal.yaml")
	writeFile(t, lit, strings.Replace(readFile(t, w.config), "  rate:", "  auth_token: "+literal+"\n  rate:", 1))
	if r := keep(w.exec("run", "--config", lit)); r.code != exitUsage || !strings.Contains(r.stderr, "sink.auth_token") {
		t.Errorf("a token in the configuration: want exit 2 naming sink.auth_token\n%s", r)
	}
	if r := keep(w.exec("validate", "--config", lit)); strings.Contains(r.stdout+r.stderr, literal) {
		t.Errorf("validate shows the configured token")
	}

	// --help of every command, with the secrets in the environment.
	w.env = childEnv(append(sinkEnv(testSID, testToken), "AWS_SECRET_ACCESS_KEY="+literal)...)
	commands := allCommands(newRootCmd(), nil)
	for _, c := range commands {
		r := keep(w.exec(append(c, "--help")...))
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("convpipe %v --help:\n%s", c, r)
		}
	}
	w.env = childEnv(sinkEnv(testSID, testToken)...)

	// A run killed mid-way leaves the ledger's WAL as it was written.
	w.sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	cmd, stdout, stderr := w.command(t.Context(), "run", "--config", w.config, "--log-level", "debug")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := len(w.sim.Accepted())
	waitFor(30*time.Second, func() bool { return len(w.sim.Accepted()) >= base+10 })
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	outputs = append(outputs, stdout.String(), stderr.String())
	walBytes := readFileBytes(w.ledger + "-wal")
	if len(walBytes) == 0 {
		t.Log("the killed run left an empty WAL")
	}
	files := map[string][]byte{w.ledger + "-wal (after SIGKILL)": walBytes}
	if r := keep(w.run()); r.code != exitOK {
		t.Errorf("the resume after the kill: want exit 0\n%s", r)
	}

	// Everything convpipe wrote, apart from the input and the configs.
	_ = filepath.WalkDir(w.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(w.dir, p)
		if strings.HasPrefix(rel, "in"+string(filepath.Separator)) || strings.HasSuffix(rel, ".yaml") || strings.HasPrefix(rel, "expect") {
			return nil
		}
		files[rel] = readFileBytes(p)
		return nil
	})
	for i, o := range outputs {
		files[fmt.Sprintf("output %d", i)] = []byte(o)
	}
	searched := 0
	for name, b := range files {
		searched += len(b)
		low := bytes.ToLower(b)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s contains a secret (%s…)", name, s[:6])
			}
		}
		for _, a := range addrs {
			if bytes.Contains(low, bytes.ToLower([]byte(a))) {
				t.Errorf("%s contains the plain address %q", name, a)
			}
		}
		for _, frag := range []string{"@example.com", "%40example.com"} {
			if i := bytes.Index(low, []byte(frag)); i >= 0 {
				t.Errorf("%s contains %q: …%q…", name, frag, low[max(0, i-40):min(len(low), i+20)])
			}
		}
	}
	if len(files) < 15 {
		t.Errorf("only %d outputs and files searched", len(files))
	}

	// What reached the API: the address hashed (SHA-1 of the trimmed,
	// lower-cased address), never plain.
	emails := map[string]string{}
	for _, p := range []string{gen, gen2} {
		recs, _ := csv.NewReader(strings.NewReader(readFile(t, p))).ReadAll()
		for _, r := range recs[1:] {
			emails[r[1]+"-"+r[0]] = r[5]
		}
	}
	emails["berlin-8"] = "Judy.Secret@Example.com"
	checked := 0
	for _, rcv := range w.sim.Accepted() {
		e, ok := emails[rcv.OrderID]
		if !ok {
			continue
		}
		sum := sha1.Sum([]byte(strings.ToLower(strings.TrimSpace(e))))
		if got := rcv.Values.Get("CustomerEmail"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: CustomerEmail %q, want the SHA-1 of the address", rcv.OrderID, got)
		}
		if strings.Contains(strings.ToLower(rcv.Body), "example.com") {
			t.Errorf("%s: the request body holds a plain address", rcv.OrderID)
		}
		checked++
	}
	if checked == 0 {
		t.Error("no conversion reached the simulator")
	}
	note(t, "3 secrets (token, a wrong token, a token written in the config) and %d plain addresses (also in wrong columns, upper case, with spaces, in malformed rows) searched in %d outputs and files (%.1f MB: stdout, stderr text and JSON at debug level, --help of %d commands, ledger, WAL after SIGKILL, lock, results, summaries, metrics, dry-run payloads): none found; %d conversions at the simulator carry the SHA-1 of the address",
		len(addrs)/2, len(files), float64(searched)/1e6, len(commands), checked)
}

// allCommands lists the path below the root of cmd and of every command
// under it (the root itself as an empty path), so that a test of every
// command's --help covers the commands added later too.
func allCommands(cmd *cobra.Command, path []string) [][]string {
	out := [][]string{path}
	for _, c := range cmd.Commands() {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		out = append(out, allCommands(c, append(slices.Clip(path), c.Name()))...)
	}
	return out
}

func readFileBytes(p string) []byte {
	b, _ := os.ReadFile(p)
	return b
}

// mountTmpfs mounts a tmpfs of the given size (and options) on dir, for
// the storage faults a full or read-only disk causes. It skips the test
// when mounting is not allowed (not root, no CAP_SYS_ADMIN).
func mountTmpfs(t *testing.T, dir, opts string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): this storage fault needs root", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			_ = exec.Command("umount", "-l", dir).Run()
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
}

// TestStorageFaults: a ledger that cannot be written fails the run before
// its first request (exit 1, a clear error); a ledger whose disk fills up
// mid-run stops the sending with a clear error (exit 1), leaves no order
// sent without a record, and the next run, with space again, settles
// every order exactly once.
func TestStorageFaults(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("uses Linux mounts")
	}
	unwritable := []struct {
		name  string
		setup func(t *testing.T, w *workspace) string
		want  string
	}{
		{"parent is a file", func(t *testing.T, w *workspace) string {
			writeFile(t, w.path("file"), "not a folder")
			return w.path("file", "ledger.db")
		}, "not a directory"},
		{"read-only file system", func(t *testing.T, w *workspace) string {
			mountTmpfs(t, w.path("ro"), "ro,size=1m")
			return w.path("ro", "ledger.db")
		}, "read-only file system"},
		{"existing ledger on a file system remounted read-only", func(t *testing.T, w *workspace) string {
			mountTmpfs(t, w.path("rw"), "size=4m")
			w.mustRun(exitOK, "--ledger", w.path("rw", "ledger.db"))
			w.gen("in/more.csv", "-rows", "50", "-seed", "4", "-first-id", "800001")
			if out, err := exec.Command("mount", "-o", "remount,ro", w.path("rw")).CombinedOutput(); err != nil {
				t.Skipf("remount read-only: %v: %s", err, out)
			}
			return w.path("rw", "ledger.db")
		}, "read-only file system"},
	}
	for _, tc := range unwritable {
		t.Run("unwritable/"+tc.name, func(t *testing.T) {
			w := newWorkspace(t, simOpts{}, cfgOpts{})
			w.gen("in/orders.csv", "-rows", "50", "-seed", "2")
			ledger := tc.setup(t, w)
			before := posts(w.sim)
			r := w.run("--ledger", ledger)
			if r.code != exitFatal || !strings.Contains(r.stderr, "ledger") || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("want exit 1 and a ledger error saying %q\n%s", tc.want, r)
			}
			if n := posts(w.sim) - before; n != 0 {
				t.Errorf("%d requests sent with a ledger that cannot be written", n)
			}
		})
	}

	t.Run("disk full mid-run", func(t *testing.T) {
		w := newWorkspace(t, simOpts{cfg: sim.Config{Faults: sim.Faults{Latency: 2 * time.Millisecond}}}, cfgOpts{Rate: "300/s"})
		disk := w.path("disk")
		// The WAL grows to about 4 MiB between checkpoints.
		mountTmpfs(t, disk, "size=16m")
		ledger := filepath.Join(disk, "ledger.db")
		first := w.gen("in/a.csv", "-rows", "20", "-seed", "6")
		w.mustRun(exitOK, "--ledger", ledger)
		more := w.gen("in/b.csv", "-rows", fmt.Sprint(size(2000, 6000)), "-seed", "7", "-first-id", "600001")
		want := expectCSV(t, first, more)

		// Leave the ledger about 1 MiB.
		var st syscall.Statfs_t
		if err := syscall.Statfs(disk, &st); err != nil {
			t.Fatal(err)
		}
		free := int64(st.Bavail) * st.Bsize
		filler := filepath.Join(disk, "filler")
		if err := os.WriteFile(filler, make([]byte, max(0, free-1<<20)), 0o644); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatal(err)
		}
		r := w.run("--ledger", ledger, "--summary-json", w.path("s.json"))
		if r.code != exitFatal || !strings.Contains(r.stderr, "ledger write failed") {
			t.Fatalf("want exit 1 and %q\n%s", "ledger write failed", r)
		}
		if !strings.Contains(r.stdout, "FAILED") || strings.Contains(r.stdout, "OK        nothing needs attention") {
			t.Errorf("the summary does not say the run failed:\n%s", r.stdout)
		}
		if strings.Contains(r.stderr, "cannot write the results file") && strings.Contains(r.stdout, "results   ") {
			t.Errorf("the summary names a results file that could not be written:\n%s", r)
		}
		accepted := len(w.sim.Accepted())
		if accepted >= len(want.valid) {
			t.Fatalf("every order was sent although the ledger was full")
		}
		// Nothing was sent without a record: every order the simulator
		// accepted is in the ledger, as accepted or pending.
		wl := *w
		wl.ledger = ledger
		known := map[string]pipeline.State{}
		for _, e := range wl.export() {
			known[e.Key.OrderID] = e.State
		}
		pending := 0
		for id := range acceptedIDs(w.sim) {
			switch known[id] {
			case pipeline.StateAccepted:
			case pipeline.StatePending, pipeline.StateFailed:
				pending++
			default:
				t.Errorf("%s was accepted by the simulator, the ledger has it as %q", id, known[id])
			}
		}
		if pending > w.cfg.Workers {
			t.Errorf("%d sent orders have no recorded answer; at most one per worker may", pending)
		}
		if !strings.Contains(r.stderr, "database or disk is full") {
			t.Errorf("the error does not say the disk is full:\n%s", r.stderr)
		}
		// Space again: the next run settles everything, once.
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		w.mustRun(exitOK, "--ledger", ledger)
		checkExactlyOnce(t, w.sim, want.valid)
		w.ledger = ledger
		checkLedger(t, w, want)
		note(t, "ledger on a 16 MiB tmpfs filled to ~1 MiB free: the run stopped after %d of %d orders with exit 1 and `ledger write failed: …: disk full: commit: database or disk is full`; %d sent orders had no recorded answer (pending), all settled as accepted by the next run; every order accepted once",
			accepted, len(want.valid), pending)
	})
}

// TestAmbiguousSends: requests that reach the simulator and are recorded,
// but whose answer never comes (the connection dropped after recording;
// the answer slower than sink.request_timeout): the retry meets a
// duplicate answer, in each of the simulator's duplicate styles, and the
// order is recorded as accepted, once.
func TestAmbiguousSends(t *testing.T) {
	tests := []struct {
		name    string
		dups    sim.DuplicateMode
		timeout string
		script  func(s *sim.Server)
	}{
		{"dropped after recording", sim.DuplicateError, "10s", func(s *sim.Server) { s.DropNext(3, true) }},
		{"dropped after recording, duplicate as ErrorReason", sim.DuplicateReason, "10s", func(s *sim.Server) { s.DropNext(2, true) }},
		{"dropped after recording, duplicate answered QUEUED", sim.DuplicateQueued, "10s", func(s *sim.Server) { s.DropNext(2, true) }},
		{"timed out after accepting", sim.DuplicateError, "500ms", func(s *sim.Server) { s.SlowNext(2, 5*time.Second) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkspace(t, simOpts{cfg: sim.Config{Duplicates: tc.dups}}, cfgOpts{RequestTimeout: tc.timeout, Workers: 2})
			want := expectCSV(t, w.gen("in/orders.csv", "-rows", "60", "-seed", "12"))
			tc.script(w.sim)
			w.mustRun(exitOK, "--summary-json", "s.json")
			checkExactlyOnce(t, w.sim, want.valid)
			checkLedger(t, w, want)
			// The ambiguous ones: recorded, and the answer never arrived.
			// A scripted fault can fall on the retry of the same order: in
			// the QUEUED duplicate style that retry is recorded and dropped
			// too, so the order is sent a third time. Count per order what
			// the simulator saw, rather than assume which requests the
			// faults fall on (with two workers, that is a race).
			perOrder := map[string]int{}
			ambiguous := map[string]bool{}
			for _, q := range w.sim.Requests() {
				if q.OrderID == "" {
					continue
				}
				perOrder[q.OrderID]++
				if q.Recorded && (q.Status == sim.StatusDropped || q.Status == sim.StatusClientGone) {
					ambiguous[q.OrderID] = true
				}
			}
			if len(ambiguous) == 0 {
				t.Fatal("no ambiguous send happened")
			}
			wantDups := 0
			for id := range ambiguous {
				wantDups += perOrder[id] - 1
			}
			if d := w.sim.Duplicates(); d != wantDups {
				t.Errorf("%d duplicates at the simulator, want %d (every request after the first of an ambiguous order)", d, wantDups)
			}
			maybe := 0
			for _, e := range w.export("--state", "accepted") {
				if e.MaybeSent {
					maybe++
					if !ambiguous[e.Key.OrderID] {
						t.Errorf("%s marked maybe sent, but no send of it was ambiguous", e.Key)
					}
					if e.Attempts != perOrder[e.Key.OrderID] || e.Attempts < 2 {
						t.Errorf("%s: %d attempts, want %d (the ambiguous ones and the duplicate, as the simulator saw them)", e.Key, e.Attempts, perOrder[e.Key.OrderID])
					}
				}
			}
			if maybe != len(ambiguous) {
				t.Errorf("%d entries marked maybe sent, want %d", maybe, len(ambiguous))
			}
			n := len(ambiguous)
			s := readSummary(t, w.path("s.json"))
			if s.Total.Accepted != int64(len(want.valid)) || s.Total.Requests != int64(posts(w.sim)) {
				t.Errorf("summary: %d accepted (want %d), %d requests (simulator %d)", s.Total.Accepted, len(want.valid), s.Total.Requests, posts(w.sim))
			}
			note(t, "%s: %d ambiguous sends, each retried once, met the duplicate and was recorded accepted (marked maybe sent); %d orders accepted once", tc.name, n, len(want.valid))
		})
	}
}

// writeReliabilityReport writes docs/reliability.md from the figures the
// tests noted.
func writeReliabilityReport(path string, started time.Time, code int) error {
	var b strings.Builder
	verdict := "PASS"
	if code != 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "# Reliability\n\nWritten by `make reliability` (`CONVPIPE_RELIABILITY=full go test ./cmd/convpipe`), which runs the\n")
	fmt.Fprintf(&b, "tests of `cmd/convpipe/e2e_test.go` and `cmd/convpipe/reliability_test.go` at full size against the\n")
	fmt.Fprintf(&b, "built binary and the API simulator on 127.0.0.1. `make test` runs the same tests at a smaller size.\n\n")
	fmt.Fprintf(&b, "- result: **%s** in %s\n", verdict, time.Since(started).Round(time.Second))
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s/%s, %s\n\n", cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	mu.Lock()
	defer mu.Unlock()
	sections := []struct{ prefix, title, what string }{
		{"TestCrashSafety", "Crash safety", "Runs killed with SIGKILL at seeded random moments, each followed by a resume; after every kill the ledger must know every order the simulator accepted; at the end every valid order accepted exactly once, nothing pending, the final run's counts adding up to the export."},
		{"TestFaultStorm", "Fault storm", "30% 5xx, 5% connections dropped before and 2% after recording, 429 bursts with Retry-After, latency spikes; sink.max_attempts 25."},
		{"TestSharedLedgerRunners", "Two runs at once on one export (shared ledger)", "Two `convpipe run` processes started together on the same four objects with `ledger.shared: true` (claims with a 2 s lease): both finish; or one is SIGKILLed while both send (on a timer, as the simulator answers, as a request arrives) and the other takes over its claims once their lease lapses; or both run through the fault storm above."},
		{"TestSharedQuota", "One quota shared by two runs", ""},
		{"TestBatchCrashChain", "Batch files under SIGKILL", ""},
		{"TestCorrectionCrashSafety", "Corrections under SIGKILL", ""},
		{"TestBadInput", "Bad input", "The corpus in cmd/convpipe/testdata/bad plus a 10 MB field, a 10,000-line order and truncated and corrupt Parquet generated at test time."},
		{"TestSecretsAndPersonalData", "Secrets and personal data", ""},
		{"TestStorageFaults", "Storage faults", "An unwritable ledger (parent is a file; read-only tmpfs; remounted read-only) fails before the first request with exit 1."},
		{"TestAmbiguousSends", "Ambiguous sends", ""},
		{"TestHostileServer", "Hostile server", "A small API server of the test's own (cmd/convpipe/hostile_test.go), not the simulator, answering by a hash of each OrderId: honestly; a 500 then a 400 duplicate ItemSku (impact took nothing); a 503 after taking the order, then the documented duplicate OrderId; a 429 with Retry-After ten years ahead; a spent window resetting in 2286; a 500 echoing the Authorization header and the body; X-RateLimit-Limit-hour: 1."},
		{"TestResourceBombs", "Resource bombs", "A gzip bomb and a plain line of 300 MB (full size) beside an ordinary export, the peak RSS of the run against a limit of 256 MiB."},
	}
	for _, s := range sections {
		fmt.Fprintf(&b, "## %s\n\n", s.title)
		if s.what != "" {
			fmt.Fprintf(&b, "%s\n\n", s.what)
		}
		n := 0
		for _, f := range figures {
			if f.test == s.prefix || strings.HasPrefix(f.test, s.prefix+"/") {
				fmt.Fprintf(&b, "- %s\n", f.text)
				n++
			}
		}
		if n == 0 {
			fmt.Fprintf(&b, "- (not run or skipped)\n")
		}
		b.WriteString("\n")
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
