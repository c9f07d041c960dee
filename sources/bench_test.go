package sources

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"convpipe/pipeline"
)

// benchLine is a 15-column order line, as in the measurements of
// docs/dependencies.md.
type benchLine struct {
	OrderID   string  `parquet:"order_id"`
	Line      int32   `parquet:"line"`
	SKU       string  `parquet:"sku,dict"`
	Name      string  `parquet:"name"`
	Quantity  int64   `parquet:"quantity"`
	Price     int64   `parquet:"price,decimal(2:12)"`
	Discount  int64   `parquet:"discount,decimal(2:12)"`
	Currency  string  `parquet:"currency,dict"`
	Customer  string  `parquet:"customer_id"`
	Promo     *string `parquet:"promo_code,optional"`
	OrderedAt int64   `parquet:"ordered_at,timestamp(millisecond:utc)"`
	Shipped   bool    `parquet:"shipped"`
	Country   string  `parquet:"country,dict"`
	Category  string  `parquet:"category,dict"`
	Weight    float64 `parquet:"weight"`
}

func benchLines(n int) []benchLine {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	out := make([]benchLine, n)
	for i := range out {
		out[i] = benchLine{
			OrderID: fmt.Sprintf("ORD-%08d", i/3), Line: int32(i%3 + 1), SKU: fmt.Sprintf("SKU-%04d", i%997),
			Name: fmt.Sprintf("Product number %d", i%997), Quantity: int64(i%5 + 1), Price: int64(i * 37 % 100000),
			Discount: int64(i % 500), Currency: "EUR", Customer: fmt.Sprintf("cust-%07d", i*7%1000003),
			OrderedAt: base.Add(time.Duration(i) * time.Second).UnixMilli(), Shipped: i%3 == 0,
			Country: []string{"DE", "FR", "NL", "US"}[i%4], Category: fmt.Sprintf("cat-%d", i%17), Weight: float64(i%1000) / 8,
		}
		if i%4 == 0 {
			out[i].Promo = ptr("WINTER26")
		}
	}
	return out
}

func benchCSV(lines []benchLine) []byte {
	var b bytes.Buffer
	b.WriteString("order_id,line,sku,name,quantity,price,discount,currency,customer_id,promo_code,ordered_at,shipped,country,category,weight\n")
	for _, l := range lines {
		promo := ""
		if l.Promo != nil {
			promo = *l.Promo
		}
		fmt.Fprintf(&b, "%s,%d,%s,%s,%d,%s,%s,%s,%s,%s,%s,%t,%s,%s,%g\n", l.OrderID, l.Line, l.SKU, l.Name, l.Quantity,
			formatDecimalInt(l.Price, 2), formatDecimalInt(l.Discount, 2), l.Currency, l.Customer, promo,
			time.UnixMilli(l.OrderedAt).UTC().Format(time.RFC3339Nano), l.Shipped, l.Country, l.Category, l.Weight)
	}
	return b.Bytes()
}

const benchRows = 100_000

// BenchmarkCSVRead reads 100,000 15-column rows from memory: "reader" is
// this package's CSV reader, "encoding-csv" bare encoding/csv with
// ReuseRecord for comparison.
func BenchmarkCSVRead(b *testing.B) {
	data := benchCSV(benchLines(benchRows))
	set, err := Config{Location: "bench.csv"}.compile()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("reader", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			obj := &pipeline.Object{Key: "bench.csv"}
			r, err := newCSVReader(obj, io.NopCloser(bytes.NewReader(data)), set)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				_, err := r.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			r.Close()
			if n != benchRows {
				b.Fatalf("%d rows", n)
			}
		}
		b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("encoding-csv", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			r := csv.NewReader(bytes.NewReader(data))
			r.ReuseRecord = true
			for {
				_, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64((benchRows+1)*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// BenchmarkParquetRead reads 100,000 15-column rows (row groups of 25,000,
// pages of 1 MiB, Snappy) from a local Parquet file through a Source.
func BenchmarkParquetRead(b *testing.B) {
	p := filepath.Join(b.TempDir(), "bench.parquet")
	writeFile(b, p, parquetBytesPaged(b, benchLines(benchRows), 25_000, 1<<20))
	src := newSource(b, Config{Location: p})
	objs, err := src.Objects(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(objs[0].Size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := src.Open(b.Context(), objs[0])
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		r.Close()
		if n != benchRows {
			b.Fatalf("%d rows", n)
		}
	}
	b.ReportMetric(float64(benchRows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
