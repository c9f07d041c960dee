package engine

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestDecideTable lists decide's verdict for every kind of order (valid,
// invalid, left out by a filter) × every ledger state (and no entry) ×
// payload unchanged/changed × mode, each row written out: the action and
// the entry written ("state:payload hash", "" for none). Changing any one
// rule of decide fails a row here, and the coverage check fails when a
// combination is missing.
func TestDecideTable(t *testing.T) {
	const changed = "changed"
	table := []struct {
		kind    string // valid, invalid, skip
		state   pipeline.State
		payload string
		mode    Mode
		want    Action
		write   string
	}{
		{"valid", "", same, Check, ActionSend, ""},
		{"valid", "", same, DryRun, ActionSend, ""},
		{"valid", "", same, Send, ActionSend, ""},
		{"valid", "", changed, Check, ActionSend, ""},
		{"valid", "", changed, DryRun, ActionSend, ""},
		{"valid", "", changed, Send, ActionSend, ""},
		{"valid", "accepted", same, Check, ActionAlreadySent, ""},
		{"valid", "accepted", same, DryRun, ActionAlreadySent, ""},
		{"valid", "accepted", same, Send, ActionAlreadySent, ""},
		{"valid", "accepted", changed, Check, ActionChanged, ""},
		{"valid", "accepted", changed, DryRun, ActionChanged, ""},
		{"valid", "accepted", changed, Send, ActionChanged, "changed:new"},
		{"valid", "changed", same, Check, ActionAlreadySent, ""},
		{"valid", "changed", same, DryRun, ActionAlreadySent, ""},
		{"valid", "changed", same, Send, ActionAlreadySent, "accepted:sent"},
		{"valid", "changed", changed, Check, ActionChanged, ""},
		{"valid", "changed", changed, DryRun, ActionChanged, ""},
		{"valid", "changed", changed, Send, ActionChanged, "changed:new"},
		{"valid", "rejected", same, Check, ActionAlreadySent, ""},
		{"valid", "rejected", same, DryRun, ActionAlreadySent, ""},
		{"valid", "rejected", same, Send, ActionAlreadySent, ""},
		{"valid", "rejected", changed, Check, ActionSend, ""},
		{"valid", "rejected", changed, DryRun, ActionSend, ""},
		{"valid", "rejected", changed, Send, ActionSend, ""},
		{"valid", "pending", same, Check, ActionSend, ""},
		{"valid", "pending", same, DryRun, ActionSend, ""},
		{"valid", "pending", same, Send, ActionSend, ""},
		{"valid", "pending", changed, Check, ActionSend, ""},
		{"valid", "pending", changed, DryRun, ActionSend, ""},
		{"valid", "pending", changed, Send, ActionSend, ""},
		{"valid", "failed", same, Check, ActionSend, ""},
		{"valid", "failed", same, DryRun, ActionSend, ""},
		{"valid", "failed", same, Send, ActionSend, ""},
		{"valid", "failed", changed, Check, ActionSend, ""},
		{"valid", "failed", changed, DryRun, ActionSend, ""},
		{"valid", "failed", changed, Send, ActionSend, ""},
		{"valid", "invalid", same, Check, ActionSend, ""},
		{"valid", "invalid", same, DryRun, ActionSend, ""},
		{"valid", "invalid", same, Send, ActionSend, ""},
		{"valid", "invalid", changed, Check, ActionSend, ""},
		{"valid", "invalid", changed, DryRun, ActionSend, ""},
		{"valid", "invalid", changed, Send, ActionSend, ""},
		{"valid", "skipped", same, Check, ActionSend, ""},
		{"valid", "skipped", same, DryRun, ActionSend, ""},
		{"valid", "skipped", same, Send, ActionSend, ""},
		{"valid", "skipped", changed, Check, ActionSend, ""},
		{"valid", "skipped", changed, DryRun, ActionSend, ""},
		{"valid", "skipped", changed, Send, ActionSend, ""},
		{"invalid", "", same, Check, ActionInvalid, ""},
		{"invalid", "", same, DryRun, ActionInvalid, ""},
		{"invalid", "", same, Send, ActionInvalid, "invalid:"},
		{"invalid", "accepted", same, Check, ActionInvalid, ""},
		{"invalid", "accepted", same, DryRun, ActionInvalid, ""},
		{"invalid", "accepted", same, Send, ActionInvalid, ""},
		{"invalid", "changed", same, Check, ActionInvalid, ""},
		{"invalid", "changed", same, DryRun, ActionInvalid, ""},
		{"invalid", "changed", same, Send, ActionInvalid, ""},
		{"invalid", "rejected", same, Check, ActionInvalid, ""},
		{"invalid", "rejected", same, DryRun, ActionInvalid, ""},
		{"invalid", "rejected", same, Send, ActionInvalid, "invalid:sent"},
		{"invalid", "pending", same, Check, ActionInvalid, ""},
		{"invalid", "pending", same, DryRun, ActionInvalid, ""},
		{"invalid", "pending", same, Send, ActionInvalid, "invalid:sent"},
		{"invalid", "failed", same, Check, ActionInvalid, ""},
		{"invalid", "failed", same, DryRun, ActionInvalid, ""},
		{"invalid", "failed", same, Send, ActionInvalid, "invalid:sent"},
		{"invalid", "invalid", same, Check, ActionInvalid, ""},
		{"invalid", "invalid", same, DryRun, ActionInvalid, ""},
		{"invalid", "invalid", same, Send, ActionInvalid, "invalid:sent"},
		{"invalid", "skipped", same, Check, ActionInvalid, ""},
		{"invalid", "skipped", same, DryRun, ActionInvalid, ""},
		{"invalid", "skipped", same, Send, ActionInvalid, "invalid:sent"},
		{"skip", "", same, Check, ActionSkip, ""},
		{"skip", "", same, DryRun, ActionSkip, ""},
		{"skip", "", same, Send, ActionSkip, "skipped:"},
		{"skip", "accepted", same, Check, ActionSkip, ""},
		{"skip", "accepted", same, DryRun, ActionSkip, ""},
		{"skip", "accepted", same, Send, ActionSkip, ""},
		{"skip", "changed", same, Check, ActionSkip, ""},
		{"skip", "changed", same, DryRun, ActionSkip, ""},
		{"skip", "changed", same, Send, ActionSkip, ""},
		{"skip", "rejected", same, Check, ActionSkip, ""},
		{"skip", "rejected", same, DryRun, ActionSkip, ""},
		{"skip", "rejected", same, Send, ActionSkip, "skipped:sent"},
		{"skip", "pending", same, Check, ActionSkip, ""},
		{"skip", "pending", same, DryRun, ActionSkip, ""},
		{"skip", "pending", same, Send, ActionSkip, "skipped:sent"},
		{"skip", "failed", same, Check, ActionSkip, ""},
		{"skip", "failed", same, DryRun, ActionSkip, ""},
		{"skip", "failed", same, Send, ActionSkip, "skipped:sent"},
		{"skip", "invalid", same, Check, ActionSkip, ""},
		{"skip", "invalid", same, DryRun, ActionSkip, ""},
		{"skip", "invalid", same, Send, ActionSkip, "skipped:sent"},
		{"skip", "skipped", same, Check, ActionSkip, ""},
		{"skip", "skipped", same, DryRun, ActionSkip, ""},
		{"skip", "skipped", same, Send, ActionSkip, "skipped:sent"},
	}
	seen := map[string]bool{}
	for _, row := range table {
		name := fmt.Sprintf("%s/%s/%s/%s", row.kind, stateName(row.state), row.payload, row.mode)
		if seen[name] {
			t.Errorf("row %s is listed twice", name)
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			p := testOrder(row.kind, row.payload)
			k := known{Prev: testPrev(row.state, "earlier")}
			v := decide(p, k, policy{Mode: row.mode, RunID: "this"})
			checkVerdict(t, p, v, row.want, row.write)
			final := row.state == pipeline.StateAccepted || row.state == pipeline.StateChanged
			if wantWarn := row.kind == "invalid" && final; (v.Warn != "") != wantWarn {
				t.Errorf("warning %q, want one: %t", v.Warn, wantWarn)
			}
		})
	}
	// valid: 8 states × 2 payloads × 3 modes; invalid and skip: 8 × 3.
	if want := 8*2*3 + 2*8*3; len(seen) != want {
		t.Errorf("the table has %d distinct rows, want %d", len(seen), want)
	}
}

