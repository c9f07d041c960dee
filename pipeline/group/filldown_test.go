package group

import (
	"strings"
	"testing"

	"convpipe/pipeline"
)

// TestEmptyKeys groups an object whose order key is on each order's
// first line only (Shopify's Id): with fill_down the later lines join
// the order above, in every mode that reads the rows in file order and
// whatever the budget (spilled or not), and auto mode still joins a key
// that comes back; without it every line with an
// empty key is an order of its own, never one order lumping them.
func TestEmptyKeys(t *testing.T) {
	obj := &pipeline.Object{Key: "orders.csv"}
	hdr := pipeline.NewHeader([]string{"Id", "sku"})
	keys := []string{"", "1", "", "", "2", "", "3", "1", ""}
	var rows []pipeline.Row
	for i, k := range keys {
		rows = append(rows, pipeline.Row{Object: obj, Header: hdr, Line: int64(i + 2), Values: []string{k, "S" + string(rune('a'+i))}})
	}
	tests := []struct {
		name string
		cfg  Config
		want string // the lines of each order, orders separated by |
	}{
		{"fill down, auto", Config{FillDown: true}, "2|3,4,5,9,10|6,7|8"},
		{"fill down, sorted", Config{Mode: Sorted, FillDown: true}, "2|3,4,5|6,7|8|9,10"},
		{"fill down, auto, spilled", Config{FillDown: true, MemoryBudget: MinMemoryBudget, TempDir: t.TempDir()}, "2|3,4,5,9,10|6,7|8"},
		{"no fill down, auto", Config{}, "2|3,9|4|5|6|7|8|10"},
		{"no fill down, sorted", Config{Mode: Sorted}, "2|3|4|5|6|7|8|9|10"},
		{"no fill down, scattered", Config{Mode: Scattered}, "2|3,9|4|5|6|7|8|10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			g := New(tt.cfg, func(r pipeline.Row) string { return r.Values[0] }, func(lines []pipeline.Row) error {
				var ls []string
				for _, l := range lines {
					ls = append(ls, strings.TrimPrefix(l.Ref().String(), "orders.csv:"))
				}
				got = append(got, strings.Join(ls, ","))
				return nil
			})
			defer g.Close()
			for _, r := range rows {
				if err := g.Add(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Flush(); err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, "|"); s != tt.want && !(tt.cfg.MemoryBudget != 0 && sameOrders(s, tt.want)) {
				t.Errorf("orders = %s, want %s", s, tt.want)
			}
		})
	}
}

// sameOrders compares two order lists in any order of the orders (a
// spill to partitions emits them partition by partition).
func sameOrders(a, b string) bool {
	as, bs := strings.Split(a, "|"), strings.Split(b, "|")
	if len(as) != len(bs) {
		return false
	}
	seen := map[string]int{}
	for _, x := range as {
		seen[x]++
	}
	for _, x := range bs {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestFillDownConfig(t *testing.T) {
	err := Config{Mode: Scattered, FillDown: true}.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "group.fill_down: ") {
		t.Errorf("scattered with fill_down: error = %v", err)
	}
	for _, m := range []Mode{"", Auto, Sorted} {
		if err := (Config{Mode: m, FillDown: true}).Validate(); err != nil {
			t.Errorf("mode %q with fill_down: %v", m, err)
		}
	}
}
