package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"convpipe/pipeline"
	"convpipe/sim"
)

// batchWorkspace is a workspace whose simulator also takes batch files
// from an SFTP drop folder on loopback, configured as sink.kind: batch
// with hostKey (the drop's own when empty).
func batchWorkspace(t *testing.T, perFile int, hostKey string) (*workspace, *sim.Drop) {
	t.Helper()
	w := newWorkspace(t, simOpts{cfg: sim.Config{CompleteAfter: -1}}, cfgOpts{})
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
	w, d := batchWorkspace(t, 40, "")
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
	w, d := batchWorkspace(t, 40, strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other))))
	w.gen("in/orders.csv", "-orders", "20", "-seed", "9")
	r := w.mustRun(1)
	if !strings.Contains(r.stderr, "host key mismatch") || !strings.Contains(r.stderr, "nothing recorded, nothing sent") {
		t.Errorf("wrong host key:\n%s", r)
	}
	if d.Opened() != 0 || len(w.export()) != 0 {
		t.Errorf("%d files uploaded, %d entries recorded", d.Opened(), len(w.export()))
	}
}