// TestDecideKnown covers what the run and the ledger's index know besides
// the entry: a key already in flight, an entry this run wrote, and the
// index's answer for a final payload.
func TestDecideKnown(t *testing.T) {
	table := []struct {
		name   string
		kind   string
		k      known
		mode   Mode
		retry  bool
		want   Action
		write  string
		rowErr bool
	}{
		{"in flight/check", "valid", known{InFlight: firstRefs}, Check, false, ActionDuplicate, "", true},
		{"in flight/dry-run", "valid", known{InFlight: firstRefs}, DryRun, false, ActionDuplicate, "", true},
		{"in flight/send", "valid", known{InFlight: firstRefs}, Send, false, ActionDuplicate, "invalid:", true},
		{"in flight/invalid", "invalid", known{InFlight: firstRefs}, Send, false, ActionInvalid, "invalid:", false},
		{"written by this run/send", "valid", known{Prev: testPrev(pipeline.StatePending, "this")}, Send, false, ActionDuplicate, "invalid:", true},
		{"written by this run/dry-run", "valid", known{Prev: testPrev(pipeline.StatePending, "this")}, DryRun, false, ActionSend, "", false},
		{"written by this run/check", "valid", known{Prev: testPrev(pipeline.StatePending, "this")}, Check, false, ActionSend, "", false},
		{"written by this run/skip", "skip", known{Prev: testPrev(pipeline.StatePending, "this")}, Send, false, ActionSkip, "skipped:sent", false},
		{"index: accepted", "valid", known{Settled: pipeline.StateAccepted}, Send, false, ActionAlreadySent, "", false},
		{"index: accepted, retry", "valid", known{Settled: pipeline.StateAccepted}, Send, true, ActionAlreadySent, "", false},
		{"index: changed", "valid", known{Settled: pipeline.StateChanged}, Send, false, ActionChanged, "", false},
		{"index: rejected", "valid", known{Settled: pipeline.StateRejected}, Send, false, ActionAlreadySent, "", false},
		{"index: rejected, retry", "valid", known{Settled: pipeline.StateRejected, Prev: testPrev(pipeline.StateRejected, "earlier")}, Send, true, ActionSend, "", false},
		{"index: pending", "valid", known{Settled: pipeline.StatePending, Prev: testPrev(pipeline.StatePending, "earlier")}, Send, false, ActionSend, "", false},
		{"index on an invalid order", "invalid", known{Settled: pipeline.StateAccepted}, Send, false, ActionInvalid, "invalid:", false},
	}
	for _, row := range table {
		t.Run(row.name, func(t *testing.T) {
			p := testOrder(row.kind, same)
			v := decide(p, row.k, policy{Mode: row.mode, RunID: "this", RetryRejected: row.retry})
			checkVerdict(t, p, v, row.want, row.write)
			if (v.RowError != nil) != row.rowErr {
				t.Errorf("row error %v, want one: %t", v.RowError, row.rowErr)
			}
			if v.RowError != nil && (v.RowError.Field != "OrderId" || !reflect.DeepEqual(v.RowError.Refs, p.m.Conversion.Refs) ||
				!strings.Contains(v.RowError.Text, firstRefs[0].String())) {
				t.Errorf("row error %+v, want one on OrderId with the order's refs, naming where it was first (%s)", *v.RowError, firstRefs[0])
			}
			if v.Action == ActionDuplicate && v.Write != nil && !reflect.DeepEqual(v.Write.Refs, append(p.m.Conversion.Refs, firstRefs...)) {
				t.Errorf("the duplicate's entry has refs %v, want its own and the first's", v.Write.Refs)
			}
		})
	}
}

