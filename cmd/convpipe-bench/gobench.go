package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goBench is one package's Go benchmarks run by the suite.
type goBench struct {
	pkg, pattern, benchtime, what string
}

var goBenches = []goBench{
	{"./cmd/convpipe-bench", "^BenchmarkRowToConversion$", "1s", "a CSV row to a conversion: sources' CSV reader, sorted grouping, mapping, Encode and PayloadHash"},
	{"./pipeline", "^Benchmark(Encode|PayloadHash)$", "1s", "encoding a conversion's body, hashing it"},
	{"./pipeline/group", "^BenchmarkGroup(Sorted|Auto)$", "1s", "grouping sorted rows, and auto mode beyond the budget"},
	{"./mapping", "^BenchmarkMap$", "1s", "mapping an order of three lines"},
	{"./sources", "^BenchmarkCSVRead$", "1x", "the CSV reader beside bare encoding/csv"},
	{"./ledger", "^Benchmark(Put|PutSerial|Get|Settled)$", "1s", "a ledger write (durable Put) and lookups (Get through SQL, Settled from the index)"},
	{"./sources", "^BenchmarkParquetParseMap$", "1x", "10M Parquet rows: parse+map beside parquet-go's bare page and row reads, with peak RSS (issue 13)"},
	{"./pipeline/engine", "^BenchmarkBatchBackfill$", "1x", "a 100,000-order backfill through batch files over SFTP beside its read+map floor and the API's pace (issue 16)"},
}

// goBenchmarks runs the packages' Go benchmarks with -benchmem.
func (b *bench) goBenchmarks() error {
	sec := &section{Title: "7. Go benchmarks of the hot paths"}
	sec.Text = append(sec.Text, "`testing.B` benchmarks with `-benchmem`, run by the suite as below. ns/op and allocations are per operation as each benchmark defines it (see its doc comment); rows/s and puts/s are reported by the benchmarks themselves.")
	var out strings.Builder
	var failed []string
	for _, gb := range goBenches {
		args := []string{"test", "-run", "^$", "-bench", gb.pattern, "-benchmem", "-benchtime", gb.benchtime, "-count", "1", gb.pkg}
		sec.Commands = append(sec.Commands, "go "+strings.Join(args, " ")+"   # "+gb.what)
		cmd := exec.Command(goTool(), args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		b.logf("go %s", strings.Join(args, " "))
		err := cmd.Run()
		for _, l := range strings.Split(stdout.String(), "\n") {
			if strings.HasPrefix(l, "Benchmark") || strings.HasPrefix(l, "pkg:") {
				out.WriteString(l + "\n")
			}
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v: %s", gb.pkg, err, tail(stdout.String()+stderr.String(), 300)))
		}
	}
	sec.Code = out.String()
	for _, f := range failed {
		sec.After = append(sec.After, "**Failed:** "+f)
	}
	b.report.section(sec)
	if len(failed) > 0 {
		return fmt.Errorf("%d benchmark packages failed", len(failed))
	}
	return nil
}

// profileRuns writes CPU profiles of the discard dry run over the 1M-row
// CSV export (group sorted and auto) into dir and returns the top of
// each, as `go tool pprof -top` prints it.
func (b *bench) profileRuns(dir string, nodes int) ([][2]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path, err := b.data.path(data1MCSV)
	if err != nil {
		return nil, err
	}
	var tops [][2]string
	for _, mode := range []string{"sorted", "auto"} {
		cfg, err := b.readConfigFor("csv-1m-"+mode, path, mode)
		if err != nil {
			return nil, err
		}
		prof := filepath.Join(dir, "cpu-csv-1m-"+mode+".prof")
		c := b.discard(cfg)
		c.Args = append(c.Args, "-cpuprofile", prof)
		if _, err := c.run(); err != nil {
			return nil, err
		}
		top, err := exec.Command(goTool(), "tool", "pprof", "-top", fmt.Sprintf("-nodecount=%d", nodes), b.self, prof).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof %s: %w", prof, err)
		}
		cum, err := exec.Command(goTool(), "tool", "pprof", "-top", "-cum", fmt.Sprintf("-nodecount=%d", nodes), b.self, prof).Output()
		if err != nil {
			return nil, fmt.Errorf("go tool pprof %s: %w", prof, err)
		}
		tops = append(tops, [2]string{c.command(), trimPprof(string(top)) + "\n\n" + trimPprof(string(cum))})
	}
	return tops, nil
}

// trimPprof drops pprof's header lines that name the binary and its
// build id.
func trimPprof(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasPrefix(l, "File:") || strings.HasPrefix(l, "Build ID:") || strings.HasPrefix(l, "Type:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// profile quotes the top of the dry run's CPU profile.
func (b *bench) profile() error {
	dir := filepath.Join(b.work, "profile")
	tops, err := b.profileRuns(dir, 25)
	if err != nil {
		return err
	}
	sec := &section{Title: "8. Profile of the dry run"}
	sec.Text = append(sec.Text, "CPU profiles (`runtime/pprof`) of the discard dry run over the 1,000,000-row CSV export, kept in out/bench/profile; each quoted twice, by own time (flat) and by cumulative time. Read them with `go tool pprof -http=: bin/convpipe-bench out/bench/profile/cpu-csv-1m-sorted.prof`.")
	for _, t := range tops {
		sec.Code += "$ " + t[0] + "\n" + t[1] + "\n\n"
	}
	b.report.section(sec)
	return nil
}

// profileMain is `convpipe-bench profile`: the profiles alone, printed.
func profileMain(args []string) error {
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	work := fs.String("work", "out/bench", "working folder")
	nodes := fs.Int("nodes", 40, "lines of each profile to print")
	if err := fs.Parse(args); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	b := &bench{self: self, work: *work, started: time.Now()}
	b.data = &dataMaker{dir: filepath.Join(b.work, "data"), log: b.logf}
	tops, err := b.profileRuns(filepath.Join(b.work, "profile"), *nodes)
	if err != nil {
		return err
	}
	for _, t := range tops {
		fmt.Printf("$ %s\n%s\n\n", t[0], t[1])
	}
	return nil
}
