package engine_test

import (
	"strings"
	"testing"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/group"
)

// emptyKeyExport writes the order key on each order's first line only,
// as Shopify writes its Id.
var emptyKeyExport = header +
	"K-1," + testDay + "T10:00:00Z,clk1,SKU-1,1,10.00,paid\n" +
	"," + testDay + "T10:00:00Z,clk1,SKU-2,2,20.00,paid\n" +
	"K-2," + testDay + "T11:00:00Z,clk2,SKU-1,1,10.00,paid\n" +
	"," + testDay + "T11:00:00Z,clk2,SKU-3,1,30.00,paid\n" +
	"," + testDay + "T11:00:00Z,clk2,SKU-4,1,40.00,paid\n"

// TestRunEmptyOrderKey runs an export whose later lines leave the order
// key empty: with group.fill_down every order is sent whole; without it
// each such line is recorded as invalid on its own, naming it, and the
// run needs attention, where it once sent each order with its first
// item only and said nothing.
func TestRunEmptyOrderKey(t *testing.T) {
	t.Run("fill down", func(t *testing.T) {
		h := newHarness(t)
		h.write("orders.csv", emptyKeyExport)
		s, err := h.run(runOpts{group: group.Config{FillDown: true}})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total.Accepted != 2 || s.Total.Invalid != 0 || s.Total.NeedsAttention() {
			t.Fatalf("summary %+v, want K-1 and K-2 accepted", s.Total)
		}
		items := map[string]int{}
		for _, e := range h.entries() {
			items[e.Key.OrderID] = len(e.Refs)
		}
		if items["K-1"] != 2 || items["K-2"] != 3 {
			t.Errorf("lines per order %v, want K-1 with 2 and K-2 with 3", items)
		}
	})
	t.Run("without fill down", func(t *testing.T) {
		h := newHarness(t)
		h.write("orders.csv", emptyKeyExport)
		s, err := h.run(runOpts{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Total.Accepted != 2 || s.Total.Invalid != 3 || !s.Total.NeedsAttention() {
			t.Fatalf("summary %+v, want 2 accepted and the 3 lines without a key invalid", s.Total)
		}
		l, err := ledger.OpenReadOnly(t.Context(), h.ledger)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var lines []string
		err = l.Entries(t.Context(), pipeline.Filter{State: pipeline.StateInvalid}, func(e pipeline.Entry) error {
			if len(e.Refs) != 1 || len(e.Messages) != 1 || !strings.Contains(e.Messages[0].Text, `the order key (column "order_id") is empty`) {
				t.Errorf("entry %+v: want one line and the empty-key message", e)
			}
			lines = append(lines, refsText(e.Refs))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(lines, " "); !strings.Contains(got, "orders.csv:3") || !strings.Contains(got, "orders.csv:5") || !strings.Contains(got, "orders.csv:6") {
			t.Errorf("invalid entries name %s, want orders.csv:3, :5 and :6", got)
		}
	})
}
