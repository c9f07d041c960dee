// Command gen writes a seeded, synthetic order export for tests, the demo
// and benchmarks: one row per order line, 1 to 8 lines per order, about 15
// columns, product names with commas and quotes.
//
//	go run ./samples/gen -rows 1000000 -format csv -out orders.csv
//	go run ./samples/gen -rows 1000000 -format parquet -out orders.parquet
//	go run ./samples/gen -rows 1000000 -scatter -out scattered.csv
//	go run ./samples/gen -orders 1000000 -out million-orders.csv
//
// -orders writes whole orders up to the given count instead of stopping
// at -rows. The same seed always writes the same rows. With -scatter the lines of
// each order are spread over the file instead of following each other.
package main

import (
	"bufio"
	"encoding/csv"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Line is one order line as the generator writes it to Parquet.
type Line struct {
	OrderID     string `parquet:"order_id"`
	Store       string `parquet:"store,dict"`
	CreatedAt   int64  `parquet:"created_at,timestamp(millisecond:utc)"`
	Status      string `parquet:"status,dict"`
	CustomerID  string `parquet:"customer_id"`
	Email       string `parquet:"email"`
	ClickID     string `parquet:"click_id"`
	PromoCode   string `parquet:"promo_code,dict"`
	Currency    string `parquet:"currency,dict"`
	SKU         string `parquet:"sku,dict"`
	ProductName string `parquet:"product_name,dict"`
	Category    string `parquet:"category,dict"`
	Quantity    int32  `parquet:"quantity"`
	UnitPrice   int64  `parquet:"unit_price,decimal(2:18)"`
	Discount    int64  `parquet:"discount,decimal(2:18)"`
}

// Header is the CSV header, in the order of Line's fields.
var Header = []string{"order_id", "store", "created_at", "status", "customer_id", "email", "click_id",
	"promo_code", "currency", "sku", "product_name", "category", "quantity", "unit_price", "discount"}

var (
	stores     = []string{"berlin", "hamburg", "online"}
	statuses   = []string{"paid", "paid", "paid", "paid", "shipped", "shipped", "cancelled"}
	categories = []string{"tools", "sports", "garden", "kitchen", "toys"}
	products   = []string{`Anvil, heavy`, `Tennis Balls (3 pack)`, `Rocket Skates`, `"Giant" Magnet`, `Bird Seed, 5 kg`,
		`Earthquake Pills`, `Spring-Powered Shoes`, `Dehydrated Boulders`}
	promos = []string{"", "", "", "10OFF-ROCKET", "SPRING5"}
)

func main() {
	rows := flag.Int("rows", 1000, "number of order-line rows to write")
	orders := flag.Int("orders", 0, "write this many orders (all their lines) instead of -rows rows")
	format := flag.String("format", "csv", "csv or parquet")
	out := flag.String("out", "-", "output file, - for standard output (csv only)")
	seed := flag.Uint64("seed", 1, "random seed: the same seed writes the same rows")
	scatter := flag.Bool("scatter", false, "spread the lines of each order over the file")
	rowGroup := flag.Int64("row-group-rows", 1_000_000, "parquet rows per row group")
	start := flag.String("start", "", "date of the first order (UTC), 2006-01-02; default 60 days ago. Orders follow a minute apart,\nor closer, so that the last is at most 45 days after the first (within impact's 88 days)")
	firstID := flag.Int("first-id", 100001, "order id of the first order")
	flag.Parse()
	t0 := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -60)
	if *start != "" {
		var err error
		if t0, err = time.Parse("2006-01-02", *start); err != nil {
			fmt.Fprintln(os.Stderr, "gen: -start:", err)
			os.Exit(2)
		}
	}
	startMilli, orderBase = t0.UnixMilli(), *firstID-1
	stepMilli = min(60_000, span/int64(max(*rows, 1)))
	if *orders > 0 {
		*rows, maxOrders = math.MaxInt, *orders
		stepMilli = min(60_000, span/int64(*orders))
	}
	if err := run(*rows, *format, *out, *seed, *scatter, *rowGroup); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(rows int, format, out string, seed uint64, scatter bool, rowGroup int64) error {
	var w io.Writer = os.Stdout
	if out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	defer bw.Flush()
	lines := generate(rows, seed, scatter)
	switch format {
	case "csv":
		cw := csv.NewWriter(bw)
		if err := cw.Write(Header); err != nil {
			return err
		}
		rec := make([]string, len(Header))
		for l := range lines {
			fill(rec, l)
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case "parquet":
		if out == "-" {
			return fmt.Errorf("parquet needs -out FILE")
		}
		pw := parquet.NewGenericWriter[Line](bw, parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(rowGroup))
		batch := make([]Line, 0, 1024)
		for l := range lines {
			if batch = append(batch, l); len(batch) == cap(batch) {
				if _, err := pw.Write(batch); err != nil {
					return err
				}
				batch = batch[:0]
			}
		}
		if _, err := pw.Write(batch); err != nil {
			return err
		}
		return pw.Close()
	}
	return fmt.Errorf("unknown format %q (csv or parquet)", format)
}

var (
	zone       = mustZone("Europe/Berlin")
	startMilli = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	// stepMilli is how far apart orders are, at most a minute: closer in a
	// large export, so that its orders span at most span.
	stepMilli int64 = 60_000
	orderBase       = 100000
	// span is the longest time the orders of one export cover: 45 days.
	span = int64(45 * 24 * time.Hour / time.Millisecond)
	// maxOrders, when not zero, ends the export after that many orders.
	maxOrders = 0
)

func mustZone(name string) *time.Location {
	z, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return z
}

func fill(rec []string, l Line) {
	rec[0], rec[1] = l.OrderID, l.Store
	rec[2] = time.UnixMilli(l.CreatedAt).In(zone).Format("2006-01-02 15:04:05")
	rec[3], rec[4], rec[5], rec[6], rec[7], rec[8] = l.Status, l.CustomerID, l.Email, l.ClickID, l.PromoCode, l.Currency
	rec[9], rec[10], rec[11] = l.SKU, l.ProductName, l.Category
	rec[12] = strconv.Itoa(int(l.Quantity))
	rec[13] = cents(l.UnitPrice)
	rec[14] = cents(l.Discount)
}

func cents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// generate yields rows order lines. With scatter, the lines are dealt out
// over a window of 4,096 orders, so the lines of one order are far apart.
func generate(rows int, seed uint64, scatter bool) func(func(Line) bool) {
	return func(yield func(Line) bool) {
		rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		start := startMilli
		var window [][]Line
		flush := func() bool {
			for len(window) > 0 {
				i := rng.IntN(len(window))
				l := window[i][0]
				window[i] = window[i][1:]
				if len(window[i]) == 0 {
					window[i] = window[len(window)-1]
					window = window[:len(window)-1]
				}
				if !yield(l) {
					return false
				}
			}
			return true
		}
		n := 0
		for order := 1; n < rows && (maxOrders == 0 || order <= maxOrders); order++ {
			k := 1 + rng.IntN(8)
			if k > rows-n {
				k = rows - n
			}
			store := stores[rng.IntN(len(stores))]
			cust := rng.IntN(200000)
			base := Line{
				OrderID:    strconv.Itoa(orderBase + order),
				Store:      store,
				CreatedAt:  start + int64(order)*stepMilli + rng.Int64N(max(stepMilli, 1)),
				Status:     statuses[rng.IntN(len(statuses))],
				CustomerID: "C" + strconv.Itoa(cust),
				Email:      fmt.Sprintf("Customer%d@Example.com ", cust),
				ClickID:    fmt.Sprintf("clk_%016x", rng.Uint64()),
				PromoCode:  promos[rng.IntN(len(promos))],
				Currency:   "EUR",
			}
			ls := make([]Line, k)
			for i := range ls {
				p := rng.IntN(len(products))
				l := base
				l.SKU = fmt.Sprintf("SKU-%04d", p*37+rng.IntN(37))
				l.ProductName = products[p]
				l.Category = categories[p%len(categories)]
				l.Quantity = int32(1 + rng.IntN(4))
				l.UnitPrice = int64(99 + rng.IntN(20000))
				if rng.IntN(5) == 0 {
					l.Discount = l.UnitPrice / 10
				}
				ls[i] = l
			}
			n += k
			if !scatter {
				for _, l := range ls {
					if !yield(l) {
						return
					}
				}
				continue
			}
			window = append(window, ls)
			if len(window) >= 4096 && !flush() {
				return
			}
		}
		flush()
	}
}
