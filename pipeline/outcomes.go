package pipeline

import (
	"context"
	"errors"
	"time"
)

// ErrNarrow marks a listing the API refused because its result needs more
// pages than a query may have: the same query over a narrower range may
// succeed.
var ErrNarrow = errors.New("the result needs more pages than the API allows: narrow the range")

// ActionState is the state impact gives an action.
type ActionState string

// The states of an action.
const (
	// ActionPending: awaiting its locking date (also after a
	// modification); it can still change.
	ActionPending ActionState = "PENDING"
	// ActionApproved: locked; it will pay and no longer changes.
	ActionApproved ActionState = "APPROVED"
	// ActionReversed: reversed; it will not pay.
	ActionReversed ActionState = "REVERSED"
)

// Action is an action impact created for a tracked conversion, as
// GET /Actions lists it.
type Action struct {
	// ID is impact's ActionId.
	ID string `json:"id"`
	// CampaignID is the campaign (program) it belongs to.
	CampaignID string `json:"campaign_id"`
	// ActionTrackerID and EventCode are its event type, by id and code;
	// either may be empty.
	ActionTrackerID string `json:"action_tracker_id,omitempty"`
	EventCode       string `json:"event_code,omitempty"`
	// OrderID is the conversion's OrderId (impact's Oid).
	OrderID string      `json:"order_id"`
	State   ActionState `json:"state"`
	// Amount is the sale amount as impact writes it; Currency its code.
	Amount   string `json:"amount,omitempty"`
	Currency string `json:"currency,omitempty"`
	// EventDate is the event date impact recorded (which impact may have
	// moved to the submission time for a late conversion); CreationDate
	// when the action was made; LockingDate when it locks.
	EventDate    time.Time `json:"event_date"`
	CreationDate time.Time `json:"creation_date"`
	LockingDate  time.Time `json:"locking_date"`
}

// Matches reports whether the action is the one of the conversion key k:
// the same OrderId and the event type as an id or a code.
func (a Action) Matches(k Key) bool {
	return a.OrderID == k.OrderID && k.EventType != "" && (a.ActionTrackerID == k.EventType || a.EventCode == k.EventType)
}

// ActionQuery selects the actions of one campaign whose event date lies
// from Start to End, both included. impact refuses a range over 45 days.
type ActionQuery struct {
	CampaignID string
	Start, End time.Time
}

// ActionPage is one page of a listing of actions.
type ActionPage struct {
	Actions []Action
	// Page is the page's number, from 1, of Pages; Total counts the
	// actions of every page.
	Page, Pages, Total int
}

// Submission is what impact says of one conversion's submission record.
type Submission struct {
	// ID is the submission's id (impact's BatchId).
	ID string `json:"id"`
	// Found is false when impact answered 404: it does not know the id,
	// or the record is older than it keeps records (90 days).
	Found bool `json:"found"`
	// Status is Queued, In Progress or Complete.
	Status string `json:"status,omitempty"`
	// CompletionDate is set once Complete.
	CompletionDate time.Time `json:"completion_date,omitzero"`
	// ErrorType and ErrorReason are impact's processing error, empty when
	// there is none; "Complete" can carry one.
	ErrorType   string `json:"error_type,omitempty"`
	ErrorReason string `json:"error_reason,omitempty"`
}

// SubmissionComplete is the Status of a processed submission.
const SubmissionComplete = "Complete"

// OutcomeReader learns what impact made of accepted conversions: it lists
// actions and looks up submissions, each call one request (retried on
// 429 and 5xx) paced with sending, against the same quota. It is safe for
// concurrent use. An error means the request could not be answered: a
// refused query (a range over 45 days, a result over 10 pages), bad
// credentials, the quota or ctx ending; a submission impact does not
// know is no error but Found false.
type OutcomeReader interface {
	// ListActions returns one page (from 1) of the actions q selects.
	ListActions(ctx context.Context, q ActionQuery, page int) (ActionPage, error)
	// LookupSubmission returns the record of a submission, named by its
	// QueuedUri or its id.
	LookupSubmission(ctx context.Context, ref string) (Submission, error)
}
