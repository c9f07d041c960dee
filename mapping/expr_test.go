package mapping

import (
	"math/big"
	"strings"
	"testing"
)

func TestRoundHalfEven(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"1.005", "1.00"}, {"1.015", "1.02"}, {"1.025", "1.02"}, {"0.125", "0.12"}, {"0.135", "0.14"},
		{"-1.005", "-1.00"}, {"-1.015", "-1.02"}, {"2.5", "2.50"}, {"0.004", "0.00"}, {"-0.004", "0.00"},
		{"0.006", "0.01"}, {"-0.006", "-0.01"}, {"12", "12.00"}, {"1/3", "0.33"}, {"2/3", "0.67"},
	}
	for _, tt := range tests {
		r, _ := new(big.Rat).SetString(tt.in)
		if got := roundHalfEven(r, 2); got != tt.want {
			t.Errorf("roundHalfEven(%s, 2) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// exprYAML maps an order with order-level expressions and an item line
// total computed from columns.
const exprYAML = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: created, transforms: [{time: {layout: "2006-01-02 15:04:05", zone: UTC}}]}
  ClickId: click
  OrderDiscount:
    expr: "subtotal - discount"
    vars:
      subtotal: {column: subtotal, transforms: [number]}
      discount: {column: discount, transforms: [{default: "0"}, number]}
  Numeric1:
    expr: "a + b"
    vars:
      a: {column: a, transforms: [number]}
      b: {column: b, transforms: [number]}
  Text1:
    expr: 'status == "refunded" ? "none" : (total > 100 ? "big" : "small")'
    vars:
      status: {column: status, transforms: [trim, lower]}
      total: {column: subtotal, transforms: [number]}
items:
  ItemSku: sku
  ItemCategory: {const: "General"}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemSubTotal:
    expr: "qty * price"
    vars:
      qty: {column: qty, transforms: [integer]}
      price: {column: price, transforms: [{number: {decimal: ","}}]}
`

var exprHeader = []string{"order_id", "created", "click", "subtotal", "discount", "a", "b", "status", "sku", "qty", "price"}

func TestExprValues(t *testing.T) {
	m := mustMapping(t, exprYAML)
	tests := []struct {
		name   string
		line   []string
		want   []string // fields that must be in the body
		absent []string
		prob   string // a problem text the order must have
	}{
		{
			name: "exact decimals",
			line: []string{"o1", "2024-05-01 10:00:00", "c", "0.3", "0.1", "0.1", "0.2", "paid", "S1", "3", "1,005"},
			want: []string{"OrderDiscount=0.20", "Numeric1=0.3", "Text1=small", "ItemSubTotal1=3.02"},
		},
		{
			name: "half even: 1.005 stays 1.00, 1.015 becomes 1.02",
			line: []string{"o1", "2024-05-01 10:00:00", "c", "1.005", "", "1", "2", "Refunded ", "S1", "1", "1,015"},
			want: []string{"OrderDiscount=1.00", "Numeric1=3&", "Text1=none", "ItemSubTotal1=1.02"},
		},
		{
			name: "conditional",
			line: []string{"o1", "2024-05-01 10:00:00", "c", "250", "50", "1", "2", "paid", "S1", "2", "1,25"},
			want: []string{"OrderDiscount=200.00", "Text1=big", "ItemSubTotal1=2.50"},
		},
		{
			name: "an empty decimal variable is an error naming it",
			line: []string{"o1", "2024-05-01 10:00:00", "c", "10", "1", "", "2", "paid", "S1", "2", "1,25"},
			prob: `expr: a is empty (column "a"): put a default before its number or integer transform (expr "a + b")`,
		},
		{
			name: "a variable's transform fails",
			line: []string{"o1", "2024-05-01 10:00:00", "c", "10", "1", "1", "2", "paid", "S1", "two", "1,25"},
			prob: `expr: qty: integer: not a number (column "qty") (expr "qty * price")`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := m.Map(rowsOf("orders.csv", exprHeader, tt.line))
			body := md.Conversion.Encode() + "&"
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("body %s lacks %s", body, w)
				}
			}
			if tt.prob == "" {
				if len(md.Problems) > 0 {
					t.Fatalf("problems: %+v", md.Problems)
				}
				return
			}
			found := false
			for _, p := range md.Problems {
				found = found || p.Text == tt.prob && len(p.Refs) == 1 && p.Refs[0].String() == "orders.csv:2" && p.Field != ""
			}
			if !found {
				t.Errorf("problems %+v, want %q naming a field and orders.csv:2", md.Problems, tt.prob)
			}
		})
	}
}

func TestExprDivision(t *testing.T) {
	m := mustMapping(t, strings.Replace(exprYAML, `expr: "a + b"`, `expr: "a / b"`, 1))
	md := m.Map(rowsOf("orders.csv", exprHeader, []string{"o1", "2024-05-01 10:00:00", "c", "1", "0", "1", "3", "paid", "S1", "1", "1"}))
	if !strings.Contains(md.Conversion.Encode(), "Numeric1=0.3333333333&") || len(md.Problems) > 0 {
		t.Errorf("1/3: body %s, problems %+v", md.Conversion.Encode(), md.Problems)
	}
	md = m.Map(rowsOf("orders.csv", exprHeader, []string{"o1", "2024-05-01 10:00:00", "c", "1", "0", "1", "0", "paid", "S1", "1", "1"}))
	if len(md.Problems) != 1 || md.Problems[0].Field != "Numeric1" || !strings.Contains(md.Problems[0].Text, "division by zero") {
		t.Errorf("1/0: problems %+v", md.Problems)
	}
}

func TestExprConfigErrors(t *testing.T) {
	tests := []struct {
		field string
		want  string
	}{
		{`Numeric1: {expr: "a +"}`, "mapping.fields.Numeric1.expr: unexpected token"},
		{`Numeric1: {expr: "a + b", vars: {a: {column: x, transforms: [number]}}}`, "mapping.fields.Numeric1.expr: unknown name b"},
		{`Numeric1: {expr: "a * 2", vars: {a: {column: x, transforms: [number]}, "bad name": x}}`, "mapping.fields.Numeric1.vars.bad name: not a name"},
		{`Numeric1: {column: x, vars: {a: x}}`, "mapping.fields.Numeric1.vars: only with expr"},
		{`Numeric1: {column: x, expr: "1"}`, "name exactly one of column, const, template or expr"},
		{`Numeric1: {expr: " "}`, "mapping.fields.Numeric1.expr: empty"},
		{`Numeric1: {expr: "a", vars: {a: {column: x, transforms: [{time: {layout: bad}}]}}}`, "mapping.fields.Numeric1.vars.a.transforms[0].time.layout"},
	}
	for _, tt := range tests {
		_, err := ParseConfig([]byte("fields:\n  EventTypeId: {const: \"1\"}\n  CampaignId: {const: \"1\"}\n  OrderId: id\n  EventDate: {column: d, transforms: [{time: {layout: date}}]}\n  ClickId: c\n  " + tt.field + "\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want %q", tt.field, err, tt.want)
		}
	}
}
