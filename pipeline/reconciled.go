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

// ReconcileSummary is what a reconcile found and cost.
type ReconcileSummary struct {
	// Considered counts the accepted conversions whose outcome was not
	// final before: those the reconcile asked about.
	Considered int64 `json:"considered"`
	// Tracked, NotTracked and Unknown count what it found of them;
	// Expired those of Unknown whose outcome can no longer be learned
	// (their submission record is older than impact keeps them).
	Tracked    int64 `json:"tracked"`
	NotTracked int64 `json:"not_tracked"`
	Unknown    int64 `json:"unknown"`
	Expired    int64 `json:"expired,omitempty"`
	// Reasons counts the conversions found not tracked by ErrorReason.
	Reasons map[string]int64 `json:"reasons,omitempty"`
	// Found lists the first conversions found not tracked (at most
	// MaxFound), each with its reason in plain words.
	Found []NotTrackedOrder `json:"found,omitempty"`
	// Requests counts its requests: ListRequests listing pages and
	// Lookups submission lookups. Budget is the most it could make (0:
	// no bound but the quota and the deadline).
	Requests     int64 `json:"requests"`
	ListRequests int64 `json:"list_requests"`
	Lookups      int64 `json:"lookups"`
	Budget       int64 `json:"budget,omitempty"`
	// NotRun, when set, says why no reconcile was made.
	NotRun string `json:"not_run,omitempty"`
	// Stopped, when set, is the error that stopped it early.
	Stopped string `json:"stopped,omitempty"`
}

// OpenProblem is what the ledger holds open in one state that needs a
// human, after a run: how many entries, and when the oldest was first
// written.
type OpenProblem struct {
	State  State     `json:"state"`
	Count  int64     `json:"count"`
	Oldest time.Time `json:"oldest"`
}

// MaxFound is how many conversions found not tracked a ReconcileSummary
// lists; the ledger has them all (state not_tracked).
const MaxFound = 50

// NotTrackedOrder is a conversion a reconcile found not tracked.
type NotTrackedOrder struct {
	Key         Key    `json:"key"`
	ErrorType   string `json:"error_type,omitempty"`
	ErrorReason string `json:"error_reason,omitempty"`
	Meaning     string `json:"meaning,omitempty"`
}
