package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"convpipe/sim"
)

func TestMaxInWindow(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(ms ...int) []sim.Request {
		var rs []sim.Request
		for _, m := range ms {
			rs = append(rs, sim.Request{Time: t0.Add(time.Duration(m) * time.Millisecond)})
		}
		return rs
	}
	for _, tc := range []struct {
		name string
		rs   []sim.Request
		want int
	}{
		{"none", nil, 0},
		{"one", at(0), 1},
		{"spaced", at(0, 100, 200, 300), 1},
		{"just inside", at(0, 50, 99), 3},
		{"burst later", at(0, 200, 201, 202, 203, 350), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := maxInWindow(tc.rs, 100*time.Millisecond); got != tc.want {
				t.Errorf("maxInWindow = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWriteConfigEditsTheSample(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// writeConfig reads the sample from the repository's root.
	t.Chdir(filepath.Join(wd, "..", ".."))
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := writeConfig(path, map[string]any{"group.mode": "sorted", "mapping.filters": nil, "sink.workers": 7}); err != nil {
		t.Fatal(err)
	}
	c, err := loadReadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Group.Mode != "sorted" || len(c.Mapping.Filters) != 0 || c.Sink.Workers != 7 || c.Source.Location != "samples/export/" {
		t.Errorf("config: group %q, %d filters, %d workers, source %q", c.Group.Mode, len(c.Mapping.Filters), c.Sink.Workers, c.Source.Location)
	}
}
