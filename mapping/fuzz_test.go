package mapping

import (
	"encoding/csv"
	"net/url"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// fuzzSteps are every transform, with the options that change its path.
var fuzzSteps = []struct {
	name string
	tr   Transform
	kind kind
}{
	{"trim", Transform{Trim: true}, kindString},
	{"lower", Transform{Lower: true}, kindString},
	{"upper", Transform{Upper: true}, kindString},
	{"default", Transform{Default: ptr("d")}, kindString},
	{"lookup", Transform{Lookup: map[string]string{"a": "A", "": "E"}}, kindString},
	{"replace", Transform{Replace: &Replace{Pattern: `(\d)(\D*)`, With: "${2}$1"}}, kindString},
	{"money", Transform{Number: &Number{}}, kindMoney},
	{"decimal", Transform{Number: &Number{}}, kindDecimal},
	{"comma", Transform{Number: &Number{Decimal: ","}}, kindMoney},
	{"decimals", Transform{Number: &Number{Decimals: ptr(4)}}, kindDecimal},
	{"integer", Transform{Integer: &Number{}}, kindQuantity},
	{"time", Transform{Time: &Time{Layout: "2006-01-02 15:04:05", Layouts: []string{"unix", "unix_ms", "rfc3339", "02.01.2006"}, Zone: "Europe/Berlin"}}, kindDate},
	{"date", Transform{Time: &Time{Layout: "date"}}, kindDate},
	{"extract", Transform{Extract: `(?m)^irclickid:\s*(\S+)`}, kindString},
	{"sha1", Transform{Hash: "sha1"}, kindDigest},
	{"sha256", Transform{Hash: "sha256"}, kindDigest},
}

// FuzzTransforms applies every transform to arbitrary input: none may
// panic, and each output has its transform's shape.
func FuzzTransforms(f *testing.F) {
	for _, s := range []string{"", "irclickid: abc123\n_ga: GA1.2.345", "_ga: x\nirclickid:\tQ", "1,234.56", "(12.00 €)", "1.234,56", "2.5", "1e3", "fifty", "2024-05-01 10:00:00",
		"1714557600000", " Jane@Example.com ", "٣", "1\u00a0234", "--5", "$", "9.995"} {
		f.Add(s)
	}
	steps := make([]step, len(fuzzSteps))
	for i, fs := range fuzzSteps {
		s, err := compileStep("fuzz", fs.tr, fs.kind)
		if err != nil {
			f.Fatal(err)
		}
		steps[i] = s
	}
	f.Fuzz(func(t *testing.T, in string) {
		for i, s := range steps {
			out, err := s.apply(in)
			if err != nil {
				if out != "" {
					t.Errorf("%s(%q) failed but returned %q", fuzzSteps[i].name, in, out)
				}
				continue
			}
			name := fuzzSteps[i].name
			if out == "" {
				if (name == "money" || name == "integer" || name == "sha1") && strings.TrimSpace(in) != "" {
					t.Errorf("%s(%q) = empty", name, in)
				}
				continue
			}
			switch name {
			case "money", "comma":
				if !rules.IsDecimal(out, 2) || out[len(out)-3] != '.' {
					t.Errorf("%s(%q) = %q, not money", name, in, out)
				}
			case "decimal", "decimals":
				if !rules.IsDecimal(out, -1) {
					t.Errorf("%s(%q) = %q, not a decimal", name, in, out)
				}
			case "integer":
				if d := strings.TrimPrefix(out, "-"); d == "" || strings.Trim(d, "0123456789") != "" || out == "-0" {
					t.Errorf("integer(%q) = %q", in, out)
				}
			case "time", "date":
				if _, msg := parseISO(out); msg != "" {
					t.Errorf("%s(%q) = %q: %s", name, in, out, msg)
				}
			case "sha1", "sha256":
				if !isHex(out) || len(out) != 40 && len(out) != 64 {
					t.Errorf("%s(%q) = %q", name, in, out)
				}
			case "extract":
				if !strings.Contains(in, out) || strings.ContainsAny(out, " \t\n") {
					t.Errorf("extract(%q) = %q, not a piece of the value", in, out)
				}
			}
		}
		if shown := display(in); hasEmail(shown) {
			t.Errorf("display(%q) = %q shows an e-mail address", in, shown)
		}
	})
}

const fuzzMappingYAML = `
order_key: [store, order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: "{store}-{order_id}"
  EventDate: {column: created, transforms: [{time: {layout: "2006-01-02 15:04:05", layouts: [unix], zone: America/New_York}}]}
  ClickId: {column: click, transforms: [trim]}
  CustomerId: customer
  CustomerEmail: {column: email, transforms: [hash]}
  CustomerStatus: {column: status, transforms: [lower, {lookup: {new: NEW}, default: EXISTING}]}
  CurrencyCode: {column: currency, transforms: [upper]}
  Text1: {column: email}
  OrderDiscount: {column: discount, transforms: [number]}
items:
  ItemSku: sku
  ItemCategory: {const: General}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price, transforms: [{number: {decimal: ","}}]}
  ItemSubTotal: total
filters:
  - {skip: row, when: {column: status, equals: cancelled}}
  - {skip: row, when: {field: ItemPrice, zero: true}}
  - {skip: order, when: {column: test, equals: "1"}}
  - {skip: order, when: {amount: true, zero: true}}
`

var fuzzHeader = []string{"store", "order_id", "created", "click", "customer", "email", "status", "currency", "discount", "sku", "qty", "price", "total", "test"}

// FuzzMapping maps arbitrary CSV records (under a fixed header) and checks
// that Map never panics, always returns a conversion, and never lets a
// plain e-mail address into a message or a body that would be sent.
func FuzzMapping(f *testing.F) {
	f.Add("de,1,2024-05-01 10:00:00,clk,C1,jane@example.com,new,eur,\"1,000.00\",S1,2,\"9,99\",,0\nde,1,2024-05-01 10:00:00,clk,C1,jane@example.com,new,eur,\"1,000.00\",S2,1,\"1,00\",,0\n")
	f.Add("de,2,1714557600,,x@y.example,a@b.example,cancelled,usd,(5),S1,2.5,fifty,3,1\n")
	f.Add("de,3,2999-01-01 00:00:00,c,,,,,,,,,,\nde,3,2024-05-01 10:00:00,d,,,,,,,,,,\n")
	m := fuzzMapping(f)
	h := pipeline.NewHeader(fuzzHeader)
	obj := &pipeline.Object{Key: "fuzz.csv"}
	f.Fuzz(func(t *testing.T, data string) {
		for _, lines := range group(m, fuzzRows(data, obj, h)) {
			md := m.Map(lines)
			if md.Conversion == nil {
				t.Fatal("nil conversion")
			}
			for _, msg := range append(append([]pipeline.Message(nil), md.Problems...), md.SkippedRows...) {
				if hasEmail(msg.Value) || hasEmail(msg.Text) {
					t.Errorf("e-mail address in message %+v", msg)
				}
			}
			if md.Skip != "" || len(md.Problems) > 0 {
				continue
			}
			for _, fl := range md.Conversion.Form() {
				if hasEmail(fl.Value) {
					t.Errorf("valid conversion sends an e-mail address in %s", fl.Name)
				}
			}
			if _, err := url.ParseQuery(md.Conversion.Encode()); err != nil {
				t.Errorf("body does not parse: %v", err)
			}
			if len(md.Conversion.Items)+len(md.SkippedRows) != len(lines) {
				t.Errorf("%d items + %d skipped rows != %d lines", len(md.Conversion.Items), len(md.SkippedRows), len(lines))
			}
		}
	})
}

// fuzzMapping compiles fuzzMappingYAML, at testNow.
func fuzzMapping(f *testing.F) *Mapping {
	cfg, err := ParseConfig([]byte(fuzzMappingYAML))
	if err != nil {
		f.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	m.now = func() time.Time { return testNow }
	return m
}

// fuzzRows reads up to 200 CSV records of data, leniently, as rows of obj
// under header h.
func fuzzRows(data string, obj *pipeline.Object, h *pipeline.Header) []pipeline.Row {
	cr := csv.NewReader(strings.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	var rows []pipeline.Row
	for line := int64(2); len(rows) < 200; line++ {
		rec, err := cr.Read()
		if err != nil {
			break
		}
		rows = append(rows, pipeline.Row{Object: obj, Line: line, Header: h, Values: rec})
	}
	return rows
}
