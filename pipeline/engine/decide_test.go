package engine

import (
	"fmt"
	"testing"

	"convpipe/pipeline"
)

// TestDecideSendTable lists the decision for every ledger state (and no
// entry) × payload unchanged/changed × --retry-rejected off/on, each
// written out: changing any one row of decideSend fails one row here, and
// the coverage check fails when a combination is missing.
func TestDecideSendTable(t *testing.T) {
	const (
		same    = "same"
		changed = "changed"
	)
	// The entry's hashes: PayloadHash is "sent" for every state; an entry
	// in state changed also remembers the accepted payload in SentHash,
	// and "same" there means the payload is back to what was accepted.
	table := []struct {
		state   pipeline.State // "" is no entry
		payload string
		retry   bool
		want    Action
	}{
		{"", same, false, ActionSend},
		{"", same, true, ActionSend},
		{"", changed, false, ActionSend},
		{"", changed, true, ActionSend},
		{pipeline.StateAccepted, same, false, ActionAlreadySent},
		{pipeline.StateAccepted, same, true, ActionAlreadySent},
		{pipeline.StateAccepted, changed, false, ActionChanged},
		{pipeline.StateAccepted, changed, true, ActionChanged},
		{pipeline.StateChanged, same, false, ActionAlreadySent},
		{pipeline.StateChanged, same, true, ActionAlreadySent},
		{pipeline.StateChanged, changed, false, ActionChanged},
		{pipeline.StateChanged, changed, true, ActionChanged},
		{pipeline.StateRejected, same, false, ActionAlreadySent},
		{pipeline.StateRejected, same, true, ActionSend},
		{pipeline.StateRejected, changed, false, ActionSend},
		{pipeline.StateRejected, changed, true, ActionSend},
		{pipeline.StatePending, same, false, ActionSend},
		{pipeline.StatePending, same, true, ActionSend},
		{pipeline.StatePending, changed, false, ActionSend},
		{pipeline.StatePending, changed, true, ActionSend},
		{pipeline.StateFailed, same, false, ActionSend},
		{pipeline.StateFailed, same, true, ActionSend},
		{pipeline.StateFailed, changed, false, ActionSend},
		{pipeline.StateFailed, changed, true, ActionSend},
		{pipeline.StateInvalid, same, false, ActionSend},
		{pipeline.StateInvalid, same, true, ActionSend},
		{pipeline.StateInvalid, changed, false, ActionSend},
		{pipeline.StateInvalid, changed, true, ActionSend},
		{pipeline.StateSkipped, same, false, ActionSend},
		{pipeline.StateSkipped, same, true, ActionSend},
		{pipeline.StateSkipped, changed, false, ActionSend},
		{pipeline.StateSkipped, changed, true, ActionSend},
	}
	states := []pipeline.State{"", pipeline.StateAccepted, pipeline.StateChanged, pipeline.StateRejected,
		pipeline.StatePending, pipeline.StateFailed, pipeline.StateInvalid, pipeline.StateSkipped}
	seen := map[string]bool{}
	for _, row := range table {
		name := fmt.Sprintf("%s/%s/retry=%t", row.state, row.payload, row.retry)
		if row.state == "" {
			name = "new/" + name[1:]
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			hash := "sent"
			if row.payload == changed {
				hash = "new"
			}
			var prev *pipeline.Entry
			if row.state != "" {
				prev = &pipeline.Entry{State: row.state, PayloadHash: "sent"}
				if row.state == pipeline.StateChanged {
					// Changed: the ledger holds the new payload's hash, and
					// SentHash the accepted one.
					prev.PayloadHash, prev.SentHash = "other", "sent"
				}
			}
			if got := decideSend(prev, hash, row.retry); got != row.want {
				t.Errorf("decideSend = %s, want %s", got, row.want)
			}
		})
	}
	if len(seen) != len(states)*2*2 {
		t.Errorf("the table has %d distinct rows, want %d (every state × payload × retry)", len(seen), len(states)*4)
	}
}
