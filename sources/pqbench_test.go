package sources_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"convpipe/mapping"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/sinks"
	"convpipe/sources"
)

// BenchmarkParquetParseMap measures, on one export of samples/gen (15
// columns, Snappy, row groups of 1,000,000 rows; 10,000,000 rows, or
// CONVPIPE_PQBENCH_ROWS), three reads, each in a child process so that its
// CPU time and peak RSS come from the kernel:
//
//   - floor: a bare parquet-go/parquet-go read of every page of every
//     column, the values left as decoded;
//   - floor-rows: parquet-go's row reader (rows of parquet.Value, 256 at a
//     time, as its GenericReader assembles them), for comparison;
//   - read: this package's reader, every row rendered;
//   - map: the engine over the reader, grouping sorted, every order mapped
//     and checked by the sample configuration's mapping, encoded and
//     handed to sinks.Discard.
//
// It reports rows/s, CPU seconds, peak RSS and each read's share of the
// floor's rows/s. The export is written once into
// $TMPDIR/convpipe-pqbench and reused. Run it alone:
//
//	go test ./sources -run '^$' -bench BenchmarkParquetParseMap -benchtime 1x
func BenchmarkParquetParseMap(b *testing.B) {
	rows := 10_000_000
	if s := os.Getenv("CONVPIPE_PQBENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("CONVPIPE_PQBENCH_ROWS: %v", err)
		}
		rows = n
	}
	file := benchExport(b, rows)
	var floor float64
	for _, mode := range []string{"floor", "floor-rows", "read", "map"} {
		b.Run(mode, func(b *testing.B) {
			for b.Loop() {
				r := runBenchChild(b, mode, file, rows)
				rate := float64(rows) / r.wall.Seconds()
				if mode == "floor" {
					floor = rate
				}
				b.ReportMetric(rate, "rows/s")
				b.ReportMetric(r.cpu.Seconds(), "cpu-s")
				b.ReportMetric(float64(r.maxRSS)/(1<<20), "peak-MiB")
				if floor > 0 {
					b.ReportMetric(100*rate/floor, "%floor")
				}
			}
		})
	}
}

// benchExport writes (once) the samples/gen export of rows rows.
func benchExport(b *testing.B, rows int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "convpipe-pqbench")
	file := filepath.Join(dir, fmt.Sprintf("orders-%d-rg1m.parquet", rows))
	if _, err := os.Stat(file); err == nil {
		return file
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := file + ".tmp"
	cmd := exec.Command("go", "run", "../samples/gen", "-rows", strconv.Itoa(rows), "-format", "parquet",
		"-row-group-rows", "1000000", "-start", "2026-11-01", "-out", tmp)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatalf("samples/gen: %v", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		b.Fatal(err)
	}
	return file
}

type childResult struct {
	wall, cpu time.Duration
	maxRSS    int64 // bytes
}

// runBenchChild runs this test binary as a child that reads file in mode
// (TestParquetBenchChild) and returns its figures.
func runBenchChild(b *testing.B, mode, file string, rows int) childResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestParquetBenchChild$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "CONVPIPE_PQBENCH_CHILD="+mode, "CONVPIPE_PQBENCH_FILE="+file)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	wall := time.Since(start)
	if err != nil {
		b.Fatalf("%s child: %v\n%s", mode, err, out)
	}
	if !strings.Contains(string(out), fmt.Sprintf("rows=%d ", rows)) {
		b.Fatalf("%s child: want rows=%d, got\n%s", mode, rows, out)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return childResult{wall: wall, cpu: cpu, maxRSS: ru.Maxrss << 10}
}

