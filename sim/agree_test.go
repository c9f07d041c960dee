package sim

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// agreeMapping maps every column to its field as it is, so that a cell
// reaches the rules unchanged.
// The order key is a column of its own, so that an empty OrderId is the
// API's missing OrderId, not a line without an order.
const agreeMapping = `
order_key: [order_ref]
max_items: 3
fields:
  EventTypeId: event_type_id
  ClickId: click_id
  CustomerId: customer_id
  CustomerEmail: customer_email
  EventDate: event_date
  CampaignId: campaign_id
  OrderId: order_id
  OrderSubTotalPostDiscount: subtotal
  CurrencyCode: currency
  GiftPurchase: gift
  IpAddress: ip
  Note: note
  Numeric1: numeric1
  Date1: date1
items:
  ItemSku: sku
  ItemCategory: category
  ItemQuantity: qty
  ItemPrice: price
  ItemSubTotal: line_total
`

var agreeColumns = []string{
	"event_type_id", "click_id", "customer_id", "customer_email", "event_date", "campaign_id", "order_id",
	"subtotal", "currency", "gift", "ip", "note", "numeric1", "date1",
	"sku", "category", "qty", "price", "line_total", "order_ref",
}

// itemColumns are the columns of item fields; the others are the
// order's, the same on every line.
var itemColumns = map[string]bool{"sku": true, "category": true, "qty": true, "price": true, "line_total": true}

// agreeLines are the cells of a valid order of two lines: one with a
// unit price, one with a line total.
func agreeLines() []map[string]string {
	order := map[string]string{
		"event_type_id": "12345", "click_id": "abc", "event_date": "2023-12-01T23:55:24-08:00",
		"campaign_id": "1000", "order_id": "O-1", "currency": "USD", "order_ref": "R-1",
	}
	line := func(cells map[string]string) map[string]string {
		l := map[string]string{}
		for k, v := range order {
			l[k] = v
		}
		for k, v := range cells {
			l[k] = v
		}
		return l
	}
	return []map[string]string{
		line(map[string]string{"sku": "S1", "category": "Tools", "qty": "1", "price": "10"}),
		line(map[string]string{"sku": "S2", "category": "Garden", "qty": "6", "line_total": "18.84"}),
	}
}

// agreeChange sets one cell of an agreement case: of an item column on
// one line (0 or 1; 2 and up add lines like the second), of an order
// column on every line.
type agreeChange struct {
	line       int
	col, value string
}

// agreeCase is an order that breaks one rule.
type agreeCase struct {
	rule    rules.Rule
	changes []agreeChange
	// field is what both checkers name; mapField and simField when they
	// name it differently.
	field, mapField, simField string
}

