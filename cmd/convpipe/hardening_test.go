package main

// Tests of the command's hardening: what `convpipe run` prints where, its
// hints typed as printed, the results file and its folder, a source that
// selects nothing, and the modes of the files the command creates. Each
// test is named after the defect it guards against.

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

// hintCommands returns the commands a summary gives in backquotes
// (`convpipe …`).
func hintCommands(summary string) []string {
	var cmds []string
	parts := strings.Split(summary, "`")
	for i := 1; i < len(parts); i += 2 {
		if strings.HasPrefix(parts[i], "convpipe ") {
			cmds = append(cmds, parts[i])
		}
	}
	return cmds
}

// shellWords splits a command line as a POSIX shell would, for the plain
// words and single-quoted strings the summary prints.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord, quoted := false, false
	for _, r := range s {
		switch {
		case quoted && r == '\'':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == '\'':
			quoted, inWord = true, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune(`"\$;&|<>*?`, r):
			t.Fatalf("command %q: %q needs quoting the test does not handle", s, r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("command %q: unterminated quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// execHint runs a printed `convpipe …` command in the workspace, as typed,
// and returns what it did.
func (w *workspace) execHint(hint string) result {
	w.t.Helper()
	args := shellWords(w.t, hint)
	if len(args) < 2 || args[0] != "convpipe" {
		w.t.Fatalf("hint %q is not a convpipe command", hint)
	}
	return w.exec(args[1:]...)
}

// csvRecords parses CSV output (a header and its records).
func csvRecords(t *testing.T, out string) [][]string {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("csv: %v\n%s", err, out)
	}
	if len(recs) == 0 {
		t.Fatalf("csv without a header:\n%s", out)
	}
	return recs
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

// TestAttentionHintWorksAsTyped: the commands the ATTENTION line gives,
// typed where the run was started, succeed and list what needs
// attention: with the ledger chosen by --ledger (as `make run` does), by
// ledger.path, or at the default path.
func TestAttentionHintWorksAsTyped(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"--ledger", []string{"--ledger", "out/demo/ledger.db"}},
		{"ledger.path", nil},
		{"default path", []string{"--ledger", "convpipe-ledger.db"}},
		{"a path with a space", []string{"--ledger", "out/my demo/ledger.db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
			copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
			r := w.mustRun(exitAttention, tc.args...)
			var attention string
			for _, l := range strings.Split(r.stdout, "\n") {
				if strings.Contains(l, "ATTENTION") {
					attention = l
				}
			}
			hints := hintCommands(attention)
			if len(hints) == 0 {
				t.Fatalf("the ATTENTION line gives no command:\n%s", r.stdout)
			}
			listed := 0
			for _, h := range hints {
				hr := w.execHint(h)
				if hr.code != 0 {
					t.Errorf("the hint `%s` fails as typed:\n%s", h, hr)
					continue
				}
				listed += len(csvRecords(t, hr.stdout)) - 1
			}
			// The sample's malformed row and its three invalid orders.
			if listed != 4 {
				t.Errorf("the hints %q list %d entries, want 4", hints, listed)
			}
		})
	}
}

// TestReadmeLedgerExamplesWorkAsTyped runs every `convpipe ledger`
// command of the README (readmeLedgerCommands) after a run of the bundled
// sample export whose ledger is out/demo/ledger.db, as after `make run`,
// with shop.yaml standing for the run's configuration: each succeeds.
func TestReadmeLedgerExamplesWorkAsTyped(t *testing.T) {
	examples := readmeLedgerCommands(readFile(t, filepath.Join(repoRoot, "README.md")))
	if len(examples) < 3 {
		t.Fatalf("the README has %d `convpipe ledger` commands: %q", len(examples), examples)
	}
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/", Ledger: "out/demo/ledger.db"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
	w.mustRun(exitAttention)
	for _, ex := range examples {
		args := shellWords(t, ex)[1:]
		for i, a := range args {
			if a == "shop.yaml" {
				args[i] = w.config
			}
		}
		r := w.exec(args...)
		if r.code != 0 {
			t.Errorf("README: `%s` fails as typed:\n%s", ex, r)
		}
		if args[1] == "show" && !strings.Contains(r.stdout, `"state"`) {
			t.Errorf("README: `%s` shows no entry:\n%s", ex, r)
		}
	}
}

// readmeLedgerCommands returns the `convpipe ledger` (or `bin/convpipe
// ledger`) commands of a README: the lines of its code blocks, without
// their comments, and the commands quoted in its text.
func readmeLedgerCommands(readme string) []string {
	isLedger := func(c string) bool {
		return strings.HasPrefix(c, "convpipe ledger ") || strings.HasPrefix(c, "bin/convpipe ledger ")
	}
	var cmds []string
	fence := regexp.MustCompile("(?s)```[a-z]*\n(.*?)```")
	for _, m := range fence.FindAllStringSubmatch(readme, -1) {
		for _, l := range strings.Split(m[1], "\n") {
			l, _, _ = strings.Cut(l, " #")
			if l = strings.TrimSpace(l); isLedger(l) {
				cmds = append(cmds, l)
			}
		}
	}
	parts := strings.Split(fence.ReplaceAllString(readme, ""), "`")
	for i := 1; i < len(parts); i += 2 {
		if c := strings.Join(strings.Fields(parts[i]), " "); isLedger(c) {
			cmds = append(cmds, c)
		}
	}
	return cmds
}

// TestLedgerShowFindsExportKeys: every key `ledger export` prints
// (event type/OrderId, and !row/… for a malformed row) finds its entry
// with `ledger show`, as the bare OrderId does.
func TestLedgerShowFindsExportKeys(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
	w.mustRun(exitAttention)
	r := w.exec("ledger", "export", "--ledger", w.ledger)
	if r.code != 0 {
		t.Fatalf("ledger export:\n%s", r)
	}
	recs := csvRecords(t, r.stdout)
	if recs[0][0] != "key" || recs[0][1] != "order" || len(recs) < 10 {
		t.Fatalf("ledger export: unexpected output:\n%s", r.stdout)
	}
	for _, rec := range recs[1:] {
		key, order := rec[0], rec[1]
		for _, arg := range []string{key, order} {
			r := w.exec("ledger", "show", arg, "--ledger", w.ledger)
			if r.code != 0 {
				t.Errorf("ledger show %s:\n%s", arg, r)
				continue
			}
			var e struct {
				Key struct {
					EventType string `json:"event_type"`
					OrderID   string `json:"order_id"`
				} `json:"key"`
			}
			if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(&e); err != nil || e.Key.EventType+"/"+e.Key.OrderID != key {
				t.Errorf("ledger show %s: want the entry %s (%v):\n%s", arg, key, err, r.stdout)
			}
		}
	}
	if r := w.exec("ledger", "show", "12345/no-such-order", "--ledger", w.ledger); r.code != exitFatal || !strings.Contains(r.stderr, "not in the ledger") {
		t.Errorf("ledger show of an unknown key:\n%s", r)
	}
}

// TestResultsDirIsCreated: a run.results_dir that does not exist yet is
// created, as the ledger's folder is, and the results file goes there.
func TestResultsDirIsCreated(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{RunExtra: "  results_dir: results/nightly"})
	w.gen("in/orders.csv", "-rows", "30", "-seed", "13")
	r := w.mustRun(exitOK)
	files, _ := filepath.Glob(w.path("results", "nightly", "*.results-*.csv"))
	if len(files) != 1 {
		t.Fatalf("results files in results/nightly: %v\n%s", files, r)
	}
	rel, _ := filepath.Rel(w.dir, files[0])
	if !strings.Contains(r.stdout, "results   "+rel+"\n") || strings.Contains(r.stderr, "results file") {
		t.Errorf("the summary does not name %s, or the log has an error about it:\n%s", rel, r)
	}
	if recs := csvRecords(t, readFile(t, files[0])); len(recs) < 2 {
		t.Errorf("the results file is empty:\n%s", readFile(t, files[0]))
	}
}

// TestUnwritableResultsFileNeedsAttention: a results file that cannot be
// written (run.results_dir is a regular file) makes the run exit 3, and
// the summary says so, with a command that gives the same lines from
// the ledger.
func TestUnwritableResultsFileNeedsAttention(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{RunExtra: "  results_dir: results"})
	w.gen("in/orders.csv", "-rows", "30", "-seed", "13")
	want := expectCSV(t, w.path("in/orders.csv"))
	writeFile(t, w.path("results"), "a file, not a folder")
	r := w.mustRun(exitAttention, "--metrics-file", "m.prom")
	if !strings.Contains(r.stdout, "ATTENTION the results file could not be written") || strings.Contains(r.stdout, "OK ") {
		t.Fatalf("the summary does not say the results file could not be written:\n%s", r)
	}
	if strings.Contains(r.stdout, "results   ") {
		t.Errorf("the summary names a results file that was not written:\n%s", r.stdout)
	}
	if !strings.Contains(readFile(t, w.path("m.prom")), "convpipe_last_run_exit_code 3\n") {
		t.Error("metrics: the exit code is not 3")
	}
	checkExactlyOnce(t, w.sim, want.valid)
	hints := hintCommands(r.stdout)
	if len(hints) != 1 {
		t.Fatalf("want one command for the results, got %q:\n%s", hints, r.stdout)
	}
	hr := w.execHint(hints[0])
	if hr.code != 0 || len(csvRecords(t, hr.stdout))-1 != want.total() {
		t.Errorf("the hint `%s` does not give the run's %d results:\n%s", hints[0], want.total(), hr)
	}
}

