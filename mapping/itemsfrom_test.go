package mapping

import (
	"slices"
	"strings"
	"testing"
)

const fromYAML = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: created, transforms: [{time: {layout: "2006-01-02 15:04:05", zone: Europe/Berlin}}]}
  ClickId: click
  CurrencyCode: {const: EUR}
items:
  from: items
  ItemSku: sku
  ItemName: {column: name, transforms: [trim]}
  ItemCategory: {const: General}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price.amount, transforms: [number]}
`

var fromHeader = []string{"order_id", "created", "click", "items"}

// TestItemsFrom maps orders of one line whose items are a list cell (as
// sources reads a Parquet LIST<STRUCT> column): one item per element, the
// item columns naming the element's fields (nested ones with dots), and
// the wrong shapes as problems naming the line and the column or field.
func TestItemsFrom(t *testing.T) {
	m := mustMapping(t, fromYAML)
	cols := m.Columns()
	slices.Sort(cols)
	if got := strings.Join(cols, ","); got != "click,created,items,order_id" {
		t.Fatalf("Columns = %s: the item fields' columns are the elements', not the file's", got)
	}
	line := func(items string) []string { return []string{"o1", "2024-05-01 10:00:00", "clk", items} }
	for _, tc := range []struct {
		name, items string
		want        string // the encoded body's items, or the problem
	}{
		{"two items", `[{"sku":"A-1","name":" Anvil ","qty":"2","price":{"amount":"9.5"}},{"sku":"B-2","name":"Balls","qty":1,"price":{"amount":3}}]`,
			"ItemSku1=A-1&ItemName1=Anvil&ItemCategory1=General&ItemQuantity1=2&ItemPrice1=9.50&ItemSku2=B-2&ItemName2=Balls&ItemCategory2=General&ItemQuantity2=1&ItemPrice2=3.00"},
		{"null field is empty", `[{"sku":"A-1","name":null,"qty":"1","price":{"amount":"1"}}]`,
			"ItemSku1=A-1&ItemCategory1=General&ItemQuantity1=1&ItemPrice1=1.00"},
		{"not JSON", `A-1|B-2`, `problem Items: a.parquet:2: column "items" (items.from): not a list of items (a JSON array of objects): invalid character 'A' looking for beginning of value at byte 1`},
		{"an object, not a list", `{"sku":"A"}`, `problem Items: a.parquet:2: column "items" (items.from): not a list of items (a JSON array of objects): a JSON object, not an array`},
		{"a list of scalars", `["A-1"]`, `problem Items: a.parquet:2: column "items" (items.from): item 1 is text, not an object of fields`},
		{"field missing", `[{"sku":"A-1","name":"x","qty":"1","price":{"amount":"1"}},{"sku":"B","qty":"1","price":{"amount":"1"}}]`,
			`problem ItemName2: a.parquet:2: item 2 of column "items" (items.from) has no field "name"; it has "price.amount", "qty", "sku"`},
		{"nested list", `[{"sku":"A-1","name":"x","qty":"1","price":[1]}]`, `problem Items: a.parquet:2: column "items" (items.from): item 1: field "price" is a list: not supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := m.Map(rowsOf("a.parquet", fromHeader, line(tc.items)))
			got := ""
			if len(md.Problems) > 0 {
				p := md.Problems[0]
				got = "problem " + p.Field + ": " + p.Refs[0].String() + ": " + p.Text
			} else {
				body := md.Conversion.Encode()
				got = body[strings.Index(body, "ItemSku1"):]
			}
			if got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}

	t.Run("lines add up, empty and null lists give none", func(t *testing.T) {
		rows := rowsOf("a.parquet", fromHeader, line(`[{"sku":"A","name":"a","qty":"1","price":{"amount":"1"}}]`), line("[]"), line(""),
			line(`[{"sku":"B","name":"b","qty":"1","price":{"amount":"2"}}]`))
		md := m.Map(rows)
		if len(md.Problems) > 0 || len(md.Conversion.Items) != 2 {
			t.Fatalf("problems %+v, %d items", md.Problems, len(md.Conversion.Items))
		}
		if v, _ := md.Conversion.Items[1].Get("ItemSku"); v != "B" || md.Conversion.Items[1].Ref.Line != 5 {
			t.Errorf("item 2: %q from line %d", v, md.Conversion.Items[1].Ref.Line)
		}
	})

	t.Run("max_items counts the elements", func(t *testing.T) {
		m := mustMapping(t, "max_items: 1\n"+fromYAML)
		md := m.Map(rowsOf("a.parquet", fromHeader, line(`[{"sku":"A","name":"a","qty":"1","price":{"amount":"1"}},{"sku":"B","name":"b","qty":"1","price":{"amount":"1"}}]`)))
		if len(md.Problems) != 1 || !strings.Contains(md.Problems[0].Text, "2 items from 1 lines: at most 1 items") {
			t.Fatalf("problems %+v", md.Problems)
		}
	})
}

func TestItemsFromConfig(t *testing.T) {
	for _, tc := range []struct{ name, edit, err string }{
		{"from with transforms", "  from: {column: items, transforms: [trim]}", "mapping.items.from: the name of the column that holds each order's items"},
		{"from with split", "  from: items\n  ItemText: {column: t, split: \"|\"}", "items.ItemText.split: not with items.from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(fromYAML, "  from: items", tc.edit, 1)
			cfg, err := ParseConfig([]byte(y))
			if err == nil {
				_, err = New(cfg)
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}

// FuzzItemsFrom maps arbitrary list cells with items.from: never a
// panic; every problem names the line; an order without problems has
// one item per element of a well-formed list.
func FuzzItemsFrom(f *testing.F) {
	f.Add(`[{"sku":"A-1","name":"x","qty":"2","price":{"amount":"9.5"}}]`)
	f.Add(`[{"sku":null,"price":{"amount":{"x":[1]}}}]`)
	f.Add(`[1, "a", null, {}]`)
	f.Add(`{"sku": "A"} trailing`)
	f.Add(`[{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":1}}}}}}}}}}]`)
	m := mustMapping(f, fromYAML)
	f.Fuzz(func(t *testing.T, items string) {
		md := m.Map(rowsOf("f.parquet", fromHeader, []string{"o1", "2024-05-01 10:00:00", "clk", items}))
		for _, p := range md.Problems {
			if p.Field == "Items" || strings.HasPrefix(p.Field, "Item") {
				if len(p.Refs) == 0 || p.Refs[0].Line != 2 {
					t.Fatalf("problem without its line: %+v", p)
				}
			}
		}
		if len(md.Problems) == 0 {
			elems, err := parseItemList(items)
			if err != nil || len(elems) != len(md.Conversion.Items) {
				t.Fatalf("%d items from %q (%d elements, %v)", len(md.Conversion.Items), items, len(elems), err)
			}
		}
	})
}
