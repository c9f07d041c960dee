package main

import (
	"math"
	"runtime/debug"
	"testing"

	"convpipe/pipeline/group"
)

// TestLimitMemory: the run's soft memory limit is the grouping budget
// plus 64 MiB, and under it GOGC is gcPercentUnderLimit; GOGC or
// GOMEMLIMIT in the environment wins over each.
func TestLimitMemory(t *testing.T) {
	restore := func() {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}
	t.Cleanup(restore)
	const budget = 64 << 20
	for _, tc := range []struct {
		name, gogc, memlimit string
		wantGC               int
		wantLimit            int64
	}{
		{"defaults", "", "", gcPercentUnderLimit, budget + 64<<20},
		{"GOGC set", "200", "", 400, budget + 64<<20},
		{"GOMEMLIMIT set", "", "1GiB", 400, math.MaxInt64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			restore()
			t.Setenv("GOGC", tc.gogc)
			t.Setenv("GOMEMLIMIT", tc.memlimit)
			debug.SetGCPercent(400) // as tuneGC left it (or the runtime, from GOGC)
			limitMemory(group.ByteSize(budget))
			if got := debug.SetGCPercent(100); got != tc.wantGC {
				t.Errorf("GOGC %d, want %d", got, tc.wantGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}
