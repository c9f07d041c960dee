package engine

import (
	"testing"

	"convpipe/pipeline"
)

// TestDecideReversal: an accepted order that a reversal filter now leaves
// out is counted as a reversal (it needs a person or `corrections`), not
// as a skip; one never accepted is skipped, reversal filter or not.
func TestDecideReversal(t *testing.T) {
	key := pipeline.Key{EventType: "1", OrderID: "O-1"}
	skipped := func(reversal string) prepared {
		c := &pipeline.Conversion{Key: key, Refs: []pipeline.Ref{{Line: 2}}}
		return prepared{m: pipeline.Mapped{Conversion: c, Skip: "order cancelled", Reversal: reversal}, key: key, lines: 1}
	}
	accepted := &pipeline.Entry{Key: key, State: pipeline.StateAccepted, PayloadHash: "h"}
	tests := []struct {
		name      string
		p         prepared
		prev      *pipeline.Entry
		want      pipeline.Counts
		attention bool
	}{
		{"accepted, now cancelled", skipped("ORDER_ERROR"), accepted, pipeline.Counts{Reversals: 1}, true},
		{"accepted, skipped by a plain filter", skipped(""), accepted, pipeline.Counts{Skipped: 1}, false},
		{"never sent, cancelled", skipped("ORDER_ERROR"), nil, pipeline.Counts{Skipped: 1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := decide(tt.p, known{Prev: tt.prev}, policy{Mode: Send, RunID: "r2"})
			if v.Action != ActionSkip || v.Counts != tt.want || v.Counts.NeedsAttention() != tt.attention {
				t.Fatalf("verdict %+v, want counts %+v", v, tt.want)
			}
			if tt.prev != nil && v.Write != nil {
				t.Fatalf("the accepted entry overwritten: %+v", v.Write)
			}
		})
	}
}
