package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"convpipe/sim"

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
	if len(args) == 5 && args[0] == "http" {
		return floorHTTP(args[1:])
	}
	if len(args) != 2 {
		return errors.New("usage: convpipe-bench floor csv|parquet FILE, or floor http URL RATE WORKERS DURATION")
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

// floorHTTP is the floor of a request's cost: a bare net/http client that
// POSTs a small form body with basic auth to url, paced by x/time/rate at
// rate per second (burst 1) over workers goroutines sharing one keep-alive
// transport, for d. Nothing is mapped, recorded or retried. It prints the
// requests answered.
func floorHTTP(args []string) error {
	url := args[0]
	perSecond, err := strconv.ParseFloat(args[1], 64)
	if err != nil {
		return fmt.Errorf("floor http: rate: %w", err)
	}
	workers, err := strconv.Atoi(args[2])
	if err != nil {
		return fmt.Errorf("floor http: workers: %w", err)
	}
	d, err := time.ParseDuration(args[3])
	if err != nil {
		return fmt.Errorf("floor http: duration: %w", err)
	}
	lim := rate.NewLimiter(rate.Limit(perSecond), 1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; lim.Wait(ctx) == nil; i++ {
				body := fmt.Sprintf("CampaignId=1000&ActionTrackerId=12345&EventDate=2026-11-20T10%%3A00%%3A00Z&OrderId=floor-%d-%d&CurrencyCode=EUR&ClickId=clk&ItemSku1=SKU-1&ItemPrice1=10.50&ItemQuantity1=1", w, i)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
				if err != nil {
					return
				}
				req.SetBasicAuth(sim.DefaultAccountSID, sim.DefaultAuthToken)
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	fmt.Printf("requests=%d\n", n.Load())
	return nil
}
