package main

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sources"
)

// summaryNotes are what a run's summary says beside the engine's counts:
// what the command around the engine did.
type summaryNotes struct {
	// ledger is the ledger's path; empty on a dry run, which records
	// nothing.
	ledger string
	// results is where the results file went, empty when none was
	// written; resultsErr says why it could not be.
	results    string
	resultsErr error
	// source names the source's location and date window (describeSource);
	// allowEmpty is run.allow_empty.
	source     string
	allowEmpty bool
}

// verdict is what the end of a run tells a person: decided by judge,
// printed by printSummary; the exit code follows from it.
type verdict struct {
	// failed is true when a fatal error stopped the run.
	failed bool
	// attention lists what needs a person, each with the commands that
	// show it; empty when nothing does.
	attention []string
	// okNote, when set, qualifies "nothing needs attention".
	okNote string
}

// judge decides the verdict of a run from its summary, the error that
// ended it (nil if none) and the notes.
func judge(s pipeline.Summary, runErr error, n summaryNotes) verdict {
	v := verdict{failed: runErr != nil || strings.HasPrefix(s.Stopped, "fatal: ")}
	if line := needsHuman(s, n.ledger); line != "" {
		v.attention = append(v.attention, line)
	}
	if n.resultsErr != nil {
		v.attention = append(v.attention, fmt.Sprintf("the results file could not be written (%v); the ledger has its lines: `%s`",
			n.resultsErr, ledgerCommand(n.ledger, "export", "--run", s.RunID)))
	}
	if !v.failed {
		if line := emptySource(s, n.source, n.allowEmpty); line != "" {
			v.attention = append(v.attention, line)
		} else if s.Stopped == "" && len(s.Objects) == 0 {
			v.okNote = fmt.Sprintf("no objects matched %s; run.allow_empty", n.source)
		}
	}
	return v
}

// emptySource is what a command says when its source selected nothing,
// not even objects unchanged since an earlier run, and it was not
// stopped: "" when there were objects, or run.allow_empty says that
// nights without objects are normal.
func emptySource(s pipeline.Summary, source string, allowEmpty bool) string {
	if s.Stopped != "" || len(s.Objects) > 0 || allowEmpty {
		return ""
	}
	return fmt.Sprintf("no objects matched %s: is the export late, or the location wrong? (run.allow_empty: true if nights without objects are normal)", source)
}

// describeSource names the source's location and date window:
// "exports/ (since 2026-11-01, until 2026-11-30)".
func describeSource(c sources.Config) string {
	var window []string
	if c.Since != "" {
		window = append(window, "since "+c.Since)
	}
	if c.Until != "" {
		window = append(window, "until "+c.Until)
	}
	if len(window) == 0 {
		return c.Location
	}
	if c.DateFrom == sources.DateFromKey {
		window = append(window, "by the date in the key")
	}
	return c.Location + " (" + strings.Join(window, ", ") + ")"
}

// printSummary writes the human summary of a run and its verdict.
func printSummary(w io.Writer, s pipeline.Summary, n summaryNotes, v verdict) {
	t := s.Total
	title := "run " + s.RunID
	if s.DryRun {
		title += " (dry run: nothing sent, ledger untouched)"
	}
	fmt.Fprintf(w, "\n%s — %s\n", title, humanDuration(time.Duration(s.Seconds*float64(time.Second))))
	if s.Stopped != "" {
		fmt.Fprintf(w, "  stopped early: %s (the next run resumes)\n", s.Stopped)
	}
	unchanged := 0
	for _, o := range s.Objects {
		if o.Unchanged {
			unchanged++
		}
	}
	fmt.Fprintf(w, "  objects   %d read, %d unchanged since an earlier run, %d unreadable\n", len(s.Objects)-unchanged, unchanged, s.FileErrors)
	fmt.Fprintf(w, "  rows      %d read, %d malformed, %d skipped by a filter\n", t.Rows, t.RowErrors, t.SkippedRows)
	fmt.Fprintf(w, "  orders    %d grouped: %d to send, %d already sent, %d invalid, %d skipped, %d changed after acceptance\n",
		t.Orders, t.ToSend, t.AlreadySent, t.Invalid, t.Skipped, t.Changed)
	if t.Corrected > 0 {
		fmt.Fprintf(w, "  corrected %d accepted orders changed or cancelled since: corrected in impact (--corrections)\n", t.Corrected)
	}
	if t.Reversals > 0 {
		fmt.Fprintf(w, "  reversals %d accepted orders now left out by a filter marked as a reversal: not skipped, to be reversed\n", t.Reversals)
	}
	if t.OutsideWindow > 0 {
		fmt.Fprintf(w, "  window    %d orders dated outside --events-since/--events-until: not sent, not recorded\n", t.OutsideWindow)
	}
	if !s.DryRun {
		fmt.Fprintf(w, "  sent      %d accepted, %d rejected, %d failed, %d read but not sent (stopped); %d requests\n",
			t.Accepted, t.Rejected, t.Failed, t.Unsent, t.Requests)
	}
	printReconcile(w, s, n.ledger)
	if nr := s.NotRead; nr != nil {
		fmt.Fprintf(w, "  not read  %d %s not read to the end (%s left): about %d more orders to send, estimated from what was read; the next run reads them\n",
			nr.Objects, plural(nr.Objects, "object", "objects"), humanize.IBytes(uint64(nr.Bytes)), nr.EstimatedOrders)
	}
	if len(s.Objects) > 1 {
		fmt.Fprintln(w, "  by object:")
		for _, o := range s.Objects {
			switch {
			case o.Unchanged:
				fmt.Fprintf(w, "    %s: unchanged, not read\n", o.Key)
			case o.Error != "":
				fmt.Fprintf(w, "    %s: UNREADABLE: %s\n", o.Key, o.Error)
			default:
				c := o.Counts
				fmt.Fprintf(w, "    %s: %d rows (%d malformed), %d orders: %d accepted, %d rejected, %d failed, %d invalid, %d skipped, %d already sent, %d changed\n",
					o.Key, c.Rows, c.RowErrors, c.Orders, c.Accepted, c.Rejected, c.Failed, c.Invalid, c.Skipped, c.AlreadySent, c.Changed)
			}
		}
	}
	if n.ledger != "" {
		fmt.Fprintf(w, "  ledger    %s\n", n.ledger)
	}
	if n.results != "" {
		fmt.Fprintf(w, "  results   %s\n", n.results)
	}
	if v.failed {
		fmt.Fprintln(w, "  FAILED    the run stopped on a fatal error (see above); fix it and run again: what was not sent is sent then")
	}
	for _, line := range v.attention {
		fmt.Fprintf(w, "  ATTENTION %s\n", line)
	}
	if !v.failed && len(v.attention) == 0 {
		if v.okNote != "" {
			fmt.Fprintf(w, "  OK        nothing needs attention (%s)\n", v.okNote)
		} else {
			fmt.Fprintln(w, "  OK        nothing needs attention")
		}
	}
}

