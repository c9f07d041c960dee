package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/group"
	"convpipe/sources"
)

// writeOrders writes n order lines shaped as samples/gen writes them: 15
// columns, 1 to 8 lines per order, names with commas and quotes.
func writeOrders(tb testing.TB, path string, n int) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	w := csv.NewWriter(bw)
	w.Write([]string{"order_id", "store", "created_at", "status", "customer_id", "email", "click_id",
		"promo_code", "currency", "sku", "product_name", "category", "quantity", "unit_price", "discount"})
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{`Anvil, heavy`, `Tennis Balls (3 pack)`, `Rocket Skates`, `"Giant" Magnet`, `Bird Seed, 5 kg`}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for row, order := 0, 0; row < n; order++ {
		k := min(1+rng.IntN(8), n-row)
		cust := rng.IntN(200000)
		created := t0.Add(time.Duration(order) * time.Minute).Format("2006-01-02 15:04:05")
		click := fmt.Sprintf("clk_%016x", rng.Uint64())
		for range k {
			p := rng.IntN(len(names))
			w.Write([]string{strconv.Itoa(100001 + order), "berlin", created, "paid", "C" + strconv.Itoa(cust),
				fmt.Sprintf("Customer%d@Example.com ", cust), click, "", "EUR",
				fmt.Sprintf("SKU-%04d", p*37), names[p], "tools", strconv.Itoa(1 + rng.IntN(4)),
				fmt.Sprintf("%d.%02d", 1+rng.IntN(200), rng.IntN(100)), "0.00"})
			row++
		}
	}
	w.Flush()
	if err := errors.Join(w.Error(), bw.Flush(), f.Close()); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkRowToConversion takes CSV rows to encoded, hashed conversions
// as a run does before it asks the ledger: the sources package's CSV
// reader, sorted grouping, the sample configuration's mapping,
// Conversion.Encode and PayloadHash. One op is one row.
func BenchmarkRowToConversion(b *testing.B) {
	const rows = 50000
	path := filepath.Join(b.TempDir(), "orders.csv")
	writeOrders(b, path, rows)
	cfg, err := loadReadConfig(filepath.Join("..", "..", baseConfig))
	if err != nil {
		b.Fatal(err)
	}
	m, err := mapping.New(cfg.Mapping)
	if err != nil {
		b.Fatal(err)
	}
	src, err := sources.New(b.Context(), sources.Config{Location: path})
	if err != nil {
		b.Fatal(err)
	}
	objs, err := src.Objects(b.Context())
	if err != nil || len(objs) != 1 {
		b.Fatal(objs, err)
	}
	var orders, bodies int
	g := group.New(group.Config{Mode: group.Sorted}, m.OrderKey, func(lines []pipeline.Row) error {
		orders++
		md := m.Map(lines)
		if len(md.Problems) > 0 {
			return fmt.Errorf("%v", md.Problems)
		}
		pipeline.PayloadHash(md.Conversion.Encode())
		bodies++
		return nil
	})
	var next func() (pipeline.Row, error)
	b.ReportAllocs()
	read := 0
	for b.Loop() {
		if read%rows == 0 {
			// Start the export again; the first open is not timed.
			b.StopTimer()
			if err := g.Flush(); err != nil {
				b.Fatal(err)
			}
			rr, err := src.Open(b.Context(), objs[0])
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { rr.Close() })
			next = rr.Next
			b.StartTimer()
		}
		row, err := next()
		if err == io.EOF {
			b.Fatalf("export ended after %d rows", read%rows)
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Add(row); err != nil {
			b.Fatal(err)
		}
		read++
	}
	if err := g.Flush(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "rows/s")
	if bodies == 0 {
		b.Fatal("no conversion")
	}
}
