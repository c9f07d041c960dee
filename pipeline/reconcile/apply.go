package reconcile

import (
	"time"

	"convpipe/pipeline"
)

// Asks reports whether a reconcile asks about the ledger entry e: an
// accepted conversion whose outcome is not final, or a tracked one whose
// action is still PENDING.
func Asks(e pipeline.Entry) bool {
	final := e.Reconciled != nil && e.Reconciled.Final
	return (e.State == pipeline.StateAccepted || e.State == pipeline.StateTracked) && !final
}

// FromEntry is the conversion a reconcile asks about for the ledger
// entry e.
func FromEntry(e pipeline.Entry) Conversion {
	accepted := e.AcceptedAt
	if accepted.IsZero() {
		accepted = e.Updated
	}
	return Conversion{Key: e.Key, CampaignID: e.CampaignID, EventDate: e.EventDate, AcceptedAt: accepted,
		SubmissionID: e.SubmissionID, QueuedURI: e.QueuedURI, MaybeSent: e.MaybeSent}
}

// Apply returns the entry e once r, learned at now by run runID, is
// recorded, and whether there is anything to record. A result that
// learns nothing new records nothing: an unknown outcome that can still
// be learned, a tracked conversion whose action is unchanged (or not
// listed this time). The history of an entry is thus what changed.
func Apply(e pipeline.Entry, r Result, now time.Time, runID string) (pipeline.Entry, bool) {
	rec := pipeline.Reconciliation{Verdict: string(r.Verdict), ErrorType: r.ErrorType, ErrorReason: r.ErrorReason,
		Meaning: r.Meaning, Note: r.Note, At: now.UTC(), RunID: runID, Final: r.Final}
	if a := r.Action; a != nil {
		rec.ActionID, rec.ActionState, rec.Amount, rec.Currency, rec.LockingDate = a.ID, a.State, a.Amount, a.Currency, a.LockingDate.UTC()
		if a.LockingDate.IsZero() {
			rec.LockingDate = time.Time{}
		}
	}
	prev := e.Reconciled
	switch r.Verdict {
	case Unknown:
		switch {
		case !r.Final:
			return e, false
		case e.State == pipeline.StateTracked && prev != nil:
			// Tracked, and nothing more can be learned (its action was
			// never listed, its submission is gone): it stays tracked,
			// and is not asked about again.
			kept := *prev
			kept.Note, kept.At, kept.RunID, kept.Final = r.Note, rec.At, runID, true
			rec = kept
		case e.State != pipeline.StateAccepted:
			return e, false
		}
	case Tracked:
		if prev != nil && prev.Verdict == string(Tracked) && (r.Action == nil || prev.Same(rec)) {
			return e, false
		}
		e.State = pipeline.StateTracked
	case NotTracked:
		e.State = pipeline.StateNotTracked
	}
	e.Reconciled, e.RunID = &rec, runID
	return e, true
}