const same = "same"

// firstRefs are where an order was first taken up in a run: the lines of
// testPrev, and those of a key in flight.
var firstRefs = []pipeline.Ref{{Object: "first.csv", Line: 7}}

// testOrder is a prepared order of the given kind whose payload hash is
// "sent" (same) or "new" (changed).
func testOrder(kind, payload string) prepared {
	c := &pipeline.Conversion{Key: pipeline.Key{EventType: "1", OrderID: "O1"}, Refs: []pipeline.Ref{{Object: "a.csv", Line: 2}}}
	p := prepared{m: pipeline.Mapped{Conversion: c}, key: c.Key, lines: 1}
	switch kind {
	case "valid":
		p.valid, p.body, p.hash = true, "body", "sent"
		if payload == "changed" {
			p.hash = "new"
		}
	case "invalid":
		p.m.Problems = []pipeline.Message{{Field: "Amount", Text: "not a number"}}
	case "skip":
		p.m.Skip = "cancelled"
	}
	return p
}

// testPrev is a ledger entry in state (nil for ""), written by run, whose
// payload hash is "sent"; an entry in state changed holds the new
// payload's hash ("other") and the accepted one in SentHash.
func testPrev(state pipeline.State, run string) *pipeline.Entry {
	if state == "" {
		return nil
	}
	e := &pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O1"}, State: state, PayloadHash: "sent", RunID: run, Attempts: 2, Refs: firstRefs}
	if state == pipeline.StateChanged {
		e.PayloadHash, e.SentHash = "other", "sent"
	}
	return e
}

func stateName(s pipeline.State) string {
	if s == "" {
		return "new"
	}
	return string(s)
}