// needsHuman says what in s needs a person, or "" when nothing does, and
// the commands that list it from the ledger at ledgerPath, typed where
// the run was started; none when ledgerPath is empty (a dry run).
func needsHuman(s pipeline.Summary, ledgerPath string) string {
	t := s.Total
	var parts, states []string
	add := func(n int64, what string) {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(s.FileErrors, "unreadable objects")
	add(t.RowErrors, "malformed rows")
	add(t.Invalid, "invalid orders")
	add(t.Rejected, "rejected orders")
	add(t.Failed, "failed orders (sent again next run)")
	add(t.Changed, "orders changed after acceptance (need a correction)")
	var notTracked int64
	if s.Reconcile != nil {
		notTracked = s.Reconcile.NotTracked
	}
	add(notTracked, "conversions impact did not track")
	add(t.Reversals, "accepted orders now cancelled, returned, a test or a fraud (need a reversal)")
	if len(parts) == 0 {
		return ""
	}
	if ledgerPath == "" {
		return strings.Join(parts, ", ")
	}
	// Unreadable objects and malformed rows are recorded as invalid.
	for _, st := range []struct {
		n     int64
		state pipeline.State
	}{
		{s.FileErrors + t.RowErrors + t.Invalid, pipeline.StateInvalid},
		{t.Rejected, pipeline.StateRejected},
		{t.Failed, pipeline.StateFailed},
		{t.Changed, pipeline.StateChanged},
		{notTracked, pipeline.StateNotTracked},
	} {
		if st.n > 0 {
			states = append(states, "`"+ledgerCommand(ledgerPath, "export", "--state", string(st.state))+"`")
		}
	}
	if t.Changed+t.Reversals > 0 {
		states = append(states, "`convpipe corrections plan`")
	}
	return strings.Join(parts, ", ") + ": see " + strings.Join(states, ", ")
}

// ledgerCommand is the `convpipe ledger` command with args that reads
// the ledger at path when typed where the run was started: --ledger
// names it unless it is the default path.
func ledgerCommand(path string, args ...string) string {
	cmd := []string{"convpipe", "ledger", args[0]}
	if filepath.Clean(path) != ledger.DefaultPath {
		cmd = append(cmd, "--ledger", shellQuote(path))
	}
	for _, a := range args[1:] {
		cmd = append(cmd, shellQuote(a))
	}
	return strings.Join(cmd, " ")
}

// shellQuote quotes s for a POSIX shell, unless it needs no quotes.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-./:@%+=,", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeJSONFile writes v as indented JSON to path (writeFileAtomic).
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, bytesWriter(append(b, '\n')))
}

// bytesWriter is the writing of data, for writeFileAtomic.
func bytesWriter(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// writeFileAtomic writes path through a new temporary file beside it,
// synced, and a rename, so that readers (node_exporter) never see half a
// file. The file is created 0644 less the umask, and never wider than the
// file it replaces.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	perm := os.FileMode(0o644)
	if fi, serr := os.Stat(path); serr == nil {
		perm &= fi.Mode().Perm()
	}
	f, err := createTemp(path, perm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// createTemp creates a new file named after path in its folder, with perm
// less the umask (os.CreateTemp's files are always 0600).
func createTemp(path string, perm os.FileMode) (*os.File, error) {
	for range 100 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		f, err := os.OpenFile(path+".tmp-"+hex.EncodeToString(b[:]), os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("%s: cannot create a temporary file beside it", path)
}

// plural returns one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	case d < 48*time.Hour:
		return d.Round(time.Second).String()
	}
	days := int(d / (24 * time.Hour))
	return fmt.Sprintf("%dd%s", days, (d % (24 * time.Hour)).Round(time.Minute))
}
