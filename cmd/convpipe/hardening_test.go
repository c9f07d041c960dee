package main

// Tests of the command's hardening: what `convpipe run` prints where, its
// hints typed as printed, the results file and its folder, a source that
// selects nothing, and the modes of the files the command creates. Each
// test is named after the defect it guards against.

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// appendLine appends one line to the file p.
func appendLine(t *testing.T, p, line string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
}

// TestDryRunStdoutIsPureJSONL: `run --dry-run` with the default
// --dry-run-out - writes nothing but JSON lines, one per conversion, on
// standard output; the summary goes to standard error, without a hint to
// the ledger (a dry run records nothing).
func TestDryRunStdoutIsPureJSONL(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{})
	p := w.gen("in/orders.csv", "-rows", "40", "-seed", "9")
	want := expectCSV(t, p)
	appendLine(t, p, "999999,berlin,2026-11-21 09:14:02,paid") // malformed: the summary needs attention
	r := w.mustRun(exitAttention, "--dry-run")
	n := 0
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		n++
		var line struct {
			Key  string `json:"key"`
			Body string `json:"body"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Key == "" || line.Body == "" {
			t.Errorf("stdout line %d is not a conversion's JSON line (%v): %q", n, err, sc.Text())
		}
	}
	if n != len(want.valid) {
		t.Errorf("%d lines on stdout, want %d (one per conversion)", n, len(want.valid))
	}
	for _, s := range []string{"dry run: nothing sent", "1 malformed rows", "ATTENTION"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks the summary's %q:\n%s", s, r.stderr)
		}
	}
	if strings.Contains(r.stdout+r.stderr, "ledger export") {
		t.Errorf("a dry run's summary points to the ledger, which it did not write:\n%s", r)
	}
	if n := posts(w.sim); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
}
