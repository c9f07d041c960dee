package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// budget is group.memory_budget of the sample configuration, which every
// run here keeps.
const budget = 64 << 20

// memory is figure 2: peak RSS of `convpipe run --dry-run` over 1M and
// 10M rows, contiguous and scattered.
func (b *bench) memory() error {
	sec := &section{Title: "2. Memory: peak RSS (`convpipe run --dry-run`)"}
	sec.Text = append(sec.Text,
		"The real binary, `convpipe run --dry-run --dry-run-out /dev/null`, with the sample configuration's grouping budget (`group.memory_budget: 64MiB`) and its temporary files in out/bench/tmp. "+
			"*Contiguous* exports keep the lines of an order together (as shops write them); *scattered* ones deal each order's lines out over a window of 4,096 orders, so auto mode must spill to hash partitions. "+
			"Peak RSS is the child's `Maxrss`; one run each.")
	sec.Table = [][]string{{"Export", "Rows", "Group", "Peak RSS", "Wall", "CPU", "rows/s"}}

	type run struct {
		key   string
		ds    dataset
		label string
		mode  string
	}
	runs := []run{
		{"1m/contiguous/auto", data1MCSV, "contiguous", "auto"},
		{"10m/contiguous/auto", data10MCSV, "contiguous", "auto"},
		{"1m/scattered/auto", data1MScattered, "scattered", "auto"},
		{"10m/scattered/auto", data10MScat, "scattered", "auto"},
	}
	res := map[string]tpRun{}
	for _, r := range runs {
		path, err := b.data.path(r.ds)
		if err != nil {
			return err
		}
		cfg, err := b.readConfigFor("mem-"+filepath.Base(path)+"-"+r.mode, path, r.mode)
		if err != nil {
			return err
		}
		c := b.dryRun(cfg)
		out, err := c.run()
		if err != nil {
			return err
		}
		if out.Summary.FileErrors > 0 {
			return fmt.Errorf("%s: file errors: %s", c.command(), tail(out.Stderr, 400))
		}
		if out.MaxRSS <= out.ParentRSS {
			return fmt.Errorf("%s: its peak RSS (%s) cannot be told from the suite's own (%s)", c.command(), fmtMiB(out.MaxRSS), fmtMiB(out.ParentRSS))
		}
		t := tpRun{Label: r.label, Mode: r.mode, Rows: out.Summary.Total.Rows, U: out.usage, Cmd: c.command()}
		res[r.key] = t
		b.logf("memory %-24s %-6s rows=%d rss %s wall %.1fs", r.label, r.mode, t.Rows, t.U.RSS(), t.U.Wall.Seconds())
		sec.Table = append(sec.Table, []string{r.label, fmtInt(t.Rows), r.mode, t.U.RSS(), fmtSec(t.U.Wall), fmtSec(t.U.CPU()), fmtRate(t.rate())})
		if r.key == "10m/scattered/auto" {
			sec.Commands = append(sec.Commands, t.Cmd)
		}
	}
	sec.After = append(sec.After, fmt.Sprintf("Group sorted holds one order at a time: its peak RSS over 1M rows is in the table of part 1, as is Parquet's, whose reader holds the decoded column chunks of a whole row group (the generated file has one row group of 1M rows). "+
		"A child's `Maxrss` cannot be lower than the suite's own resident size when it forked the child (Linux carries the high-water mark across exec); the suite keeps itself small for that reason, and its own peak RSS was %s when this part ended.", fmtMiB(selfUsage().MaxRSS)))
	// The temporary files are gone once each run ends; check.
	if left, _ := filepath.Glob(filepath.Join(b.work, "tmp", "convpipe-group-*")); len(left) > 0 {
		sec.After = append(sec.After, fmt.Sprintf("**Temporary files left behind:** %v", left))
	}
	_ = os.RemoveAll(filepath.Join(b.work, "tmp"))
	b.report.section(sec)

	c1, c10 := res["1m/contiguous/auto"], res["10m/contiguous/auto"]
	ratio := float64(c10.U.MaxRSS) / float64(c1.U.MaxRSS)
	limit := int64(150 << 20)
	b.report.add(verdict{
		Figure:   "Peak RSS, contiguous, group auto: 1M → 10M rows",
		Measured: fmt.Sprintf("%s → %s (×%.2f)", fmtMiB(c1.U.MaxRSS), fmtMiB(c10.U.MaxRSS), ratio),
		Target:   "flat (≤ ×1.5) and < 150 MiB",
		Met:      met(ratio <= 1.5 && c1.U.MaxRSS < limit && c10.U.MaxRSS < limit),
		Why:      "auto holds rows up to the 64 MiB budget, then spills them to one sequential file and streams it back; convpipe sets a soft memory limit of the budget plus 64 MiB and, under it, GOGC=800, so the heap grows past the live rows only up to that limit.",
	})
	sc1, sc10 := res["1m/scattered/auto"], res["10m/scattered/auto"]
	slimit := int64(budget + 100<<20)
	b.report.add(verdict{
		Figure:   "Peak RSS, scattered, group auto: 1M / 10M rows",
		Measured: fmt.Sprintf("%s / %s", fmtMiB(sc1.U.MaxRSS), fmtMiB(sc10.U.MaxRSS)),
		Target:   fmt.Sprintf("≤ budget + 100 MiB = %s", fmtMiB(slimit)),
		Met:      met(sc1.U.MaxRSS <= slimit && sc10.U.MaxRSS <= slimit),
		Why:      "rows beyond the budget go to hash partitions, read back one at a time; each partition is sized to come back at about half the budget.",
	})
	return nil
}
