package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sim"
)

// batchWorkspace is a workspace whose simulator also takes batch files
// from an SFTP drop folder on loopback, configured as sink.kind: batch
// with hostKey (the drop's own when empty).
func batchWorkspace(t *testing.T, perFile int, hostKey string, wrap func(http.Handler) http.Handler) (*workspace, *sim.Drop) {
	t.Helper()
	w := newWorkspace(t, simOpts{cfg: sim.Config{CompleteAfter: -1}, wrap: wrap}, cfgOpts{})
	d, err := sim.NewDrop(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := d.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	w.sim.ServeDrop(d)
	if hostKey == "" {
		hostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(d.HostKey())))
	}
	block, err := ssh.MarshalPrivateKey(d.UserPrivateKey(), "")
	if err != nil {
		t.Fatal(err)
	}
	w.env = append(w.env, "IMPACT_SFTP_KEY="+string(pem.EncodeToMemory(block)))
	w.setConfig(cfgOpts{Extra: fmt.Sprintf("  kind: batch\n  batch:\n    per_file: %d\n    sftp:\n      address: %s\n      user: convpipe\n      host_key: %q\n", perFile, addr, hostKey)})
	return w, d
}

// TestRunViaBatch: `convpipe run` with sink.kind: batch writes the orders
// into files of per_file orders, uploads them to the SFTP drop and learns
// impact's outcome of each; a rerun uploads nothing again. --via api then
// refuses nothing (every file is uploaded).
func TestRunViaBatch(t *testing.T) {
	w, d := batchWorkspace(t, 40, "", nil)
	want := expectCSV(t, w.gen("in/orders.csv", "-orders", "150", "-seed", "9"))
	r := w.mustRun(0)
	if !strings.Contains(r.stderr, "batch file processed by impact") {
		t.Errorf("no outcome learned:\n%s", r)
	}
	checkExactlyOnce(t, w.sim, want.valid)
	files := (len(want.valid) + 39) / 40
	if d.Opened() != files || w.sim.Batches() != files || posts(w.sim) != 0 {
		t.Errorf("%d uploads, %d files taken, %d POSTs; want %d files and no POST", d.Opened(), w.sim.Batches(), posts(w.sim), files)
	}
	for _, e := range w.export() {
		if want.valid[e.Key.OrderID] && (e.State != pipeline.StateAccepted || !strings.HasPrefix(e.SubmissionID, "convpipe_")) {
			t.Errorf("%s: %s in %q", e.Key, e.State, e.SubmissionID)
		}
	}
	w.mustRun(0)
	if d.Opened() != files {
		t.Errorf("%d uploads after the rerun, want %d", d.Opened(), files)
	}
	w.mustRun(0, "--via", "api")
	if posts(w.sim) != 0 {
		t.Errorf("the API run sent %d requests for orders sent by file", posts(w.sim))
	}
}

// TestRunViaBatchWrongHostKey: a server whose host key is not the one
// configured is refused before anything is recorded or sent.
func TestRunViaBatchWrongHostKey(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	w, d := batchWorkspace(t, 40, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))), nil)
	w.gen("in/orders.csv", "-orders", "20", "-seed", "9")
	r := w.mustRun(1)
	if !strings.Contains(r.stderr, "host key mismatch") || !strings.Contains(r.stderr, "nothing recorded, nothing sent") {
		t.Errorf("wrong host key:\n%s", r)
	}
	if d.Opened() != 0 || len(w.export()) != 0 {
		t.Errorf("%d files uploaded, %d entries recorded", d.Opened(), len(w.export()))
	}
}

// TestRunViaBatchKilled: a batch run killed when its first file is opened
// on the server (recorded, not uploaded), when a file is delivered (on the
// server, the upload not recorded) or while it reads impact's statuses;
// the next run finishes, and every order ends in exactly one file, taken
// once by impact, accepted.
func TestRunViaBatchKilled(t *testing.T) {
	for _, point := range []string{"open", "delivered", "status"} {
		t.Run(point, func(t *testing.T) {
			var (
				once sync.Once
				mu   sync.Mutex
				cmd  interface{ Kill() error }
				dead = make(chan struct{})
			)
			// fire kills the child the first time, and returns once it
			// is dead: the server answers nothing more to it.
			fire := func() {
				once.Do(func() {
					mu.Lock()
					p := cmd
					mu.Unlock()
					_ = p.Kill()
					<-dead
				})
			}
			wrap := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
					if point == "status" && strings.Contains(r.URL.Path, "/FTPFileSubmissions") {
						fire()
					}
					h.ServeHTTP(rw, r)
				})
			}
			w, d := batchWorkspace(t, 30, "", wrap)
			d.OnEvent(func(what, name string) {
				if what == point {
					fire()
				}
			})
			want := expectCSV(t, w.gen("in/orders.csv", "-orders", "100", "-seed", "4"))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			c, _, stderr := w.command(ctx, "run", "--config", w.config)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			cmd = c.Process
			mu.Unlock()
			err := c.Wait()
			close(dead)
			if err == nil || !strings.Contains(err.Error(), "killed") {
				t.Fatalf("the first run was not killed at %s: %v\n%s", point, err, stderr)
			}
			w.mustRun(0)
			checkOneFileEach(t, w, want)
		})
	}
}

