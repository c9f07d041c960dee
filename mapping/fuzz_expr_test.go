package mapping

import (
	"math/big"
	"strings"
	"testing"

	"github.com/expr-lang/expr"

	"convpipe/pipeline"
)

const fuzzSplitYAML = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {const: "2024-05-01"}
  ClickId: {const: "clk"}
items:
  ItemSku: {column: sku, split: "|"}
  ItemName: {column: products, split: ";", transforms: [{extract: '^(.*?)\s+x\d+$'}]}
  ItemCategory: {const: "General"}
  ItemQuantity: {column: qty, split: "|", transforms: [integer]}
  ItemPrice: {column: price, split: "|", transforms: [number]}
`

// FuzzSplitItems maps a line whose item cells pack arbitrary parts: Map
// never panics, and a line either gives one item per part of its
// non-empty packed cells, which then all have that many parts, or is a
// problem naming the line.
func FuzzSplitItems(f *testing.F) {
	f.Add("A-100 | B-200", "Anvil x2; Tennis Balls x1", "2 | 1", "500.00 | 234.50")
	f.Add("A | B | C", "", "1 | 2", "1|2|3")
	f.Add("", "", "", "")
	f.Add("|||", ";;", "||", "")
	m := mustMapping(f, fuzzSplitYAML)
	h := []string{"order_id", "sku", "products", "qty", "price"}
	f.Fuzz(func(t *testing.T, sku, products, qty, price string) {
		rows := rowsOf("fuzz.csv", h, []string{"o1", sku, products, qty, price})
		md := m.Map(rows)
		if md.Conversion == nil {
			t.Fatal("nil conversion")
		}
		counts := map[int]bool{}
		for i, c := range []string{sku, products, qty, price} {
			if c == "" {
				continue
			}
			sep := "|"
			if i == 1 {
				sep = ";"
			}
			counts[strings.Count(c, sep)+1] = true
		}
		aligned := len(counts) <= 1
		misaligned := false
		for _, p := range md.Problems {
			if p.Field == "Items" && strings.HasPrefix(p.Text, "the packed item cells do not line up") {
				misaligned = true
				if len(p.Refs) != 1 || p.Refs[0].String() != "fuzz.csv:2" {
					t.Errorf("problem %+v does not name the line", p)
				}
			}
		}
		if misaligned == aligned {
			t.Fatalf("cells %q: aligned %v, but problem reported %v", []string{sku, products, qty, price}, aligned, misaligned)
		}
		if aligned {
			want := 1
			for n := range counts {
				want = n
			}
			if len(md.Conversion.Items) != want {
				t.Errorf("cells %q: %d items, want %d", []string{sku, products, qty, price}, len(md.Conversion.Items), want)
			}
		}
	})
}

const fuzzExprYAML = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {const: "2024-05-01"}
  ClickId: {const: "clk"}
  Numeric1: {expr: "a + b", vars: {a: {column: a, transforms: [number]}, b: {column: b, transforms: [number]}}}
  Money1: {expr: "a * b", vars: {a: {column: a, transforms: [number]}, b: {column: b, transforms: [number]}}}
  Money2: {expr: "a / b - 0.1", vars: {a: {column: a, transforms: [number]}, b: {column: b, transforms: [number]}}}
  Text1: {expr: 'a > b ? "more" : (a == b ? "same" : "less")', vars: {a: {column: a, transforms: [number]}, b: {column: b, transforms: [number]}}}
`

// FuzzExpr evaluates expressions on arbitrary cells: Map never panics;
// when both cells are numbers the results are the exact decimal sum,
// the product rounded half to even, and the right comparison; otherwise
// each field's problem names it and the line. Then an arbitrary
// expression is compiled and run on decimals: errors, never a panic.
func FuzzExpr(f *testing.F) {
	f.Add("0.1", "0.2", "a + b * 2")
	f.Add("1.005", "1", "a > 1 ? a - 1 : -a")
	f.Add("", "x", "a / 0")
	f.Add("1e3", "-0.0001", `string(a) + "x"`)
	m := mustMapping(f, fuzzExprYAML)
	h := []string{"order_id", "a", "b"}
	opts := exprOptions(map[string]any{"a": decimal{r: new(big.Rat)}, "b": decimal{r: new(big.Rat)}, "s": ""})
	f.Fuzz(func(t *testing.T, a, b, code string) {
		md := m.Map(rowsOf("fuzz.csv", h, []string{"o1", a, b}))
		if md.Conversion == nil {
			t.Fatal("nil conversion")
		}
		for _, p := range md.Problems {
			if p.Field == "" || len(p.Refs) != 1 || p.Refs[0].String() != "fuzz.csv:2" {
				t.Errorf("problem %+v does not name a field and the line", p)
			}
		}
		checkExprResults(t, md, a, b)

		if len(code) > 200 {
			return
		}
		prog, err := expr.Compile(code, opts...)
		if err != nil {
			return
		}
		da, _ := parseDecimal("1.5")
		db, _ := parseDecimal("-0.25")
		out, err := expr.Run(prog, map[string]any{"a": da, "b": db, "s": "x"})
		if err == nil {
			_, _, _ = formatResult(out, &fieldDef{kind: kindMoney})
		}
	})
}

// checkExprResults compares the fields of FuzzExpr's mapping with an
// independent computation when both cells are plain decimals.
func checkExprResults(t *testing.T, md pipeline.Mapped, a, b string) {
	t.Helper()
	na, err1 := numberStep{f: numberFormat{dec: '.', thou: ',', decimals: -1}}.apply(a)
	nb, err2 := numberStep{f: numberFormat{dec: '.', thou: ',', decimals: -1}}.apply(b)
	if err1 != nil || err2 != nil || na == "" || nb == "" {
		return
	}
	ra, _ := new(big.Rat).SetString(na)
	rb, _ := new(big.Rat).SetString(nb)
	get := func(name string) string { v, _ := md.Conversion.Get(name); return v }
	if v := get("Numeric1"); v != "" {
		if got, _ := new(big.Rat).SetString(v); got == nil || new(big.Rat).Sub(got, new(big.Rat).Add(ra, rb)).Abs(new(big.Rat).Sub(got, new(big.Rat).Add(ra, rb))).Cmp(big.NewRat(1, 10000000000)) > 0 {
			t.Errorf("%s + %s = %s", na, nb, v)
		}
	}
	if v := get("Money1"); v != "" && v != roundHalfEven(new(big.Rat).Mul(ra, rb), 2) {
		t.Errorf("%s * %s = %s", na, nb, v)
	}
	want := map[int]string{1: "more", 0: "same", -1: "less"}[ra.Cmp(rb)]
	if v := get("Text1"); v != want {
		t.Errorf("compare %s, %s = %q, want %q", na, nb, v, want)
	}
}
