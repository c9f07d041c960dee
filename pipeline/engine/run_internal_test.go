package engine

import (
	"testing"

	"convpipe/pipeline"
)

func TestDecideSend(t *testing.T) {
	const h1, h2 = "aaaa", "bbbb"
	tests := []struct {
		name          string
		prev          *pipeline.Entry
		hash          string
		retryRejected bool
		want          Action
	}{
		{"new", nil, h1, false, ActionSend},
		{"accepted same payload", &pipeline.Entry{State: pipeline.StateAccepted, PayloadHash: h1}, h1, false, ActionAlreadySent},
		{"accepted changed payload", &pipeline.Entry{State: pipeline.StateAccepted, PayloadHash: h1}, h2, false, ActionChanged},
		{"changed, still changed", &pipeline.Entry{State: pipeline.StateChanged, PayloadHash: h2, SentHash: h1}, h2, false, ActionChanged},
		{"changed, back to what was accepted", &pipeline.Entry{State: pipeline.StateChanged, PayloadHash: h2, SentHash: h1}, h1, false, ActionAlreadySent},
		{"rejected unchanged", &pipeline.Entry{State: pipeline.StateRejected, PayloadHash: h1}, h1, false, ActionAlreadySent},
		{"rejected unchanged, --retry-rejected", &pipeline.Entry{State: pipeline.StateRejected, PayloadHash: h1}, h1, true, ActionSend},
		{"rejected, fixed upstream", &pipeline.Entry{State: pipeline.StateRejected, PayloadHash: h1}, h2, false, ActionSend},
		{"failed", &pipeline.Entry{State: pipeline.StateFailed, PayloadHash: h1}, h1, false, ActionSend},
		{"pending after a crash", &pipeline.Entry{State: pipeline.StatePending, PayloadHash: h1}, h1, false, ActionSend},
		{"invalid before, valid now", &pipeline.Entry{State: pipeline.StateInvalid}, h1, false, ActionSend},
		{"skipped before, valid now", &pipeline.Entry{State: pipeline.StateSkipped}, h1, false, ActionSend},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decideSend(tt.prev, tt.hash, tt.retryRejected); got != tt.want {
				t.Errorf("decideSend = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestItemFieldName(t *testing.T) {
	for _, tt := range []struct {
		name string
		i    int
		want string
	}{{"ItemSku", 1, "ItemSku1"}, {"ItemText_2", 3, "ItemText3_2"}, {"ItemMoney_1", 12, "ItemMoney12_1"}} {
		if got := pipeline.ItemFieldName(tt.name, tt.i); got != tt.want {
			t.Errorf("ItemFieldName(%q, %d) = %q, want %q", tt.name, tt.i, got, tt.want)
		}
	}
}
