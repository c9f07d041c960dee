package sim

import (
	"net/url"
	"strings"
	"testing"
)

// valid returns a minimal valid conversion with two items.
func valid() url.Values {
	v, _ := url.ParseQuery("EventTypeId=12345&ClickId=abc&EventDate=2023-12-01T23:55:24-08:00&CampaignId=1000&OrderId=O-1" +
		"&CurrencyCode=USD&ItemSku1=S1&ItemCategory1=C&ItemQuantity1=1&ItemPrice1=10" +
		"&ItemSku2=S2&ItemCategory2=C&ItemQuantity2=6&ItemSubTotal2=18.84")
	return v
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(v url.Values)
		// want lists "Field: message fragment" for every expected error;
		// empty means valid.
		want []string
	}{
		{"valid", func(url.Values) {}, nil},
		{"event type code instead of id", func(v url.Values) { v.Del("EventTypeId"); v.Set("EventTypeCode", "SALE") }, nil},
		{"action tracker id", func(v url.Values) { v.Del("EventTypeId"); v.Set("ActionTrackerId", "7") }, nil},
		{"order level amount", func(v url.Values) {
			for k := range v {
				if strings.HasPrefix(k, "Item") {
					v.Del(k)
				}
			}
			v.Set("OrderSubTotalPostDiscount", "99.90")
		}, nil},
		{"NOW and date only", func(v url.Values) { v.Set("EventDate", "NOW"); v.Set("Date1", "2022-03-28") }, nil},
		{"sha-256 email", func(v url.Values) { v.Set("CustomerEmail", strings.Repeat("ab", 32)) }, nil},
		{"no event type", func(v url.Values) { v.Del("EventTypeId") }, []string{"EventTypeId: EventTypeId or EventTypeCode is required"}},
		{"event type id not a number", func(v url.Values) { v.Set("EventTypeId", "fifty") }, []string{"EventTypeId: Invalid numeric format (fifty)"}},
		{"event type id too long", func(v url.Values) { v.Set("EventTypeId", "12345678901") }, []string{"EventTypeId: Invalid numeric format"}},
		{"no attribution key", func(v url.Values) { v.Del("ClickId") }, []string{"ClickId: An attribution key is required"}},
		{"no event date", func(v url.Values) { v.Del("EventDate") }, []string{"EventDate: EventDate is required"}},
		{"bad event date", func(v url.Values) { v.Set("EventDate", "01/12/2023") }, []string{"EventDate: Invalid date format"}},
		{"no campaign", func(v url.Values) { v.Del("CampaignId") }, []string{"CampaignId: CampaignId is required"}},
		{"program id synonym", func(v url.Values) { v.Del("CampaignId"); v.Set("ProgramId", "x1") }, []string{"ProgramId: Invalid numeric format (x1)"}},
		{"no order id", func(v url.Values) { v.Del("OrderId") }, []string{"OrderId: OrderId is required"}},
		{"order id of 65", func(v url.Values) { v.Set("OrderId", strings.Repeat("9", 65)) }, []string{"OrderId: Value too long: 65 characters, at most 64"}},
		{"order id of 64 multibyte", func(v url.Values) { v.Set("OrderId", strings.Repeat("é", 64)) }, nil},
		{"plain email in customer id", func(v url.Values) { v.Set("CustomerId", "jane@example.com") }, []string{"CustomerId: CustomerId must not identify a person"}},
		{"plain customer email", func(v url.Values) { v.Set("CustomerEmail", "jane@example.com") }, []string{"CustomerEmail: CustomerEmail must be a SHA-1 or SHA-256"}},
		{"currency", func(v url.Values) { v.Set("CurrencyCode", "usd") }, []string{"CurrencyCode: Invalid currency code"}},
		{"three decimals", func(v url.Values) { v.Set("ItemPrice1", "10.005") }, []string{"ItemPrice1: Invalid money format (10.005)"}},
		{"european number", func(v url.Values) { v.Set("OrderDiscount", "1.234,56") }, []string{"OrderDiscount: Invalid money format"}},
		{"fractional quantity", func(v url.Values) { v.Set("ItemQuantity2", "1.5") }, []string{"ItemQuantity2: Invalid quantity (1.5)"}},
		{"negative quantity", func(v url.Values) { v.Set("ItemQuantity2", "-1") }, []string{"ItemQuantity2: Invalid quantity"}},
		{"zero quantity", func(v url.Values) { v.Set("ItemQuantity2", "0") }, []string{"ItemQuantity2: Invalid quantity"}},
		{"price and subtotal", func(v url.Values) { v.Set("ItemSubTotal1", "10") }, []string{"ItemSubTotal1: Send ItemPrice1 or ItemSubTotal1, not both"}},
		{"neither price nor subtotal", func(v url.Values) { v.Del("ItemSubTotal2") }, []string{"ItemPrice2: ItemPrice2 or ItemSubTotal2 is required"}},
		{"missing sku", func(v url.Values) { v.Del("ItemSku2") }, []string{"ItemSku2: ItemSku2 is required"}},
		{"gap in items", func(v url.Values) {
			for _, f := range []string{"Sku", "Category", "Quantity", "SubTotal"} {
				v.Set("Item"+f+"3", v.Get("Item"+f+"2"))
				v.Del("Item" + f + "2")
			}
		}, []string{"ItemSku2: Items must be indexed from 1 without gaps"}},
		{"item index 0", func(v url.Values) { v.Set("ItemName0", "x") }, []string{"ItemName0: Invalid item index"}},
		{"subtotal with items", func(v url.Values) { v.Set("OrderSubTotalPostDiscount", "10") }, []string{"OrderSubTotalPostDiscount: OrderSubTotalPostDiscount must not be sent with item data"}},
		{"text too long", func(v url.Values) { v.Set("Text3", strings.Repeat("x", 65)) }, []string{"Text3: Value too long: 65 characters, at most 64"}},
		{"text 51", func(v url.Values) { v.Set("Text51", "x") }, []string{"Text51: Unknown field"}},
		{"numeric", func(v url.Values) { v.Set("Numeric2", "fifty") }, []string{"Numeric2: Invalid numeric format (fifty)"}},
		{"item text sub-index", func(v url.Values) { v.Set("ItemText1_51", "x") }, []string{"ItemText1_51: Unknown item field"}},
		{"item date", func(v url.Values) { v.Set("ItemDate1_2", "tomorrow") }, []string{"ItemDate1_2: Invalid date format (tomorrow)"}},
		{"unknown item field", func(v url.Values) { v.Set("ItemColour1", "red") }, []string{"ItemColour1: Unknown item field"}},
		{"unknown order field", func(v url.Values) { v.Set("OrderColour", "red") }, []string{"OrderColour: Unknown field"}},
		{"item field without index", func(v url.Values) { v.Set("ItemSku", "x") }, []string{"ItemSku: Unknown field"}},
		{"documented optional fields", func(v url.Values) {
			for _, n := range []string{"CustomerStatus", "Note", "UserAgent", "AppVer", "LocationId", "GiftPurchase"} {
				v.Set(n, "true")
			}
			v.Set("IpAddress", "192.0.2.1")
		}, nil},
		{"sent twice", func(v url.Values) { v.Add("OrderId", "O-2") }, []string{"OrderId: Field sent more than once"}},
		{"no category", func(v url.Values) { v.Del("ItemCategory2") }, []string{"ItemCategory2: ItemCategory2 is required with item data"}},
		{"empty category", func(v url.Values) { v.Set("ItemCategory1", "") }, []string{"ItemCategory1: ItemCategory1 is required with item data"}},
		{"date-time without offset", func(v url.Values) { v.Set("EventDate", "2023-12-01T23:55:24") }, []string{"EventDate: Invalid date format (2023-12-01T23:55:24)"}},
		{"ip address", func(v url.Values) { v.Set("IpAddress", "10.0.0.256") }, []string{"IpAddress: Invalid IP address"}},
		{"unknown order field", func(v url.Values) { v.Set("OrderColour", "red") }, []string{"OrderColour: Unknown field"}},
		{"sku too long", func(v url.Values) { v.Set("ItemSku1", strings.Repeat("s", 256)) }, []string{"ItemSku1: Value too long: 256 characters, at most 255"}},
		{"several at once", func(v url.Values) { v.Del("OrderId"); v.Set("CampaignId", "x") }, []string{
			"CampaignId: Invalid numeric format (x)", "OrderId: OrderId is required",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := valid()
			tt.change(v)
			got := validate(v)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if g := got[i].Field + ": " + got[i].Message; !strings.Contains(g, w) {
					t.Errorf("error %d = %q, want it to contain %q", i, g, w)
				}
			}
			for _, e := range got {
				if strings.Contains(e.Message, "jane@example.com") {
					t.Errorf("message echoes an e-mail address: %q", e.Message)
				}
			}
		})
	}
}