// TestSourceSelectsNothing: a source that selects no object (an empty
// folder, or a date window with nothing in it) is said plainly and exits
// 3, unless run.allow_empty says such a night is normal; a rerun whose
// objects are all unchanged is no such case.
func TestSourceSelectsNothing(t *testing.T) {
	tests := []struct {
		name       string
		files      bool // a generated export in in/
		allowEmpty bool
		args       []string
		code       int
		say        string
	}{
		{"empty folder", false, false, nil, exitAttention, "ATTENTION no objects matched in/:"},
		{"empty folder, allowed", false, true, nil, exitOK, "OK        nothing needs attention (no objects matched in/; run.allow_empty)\n"},
		{"nothing in the window", true, false, []string{"--since", "2099-01-01", "--until", "2099-01-31"}, exitAttention,
			"ATTENTION no objects matched in/ (since 2099-01-01, until 2099-01-31):"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := cfgOpts{}
			if tc.allowEmpty {
				o.RunExtra = "  allow_empty: true"
			}
			w := newWorkspace(t, simOpts{}, o)
			if tc.files {
				w.gen("in/orders.csv", "-rows", "20", "-seed", "14")
			}
			r := w.mustRun(tc.code, tc.args...)
			if !strings.Contains(r.stdout, tc.say) {
				t.Errorf("the summary does not say %q:\n%s", tc.say, r.stdout)
			}
			if tc.code != exitOK && strings.Contains(r.stdout, "OK ") {
				t.Errorf("the summary says OK:\n%s", r.stdout)
			}
			// validate and plan, which a user runs first, say the same.
			for _, c := range []string{"validate", "plan"} {
				r := w.exec(append([]string{c, "--config", w.config}, tc.args...)...)
				if r.code != tc.code || (tc.code != exitOK) != strings.Contains(r.stdout, "no objects matched in/") {
					t.Errorf("%s: want exit %d, saying so when it is not 0\n%s", c, tc.code, r)
				}
			}
		})
	}
	t.Run("all unchanged", func(t *testing.T) {
		w := newWorkspace(t, simOpts{}, cfgOpts{})
		w.gen("in/orders.csv", "-rows", "20", "-seed", "14")
		w.mustRun(exitOK)
		r := w.mustRun(exitOK)
		if strings.Contains(r.stdout, "no objects matched") || !strings.Contains(r.stdout, "1 unchanged") {
			t.Errorf("a rerun over unchanged objects reports no objects:\n%s", r.stdout)
		}
	})
}

