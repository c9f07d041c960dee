package reconcile

import (
	"testing"
	"time"

	"convpipe/pipeline"
)

func TestApply(t *testing.T) {
	at := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	accepted := pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: "O"}, State: pipeline.StateAccepted, RunID: "r0"}
	pending := &pipeline.Action{ID: "A1", State: pipeline.ActionPending, Amount: "10.00", Currency: "EUR", LockingDate: at.AddDate(0, 0, 20)}
	approved := *pending
	approved.State = pipeline.ActionApproved
	trackedPending := accepted
	trackedPending.State = pipeline.StateTracked
	trackedPending.Reconciled = &pipeline.Reconciliation{Verdict: "tracked", ActionID: "A1", ActionState: pipeline.ActionPending, Amount: "10.00",
		Currency: "EUR", LockingDate: at.AddDate(0, 0, 20), At: at.AddDate(0, 0, -1), RunID: "r1"}
	tests := []struct {
		name  string
		e     pipeline.Entry
		r     Result
		write bool
		state pipeline.State
	}{
		{"tracked", accepted, Result{Verdict: Tracked, Action: pending}, true, pipeline.StateTracked},
		{"tracked from the submission only", accepted, Result{Verdict: Tracked, Note: "n"}, true, pipeline.StateTracked},
		{"not tracked", accepted, Result{Verdict: NotTracked, ErrorReason: "CONTRACT_NOT_FOUND", Final: true}, true, pipeline.StateNotTracked},
		{"unknown, still learnable", accepted, Result{Verdict: Unknown, Note: "not settled"}, false, pipeline.StateAccepted},
		{"unknown for good", accepted, Result{Verdict: Unknown, Note: "expired", Final: true}, true, pipeline.StateAccepted},
		{"the same pending action again", trackedPending, Result{Verdict: Tracked, Action: pending}, false, pipeline.StateTracked},
		{"tracked, its action not listed this time", trackedPending, Result{Verdict: Tracked, Note: "n"}, false, pipeline.StateTracked},
		{"the action approved", trackedPending, Result{Verdict: Tracked, Action: &approved, Final: true}, true, pipeline.StateTracked},
		{"a tracked one not reached", trackedPending, Result{Verdict: Unknown, Note: "budget"}, false, pipeline.StateTracked},
		{"a tracked one no longer learnable", trackedPending, Result{Verdict: Unknown, Note: "expired", Final: true}, true, pipeline.StateTracked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, write := Apply(tt.e, tt.r, at, "r2")
			if write != tt.write || got.State != tt.state {
				t.Fatalf("Apply = %s, write %v; want %s, write %v", got.State, write, tt.state, tt.write)
			}
			if !write {
				if got.RunID != tt.e.RunID || got.Reconciled != tt.e.Reconciled {
					t.Errorf("an entry not written changed: %+v", got)
				}
				return
			}
			rc := got.Reconciled
			if tt.e.State == pipeline.StateTracked && tt.r.Verdict == Unknown {
				// What was known stays, final now.
				if rc == nil || rc.Verdict != "tracked" || rc.ActionID != "A1" || !rc.Final || rc.Note != tt.r.Note || rc.RunID != "r2" {
					t.Fatalf("reconciliation %+v", rc)
				}
				return
			}
			if rc == nil || rc.Verdict != string(tt.r.Verdict) || !rc.At.Equal(at) || rc.RunID != "r2" || got.RunID != "r2" || rc.Final != tt.r.Final ||
				rc.ErrorReason != tt.r.ErrorReason || rc.Note != tt.r.Note {
				t.Fatalf("reconciliation %+v", rc)
			}
			if a := tt.r.Action; a != nil && (rc.ActionID != a.ID || rc.ActionState != a.State || rc.Amount != a.Amount || !rc.LockingDate.Equal(a.LockingDate)) {
				t.Errorf("action %+v, want %+v", rc, a)
			}
		})
	}
}

func TestAsks(t *testing.T) {
	final := &pipeline.Reconciliation{Final: true}
	open := &pipeline.Reconciliation{}
	for _, tt := range []struct {
		state pipeline.State
		r     *pipeline.Reconciliation
		want  bool
	}{
		{pipeline.StateAccepted, nil, true}, {pipeline.StateAccepted, final, false}, {pipeline.StateTracked, open, true},
		{pipeline.StateTracked, final, false}, {pipeline.StateNotTracked, final, false}, {pipeline.StateRejected, nil, false},
		{pipeline.StateChanged, nil, false},
	} {
		if got := Asks(pipeline.Entry{State: tt.state, Reconciled: tt.r}); got != tt.want {
			t.Errorf("Asks(%s, %+v) = %v", tt.state, tt.r, got)
		}
	}
}
