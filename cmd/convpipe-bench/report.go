package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// verdict is one figure beside its target.
type verdict struct {
	Figure   string
	Measured string
	Target   string
	// Met is nil for a figure without a target of its own.
	Met *bool
	Why string
}

// section is the detail of one part of the suite.
type section struct {
	Title     string
	Text      []string // paragraphs
	Commands  []string
	Table     [][]string // the first row is the header
	CodeIntro string     // a paragraph before Code
	Code      string     // preformatted text (benchmark output, profile)
	After     []string   // paragraphs after the table
}

type report struct {
	machine   machineInfo
	started   time.Time
	elapsed   time.Duration
	data      []string
	dataBytes int64
	verdicts  []verdict
	sections  []*section
	failures  []string
}

func newReport() *report { return &report{} }

func (r *report) add(v verdict) { r.verdicts = append(r.verdicts, v) }

func (r *report) section(s *section) { r.sections = append(r.sections, s) }

func (r *report) failed(part string, err error) {
	r.failures = append(r.failures, fmt.Sprintf("%s: %v", part, err))
}

func met(ok bool) *bool { return &ok }

// write writes the report as Markdown to path.
func (r *report) write(path string) error {
	var md markdown
	r.writeMachine(&md)
	r.writeVerdicts(&md)
	r.writeHowTo(&md)
	for _, s := range r.sections {
		s.write(&md)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(md.String()), 0o644)
}

// markdown is the report's text as it is written.
type markdown struct{ strings.Builder }

// printf appends to the text as fmt.Printf prints.
func (md *markdown) printf(format string, args ...any) { fmt.Fprintf(&md.Builder, format, args...) }

// writeMachine writes the report's title, what it is, and the machine it
// ran on.
func (r *report) writeMachine(md *markdown) {
	w := md.printf
	w("# Benchmarks\n\n")
	w("Written by `make bench` (cmd/convpipe-bench); do not edit by hand: run it again. ")
	w("Every figure below comes from one run of the suite, each measured beside its floor or target in that run. ")
	w("The machine is shared (other jobs may run on its two cores), so single figures carry noise; ")
	w("the throughput figures are the median of several runs.\n\n")
	w("## Machine\n\n")
	w("| | |\n|---|---|\n")
	w("| `nproc` | %s |\n", r.machine.CPUs)
	w("| CPU (/proc/cpuinfo) | %s |\n", r.machine.Model)
	w("| Memory | %s |\n", r.machine.MemInfo)
	w("| Kernel | %s |\n", r.machine.Kernel)
	w("| Go | %s |\n", r.machine.Go)
	w("| Date | %s |\n", r.started.UTC().Format("2006-01-02 15:04 MST"))
	w("| Load average at start | %s |\n", r.machine.Load)
	w("| Suite's duration | %s |\n\n", r.elapsed.Round(time.Second))
}

// writeVerdicts writes the table of figures and targets, and the parts of
// the suite that failed.
func (r *report) writeVerdicts(md *markdown) {
	w := md.printf
	w("## Figures and targets\n\n")
	w("| # | Figure | Measured | Target | Met | Why |\n|---|---|---|---|---|---|\n")
	for i, v := range r.verdicts {
		m := "—"
		if v.Met != nil {
			m = "no"
			if *v.Met {
				m = "yes"
			}
		}
		w("| %d | %s | %s | %s | %s | %s |\n", i+1, cell(v.Figure), cell(v.Measured), cell(v.Target), m, cell(v.Why))
	}
	w("\n")
	if len(r.failures) > 0 {
		w("**Parts that failed in this run** (their figures are missing):\n\n")
		for _, f := range r.failures {
			w("- %s\n", cell(f))
		}
		w("\n")
	}
}

// writeHowTo writes how to run the suite and the data it generated.
func (r *report) writeHowTo(md *markdown) {
	w := md.printf
	w("## How to run\n\n```sh\nmake bench     # the whole suite, writes this file\nmake profile   # CPU profiles of the dry run into out/bench/profile\n```\n\n")
	w("`make bench` builds `bin/convpipe` and `bin/convpipe-bench` and runs `bin/convpipe-bench -convpipe bin/convpipe -out docs/benchmarks.md`. ")
	w("Exports are generated once into `out/bench/data` (git-ignored; %s now) and reused while their generator flags are unchanged; a first run spends about two more minutes making them and the rerun ledger. ", fmtBytes(r.dataBytes))
	w("Peak RSS and CPU seconds of a child process come from the kernel: `ProcessState.SysUsage()` (`syscall.Rusage`: `Maxrss` in KiB, `Utime`+`Stime`).\n\n")
	if len(r.data) > 0 {
		w("Data generated in this run:\n\n```sh\n%s\n```\n\n", strings.Join(r.data, "\n"))
	}
}

// write writes the section: its title, text, commands, table, code and
// the text after.
func (s *section) write(md *markdown) {
	w := md.printf
	w("## %s\n\n", s.Title)
	for _, p := range s.Text {
		w("%s\n\n", p)
	}
	if len(s.Commands) > 0 {
		w("```sh\n%s\n```\n\n", strings.Join(s.Commands, "\n"))
	}
	if len(s.Table) > 0 {
		writeTable(md, s.Table)
	}
	if s.CodeIntro != "" {
		w("%s\n\n", s.CodeIntro)
	}
	if s.Code != "" {
		w("```\n%s\n```\n\n", strings.TrimRight(s.Code, "\n"))
	}
	for _, p := range s.After {
		w("%s\n\n", p)
	}
}

// writeTable writes rows as a Markdown table, the first row its header.
func writeTable(md *markdown, rows [][]string) {
	for i, row := range rows {
		cells := make([]string, len(row))
		for j, c := range row {
			cells[j] = cell(c)
		}
		md.printf("| %s |\n", strings.Join(cells, " | "))
		if i == 0 {
			md.printf("|%s\n", strings.Repeat("---|", len(row)))
		}
	}
	md.printf("\n")
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// Number formatting for the report.

func fmtRate(perSec float64) string {
	switch {
	case perSec >= 1e6:
		return fmt.Sprintf("%.2f M", perSec/1e6)
	case perSec >= 1e3:
		return fmt.Sprintf("%.0f k", perSec/1e3)
	}
	return fmt.Sprintf("%.1f", perSec)
}

func fmtSec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func fmtMiB(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func fmtInt(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}