// TestMissingSourceIsAnError: a source location that does not exist is a
// fatal error naming it (exit 1), also with run.allow_empty; the summary
// says FAILED, never OK, and nothing is sent.
func TestMissingSourceIsAnError(t *testing.T) {
	for _, allow := range []string{"", "  allow_empty: true"} {
		w := newWorkspace(t, simOpts{}, cfgOpts{RunExtra: allow})
		r := w.mustRun(exitFatal, "--source", "no/such/folder/")
		if !strings.Contains(r.stderr, `source "no/such/folder/" does not exist`) {
			t.Errorf("the error does not name the missing source:\n%s", r)
		}
		if strings.Contains(r.stdout, "OK ") || !strings.Contains(r.stdout, "FAILED") {
			t.Errorf("the summary does not say the run failed:\n%s", r.stdout)
		}
		if n := posts(w.sim); n != 0 {
			t.Errorf("%d requests", n)
		}
	}
}

// TestCreatedFilesFollowUmask: every file and folder `convpipe run`
// creates (the ledger and its folder, the results file, --summary-json,
// --metrics-file, --dry-run-out) is created within the umask (077 here:
// nothing for group or others), also over a leftover temporary file of a
// killed run; and a file it replaces keeps a narrower mode than the
// umask's.
func TestCreatedFilesFollowUmask(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Ledger: "out/ledger.db"})
	w.gen("in/orders.csv", "-rows", "30", "-seed", "12")
	if err := os.MkdirAll(w.path("out"), 0o700); err != nil {
		t.Fatal(err)
	}
	// What writing out/s.json through a fixed temporary name would reuse.
	writeFile(t, w.path("out", "s.json.tmp"), "left by a killed run")
	if err := os.Chmod(w.path("out", "s.json.tmp"), 0o666); err != nil {
		t.Fatal(err)
	}
	w.umask = "077"
	w.mustRun(exitOK, "--summary-json", "out/s.json", "--metrics-file", "out/m.prom")
	w.mustRun(exitOK, "--dry-run", "--all", "--dry-run-out", "out/dry.jsonl", "--summary-json", "out/dry.json", "--metrics-file", "out/dry.prom")
	os.Remove(w.path("out", "s.json.tmp"))
	created := 0
	err := filepath.WalkDir(w.path("out"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if p != w.path("out") {
			created++
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s: mode %v, wider than the umask 077", p, perm)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	results, _ := filepath.Glob(w.path("out", "ledger.db.results-*.csv"))
	if len(results) != 1 || created < 7 {
		t.Errorf("out/ holds %d files, results files %v; want the ledger, its results, two summaries, two metrics files and the payloads", created, results)
	}

	// Under the usual umask 022 a new file is 0644, and a replaced one is
	// never wider than it was.
	w.umask = "022"
	for p, mode := range map[string]os.FileMode{"out/s.json": 0o600, "out/m.prom": 0o640} {
		if err := os.Chmod(w.path(p), mode); err != nil {
			t.Fatal(err)
		}
	}
	w.mustRun(exitOK, "--summary-json", "out/s.json", "--metrics-file", "out/m.prom", "--dry-run", "--dry-run-out", "out/new.jsonl")
	w.mustRun(exitOK, "--summary-json", "out/new.json")
	for p, want := range map[string]os.FileMode{"out/s.json": 0o600, "out/m.prom": 0o640, "out/new.json": 0o644, "out/new.jsonl": 0o644} {
		fi, err := os.Stat(w.path(p))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}
