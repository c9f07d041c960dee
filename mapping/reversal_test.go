package mapping

import (
	"regexp"
	"strings"
	"testing"

	"convpipe/pipeline"
)

func TestReversalFilters(t *testing.T) {
	tests := []struct {
		name, filter string
		want         string // the disposition, or a fragment of the error
		fail         bool
	}{
		{"cancelled", "{skip: order, when: {column: status, equals: cancelled}, reversal: cancelled}", "ORDER_ERROR", false},
		{"returned", "{skip: order, when: {column: status, equals: returned}, reversal: returned}", "ITEM_RETURNED", false},
		{"test", "{skip: order, when: {column: status, equals: test}, reversal: test}", "TEST_ACTION", false},
		{"fraud", "{skip: order, when: {column: status, equals: fraud}, reversal: fraud}", "CONS_FRAUD", false},
		{"own code", "{skip: order, when: {column: status, equals: x}, reversal: cancelled, disposition: ITEM_OUT_OF_STOCK}", "ITEM_OUT_OF_STOCK", false},
		{"no reversal", "{skip: order, when: {column: status, equals: x}}", "", false},
		{"unknown reversal", "{skip: order, when: {column: status, equals: x}, reversal: lost}", "mapping.filters[0].reversal: \"lost\" is not one of cancelled", true},
		{"row filter", "{skip: row, when: {column: status, equals: x}, reversal: returned}", "only an order filter", true},
		{"unknown code", "{skip: order, when: {column: status, equals: x}, reversal: returned, disposition: OOPS}", "mapping.filters[0].disposition: \"OOPS\" is not one of impact's codes", true},
		{"code alone", "{skip: order, when: {column: status, equals: x}, disposition: OTHER}", "disposition: only with reversal", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(base + "filters: [" + tt.filter + "]\n"))
			if tt.fail {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			h := pipeline.NewHeader([]string{"order_id", "created", "status"})
			status := regexp.MustCompile(`equals: (\w+)`).FindStringSubmatch(tt.filter)[1]
			row := pipeline.Row{Header: h, Line: 2, Values: []string{"O-1", "2026-11-20T10:00:00Z", status}}
			got := m.Map([]pipeline.Row{row})
			if got.Skip == "" || got.Reversal != tt.want {
				t.Fatalf("skip %q reversal %q, want the order skipped with %q", got.Skip, got.Reversal, tt.want)
			}
		})
	}
}
