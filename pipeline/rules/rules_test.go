package rules

import (
	"strings"
	"testing"

	"convpipe/pipeline"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		field, value string
		want         Rule
	}{
		{"OrderId", "", None},
		{"OrderId", strings.Repeat("é", 64), None},
		{"OrderId", strings.Repeat("é", 65), TooLong},
		{"Note", "caf\xe9", NotUTF8},
		{"CampaignId", "1000", None},
		{"CampaignId", "12345678901", NotID},
		{"OrderDiscount", "5.00", None},
		{"OrderDiscount", "5.005", MoneyDecimals},
		{"OrderDiscount", "5,00", NotNumber},
		{"Numeric1", "-12.125", None},
		{"EventDate", "NOW", None},
		{"Date1", "NOW", NotDate},
		{"Date1", "2026-02-30", NotDate},
		{"Date1", "2026-11-20T10:00:00", NoOffset},
		{"Date1", "2026-11-20T10:00:00+01:00", None},
		{"CustomerEmail", strings.Repeat("a", 40), None},
		{"CustomerEmail", "jane@example.com", NotDigest},
		{"CustomerId", "jane@example.com", PersonalID},
		{"CustomerId", "C-1", None},
		{"CurrencyCode", "EUR", None},
		{"CurrencyCode", "eur", NotCurrency},
		{"GiftPurchase", "1", NotBool},
		{"IpAddress", "::1", None},
		{"IpAddress", "1.2.3", NotIP},
	} {
		f, ok := Order(tc.field)
		if !ok {
			t.Fatalf("no field %s", tc.field)
		}
		if got := Check(f, tc.value); got != tc.want {
			t.Errorf("Check(%s, %q) = %s, want %s", tc.field, tc.value, got, tc.want)
		}
	}
	q, _ := Item("ItemQuantity")
	for v, want := range map[string]Rule{"2": None, "2.0": NotWhole, "0": NotPositive, "-1": NotPositive, "two": NotNumber} {
		if got := Check(q, v); got != want {
			t.Errorf("Check(ItemQuantity, %q) = %s, want %s", v, got, want)
		}
	}
}

func TestCheckConversion(t *testing.T) {
	c := &pipeline.Conversion{
		Fields: []pipeline.Field{{Name: "ActionTrackerId", Value: "1"}, {Name: "OrderPromoCode", Value: "X"},
			{Name: "EventDate", Value: "NOW"}, {Name: "ProgramId", Value: "2"}, {Name: "OrderId", Value: "O"}},
		Items: []pipeline.Item{
			{Fields: []pipeline.Field{{Name: "ItemSku", Value: "S"}, {Name: "ItemQuantity", Value: "1"}, {Name: "ItemPrice", Value: "1"}}},
			{Fields: []pipeline.Field{{Name: "ItemSku", Value: ""}}},
		},
	}
	got := CheckConversion(c, nil)
	want := []Violation{
		{Rule: ItemRequired, Field: "ItemCategory1", Item: 1, Base: "ItemCategory"},
		{Rule: ItemGap, Field: "ItemSku2", Item: 2, Base: "ItemSku"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("violation %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestCheckValue: CheckValue is Check and then CheckPolicy, for every
// field of the API and values that break each rule or none (the
// validator calls CheckValue; the simulator calls the two).
func TestCheckValue(t *testing.T) {
	values := []string{"", "1000", "12345678901", "5.00", "5.005", "5,00", "-12.125", "0", "-3", "2.5",
		"NOW", "2026-02-30", "2026-11-20T10:00:00", "2026-11-20T10:00:00+01:00", strings.Repeat("a", 40),
		"jane@example.com", "mail jane@example.com now", "a@b", "C-1", "EUR", "eur", "1", "true", "::1", "1.2.3",
		"caf\xe9", "café", "O-1\x07", "O-1\u0085", strings.Repeat("é", 65), strings.Repeat("x", 3000)}
	fields := append(append([]Field(nil), OrderFields...), ItemFields...)
	if len(fields) < 20 {
		t.Fatalf("only %d fields", len(fields))
	}
	policyBroken := 0
	for _, f := range fields {
		for _, v := range values {
			want := Check(f, v)
			if want == None {
				want = CheckPolicy(f, v)
				if want != None {
					policyBroken++
				}
			}
			if got := CheckValue(&f, v); got != want {
				t.Errorf("CheckValue(%s, %+q) = %v, Check then CheckPolicy %v", f.Name, v, got, want)
			}
		}
	}
	if policyBroken == 0 {
		t.Error("no value broke a policy rule: the corpus does not test them")
	}
}