// checkVerdict checks v's action, its counts and the entry it writes
// ("state:hash", "" for none).
func checkVerdict(t *testing.T, p prepared, v verdict, want Action, write string) {
	t.Helper()
	if v.Action != want {
		t.Errorf("action %s, want %s", v.Action, want)
	}
	counts := map[Action]pipeline.Counts{
		ActionSend: {ToSend: 1}, ActionAlreadySent: {AlreadySent: 1}, ActionChanged: {Changed: 1},
		ActionInvalid: {Invalid: 1}, ActionSkip: {Skipped: 1}, ActionDuplicate: {Invalid: 1},
	}
	if v.Counts != counts[v.Action] {
		t.Errorf("counts %+v, want %+v", v.Counts, counts[v.Action])
	}
	got := ""
	if v.Write != nil {
		got = string(v.Write.State) + ":" + v.Write.PayloadHash
		key, refs := p.key, p.m.Conversion.Refs
		if v.Action == ActionDuplicate {
			// Recorded under a key of its own: the order's entry is the
			// first copy's.
			key = pipeline.Key{EventType: DuplicateEventType, OrderID: refs[0].String()}
			refs = append(refs, firstRefs...)
		}
		if v.Write.Key != key || !reflect.DeepEqual(v.Write.Refs, refs) {
			t.Errorf("writes key %s refs %v, want %s %v", v.Write.Key, v.Write.Refs, key, refs)
		}
		switch v.Write.State {
		case pipeline.StateInvalid:
			if v.Action == ActionDuplicate {
				if v.RowError == nil || !reflect.DeepEqual(v.Write.Messages, []pipeline.Message{*v.RowError}) {
					t.Errorf("duplicate's entry has messages %v, want the row error %v", v.Write.Messages, v.RowError)
				}
			} else if !reflect.DeepEqual(v.Write.Messages, p.m.Problems) {
				t.Errorf("invalid entry's messages %v, want the problems", v.Write.Messages)
			}
		case pipeline.StateSkipped:
			if len(v.Write.Messages) != 1 || v.Write.Messages[0].Text != p.m.Skip {
				t.Errorf("skipped entry's messages %v, want the filter's reason", v.Write.Messages)
			}
		case pipeline.StateChanged:
			if v.Write.SentHash != "sent" {
				t.Errorf("changed entry's SentHash %q, want the accepted payload's", v.Write.SentHash)
			}
		}
	}
	if got != write {
		t.Errorf("writes %q, want %q", got, write)
	}
}

// TestDecideEventWindow: an order dated outside the run's event window is
// counted as outside, whatever it is and whatever the ledger knows, and
// neither sent nor written; one inside it, or not dated (NOW, a value that
// does not parse), is decided as without a window.
func TestDecideEventWindow(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2026, 9, d, 0, 0, 0, 0, time.UTC) }
	window := EventWindow{Since: day(1), Until: day(30)}
	table := []struct {
		name  string
		kind  string
		state pipeline.State
		event time.Time
		dated bool
		want  Action
	}{
		{"before, new", "valid", "", day(1).Add(-time.Second), true, ActionOutside},
		{"at since", "valid", "", day(1), true, ActionSend},
		{"inside", "valid", "", day(15), true, ActionSend},
		{"at until", "valid", "", day(30), true, ActionOutside},
		{"after, accepted before", "valid", pipeline.StateAccepted, day(30).Add(time.Hour), true, ActionOutside},
		{"before, invalid", "invalid", "", day(1).AddDate(-1, 0, 0), true, ActionOutside},
		{"before, skipped by a filter", "skip", "", day(1).AddDate(0, -1, 0), true, ActionOutside},
		{"not dated", "valid", "", time.Time{}, false, ActionSend},
		{"not dated, invalid", "invalid", "", time.Time{}, false, ActionInvalid},
	}
	for _, row := range table {
		t.Run(row.name, func(t *testing.T) {
			p := testOrder(row.kind, same)
			p.event, p.dated = row.event, row.dated
			v := decide(p, known{Prev: testPrev(row.state, "earlier")}, policy{Mode: Send, RunID: "this", Window: window})
			if v.Action != row.want {
				t.Fatalf("action %s, want %s", v.Action, row.want)
			}
			if row.want == ActionOutside && (v.Write != nil || v.Counts != (pipeline.Counts{OutsideWindow: 1})) {
				t.Errorf("outside the window: write %+v, counts %+v; want no write, OutsideWindow 1", v.Write, v.Counts)
			}
		})
	}
	if (EventWindow{}).excludes(day(1)) || !(EventWindow{}).IsZero() {
		t.Error("the zero window must select every order")
	}
}
