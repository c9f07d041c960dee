package engine_test

import (
	"strings"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/pipeline"
)

// TestRunRecordsWhatReconcileNeeds: an accepted order's entry holds the
// CampaignId and EventDate sent and when it was accepted; a tracked or
// not-tracked order is never sent again, is reported changed when its
// payload changes, and is back in its reconciled state when the payload
// is back to what was sent.
func TestRunRecordsWhatReconcileNeeds(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 3))
	before := time.Now().UTC()
	if _, err := h.run(runOpts{}); err != nil {
		t.Fatal(err)
	}
	after := time.Now().UTC()
	es := h.entries()
	eventDate, err := time.Parse(time.RFC3339, testDate)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids(1, 3) {
		e := es[id]
		if e.State != pipeline.StateAccepted || e.CampaignID != "1000" || !e.EventDate.Equal(eventDate) ||
			e.AcceptedAt.Before(before) || e.AcceptedAt.After(after) || e.Reconciled != nil {
			t.Fatalf("%s: %+v", id, e)
		}
	}
	l, err := ledger.Open(t.Context(), h.ledger, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr, nt := es["A-1"], es["A-2"]
	tr.State, tr.Reconciled = pipeline.StateTracked, &pipeline.Reconciliation{Verdict: "tracked", ActionID: "x", At: after}
	nt.State, nt.Reconciled = pipeline.StateNotTracked, &pipeline.Reconciliation{Verdict: "not_tracked", ErrorReason: "CONTRACT_NOT_FOUND", At: after, Final: true}
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{tr, nt}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	requests := len(h.sim.Requests())
	s, err := h.run(runOpts{all: true})
	if err != nil || s.Total.AlreadySent != 3 || len(h.sim.Requests()) != requests {
		t.Fatalf("rerun: %+v, %v, %d requests", s.Total, err, len(h.sim.Requests())-requests)
	}
	changed := strings.Replace(orders(1, 3), "A-1,"+testDate+",clk1,SKU-1,1,11.50", "A-1,"+testDate+",clk1,SKU-1,1,9.99", 1)
	h.write("a.csv", changed)
	if s, err := h.run(runOpts{}); err != nil || s.Total.Changed != 1 || s.Total.AlreadySent != 2 {
		t.Fatalf("changed: %+v, %v", s.Total, err)
	}
	h.write("a.csv", orders(1, 3))
	if _, err := h.run(runOpts{}); err != nil {
		t.Fatal(err)
	}
	es = h.entries()
	if es["A-1"].State != pipeline.StateTracked || es["A-1"].Reconciled == nil || es["A-2"].State != pipeline.StateNotTracked || es["A-3"].State != pipeline.StateAccepted {
		t.Errorf("after the payload came back: %s %s %s", es["A-1"].State, es["A-2"].State, es["A-3"].State)
	}
	if len(h.sim.Requests()) != requests {
		t.Errorf("%d requests after the first run", len(h.sim.Requests())-requests)
	}
}