// TestParquetBenchChild is BenchmarkParquetParseMap's child process; it
// does nothing unless CONVPIPE_PQBENCH_CHILD is set.
func TestParquetBenchChild(t *testing.T) {
	mode, file := os.Getenv("CONVPIPE_PQBENCH_CHILD"), os.Getenv("CONVPIPE_PQBENCH_FILE")
	if mode == "" {
		return // run only as the benchmark's child
	}
	var n int64
	var err error
	switch mode {
	case "floor":
		n, err = bareParquetRead(file)
	case "floor-rows":
		n, err = bareRowRead(file)
	case "read":
		n, err = readerRead(t.Context(), file)
	case "map":
		n, err = mapRead(t.Context(), file)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("rows=%d goroutines=%d\n", n, runtime.NumGoroutine())
}

// bareParquetRead decodes every page of every column of file with
// parquet-go, 256 values at a time, as the reader does, and returns the
// rows.
func bareParquetRead(file string) (int64, error) {
	f, err := os.Open(file)
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
		return 0, err
	}
	buf := make([]parquet.Value, 256)
	var n int64
	for _, rg := range pf.RowGroups() {
		for _, cc := range rg.ColumnChunks() {
			pages := cc.Pages()
			for {
				p, err := pages.ReadPage()
				if err == io.EOF {
					break
				}
				if err != nil {
					return n, err
				}
				vr := p.Values()
				for {
					if _, err := vr.ReadValues(buf); err != nil {
						if err != io.EOF {
							return n, err
						}
						break
					}
				}
				parquet.Release(p)
			}
			pages.Close()
		}
		n += rg.NumRows()
	}
	return n, nil
}

// bareRowRead reads every row of file with parquet-go's row reader.
func bareRowRead(file string) (int64, error) {
	f, err := os.Open(file)
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
		return 0, err
	}
	buf := make([]parquet.Row, 256)
	var n int64
	for _, rg := range pf.RowGroups() {
		rows := rg.Rows()
		for {
			k, err := rows.ReadRows(buf)
			n += int64(k)
			if err == io.EOF {
				break
			}
			if err != nil {
				rows.Close()
				return n, err
			}
		}
		rows.Close()
	}
	return n, nil
}

// readerRead reads every row of file through a Source.
func readerRead(ctx context.Context, file string) (int64, error) {
	src, err := sources.New(ctx, sources.Config{Location: file})
	if err != nil {
		return 0, err
	}
	objs, err := src.Objects(ctx)
	if err != nil {
		return 0, err
	}
	r, err := src.Open(ctx, objs[0])
	if err != nil {
		return 0, err
	}
	defer r.Close()
	var n int64
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n++
	}
}

// benchMapping is the sample configuration's mapping (configs/sample.yaml).
const benchMapping = `
max_event_age: 3650d
order_key: [store, order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: "{store}-{order_id}"
  EventDate: {column: created_at, transforms: [{time: {layout: "2006-01-02 15:04:05", layouts: [rfc3339], zone: Europe/Berlin}}]}
  ClickId: {column: click_id, transforms: [trim]}
  CustomerId: customer_id
  CustomerEmail: {column: email, transforms: [hash]}
  OrderPromoCode: {column: promo_code, transforms: [trim, upper]}
  CurrencyCode: {column: currency, transforms: [trim, upper, {default: EUR}]}
  Text1: store
items:
  ItemSku: sku
  ItemName: product_name
  ItemCategory: category
  ItemQuantity: {column: quantity, transforms: [integer]}
  ItemPrice: {column: unit_price, transforms: [number]}
  ItemDiscount: {column: discount, transforms: [number]}
filters:
  - skip: order
    when: {column: status, in: [cancelled]}
    reason: order cancelled
`

// mapRead runs the engine over file, grouping sorted, into sinks.Discard,
// and returns the rows read.
func mapRead(ctx context.Context, file string) (int64, error) {
	src, err := sources.New(ctx, sources.Config{Location: file})
	if err != nil {
		return 0, err
	}
	cfg, err := mapping.ParseConfig([]byte(benchMapping))
	if err != nil {
		return 0, err
	}
	m, err := mapping.New(cfg)
	if err != nil {
		return 0, err
	}
	g := group.Config{Mode: group.Sorted}.WithDefaults()
	s, err := engine.Run(ctx, engine.Options{Source: src, Mapper: m, Mode: engine.DryRun, Sink: &sinks.Discard{}, Workers: 2, Group: g})
	if err != nil {
		return 0, err
	}
	if s.Total.Invalid > 0 || s.FileErrors > 0 {
		return s.Total.Rows, fmt.Errorf("%d invalid orders, %d file errors", s.Total.Invalid, s.FileErrors)
	}
	return s.Total.Rows, nil
}
