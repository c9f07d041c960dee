package mapping

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

const benchYAML = `
order_key: [store, order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: "{store}-{order_id}"
  EventDate: {column: created, transforms: [{time: {layout: "2006-01-02 15:04:05", zone: Europe/Berlin}}]}
  ClickId: {column: click, transforms: [trim]}
  CustomerId: customer
  CustomerEmail: {column: email, transforms: [hash]}
  CustomerStatus: {column: status, transforms: [lower, {lookup: {new: New, returning: Returning}}]}
  CurrencyCode: {column: currency, transforms: [upper]}
  OrderDiscount: {column: discount, transforms: [number]}
items:
  ItemSku: sku
  ItemName: name
  ItemCategory: {column: category, transforms: [{lookup: {Werkzeug: Tools, Garten: Garden}, keep: true}]}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price, transforms: [number]}
filters:
  - {skip: row, when: {column: line_status, equals: cancelled}}
`

var benchHeader = []string{"store", "order_id", "created", "click", "customer", "email", "status", "currency", "discount",
	"sku", "name", "category", "qty", "price", "line_status"}

// BenchmarkMap maps orders of three lines of a typical 15-column export.
// rows/s counts source rows.
func BenchmarkMap(b *testing.B) {
	cfg, err := ParseConfig([]byte(benchYAML))
	if err != nil {
		b.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m.now = func() time.Time { return testNow }
	h := pipeline.NewHeader(benchHeader)
	obj := &pipeline.Object{Key: "orders.csv"}
	const orders, perOrder = 1000, 3
	batch := make([][]pipeline.Row, orders)
	line := int64(2)
	for i := range batch {
		id := strconv.Itoa(100000 + i)
		for j := range perOrder {
			batch[i] = append(batch[i], pipeline.Row{Object: obj, Line: line, Header: h, Values: []string{
				"de", id, "2024-05-01 10:00:00", "QiiWXOVnrQ3SQHl24jQjyxBGUkmzfJ3i1VHrWM0", "C-" + id, "Jane.Doe@example.com",
				"new", "eur", "5.00", "SKU-" + strconv.Itoa(j), "Anvil, heavy", "Werkzeug", "2", "1,249.90", "open",
			}})
			line++
		}
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		md := m.Map(batch[n%orders])
		if len(md.Problems) > 0 {
			b.Fatal(md.Problems)
		}
		n++
	}
	b.ReportMetric(float64(n*perOrder)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkTransform measures the transforms that cost the most.
func BenchmarkTransform(b *testing.B) {
	for _, bc := range []struct {
		name string
		tr   Transform
		kind kind
		in   string
	}{
		{"time", Transform{Time: &Time{Layout: "2006-01-02 15:04:05", Zone: "Europe/Berlin"}}, kindDate, "2024-05-01 10:00:00"},
		{"hash", Transform{Hash: "sha1"}, kindDigest, "Jane.Doe@example.com"},
		{"number", Transform{Number: &Number{}}, kindMoney, "1,249.90"},
		{"number-canonical", Transform{Number: &Number{}}, kindMoney, "1249.90"},
		{"integer", Transform{Integer: &Number{}}, kindQuantity, "2"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := compileStep("bench", bc.tr, bc.kind)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.apply(bc.in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOrderKey measures the grouping key, computed for every row: a
// key of one column and one of two, with plain ASCII values.
func BenchmarkOrderKey(b *testing.B) {
	h := pipeline.NewHeader(unitHeader)
	row := pipeline.Row{Object: &pipeline.Object{Key: "orders.csv"}, Line: 2, Header: h, Values: unitLine("100001", "SKU-1")}
	for _, bc := range []struct{ name, yaml string }{
		{"one column", unitYAML},
		{"two columns", strings.Replace(unitYAML, "order_key: [order_id]", "order_key: [click, order_id]", 1)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m := mustMapping(b, bc.yaml)
			b.ReportAllocs()
			for b.Loop() {
				if m.OrderKey(row) == "" {
					b.Fatal("empty key")
				}
			}
		})
	}
}
