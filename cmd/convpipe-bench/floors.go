package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/xitongsys/parquet-go/reader"
	"github.com/xitongsys/parquet-go/source"
)

// bareCSV is the CSV floor: encoding/csv with ReuseRecord over the file,
// nothing done with the records. It returns the data rows read.
func bareCSV(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 64<<10))
	r.ReuseRecord = true
	var n int64
	for {
		_, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", path, err)
		}
		n++
	}
	return n - 1, nil // the header
}

// bareParquetBatch is how many rows the Parquet floor reads per column
// at a time, as the sources package does.
const bareParquetBatch = 10000

// bareParquet is the Parquet floor: xitongsys/parquet-go's column reader
// over every column, in batches, the values left as parquet-go decodes
// them (no rendering to strings, no rows built).
func bareParquet(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	pf := &parquetFile{File: f, path: path}
	defer pf.Close()
	pr, err := reader.NewParquetColumnReader(pf, 1)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	defer pr.ReadStop()
	total := pr.GetNumRows()
	cols := pr.SchemaHandler.ValueColumns
	var n int64
	for n < total {
		batch := min(int64(bareParquetBatch), total-n)
		for i, c := range cols {
			vals, _, _, err := pr.ReadColumnByPath(c, batch)
			if err != nil {
				return n, fmt.Errorf("%s: column %s: %w", path, c, err)
			}
			if i == 0 && int64(len(vals)) != batch {
				return n, fmt.Errorf("%s: column %s: %d values, want %d", path, c, len(vals), batch)
			}
		}
		n += batch
	}
	return n, nil
}

// parquetFile is parquet-go's source.ParquetFile over a local file.
type parquetFile struct {
	*os.File
	path string
}

func (f *parquetFile) Open(name string) (source.ParquetFile, error) {
	if name == "" {
		name = f.path
	}
	g, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return &parquetFile{File: g, path: name}, nil
}

func (f *parquetFile) Create(string) (source.ParquetFile, error) {
	return nil, errors.New("read-only")
}

// floorMain is the "floor" subcommand: one bare read of an export, as a
// child process of the suite, so that its CPU time and peak RSS come from
// the kernel like every other figure's, and the suite itself stays small
// (a child's Maxrss starts at what its parent had when it was forked).
// It prints the rows read.
func floorMain(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: convpipe-bench floor csv|parquet FILE")
	}
	read := bareCSV
	switch args[0] {
	case "csv":
	case "parquet":
		read = bareParquet
	default:
		return fmt.Errorf("floor: unknown format %q", args[0])
	}
	start := time.Now()
	n, err := read(args[1])
	if err != nil {
		return err
	}
	fmt.Printf("rows=%d seconds=%.3f\n", n, time.Since(start).Seconds())
	return nil
}
