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

	"github.com/parquet-go/parquet-go"
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

// bareParquetBatch is how many values the Parquet floor reads per column
// at a time, as the sources package does.
const bareParquetBatch = 256

// bareParquet is the Parquet floor: parquet-go/parquet-go (the library the
// sources package reads with) decoding every page of every column, row
// group by row group, the values left as parquet-go decodes them (no
// rendering to strings, no rows built). It returns the rows read.
func bareParquet(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(64<<10))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	buf := make([]parquet.Value, bareParquetBatch)
	var n int64
	for _, rg := range pf.RowGroups() {
		for _, cc := range rg.ColumnChunks() {
			if err := readColumnChunk(cc, buf); err != nil {
				return n, fmt.Errorf("%s: %w", path, err)
			}
		}
		n += rg.NumRows()
	}
	return n, nil
}

// readColumnChunk decodes every value of one column chunk into buf, a
// batch at a time.
func readColumnChunk(cc parquet.ColumnChunk, buf []parquet.Value) error {
	pages := cc.Pages()
	defer pages.Close()
	for {
		p, err := pages.ReadPage()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			_, err := vr.ReadValues(buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
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
