package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// dataset is one generated export, made by samples/gen and kept in
// out/bench/data between runs.
type dataset struct {
	Name string   // file name
	Args []string // samples/gen flags, without -out
}

// The exports every figure reads. Orders start in 2020 so that even the
// 10-million-row exports end in the past: a future EventDate is invalid
// and would not be encoded.
var (
	data1MCSV       = dataset{"orders-1m.csv", []string{"-rows", "1000000", "-format", "csv", "-start", "2020-01-01"}}
	data1MParquet   = dataset{"orders-1m.parquet", []string{"-rows", "1000000", "-format", "parquet", "-start", "2020-01-01"}}
	data1MScattered = dataset{"orders-1m-scattered.csv", []string{"-rows", "1000000", "-format", "csv", "-scatter", "-start", "2020-01-01"}}
	data10MCSV      = dataset{"orders-10m.csv", []string{"-rows", "10000000", "-format", "csv", "-start", "2020-01-01"}}
	data10MScat     = dataset{"orders-10m-scattered.csv", []string{"-rows", "10000000", "-format", "csv", "-scatter", "-start", "2020-01-01"}}
	dataSend        = dataset{"orders-100k.csv", []string{"-rows", "100000", "-format", "csv", "-start", "2020-01-01", "-seed", "7"}}
	dataRerun       = dataset{"orders-1m-orders.csv", []string{"-orders", "1000000", "-format", "csv", "-start", "2020-01-01", "-seed", "5"}}
)

// dataMaker generates exports on demand.
type dataMaker struct {
	dir string
	gen string // the generator's binary
	log func(format string, args ...any)
	// Made lists the commands run to make data in this run.
	Made []string
}

// path returns the dataset's file, generating it when it is missing or
// was made with other flags.
func (d *dataMaker) path(ds dataset) (string, error) {
	p := filepath.Join(d.dir, ds.Name)
	stamp := p + ".args"
	want := strings.Join(ds.Args, " ")
	if b, err := os.ReadFile(stamp); err == nil && string(b) == want {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if d.gen == "" {
		d.gen = filepath.Join(filepath.Dir(d.dir), "gen")
		cmd := exec.Command(goTool(), "build", "-o", d.gen, "./samples/gen")
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("build samples/gen: %w", err)
		}
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return "", err
	}
	os.Remove(stamp)
	args := append(append([]string{}, ds.Args...), "-out", p)
	start := time.Now()
	cmd := exec.Command(d.gen, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("generate %s: %w", ds.Name, err)
	}
	line := "go run ./samples/gen " + strings.Join(args, " ")
	d.Made = append(d.Made, line)
	d.log("generated %s in %s", relPath(p), time.Since(start).Round(100*time.Millisecond))
	return p, os.WriteFile(stamp, []byte(want), 0o644)
}

// goTool returns the go command: $GO, as make passes it, or "go".
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}