var agreeCases = []agreeCase{
	{rule: rules.None},
	{rule: rules.NotUTF8, changes: []agreeChange{{0, "note", "caf\xe9"}}, field: "Note"},
	{rule: rules.TooLong, changes: []agreeChange{{0, "note", strings.Repeat("é", 256)}}, field: "Note"},
	{rule: rules.TooLong, changes: []agreeChange{{0, "order_id", strings.Repeat("9", 65)}}, field: "OrderId"},
	{rule: rules.NotID, changes: []agreeChange{{0, "campaign_id", "x1"}}, field: "CampaignId"},
	{rule: rules.NotID, changes: []agreeChange{{0, "event_type_id", "12345678901"}}, field: "EventTypeId"},
	{rule: rules.NotNumber, changes: []agreeChange{{0, "numeric1", "fifty"}}, field: "Numeric1"},
	{rule: rules.NotNumber, changes: []agreeChange{{1, "line_total", "1.234,56"}}, field: "ItemSubTotal2"},
	{rule: rules.NotNumber, changes: []agreeChange{{1, "qty", "two"}}, field: "ItemQuantity2"},
	{rule: rules.NotWhole, changes: []agreeChange{{1, "qty", "1.5"}}, field: "ItemQuantity2"},
	{rule: rules.NotPositive, changes: []agreeChange{{0, "qty", "0"}}, field: "ItemQuantity1"},
	{rule: rules.NotPositive, changes: []agreeChange{{0, "qty", "-1"}}, field: "ItemQuantity1"},
	{rule: rules.MoneyDecimals, changes: []agreeChange{{0, "price", "10.005"}}, field: "ItemPrice1"},
	{rule: rules.NotDate, changes: []agreeChange{{0, "date1", "tomorrow"}}, field: "Date1"},
	{rule: rules.NotDate, changes: []agreeChange{{0, "event_date", "01/12/2023"}}, field: "EventDate"},
	{rule: rules.NoOffset, changes: []agreeChange{{0, "date1", "2023-12-01T10:00:00"}}, field: "Date1"},
	{rule: rules.NotDigest, changes: []agreeChange{{0, "customer_email", "jane@example.com"}}, field: "CustomerEmail"},
	{rule: rules.NotDigest, changes: []agreeChange{{0, "customer_email", strings.Repeat("ab", 21)}}, field: "CustomerEmail"},
	{rule: rules.NotCurrency, changes: []agreeChange{{0, "currency", "usd"}}, field: "CurrencyCode"},
	{rule: rules.NotBool, changes: []agreeChange{{0, "gift", "yes"}}, field: "GiftPurchase"},
	{rule: rules.NotIP, changes: []agreeChange{{0, "ip", "1.2.3"}}, field: "IpAddress"},
	{rule: rules.PersonalID, changes: []agreeChange{{0, "customer_id", "jane@example.com"}}, field: "CustomerId"},
	{rule: rules.EmailInValue, changes: []agreeChange{{0, "note", "from jane@example.com"}}, mapField: "Note"},
	{rule: rules.ControlInID, changes: []agreeChange{{0, "order_id", "O\x01-1"}}, mapField: "OrderId"},
	{rule: rules.NowRefused, changes: []agreeChange{{0, "event_date", "NOW"}}, mapField: "EventDate"},
	{rule: rules.FutureDate, changes: []agreeChange{{0, "event_date", "2099-01-01T00:00:00Z"}}, mapField: "EventDate"},
	{rule: rules.NoEventType, changes: []agreeChange{{0, "event_type_id", ""}}, field: "EventTypeId"},
	{rule: rules.NoAttribution, changes: []agreeChange{{0, "click_id", ""}}, mapField: "", simField: "ClickId"},
	{rule: rules.NoEventDate, changes: []agreeChange{{0, "event_date", ""}}, field: "EventDate"},
	{rule: rules.NoCampaign, changes: []agreeChange{{0, "campaign_id", ""}}, field: "CampaignId"},
	{rule: rules.NoOrderID, changes: []agreeChange{{0, "order_id", ""}}, field: "OrderId"},
	{rule: rules.SubTotalInItems, changes: []agreeChange{{0, "subtotal", "99.90"}}, field: "OrderSubTotalPostDiscount"},
	{rule: rules.ItemGap, changes: []agreeChange{{0, "sku", ""}, {0, "category", ""}, {0, "qty", ""}, {0, "price", ""}},
		mapField: "Item1", simField: "ItemSku1"},
	{rule: rules.ItemRequired, changes: []agreeChange{{1, "category", ""}}, field: "ItemCategory2"},
	{rule: rules.ItemRequired, changes: []agreeChange{{0, "sku", ""}}, field: "ItemSku1"},
	{rule: rules.ItemRequired, changes: []agreeChange{{1, "qty", ""}}, field: "ItemQuantity2"},
	{rule: rules.PriceAndTotal, changes: []agreeChange{{0, "line_total", "10"}}, field: "ItemSubTotal1"},
	{rule: rules.NoPriceOrTotal, changes: []agreeChange{{1, "line_total", ""}}, field: "ItemPrice2"},
	{rule: rules.TooManyItems, changes: []agreeChange{{2, "sku", "S3"}, {3, "sku", "S4"}}, mapField: "Items"},
}

// TestValidatorAndSimulatorAgree runs every rule of convpipe/pipeline/rules
// through both checkers, convpipe's mapping (what `convpipe validate`
// reports before anything is sent) and the simulator (what the API
// answers), on an order that breaks that rule alone: both must name the
// same field, except for convpipe's own Policy rules, which only the
// mapping applies. Every rule of the table needs a case.
func TestValidatorAndSimulatorAgree(t *testing.T) {
	m := agreeMapper(t)
	covered := map[rules.Rule]bool{}
	for _, tc := range agreeCases {
		covered[tc.rule] = true
		t.Run(tc.rule.String()+"/"+tc.field+tc.mapField, func(t *testing.T) {
			lines := agreeLines()
			for _, c := range tc.changes {
				for len(lines) <= c.line {
					lines = append(lines, agreeLines()[1])
				}
				if itemColumns[c.col] {
					lines[c.line][c.col] = c.value
					continue
				}
				for _, l := range lines { // the order's value, on every line
					l[c.col] = c.value
				}
			}
			md := m.Map(agreeRows(lines))
			var byMapping []string
			for _, p := range md.Problems {
				byMapping = append(byMapping, p.Field)
			}
			sent := map[string]bool{}
			for _, f := range md.Conversion.Form() {
				if sent[f.Name] {
					t.Errorf("the mapping sends %s twice", f.Name)
				}
				sent[f.Name] = true
			}
			// The simulator gets the cells as they are: the mapping
			// redacts an e-mail address in a conversion it refuses.
			v := agreeForm(lines)
			var bySim []string
			for _, e := range validate(v) {
				bySim = append(bySim, e.Field)
			}
			wantMap, wantSim := fieldList(tc.field, tc.mapField), fieldList(tc.field, tc.simField)
			if rules.All[tc.rule].Class == rules.Policy {
				wantSim = nil
			}
			if tc.rule == rules.NoAttribution {
				wantMap = []string{""} // the mapping names no one key
			}
			if !slices.Equal(byMapping, wantMap) || !slices.Equal(bySim, wantSim) {
				t.Errorf("the mapping names %q (want %q), the simulator %q (want %q)\nmapping: %+v\nsimulator: %+v",
					byMapping, wantMap, bySim, wantSim, md.Problems, validate(v))
			}
		})
	}
	for _, tc := range wireCases {
		covered[tc.rule] = true
	}
	for r := rules.Rule(0); int(r) < len(rules.All); r++ {
		if !covered[r] {
			t.Errorf("rule %s has no case", r)
		}
		if d := rules.All[r]; d.Rule != r || d.Name == "" || r != rules.None && (d.Says == "" || d.Class != rules.Policy && d.Answer == nil) {
			t.Errorf("rule %d: incomplete entry %+v", r, d)
		}
	}
}

