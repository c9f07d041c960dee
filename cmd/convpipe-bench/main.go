// Command convpipe-bench measures convpipe against the floors and targets
// of issue 5 and writes docs/benchmarks.md. `make bench` runs it from the
// repository's root:
//
//	convpipe-bench -convpipe bin/convpipe -out docs/benchmarks.md
//
// It generates its exports with samples/gen into out/bench/data (kept for
// the next run), runs the built convpipe binary as a child process for
// every end-to-end figure and reads the child's peak RSS and CPU time from
// the kernel (getrusage of the reaped child), runs the API simulator in
// this process, and runs the packages' Go benchmarks.
//
// Subcommands used by the suite itself:
//
//	convpipe-bench discard -config FILE [-source PATH] [-group MODE] [-cpuprofile FILE] [-memprofile FILE] [-summary-json FILE]
//	convpipe-bench floor csv|parquet FILE
//	convpipe-bench fill -config FILE -ledger FILE
//	convpipe-bench send -config FILE [-max-duration D] [-cpuprofile FILE]
//	convpipe-bench profile [-work DIR] [-nodes N]
//
// discard is `convpipe run --dry-run` with a sink that discards (and no
// ledger); floor is a bare read of an export; fill fills a ledger as a run
// that had every order accepted would; send is `convpipe run` in this
// process, for its CPU profile; profile writes CPU profiles of discard
// and prints their top (`make profile`).
package main

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

func main() {
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "discard":
		err = dryRunMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "floor":
		err = floorMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "fill":
		err = fillMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "send":
		err = sendMain(os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "profile":
		err = profileMain(os.Args[2:])
	default:
		err = suiteMain(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "convpipe-bench:", err)
		os.Exit(1)
	}
}

// bench holds the suite's settings and what it measured.
type bench struct {
	convpipe string // the built convpipe binary
	self     string // this binary, for the discard child
	work     string // out/bench
	data     *dataMaker
	repeat   int
	// baseline, when set, is a convpipe-bench built from an earlier
	// commit (baselineRev), whose discard runs beside this one's.
	baseline, baselineRev string
	// baselineRatios holds, per baseline series ("baseline/sorted"…),
	// the median over the rounds of this code's rate ÷ the baseline's.
	baselineRatios map[string]float64
	only           map[string]bool
	started        time.Time
	report         *report
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%5.0fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

// want reports whether the part named runs in this suite (-only).
func (b *bench) want(part string) bool { return len(b.only) == 0 || b.only[part] }

func suiteMain(args []string) error {
	fs := flag.NewFlagSet("convpipe-bench", flag.ContinueOnError)
	bin := fs.String("convpipe", "bin/convpipe", "the built convpipe binary to measure")
	out := fs.String("out", "docs/benchmarks.md", "the report to write")
	work := fs.String("work", "out/bench", "working folder (git-ignored): data, ledgers, configs, profiles")
	repeat := fs.Int("repeat", 3, "runs of each throughput measurement; the median is reported")
	baseline := fs.String("baseline", "", "a convpipe-bench built from an earlier commit (make bench builds one): its discard runs of the CSV export alternate with this one's, and the report divides the two")
	baselineRev := fs.String("baseline-rev", "", "the commit -baseline was built from, as the report names it")
	only := fs.String("only", "", "comma-separated parts to run (throughput,memory,quota,faults,cost,rerun,ledger,reconcile,gobench,profile); the report then lacks the others")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{convpipe: *bin, self: self, work: *work, repeat: max(1, *repeat), started: time.Now(), only: map[string]bool{}}
	for _, p := range strings.Split(*only, ",") {
		if p = strings.TrimSpace(p); p != "" {
			b.only[p] = true
		}
	}
	if _, err := os.Stat(b.convpipe); err != nil {
		return fmt.Errorf("-convpipe: %w (run `make build` first)", err)
	}
	if *baseline != "" {
		if _, err := os.Stat(*baseline); err != nil {
			b.logf("-baseline: %v: the report has no baseline figure", err)
		} else {
			b.baseline, b.baselineRev = *baseline, cmp.Or(*baselineRev, filepath.Base(*baseline))
		}
	}
	if err := os.MkdirAll(b.work, 0o755); err != nil {
		return err
	}
	b.data = &dataMaker{dir: filepath.Join(b.work, "data"), log: b.logf}
	b.report = newReport()
	b.report.machine = machine()
	b.report.started = b.started

	parts := []struct {
		name string
		fn   func() error
	}{
		// Parts that measure a child's peak RSS come first, while the
		// suite itself is small: the simulator, which keeps every request
		// it saw, runs in the suite's process.
		{"throughput", b.throughput},
		{"memory", b.memory},
		{"rerun", b.rerun},
		{"quota", b.quota},
		{"faults", b.faults},
		{"cost", b.cost},
		{"ledger", b.ledgerWrites},
		{"gobench", b.goBenchmarks},
		{"profile", b.profile},
		{"reconcile", b.reconcileCost},
	}
	for _, p := range parts {
		if !b.want(p.name) {
			continue
		}
		b.logf("== %s", p.name)
		if err := p.fn(); err != nil {
			b.logf("%s: %v", p.name, err)
			b.report.failed(p.name, err)
		}
	}
	b.report.data = b.data.Made
	b.report.dataBytes = dirBytes(b.data.dir)
	b.report.elapsed = time.Since(b.started)
	if err := b.report.write(*out); err != nil {
		return err
	}
	b.logf("wrote %s", *out)
	return nil
}

// machineInfo describes where the suite ran.
type machineInfo struct {
	CPUs    string
	Model   string
	Go      string
	Load    string
	Kernel  string
	MemInfo string
}

func machine() machineInfo {
	m := machineInfo{Go: runtime.Version()}
	if out, err := exec.Command("nproc").Output(); err == nil {
		m.CPUs = strings.TrimSpace(string(out))
	} else {
		m.CPUs = fmt.Sprint(runtime.NumCPU())
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command(goTool(), "version").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				m.MemInfo = strings.Join(strings.Fields(l)[1:], " ")
			}
		}
	}
	return m
}

// relPath returns p relative to the working directory when it lies
// under it.
func relPath(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}

// dirBytes returns the bytes of the files in dir.
func dirBytes(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
	}
	return n
}
