package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
)

// TestBuildReport: what the report counts, from entries and runs.
func TestBuildReport(t *testing.T) {
	day := func(d, h int) time.Time { return time.Date(2026, 11, d, h, 30, 0, 0, time.UTC) }
	entry := func(id string, st pipeline.State, at time.Time, attempts int, msg string) pipeline.Entry {
		e := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: id}, State: st, Updated: at, Attempts: attempts,
			Refs: []pipeline.Ref{{Object: "in/a.csv", Line: 2}}}
		if msg != "" {
			e.Messages = []pipeline.Message{{Field: "OrderId", Text: msg}}
		}
		return e
	}
	entries := []pipeline.Entry{
		entry("a1", pipeline.StateAccepted, day(2, 1), 1, ""),
		entry("a2", pipeline.StateAccepted, day(2, 1), 2, ""),
		entry("a3", pipeline.StateAccepted, day(3, 4), 1, ""),
		entry("r1", pipeline.StateRejected, day(3, 4), 1, "duplicate"),
		entry("r2", pipeline.StateRejected, day(3, 5), 1, "duplicate"),
		entry("i1", pipeline.StateInvalid, day(3, 5), 0, "must not be empty"),
		entry("s1", pipeline.StateSkipped, day(3, 5), 0, "order cancelled"),
		entry("old", pipeline.StateAccepted, day(1, 23), 1, ""),  // before the period
		entry("late", pipeline.StateRejected, day(4, 0), 1, "x"), // after it
	}
	runs := []pipeline.RunInfo{
		{ID: "R2", Started: day(3, 4), Summary: &pipeline.Summary{Stopped: "deadline", Total: pipeline.Counts{Unsent: 400, Failed: 100, Requests: 5}}},
		{ID: "R1", Started: day(2, 1), Summary: &pipeline.Summary{Total: pipeline.Counts{Requests: 3}}},
		{ID: "R0", Started: day(1, 1)},
	}
	d := buildReport(entries, runs, day(2, 0).Truncate(24*time.Hour), day(4, 0).Truncate(24*time.Hour), 1000)
	if got := d.Totals; got[pipeline.StateAccepted] != 3 || got[pipeline.StateRejected] != 2 || got[pipeline.StateInvalid] != 1 || got[pipeline.StateSkipped] != 1 {
		t.Errorf("totals %v", got)
	}
	if strings.Join(d.Days, ",") != "2026-11-02,2026-11-03" || d.PerDay["2026-11-03"][pipeline.StateRejected] != 2 {
		t.Errorf("days %v, per day %v", d.Days, d.PerDay)
	}
	// Answered per hour: sent entries only (attempts > 0).
	if d.PerHour["2026-11-02 01:00"] != 2 || d.PerHour["2026-11-03 05:00"] != 1 || len(d.Hours) != 3 {
		t.Errorf("per hour %v", d.PerHour)
	}
	if len(d.Problems) != 2 || d.Problems[0].Reason != "OrderId: duplicate" || d.Problems[0].Count != 2 ||
		d.Problems[0].Orders[0] != "r1 (in/a.csv:2)" || d.Problems[1].State != pipeline.StateInvalid {
		t.Errorf("problems %+v", d.Problems)
	}
	if len(d.Runs) != 2 || d.Runs[0].ID != "R1" || d.Remaining != 500 || d.ETAHours != 0.5 || d.LastRunStopped != "deadline" {
		t.Errorf("runs %v, remaining %d, ETA %v h, stopped %q", len(d.Runs), d.Remaining, d.ETAHours, d.LastRunStopped)
	}
}

var chromiumOnce struct {
	sync.Once
	path string
	err  error
}

