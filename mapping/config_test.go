package mapping

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// base is a minimal valid mapping that the error cases below extend.
const base = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: created, transforms: [{time: {layout: rfc3339}}]}
  ClickId: click
`

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown top-level key", base + "alow_now: true\n", "field alow_now not found"},
		{"unknown field key", base + "  Text1: {colum: x}\n", `unknown key "colum" in field`},
		{"unknown transform", base + "  Text1: {column: x, transforms: [capitalize]}\n", `unknown transform "capitalize"`},
		{"unknown transform key", base + "  Text1: {column: x, transforms: [{hsh: sha1}]}\n", `unknown key "hsh" in transform`},
		{"unknown nested key", base + "  Money1: {column: x, transforms: [{number: {decimall: \",\"}}]}\n", `unknown key "decimall" in number`},
		{"unknown time key", base + "  Date1: {column: x, transforms: [{time: {layout: unix, zon: UTC}}]}\n", `unknown key "zon" in time`},
		{"unknown filter key", base + "filters: [{skip: row, when: {column: x, equal: y}}]\n", "field equal not found"},
		{"no fields", "order_key: [a]\n", "mapping.fields: required"},
		{"negative tolerance", base + "future_tolerance: -1h\n", "mapping.future_tolerance: must be >= 0"},
		{"empty key column", strings.Replace(base, "[order_id]", `[order_id, ""]`, 1), "mapping.order_key[1]: empty column name"},
		{"two sources", base + "  Text1: {column: a, const: b}\n", "mapping.fields.Text1: name exactly one of column, const, template or expr"},
		{"no source", base + "  Text1: {transforms: [trim]}\n", "mapping.fields.Text1: name exactly one of"},
		{"template without column", base + "  Text1: {template: \"{{x}}\"}\n", "mapping.fields.Text1.template: names no column"},
		{"template unclosed", base + "  Text1: \"{a\"\n", "mapping.fields.Text1.template: unclosed {"},
		{"bad const id", strings.Replace(base, `{const: "12345"}`, `{const: "12a"}`, 1), `mapping.fields.EventTypeId: const "12a": not an integer id`},
		{"const NOW", base + "  Date1: {const: x}\n", `mapping.fields.Date1: const "x": not an ISO 8601`},
		{"const email", base + "  CustomerId: {const: a@b.example}\n", `const "<e-mail redacted>"`},
		{"const transform fails", base + "  CurrencyCode: {const: eu, transforms: [{lookup: {x: y}}]}\n", `mapping.fields.CurrencyCode: const "eu": lookup: not in the lookup table`},
		{"transform error key", base + "  Text1: {column: a, transforms: [trim, {replace: {pattern: \"(\"}}]}\n", "mapping.fields.Text1.transforms[1].replace.pattern"},
		{"item under fields", base + "  ItemSku: sku\n", "mapping.fields.ItemSku: not an order-level field; it belongs under items"},
		{"order field under items", base + "items: {OrderId: x, ItemSku: s, ItemQuantity: q, ItemPrice: p}\n", "mapping.items.OrderId: not an item-level field; it belongs under fields"},
		{"unknown field", base + "  CustmerEmail: e\n", "mapping.fields.CustmerEmail: unknown order-level field; did you mean CustomerEmail?"},
		{"abbreviated item field", base + "items: {ItemSku: s, ItemCategory: c, ItemQty: q, ItemPrice: p}\n", "mapping.items.ItemQty: unknown item-level field; did you mean ItemQuantity?"},
		{"missing event type", strings.Replace(base, `EventTypeId: {const: "12345"}`, "Note: n", 1), "mapping.fields: map EventTypeId or EventTypeCode"},
		{"missing item price", base + "items: {ItemSku: s, ItemQuantity: q}\n", "mapping.items: map ItemPrice (unit price) or ItemSubTotal"},
		{"control character in const OrderId", strings.Replace(base, "OrderId: order_id", `OrderId: {const: "A\tB"}`, 1), `mapping.fields.OrderId: const "A\tB": contains the control character U+0009`},
		{"const order id no key", strings.Replace(strings.Replace(base, "order_key: [order_id]\n", "", 1), "OrderId: order_id", "OrderId: {const: x}", 1), "mapping.order_key: required when OrderId is a constant"},
		{"filter no skip", base + "filters: [{when: {column: x, equals: y}}]\n", "mapping.filters[0].skip: required"},
		{"filter bad skip", base + "filters: [{skip: line, when: {column: x, equals: y}}]\n", `mapping.filters[0].skip: "line" is not row or order`},
		{"filter two subjects", base + "filters: [{skip: row, when: {column: x, field: OrderId, equals: y}}]\n", "mapping.filters[0].when: name exactly one of column, field or amount"},
		{"filter no subject", base + "filters: [{skip: row, when: {equals: y}}]\n", "mapping.filters[0].when: name exactly one of"},
		{"filter two tests", base + "filters: [{skip: row, when: {column: x, equals: y, empty: true}}]\n", "mapping.filters[0].when: name exactly one test"},
		{"filter no test", base + "filters: [{skip: row, when: {column: x}}]\n", "mapping.filters[0].when: name exactly one test"},
		{"filter amount on rows", base + "filters: [{skip: row, when: {amount: true, zero: true}}]\n", "mapping.filters[0].when.amount: only for skip: order"},
		{"filter amount test", base + "filters: [{skip: order, when: {amount: true, equals: \"0\"}}]\n", "amount takes only the zero test"},
		{"filter unmapped field", base + "filters: [{skip: row, when: {field: Text1, equals: y}}]\n", `mapping.filters[1].when.field`},
		{"filter unknown field", base + "filters: [{skip: row, when: {field: Txt1, equals: y}}]\n", `"Txt1": unknown field`},
		{"filter bad regex", base + "filters: [{skip: row, when: {column: x, matches: \"[\"}}]\n", "mapping.filters[0].when.matches"},
		{"filter ignore_case", base + "filters: [{skip: row, when: {column: x, empty: true, ignore_case: true}}]\n", "ignore_case: only with equals, in or not_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := tt.yaml
			if tt.name == "filter unmapped field" {
				y = base + "filters: [{skip: row, when: {column: x, equals: y}}, {skip: row, when: {field: Text1, equals: y}}]\n"
			}
			_, err := ParseConfig([]byte(y))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

// TestConfigRoundTrip checks that a Config written back to YAML (as a
// config dump would) decodes to a mapping that maps alike.
func TestConfigRoundTrip(t *testing.T) {
	data, err := os.ReadFile("../configs/mapping-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg2, err := ParseConfig(out)
	if err != nil {
		t.Fatalf("dump does not parse: %v\n%s", err, out)
	}
	out2, err := yaml.Marshal(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(out2) {
		t.Errorf("dump changes on a round trip:\n%s\n---\n%s", out, out2)
	}
}

// TestExampleConfig checks that the example in configs/ compiles, matches
// the complete example in docs/mapping.md, and maps the sample rows in the
// docs without problems.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../configs/mapping-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../docs/mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)<!-- example:begin -->\n```yaml\n(.*?)```\n<!-- example:end -->").FindSubmatch(doc)
	if block == nil {
		t.Fatal("docs/mapping.md has no example block")
	}
	if strings.TrimSpace(string(block[1])) != strings.TrimSpace(string(data)) {
		t.Error("the example in docs/mapping.md differs from configs/mapping-example.yaml")
	}
	csvBlock := regexp.MustCompile("(?s)<!-- input:begin -->\n```csv\n(.*?)```\n<!-- input:end -->").FindSubmatch(doc)
	if csvBlock == nil {
		t.Fatal("docs/mapping.md has no input block")
	}
	_, rows := readCSV(t, "orders.csv", strings.NewReader(string(csvBlock[1])))
	m.now = func() time.Time { return testNow }
	var got []string
	for _, lines := range group(m, rows) {
		md := m.Map(lines)
		for _, sr := range md.SkippedRows {
			got = append(got, "skipped row "+sr.Refs[0].String()+": "+sr.Text)
		}
		switch {
		case md.Skip != "":
			got = append(got, "skipped order "+md.Conversion.Key.String()+": "+md.Skip)
		case len(md.Problems) > 0:
			t.Errorf("order %s: problems %+v", md.Conversion.Key, md.Problems)
		default:
			got = append(got, md.Conversion.Encode())
		}
	}
	outBlock := regexp.MustCompile("(?s)<!-- output:begin -->\n```\n(.*?)```\n<!-- output:end -->").FindSubmatch(doc)
	if outBlock == nil {
		t.Fatal("docs/mapping.md has no output block")
	}
	if want := strings.TrimSpace(string(outBlock[1])); strings.Join(got, "\n") != want {
		t.Errorf("docs output differs; got:\n%s", strings.Join(got, "\n"))
	}
}

// TestDocsNameEveryField checks that docs/mapping.md lists every field of
// the catalogue (numbered fields by their family).
func TestDocsNameEveryField(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "mapping.md"))
	if err != nil {
		t.Fatal(err)
	}
	numbered := regexp.MustCompile(`^(Item)?(Text|Numeric|Money|Date)(_)?\d+$`)
	for _, c := range []*catalogue{&orderFields, &itemFields} {
		for _, d := range c.list {
			if numbered.MatchString(d.name) {
				continue
			}
			if !strings.Contains(string(doc), "`"+d.name+"`") {
				t.Errorf("docs/mapping.md does not mention `%s`", d.name)
			}
		}
	}
}

// TestPlatformConfigsInDocs checks that docs/mapping.md shows the
// example configurations of configs/ as they are (the case folders
// shopify and woocommerce run them).
func TestPlatformConfigsInDocs(t *testing.T) {
	doc, err := os.ReadFile("../docs/mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"shopify", "woocommerce"} {
		data, err := os.ReadFile("../configs/" + name + ".yaml")
		if err != nil {
			t.Fatal(err)
		}
		block := regexp.MustCompile("(?s)<!-- " + name + ":begin -->\n```yaml\n(.*?)```\n<!-- " + name + ":end -->").FindSubmatch(doc)
		if block == nil {
			t.Fatalf("docs/mapping.md has no %s block", name)
		}
		if string(block[1]) != string(data) {
			t.Errorf("the %s example in docs/mapping.md differs from configs/%s.yaml", name, name)
		}
		ref, err := os.ReadFile(filepath.Join("testdata", name, "config"))
		if err != nil || strings.TrimSpace(string(ref)) != "../../../configs/"+name+".yaml" {
			t.Errorf("testdata/%s/config does not name configs/%s.yaml: %q, %v", name, name, ref, err)
		}
	}
}
