package pipeline

import (
	"strconv"
	"testing"
)

// benchConversion is an order as the sample mapping builds it: ten
// order-level fields and four items of six fields, values with spaces,
// commas and an @ that need escaping.
func benchConversion() *Conversion {
	c := &Conversion{
		Key: Key{EventType: "12345", OrderID: "berlin-100001"},
		Fields: []Field{
			{"EventTypeId", "12345"}, {"CampaignId", "1000"}, {"OrderId", "berlin-100001"},
			{"EventDate", "2024-01-01T01:01:09+01:00"}, {"ClickId", "clk_2ac9b0de70e3c6b6"},
			{"CustomerId", "C136697"}, {"CustomerEmail", "2f9d1c5e0d3b4a7f8e6c5b4a3f2e1d0c9b8a7f6e"},
			{"OrderPromoCode", "10OFF-ROCKET"}, {"CurrencyCode", "EUR"}, {"Text1", "berlin"},
		},
	}
	for i := range 4 {
		c.Items = append(c.Items, Item{Fields: []Field{
			{"ItemSku", "SKU-01" + strconv.Itoa(i)}, {"ItemName", "Bird Seed, 5 kg"}, {"ItemCategory", "toys"},
			{"ItemQuantity", "3"}, {"ItemPrice", "110.96"}, {"ItemDiscount", "11.09"},
		}})
	}
	return c
}

// BenchmarkEncode encodes the request body of one order of four items.
func BenchmarkEncode(b *testing.B) {
	c := benchConversion()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		n += len(c.Encode())
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkPayloadHash hashes that body.
func BenchmarkPayloadHash(b *testing.B) {
	body := benchConversion().Encode()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		PayloadHash(body)
	}
}