// checkOneFileEach checks a batch ledger after its last run: every valid
// order taken once by impact, in exactly one file, accepted, and every
// file processed.
func checkOneFileEach(t *testing.T, w *workspace, want orders) {
	t.Helper()
	checkExactlyOnce(t, w.sim, want.valid)
	held := map[string]int{}
	l, err := ledger.OpenReadOnly(t.Context(), w.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	err = l.BatchFiles(t.Context(), func(r pipeline.BatchRecord) error {
		if r.State != pipeline.BatchProcessed {
			t.Errorf("file %s is %s", r.Name, r.State)
		}
		lines, err := l.BatchLines(t.Context(), r.Name)
		for _, ln := range lines {
			held[ln.Key.OrderID]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for id := range want.valid {
		if held[id] != 1 {
			t.Errorf("order %s is in %d files", id, held[id])
		}
	}
	for _, e := range w.export() {
		if want.valid[e.Key.OrderID] && e.State != pipeline.StateAccepted {
			t.Errorf("%s is %s", e.Key, e.State)
		}
	}
}

// batchKiller kills the armed run at the countdown-th time its point
// comes: a file opened on the server (before the upload), delivered
// (after it, before the run records it), or a status read.
type batchKiller struct {
	mu        sync.Mutex
	point     string
	countdown int
	proc      *os.Process
	fired     bool
}

// at is called at each point; it kills the run when the point is armed
// and its countdown ends, and holds the caller until the run is dead.
func (k *batchKiller) at(point string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.proc == nil || k.fired || point != k.point {
		return
	}
	if k.countdown--; k.countdown > 0 {
		return
	}
	k.fired = true
	_ = k.proc.Kill()
	_, _ = k.proc.Wait() // dead before the server answers anything more
}

// TestBatchCrashChain: a backfill through batch files killed again and
// again at random points (a file opened on the server, before the upload;
// delivered, before the run records it; a status read), each run resuming the last, then a
// final run; every order ends in exactly one file and one outcome. 4
// kills here, 10 under `make reliability`.
func TestBatchCrashChain(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, seed^0x5eed))
	k := &batchKiller{}
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/FTPFileSubmissions") {
				k.at("status")
			}
			h.ServeHTTP(rw, r)
		})
	}
	w, d := batchWorkspace(t, 25, "", wrap)
	d.OnEvent(func(what, _ string) { k.at(what) })
	want := expectCSV(t, w.gen("in/orders.csv", "-orders", fmt.Sprint(size(300, 800)), "-seed", fmt.Sprint(seed%1000)))
	kills, moments := 0, map[string]int{}
	for i := 0; i < size(4, 10); i++ {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		c, _, stderr := w.command(ctx, "run", "--config", w.config)
		// Each point comes in every run while files are left to upload
		// (there are more than three for each kill), and statuses are
		// read once every file is up: each kill comes. After a kill in
		// the status reads, no file is left to upload.
		point := []string{"open", "delivered"}[rng.IntN(2)]
		if rng.IntN(8) == 0 || i == size(4, 10)-1 || moments["status"] > 0 {
			point = "status"
		}
		if err := c.Start(); err != nil {
			cancel()
			t.Fatal(err)
		}
		k.mu.Lock()
		k.point, k.countdown, k.proc, k.fired = point, 1+rng.IntN(3), c.Process, false
		if point == "status" {
			k.countdown = 1
		}
		k.mu.Unlock()
		err := c.Wait()
		k.mu.Lock()
		fired := k.fired
		k.proc = nil
		k.mu.Unlock()
		cancel()
		noPanic(t, stderr.String())
		if !fired {
			if err != nil && c.ProcessState.ExitCode() != exitOK {
				t.Fatalf("run %d: %v\n%s", i, err, clip(stderr.String(), 4000))
			}
			t.Fatalf("run %d finished before its kill (%s, countdown %d)", i, point, k.countdown)
		}
		kills++
		moments[point]++
	}
	w.mustRun(0, "--all")
	checkOneFileEach(t, w, want)
	note(t, "batch path: %d orders (%d valid) in files of 25; %d runs SIGKILLed (%v), then a final run: every order in exactly one file, taken once, accepted", want.total(), len(want.valid), kills, moments)
}
