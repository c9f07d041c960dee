package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"convpipe/ledger"
	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
	"convpipe/sim"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// TestFillPostgresThenRerun fills a PostgreSQL ledger through the fill
// subcommand (-ledger-url) from a small export, checks that it holds
// every order accepted, then runs the real convpipe binary with --all
// over it as figure 5 does (rerunOnce): every order already sent,
// nothing sent.
func TestFillPostgresThenRerun(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(wd, "..", "..")
	dir := t.TempDir()
	bin := filepath.Join(dir, "convpipe")
	build := exec.Command(goTool(), "build", "-o", bin, "./cmd/convpipe")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/convpipe: %v\n%s", err, out)
	}
	// writeConfig reads the sample configuration from the repository's root.
	t.Chdir(root)
	data := filepath.Join(dir, "orders.csv")
	writeOrders(t, data, 3000)
	dbURL := pgtest.NewDatabase(t) // PGPASSWORD is set in this process
	s := sim.New(sim.Config{})
	apiURL, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
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

	b := &bench{convpipe: bin, repeat: 1}
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