// chromium returns Debian's chromium, installed with apt-get when
// missing.
func chromium(t *testing.T) string {
	t.Helper()
	chromiumOnce.Do(func() {
		if p, err := exec.LookPath("chromium"); err == nil {
			chromiumOnce.path = p
			return
		}
		for _, args := range [][]string{{"update"}, {"install", "-y", "--no-install-recommends", "chromium", "fonts-dejavu-core"}} {
			cmd := exec.Command("apt-get", args...)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			if out, err := cmd.CombinedOutput(); err != nil {
				chromiumOnce.err = err
				t.Logf("apt-get %s:\n%s", strings.Join(args, " "), out)
				return
			}
		}
		chromiumOnce.path, chromiumOnce.err = exec.LookPath("chromium")
	})
	if chromiumOnce.err != nil {
		t.Fatalf("chromium is missing and could not be installed: %v", chromiumOnce.err)
	}
	return chromiumOnce.path
}

// headless runs chromium headless on the file with extra flags, logging
// the page's console to stderr; it returns stdout and the console lines.
func headless(t *testing.T, file string, flags ...string) (string, []string) {
	t.Helper()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, flags...)
	cmd := exec.Command(chromium(t), append(args, "file://"+file)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	var console []string
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			console = append(console, line)
		}
	}
	return stdout.String(), console
}

// TestHTMLReport: `convpipe report` (and `run --report`) over the ledger of a run of the
// sample export writes one self-contained page that a real headless
// Chromium loads without a console message (an error, or a load the
// page's Content Security Policy blocked), whose check script finds data
// in every chart, with the ledger's counts; and a screenshot under out/.
func TestHTMLReport(t *testing.T) {
	w := newWorkspace(t, simOpts{}, cfgOpts{Location: "export/"})
	copyDir(t, filepath.Join(repoRoot, "samples", "export"), w.path("export"))
	w.mustRun(exitAttention, "--report", w.path("run-report.html"))
	page := w.path("report.html")
	r := w.exec("report", "--ledger", w.ledger, "--rate", "1000/h", "--out", page)
	if r.code != 0 || !strings.Contains(r.stdout, "report: "+page) {
		t.Fatalf("convpipe report: exit %d\n%s", r.code, r)
	}
	html := readFile(t, page)
	if m := regexp.MustCompile(`(?i)\s(src|href)=`).FindString(html); m != "" {
		t.Errorf("the page refers to another resource (%s): it must be self-contained", m)
	}
	dom, console := headless(t, page, "--dump-dom")
	for _, line := range console {
		t.Errorf("console: %s", line)
	}
	if !strings.Contains(dom, `data-charts="3 charts, all with data"`) {
		m := regexp.MustCompile(`data-charts="[^"]*"`).FindString(dom)
		t.Errorf("the page's check of its charts: %q, want 3 charts, all with data", m)
	}
	states := map[pipeline.State]int{}
	for _, e := range w.export() {
		states[e.State]++
	}
	for st, n := range states {
		card := regexp.MustCompile(`<b>(\d+)</b>` + string(st) + `</div>`).FindStringSubmatch(dom)
		if card == nil || card[1] != itoa(n) {
			t.Errorf("the %s card says %v, the ledger has %d", st, card, n)
		}
	}
	if states[pipeline.StateInvalid] > 0 && !strings.Contains(dom, `id="problems"`) {
		t.Error("the page lists no problems; the ledger has invalid orders")
	}
	// `run --report` writes the same page at the end of the run.
	runPage := readFile(t, w.path("run-report.html"))
	if strings.Count(runPage, `<svg class="chart"`) != 3 || !strings.Contains(runPage, `<b>`+itoa(states[pipeline.StateAccepted])+`</b>accepted</div>`) {
		t.Errorf("run --report: not the report of the run's ledger:\n%s", clip(runPage, 2000))
	}

	shot := filepath.Join(repoRoot, "out", "report.png")
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(shot)
	if _, console := headless(t, page, "--window-size=1000,1700", "--screenshot="+shot); len(console) != 0 {
		t.Errorf("console: %q", console)
	}
	png, err := os.ReadFile(shot)
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) || len(png) < 10<<10 {
		t.Fatalf("screenshot %s: %v, %d bytes", shot, err, len(png))
	}
	t.Logf("screenshot: %s", shot)
}

func itoa(n int) string { return strconv.Itoa(n) }
