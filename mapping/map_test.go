package mapping

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
)

const unitYAML = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: created, transforms: [{time: {layout: "2006-01-02 15:04:05", zone: Europe/Berlin}}]}
  ClickId: click
  CurrencyCode: {column: currency, transforms: [upper, {default: EUR}]}
items:
  ItemSku: sku
  ItemCategory: {const: General}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price, transforms: [number]}
`

func mustMapping(t testing.TB, y string) *Mapping {
	t.Helper()
	cfg, err := ParseConfig([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.now = func() time.Time { return testNow }
	return m
}

// rowsOf builds rows of one object from a header and records.
func rowsOf(object string, header []string, records ...[]string) []pipeline.Row {
	h := pipeline.NewHeader(header)
	obj := &pipeline.Object{Key: object}
	rows := make([]pipeline.Row, len(records))
	for i, r := range records {
		rows[i] = pipeline.Row{Object: obj, Line: int64(i + 2), Header: h, Values: r}
	}
	return rows
}

var unitHeader = []string{"order_id", "created", "click", "currency", "sku", "qty", "price"}

func unitLine(order, sku string) []string {
	return []string{order, "2024-05-01 10:00:00", "clk", "eur", sku, "1", "9.99"}
}

func TestLargeOrder(t *testing.T) {
	m := mustMapping(t, "max_items: 20000\n"+unitYAML)
	const n = 10000
	records := make([][]string, n)
	for i := range records {
		records[i] = unitLine("big", "S"+strconv.Itoa(i))
	}

	t.Run("over the default max_items", func(t *testing.T) {
		md := mustMapping(t, unitYAML).Map(rowsOf("big.csv", unitHeader, records...))
		if len(md.Problems) != 1 {
			t.Fatalf("got %d problems, want 1: %+v", len(md.Problems), md.Problems)
		}
		p := md.Problems[0]
		want := fmt.Sprintf("%d lines: at most %d items per conversion (mapping.max_items)", n, DefaultMaxItems)
		if p.Field != "Items" || p.Text != want || len(p.Refs) != 2 || p.Refs[0].Line != 2 || p.Refs[1].Line != n+1 {
			t.Errorf("problem = %+v, want Items %q naming the first and last line", p, want)
		}
	})

	t.Run("valid", func(t *testing.T) {
		md := m.Map(rowsOf("big.csv", unitHeader, records...))
		if len(md.Problems) > 0 {
			t.Fatalf("problems: %+v", md.Problems[:1])
		}
		if len(md.Conversion.Items) != n || len(md.Conversion.Refs) != n {
			t.Fatalf("items %d, refs %d; want %d", len(md.Conversion.Items), len(md.Conversion.Refs), n)
		}
		last := md.Conversion.Items[n-1]
		if v, _ := last.Get("ItemSku"); v != "S9999" || last.Ref.Line != n+1 {
			t.Errorf("last item = %+v", last)
		}
		if !strings.Contains(md.Conversion.Encode(), "&ItemSku10000=S9999&") {
			t.Error("body lacks item 10000")
		}
	})

	t.Run("every line disagrees", func(t *testing.T) {
		rs := make([][]string, n)
		for i := range rs {
			rs[i] = unitLine("big", "S")
			rs[i][2] = "clk" + strconv.Itoa(i)
		}
		md := m.Map(rowsOf("big.csv", unitHeader, rs...))
		if len(md.Problems) != 1 {
			t.Fatalf("got %d problems, want 1: %+v", len(md.Problems), md.Problems)
		}
		p := md.Problems[0]
		if p.Field != "ClickId" || len(p.Refs) != maxRefs || !strings.Contains(p.Text, "(9999 lines differ from big.csv:2)") {
			t.Errorf("problem = %+v", p)
		}
	})

	t.Run("every line bad", func(t *testing.T) {
		rs := make([][]string, n)
		for i := range rs {
			rs[i] = unitLine("big", "S")
			rs[i][5] = "-1"
		}
		md := m.Map(rowsOf("big.csv", unitHeader, rs...))
		if len(md.Problems) != maxProblems+1 {
			t.Fatalf("got %d problems, want %d", len(md.Problems), maxProblems+1)
		}
		if last := md.Problems[maxProblems]; last.Text != "9950 more problems not listed" {
			t.Errorf("last problem = %+v", last)
		}
	})
}

func TestMapEdgeCases(t *testing.T) {
	m := mustMapping(t, unitYAML)

	t.Run("no lines", func(t *testing.T) {
		md := m.Map(nil)
		if md.Conversion == nil || len(md.Problems) != 1 {
			t.Fatalf("Map(nil) = %+v", md)
		}
	})

	t.Run("short row", func(t *testing.T) {
		rows := rowsOf("a.csv", unitHeader, []string{"o1", "2024-05-01 10:00:00"})
		md := m.Map(rows)
		if md.Conversion.Key.OrderID != "o1" || len(md.Problems) == 0 {
			t.Fatalf("short row: %+v", md)
		}
	})

	t.Run("nulls are empty", func(t *testing.T) {
		rows := rowsOf("a.parquet", unitHeader, unitLine("o1", "S1"))
		rows[0].Nulls = make([]bool, len(unitHeader))
		rows[0].Nulls[3] = true // currency: null, so the default applies
		md := m.Map(rows)
		if v, _ := md.Conversion.Get("CurrencyCode"); v != "EUR" || len(md.Problems) > 0 {
			t.Fatalf("CurrencyCode = %q, problems %+v", v, md.Problems)
		}
	})

	t.Run("nil header", func(t *testing.T) {
		md := m.Map([]pipeline.Row{{Line: 2, Values: []string{"x"}}})
		if len(md.Problems) == 0 {
			t.Fatal("no problems for a row without header")
		}
	})

	t.Run("header lacks a column", func(t *testing.T) {
		rows := rowsOf("a.csv", unitHeader[:6], unitLine("o1", "S1")[:6])
		md := m.Map(rows)
		found := false
		for _, p := range md.Problems {
			found = found || strings.Contains(p.Text, `lacks the mapped column "price"`)
		}
		if !found {
			t.Fatalf("problems = %+v", md.Problems)
		}
	})

	t.Run("lines from two headers", func(t *testing.T) {
		a := rowsOf("a.csv", unitHeader, unitLine("o1", "S1"))
		rev := make([]string, len(unitHeader))
		line := unitLine("o1", "S2")
		revLine := make([]string, len(line))
		for i := range unitHeader {
			rev[len(rev)-1-i] = unitHeader[i]
			revLine[len(line)-1-i] = line[i]
		}
		b := rowsOf("b.csv", rev, revLine)
		md := m.Map(append(a, b...))
		if len(md.Problems) > 0 || len(md.Conversion.Items) != 2 {
			t.Fatalf("problems %+v, items %d", md.Problems, len(md.Conversion.Items))
		}
		if v, _ := md.Conversion.Items[1].Get("ItemSku"); v != "S2" {
			t.Errorf("item 2 sku = %q", v)
		}
	})
}

func TestOrderKey(t *testing.T) {
	m := mustMapping(t, strings.Replace(unitYAML, "order_key: [order_id]", "order_key: [click, order_id]", 1))
	rows := rowsOf("a.csv", unitHeader, unitLine("o1", "S1"))
	if k := m.OrderKey(rows[0]); k != "clk\x1fo1" {
		t.Errorf("OrderKey = %q", k)
	}
	empty := rowsOf("a.csv", unitHeader, unitLine(" ", "S1"))[0]
	empty.Values[2] = ""
	if k := m.OrderKey(empty); k != "" {
		t.Errorf("OrderKey of empty key columns = %q, want empty", k)
	}
	m2 := mustMapping(t, strings.Replace(unitYAML, "order_key: [order_id]\n", "", 1))
	if k := m2.OrderKey(rows[0]); k != "o1" {
		t.Errorf("default OrderKey = %q", k)
	}
}

// TestOrderKeyer: the keyer returns what OrderKey returns for every row,
// in any order (a key again, another, an empty one, a key that needs
// normalising), and builds a key of several columns once per run of
// rows that share it.
func TestOrderKeyer(t *testing.T) {
	m := mustMapping(t, strings.Replace(unitYAML, "order_key: [order_id]", "order_key: [click, order_id]", 1))
	var rows []pipeline.Row
	for _, id := range []string{"o1", "o1", "o2", " o2 ", "", "", "o1", "O\u00a01", "o3", "o3"} {
		rows = append(rows, rowsOf("a.csv", unitHeader, unitLine(id, "S1"))...)
	}
	rows[5].Values[2] = "" // the click too: every key column empty
	key := m.OrderKeyer()
	for i, r := range rows {
		if got, want := key(r), m.OrderKey(r); got != want {
			t.Errorf("row %d (%q): keyer %+q, OrderKey %+q", i, r.Values, got, want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { key(rows[9]) }); a != 0 {
		t.Errorf("the key of the row before again: %v allocations, want 0", a)
	}
	one := mustMapping(t, unitYAML).OrderKeyer()
	if k := one(rows[0]); k != "o1" {
		t.Errorf("one key column: %q", k)
	}
}

func TestColumnsAndHeader(t *testing.T) {
	m := mustMapping(t, unitYAML+"filters: [{skip: row, when: {column: status, equals: x}}]\n")
	want := []string{"order_id", "click", "created", "currency", "sku", "qty", "price", "status"}
	if got := m.Columns(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Columns() = %v, want %v", got, want)
	}
	obj := pipeline.Object{Key: "s3://bucket/orders.csv"}
	if err := m.CheckHeader(obj, pipeline.NewHeader(append(unitHeader, "status", "extra"))); err != nil {
		t.Errorf("CheckHeader: %v", err)
	}
	err := m.CheckHeader(obj, pipeline.NewHeader(append(unitHeader, "sku")))
	he, ok := errorsAs[*HeaderError](err)
	if !ok {
		t.Fatalf("CheckHeader error = %v, want a *HeaderError", err)
	}
	if len(he.Missing) != 1 || he.Missing[0].Column != "status" || he.Missing[0].UsedBy[0] != "filters[0].when.column" ||
		len(he.Duplicated) != 1 || he.Duplicated[0] != "sku" || len(he.Columns) != 8 {
		t.Errorf("HeaderError = %+v", he)
	}
	if !strings.HasPrefix(err.Error(), "s3://bucket/orders.csv: ") || !strings.Contains(err.Error(), `"order_id", "created"`) {
		t.Errorf("error text = %q", err)
	}
}

func describe(md pipeline.Mapped) string {
	b, err := json.Marshal(toResult(md))
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestConcurrentMap maps orders of two files with differently ordered
// headers from several goroutines, as the pipeline's workers do, and
// compares with mapping them one by one. Run with -race to check the
// header cache.
func TestConcurrentMap(t *testing.T) {
	m := mustMapping(t, unitYAML)
	rev := make([]string, len(unitHeader))
	for i := range unitHeader {
		rev[len(rev)-1-i] = unitHeader[i]
	}
	var orders [][]pipeline.Row
	for i := range 200 {
		line := unitLine("o"+strconv.Itoa(i), "S"+strconv.Itoa(i))
		if i%2 == 0 {
			orders = append(orders, rowsOf("a.csv", unitHeader, line, line))
			continue
		}
		r := make([]string, len(line))
		for j := range line {
			r[len(r)-1-j] = line[j]
		}
		orders = append(orders, rowsOf("b.csv", rev, r, r))
	}
	want := make([]string, len(orders))
	for i, o := range orders {
		want[i] = describe(m.Map(o))
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(orders))
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(orders); i += 4 {
				if got := describe(m.Map(orders[i])); got != want[i] {
					errs <- got
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent result differs: %s", e)
	}
}

// TestHugeValues maps a 10 MB cell in every kind of column: each is a
// problem with the value cut short, none panics.
func TestHugeValues(t *testing.T) {
	m := mustMapping(t, unitYAML)
	huge := strings.Repeat("9", 10<<20)
	for col := range unitHeader {
		line := unitLine("o1", "S1")
		line[col] = huge
		md := m.Map(rowsOf("big.csv", unitHeader, line))
		if col == 0 {
			// OrderId itself.
			if len(md.Problems) == 0 {
				t.Fatalf("no problem for a 10 MB OrderId")
			}
		}
		if len(md.Problems) == 0 {
			t.Errorf("column %s: no problem for a 10 MB value", unitHeader[col])
		}
		for _, p := range md.Problems {
			if len(p.Value) > maxShown+32 || len(p.Text) > 1000 {
				t.Errorf("column %s: message too long: %d/%d bytes", unitHeader[col], len(p.Value), len(p.Text))
			}
		}
	}
}