// wireCases are hand-made requests that break a Wire rule, which the
// mapping cannot send.
var wireCases = []struct {
	rule   rules.Rule
	change func(url.Values)
	field  string
}{
	{rules.SentTwice, func(v url.Values) { v.Add("OrderId", "O-2") }, "OrderId"},
	{rules.UnknownField, func(v url.Values) { v.Set("ItemColour1", "red") }, "ItemColour1"},
	{rules.UnknownField, func(v url.Values) { v.Set("Text51", "x") }, "Text51"},
	{rules.BadItemIndex, func(v url.Values) { v.Set("ItemName0", "x") }, "ItemName0"},
}

// TestWireRules checks the rules only a hand-made request can break: the
// simulator refuses each, and the mapping refuses an unknown field when it
// compiles.
func TestWireRules(t *testing.T) {
	for _, tc := range wireCases {
		v := valid()
		tc.change(v)
		if got := validate(v); len(got) != 1 || got[0].Field != tc.field {
			t.Errorf("%s: the simulator answers %+v, want one error for %s", tc.rule, got, tc.field)
		}
	}
	for _, name := range []string{"ItemColour", "Text51"} {
		level := "items"
		if name == "Text51" {
			level = "fields"
		}
		y := strings.Replace(agreeMapping, "\n"+level+":\n", "\n"+level+":\n  "+name+": note\n", 1)
		if cfg, err := mapping.ParseConfig([]byte(y)); err == nil {
			if _, err = mapping.New(cfg); err == nil {
				t.Errorf("the mapping accepts the unknown field %s", name)
			}
		}
	}
}

// fieldList is the list of fields a checker should name: other when
// set, else field; none when both are empty.
func fieldList(field, other string) []string {
	if other != "" {
		field = other
	}
	if field == "" {
		return nil
	}
	return []string{field}
}

// agreeForm is the form of lines as agreeMapping maps them, without its
// checks: every non-empty cell under its field's wire name.
func agreeForm(lines []map[string]string) url.Values {
	fields := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSpace(agreeMapping), "\n") {
		if f, col, ok := strings.Cut(strings.TrimSpace(kv), ": "); ok {
			fields[col] = f
		}
	}
	v := url.Values{}
	for _, c := range agreeColumns {
		if val := lines[0][c]; val != "" && !itemColumns[c] && fields[c] != "" {
			v.Set(fields[c], val) // order_ref, the key, is no field
		}
	}
	for i, l := range lines {
		for _, c := range agreeColumns {
			if val := l[c]; val != "" && itemColumns[c] {
				v.Set(pipeline.ItemFieldName(fields[c], i+1), val)
			}
		}
	}
	return v
}

func agreeMapper(t *testing.T) *mapping.Mapping {
	t.Helper()
	cfg, err := mapping.ParseConfig([]byte(agreeMapping))
	if err != nil {
		t.Fatal(err)
	}
	// The age guard (max_event_age) is convpipe's policy, not a rule of
	// the API, which takes an old order and re-dates it: the conversion
	// here is the reference page's own example, dated 2023-12-01.
	cfg.AllowOld = true
	m, err := mapping.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func agreeRows(lines []map[string]string) []pipeline.Row {
	h := pipeline.NewHeader(agreeColumns)
	obj := &pipeline.Object{Key: "agree.csv"}
	rows := make([]pipeline.Row, len(lines))
	for i, l := range lines {
		vals := make([]string, len(agreeColumns))
		for j, c := range agreeColumns {
			vals[j] = l[c]
		}
		rows[i] = pipeline.Row{Object: obj, Line: int64(i + 2), Header: h, Values: vals}
	}
	return rows
}
