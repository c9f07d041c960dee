package sinks

import (
	"encoding/csv"
	"strings"
	"testing"

	"convpipe/pipeline"
)

func batchConv(id string, items ...[]pipeline.Field) *pipeline.Conversion {
	c := &pipeline.Conversion{
		Key: pipeline.Key{EventType: "7", OrderID: id},
		Fields: []pipeline.Field{
			{Name: "EventTypeId", Value: "7"}, {Name: "ClickId", Value: "clk-" + id},
			{Name: "EventDate", Value: "2026-11-20T10:00:00Z"}, {Name: "CampaignId", Value: "1000"},
			{Name: "OrderId", Value: id}, {Name: "CurrencyCode", Value: "EUR"}, {Name: "OrderDiscount", Value: "1.50"},
		},
	}
	for _, fs := range items {
		c.Items = append(c.Items, pipeline.Item{Fields: fs})
	}
	return c
}

// TestEncodeBatch: one line per item, an order's lines consecutive with
// their line numbers, the line total computed from a unit price, the
// optional columns after impact's, a name from the content, and an order
// with a line break left out with its reason.
func TestEncodeBatch(t *testing.T) {
	a := batchConv("A-1",
		[]pipeline.Field{{Name: "ItemSku", Value: "S1"}, {Name: "ItemCategory", Value: "shoes"}, {Name: "ItemQuantity", Value: "3"}, {Name: "ItemPrice", Value: "19.99"}},
		[]pipeline.Field{{Name: "ItemSku", Value: "S2"}, {Name: "ItemName", Value: "Sock, red"}, {Name: "ItemCategory", Value: "socks"}, {Name: "ItemQuantity", Value: "1"}, {Name: "ItemSubTotal", Value: "4.00"}})
	b := batchConv("B-2", []pipeline.Field{{Name: "ItemSku", Value: "S3"}, {Name: "ItemCategory", Value: "hats"}, {Name: "ItemQuantity", Value: "2"}, {Name: "ItemSubTotal", Value: "30.00"}})
	bad := batchConv("C-3")
	bad.Fields = append(bad.Fields, pipeline.Field{Name: "Note", Value: "two\nlines"})
	f, problems := EncodeBatch([]*pipeline.Conversion{a, bad, b})
	if len(problems) != 1 || problems[0].Key.OrderID != "C-3" || problems[0].Message.Field != "Note" {
		t.Fatalf("problems = %+v", problems)
	}
	recs, err := csv.NewReader(strings.NewReader(string(f.Data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CampaignId,ActionTrackerId,EventDate,OrderId,ClickId,CustomerId,CurrencyCode,Amount,Category,Sku,Quantity,OrderDiscount,ItemName",
		"1000,7,2026-11-20T10:00:00Z,A-1,clk-A-1,,EUR,59.97,shoes,S1,3,1.50,",
		"1000,7,2026-11-20T10:00:00Z,A-1,clk-A-1,,EUR,4.00,socks,S2,1,1.50,\"Sock, red\"",
		"1000,7,2026-11-20T10:00:00Z,B-2,clk-B-2,,EUR,30.00,hats,S3,2,1.50,"}
	if got := strings.Split(strings.TrimSpace(string(f.Data)), "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("file:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(recs) != 4 || len(f.Orders) != 2 || f.Orders[0] != (BatchOrder{Key: a.Key, First: 2, Last: 3}) || f.Orders[1] != (BatchOrder{Key: b.Key, First: 4, Last: 4}) || f.Lines() != 3 {
		t.Errorf("orders = %+v, lines %d", f.Orders, f.Lines())
	}
	if !strings.HasPrefix(f.Name, "convpipe_") || !strings.HasSuffix(f.Name, ".csv") {
		t.Errorf("name %q", f.Name)
	}
	again, _ := EncodeBatch([]*pipeline.Conversion{a, b})
	other, _ := EncodeBatch([]*pipeline.Conversion{b, a})
	if again.Name != f.Name || other.Name == f.Name {
		t.Errorf("names: %s, again %s, reordered %s", f.Name, again.Name, other.Name)
	}
	files, _ := SplitBatches([]*pipeline.Conversion{a, b, batchConv("D-4")}, 2)
	if len(files) != 2 || len(files[0].Orders) != 2 || len(files[1].Orders) != 1 {
		t.Errorf("split: %d files", len(files))
	}
}
