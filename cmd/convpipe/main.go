// Command convpipe turns shops' order exports into impact.com conversions.
//
// See the README for the configuration, the subcommands and the exit codes.
package main

import (
	"os"
	"runtime/debug"

	"convpipe/pipeline/group"
)

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:]))
}

// tuneGC lets the collector run less often than Go's default: convpipe's
// heap is small and short-lived (rows, then conversions), so at GOGC=100
// it spends much of a run collecting (docs/benchmarks.md). A soft memory
// limit, set from the grouping budget once the configuration is read
// (limitMemory), keeps the larger heap target bounded. GOGC in the
// environment wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// limitMemory sets a soft memory limit of the grouping budget plus 64 MiB
// of headroom (the bound for a run), unless GOMEMLIMIT is set.
// Under that limit it also raises GOGC to gcPercentUnderLimit, unless GOGC
// is set: the limit now bounds the heap, and a run whose live heap is
// small (sorted grouping, sending) would otherwise collect at Go's
// smallest heap goal, 4 MiB × GOGC/100 (16 MiB at 400), some 70 times per
// million rows.
func limitMemory(budget group.ByteSize) {
	if os.Getenv("GOMEMLIMIT") == "" && budget > 0 {
		debug.SetMemoryLimit(int64(budget) + 64<<20)
		if os.Getenv("GOGC") == "" {
			debug.SetGCPercent(gcPercentUnderLimit)
		}
	}
}

// gcPercentUnderLimit is GOGC under limitMemory's limit: the collector's
// smallest heap goal is then 32 MiB. At 1600 (a 64 MiB goal) make bench's
// auto run over 10M rows (part 2) peaked at 157 MiB against its 150 MiB
// target, its heap riding the limit; at 800 it stays at 145 MiB.
const gcPercentUnderLimit = 800
