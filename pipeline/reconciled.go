package pipeline

import "time"

// The states reconciling gives an accepted conversion (see
// pipeline/reconcile). An accepted conversion whose outcome is not known
// yet stays StateAccepted.
const (
	// StateTracked: impact made an action for the conversion.
	StateTracked State = "tracked"
	// StateNotTracked: impact processed the submission and made no
	// action (Reconciliation says why): it needs a human.
	StateNotTracked State = "not_tracked"
)

// Sent reports whether the state is one of a conversion the API accepted:
// accepted, tracked or not tracked. Such a conversion is never sent again
// as a new one.
func (s State) Sent() bool {
	return s == StateAccepted || s == StateTracked || s == StateNotTracked
}

// Reconciliation is what the last reconcile learned of an accepted
// conversion: impact's action (tracked), or why there is none (not
// tracked), or why the outcome is not known (Note).
type Reconciliation struct {
	// Verdict is "tracked", "not_tracked" or "unknown".
	Verdict string `json:"verdict"`
	// ActionID, ActionState, Amount, Currency and LockingDate are the
	// action's, when it was listed.
	ActionID    string      `json:"action_id,omitempty"`
	ActionState ActionState `json:"action_state,omitempty"`
	Amount      string      `json:"amount,omitempty"`
	Currency    string      `json:"currency,omitempty"`
	LockingDate time.Time   `json:"locking_date,omitzero"`
	// ErrorType, ErrorReason and Meaning say why it is not tracked.
	ErrorType   string `json:"error_type,omitempty"`
	ErrorReason string `json:"error_reason,omitempty"`
	Meaning     string `json:"meaning,omitempty"`
	// Note explains anything else.
	Note string `json:"note,omitempty"`
	// At is when it was learned; RunID the run that learned it (in a
	// history).
	At    time.Time `json:"reconciled_at"`
	RunID string    `json:"run_id,omitempty"`
	// Final is set when nothing about it can change any more.
	Final bool `json:"final,omitempty"`
}

// Same reports whether r and o say the same of a conversion (times and
// runs aside): a reconcile that learns nothing new records nothing in the
// history.
func (r Reconciliation) Same(o Reconciliation) bool {
	if !r.LockingDate.Equal(o.LockingDate) {
		return false
	}
	r.At, r.RunID, r.LockingDate = o.At, o.RunID, o.LockingDate
	return r == o
}
