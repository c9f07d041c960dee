package pipeline

import (
	"context"
	"time"
)

// Lines is what a conversion told impact about money, as the ledger keeps
// it for each payload it sends: the order-level amount and each item's
// SKU, quantity and price or subtotal, with what identifies the action
// impact makes of it. It never holds a customer's data.
type Lines struct {
	// PayloadHash is the PayloadHash of the body these lines are of.
	PayloadHash string `json:"payload_hash"`
	// CampaignID, EventDate and Currency are the conversion's.
	CampaignID string `json:"campaign_id,omitempty"`
	EventDate  string `json:"event_date,omitempty"`
	Currency   string `json:"currency,omitempty"`
	// Amount is OrderSubTotalPostDiscount, sent when there are no items;
	// OrderDiscount the order-level discount.
	Amount        string `json:"amount,omitempty"`
	OrderDiscount string `json:"order_discount,omitempty"`
	// Items are the order's lines, in the order they were sent.
	Items []LineItem `json:"items,omitempty"`
}

// LineItem is one item of Lines, as sent: ItemSku, ItemQuantity, and
// ItemPrice (unit price) or ItemSubTotal (line total), less ItemDiscount.
type LineItem struct {
	Sku      string `json:"sku"`
	Quantity string `json:"quantity,omitempty"`
	Price    string `json:"price,omitempty"`
	SubTotal string `json:"subtotal,omitempty"`
	Discount string `json:"discount,omitempty"`
}

// LinesOf returns the lines of c, whose body has the payload hash hash.
func LinesOf(c *Conversion, hash string) Lines {
	l := Lines{PayloadHash: hash}
	l.CampaignID, _ = c.Get("CampaignId")
	if l.CampaignID == "" {
		l.CampaignID, _ = c.Get("ProgramId")
	}
	l.EventDate, _ = c.Get("EventDate")
	l.Currency, _ = c.Get("CurrencyCode")
	l.Amount, _ = c.Get("OrderSubTotalPostDiscount")
	l.OrderDiscount, _ = c.Get("OrderDiscount")
	for _, it := range c.Items {
		var li LineItem
		li.Sku, _ = it.Get("ItemSku")
		li.Quantity, _ = it.Get("ItemQuantity")
		li.Price, _ = it.Get("ItemPrice")
		li.SubTotal, _ = it.Get("ItemSubTotal")
		li.Discount, _ = it.Get("ItemDiscount")
		l.Items = append(l.Items, li)
	}
	return l
}

// CorrectionKind is what a correction changes.
type CorrectionKind string

// The kinds of correction.
const (
	// CorrectItems sets items' quantities (PUT /Actions, Sku and
	// Quantity): a partial return, a removed item.
	CorrectItems CorrectionKind = "items"
	// CorrectAmount sets the action's amount (PUT /Actions, Amount): a
	// changed price, an order-level amount changed.
	CorrectAmount CorrectionKind = "amount"
	// CorrectReversal reverses the action (DELETE /Actions with a
	// DispositionCode): a cancelled, returned, test or fraudulent order.
	CorrectReversal CorrectionKind = "reversal"
)

// CorrectionState is where a correction stands.
type CorrectionState string

// The states of a correction.
const (
	// CorrectionPlanned: detected, not sent yet.
	CorrectionPlanned CorrectionState = "planned"
	// CorrectionPending: written before its request; the request may have
	// reached impact. Settled (GET /Actions) before it is sent again.
	CorrectionPending CorrectionState = "pending"
	// CorrectionApplied: impact took it (QUEUED), or the action shows it.
	CorrectionApplied CorrectionState = "applied"
	// CorrectionRejected: impact refused it for a reason other than its
	// limits (an unknown action, a bad field).
	CorrectionRejected CorrectionState = "rejected"
	// CorrectionFailed: no final answer (retries, quota, network); sent
	// again by the next apply once settled.
	CorrectionFailed CorrectionState = "failed"
	// CorrectionTooLate: the action is locked, reversed, or took its
	// 1,000 modifications: the amount paid in error must be settled by
	// hand.
	CorrectionTooLate CorrectionState = "too_late"
	// CorrectionRefused: convpipe will not send it (a negative amount);
	// Messages say why.
	CorrectionRefused CorrectionState = "refused"
	// CorrectionManual: the ledger does not know what impact accepted (an
	// entry from before convpipe kept lines): correct it by hand with
	// what Messages say.
	CorrectionManual CorrectionState = "manual"
	// CorrectionSuperseded: replaced, before it was sent, by a later
	// change of the same order.
	CorrectionSuperseded CorrectionState = "superseded"
)

// Final reports whether nothing more is to be done for the correction
// by convpipe.
func (s CorrectionState) Final() bool {
	switch s {
	case CorrectionPlanned, CorrectionPending, CorrectionFailed:
		return false
	}
	return true
}

// Change is one difference between what impact accepted and the order
// now, in words a person reads: "quantity of SKU-1: 2 → 1".
type Change struct {
	Sku  string `json:"sku,omitempty"`
	What string `json:"what"`
	From string `json:"from"`
	To   string `json:"to"`
}

// Correction is one change to an accepted action: what it changes, the
// request that makes it, and where it stands.
type Correction struct {
	// Key is the order's; Seq numbers its corrections from 1.
	Key Key `json:"key"`
	Seq int `json:"seq"`
	// Kind and State say what it does and where it stands.
	Kind  CorrectionKind  `json:"kind"`
	State CorrectionState `json:"state"`
	// FromHash is the payload impact has (accepted, or corrected to);
	// ToHash the payload the correction brings it to ("" for a reversal).
	FromHash string `json:"from_hash,omitempty"`
	ToHash   string `json:"to_hash,omitempty"`
	// Before and After are the action's amounts before and after it
	// (After "0.00" for a reversal); Currency theirs.
	Before   string `json:"before,omitempty"`
	After    string `json:"after,omitempty"`
	Currency string `json:"currency,omitempty"`
	// Changes lists what changed, for people.
	Changes []Change `json:"changes,omitempty"`
	// Reason is the Reason (PUT) or DispositionCode (DELETE) sent.
	Reason string `json:"reason,omitempty"`
	// Method (PUT or DELETE) and Form (the form body) are the request.
	Method string `json:"method,omitempty"`
	Form   string `json:"form,omitempty"`
	// CampaignID and EventDate find the action in GET /Actions.
	CampaignID string `json:"campaign_id,omitempty"`
	EventDate  string `json:"event_date,omitempty"`
	// PaidInError is the amount impact pays on that should not be paid
	// (Before − After) when a correction is too late.
	PaidInError string `json:"paid_in_error,omitempty"`
	// The sending: requests made over all runs, the last status, whether
	// a request may have reached impact unanswered, the QueuedUri's id.
	Attempts     int    `json:"attempts,omitempty"`
	HTTPStatus   int    `json:"http_status,omitempty"`
	MaybeSent    bool   `json:"maybe_sent,omitempty"`
	SubmissionID string `json:"submission_id,omitempty"`
	// Messages are the API's or convpipe's last messages.
	Messages []Message `json:"messages,omitempty"`
	// RunID is the run that detected it (DetectedBy) and the one that last
	// wrote it.
	DetectedBy string    `json:"detected_by,omitempty"`
	RunID      string    `json:"run_id,omitempty"`
	Created    time.Time `json:"created"`
	Updated    time.Time `json:"updated"`
}

// CorrectionLedger is a ledger that keeps what impact accepted (Lines) and
// the corrections made since. Every write is durable when it returns; it
// is safe for concurrent use.
type CorrectionLedger interface {
	// PutLines records the lines of key's payload l.PayloadHash; a
	// second call with the same hash changes nothing.
	PutLines(ctx context.Context, key Key, l Lines) error
	// Lines returns the lines of key's payload hash, false when unknown.
	Lines(ctx context.Context, key Key, hash string) (Lines, bool, error)
	// PutCorrection inserts or replaces the correction (c.Key, c.Seq),
	// and, when e is not nil, the entry e in the same transaction.
	PutCorrection(ctx context.Context, c Correction, e *Entry) error
	// Corrections calls fn for each correction f selects, by key then
	// Seq, until fn returns an error, which it returns.
	Corrections(ctx context.Context, f CorrectionFilter, fn func(Correction) error) error
}

// CorrectionFilter selects corrections; zero fields select everything.
type CorrectionFilter struct {
	OrderID string
	State   CorrectionState
}

// Modifier sends corrections to the API: PUT or DELETE /Actions with the
// correction's form, through the same pacer and quota as conversions. It
// is safe for concurrent use.
type Modifier interface {
	// Modify makes c's request (c.Method, c.Form), with attempts until an
	// answer is final, calling leaving just before the first request
	// leaves (after any wait for the quota); when leaving fails, no
	// request is made. Every answer is a ModifyOutcome with a nil error;
	// an error means the run must stop (ErrFatal, ErrOutOfTime: no
	// request was made then).
	Modify(ctx context.Context, c *Correction, leaving func() error) (ModifyOutcome, error)
}

// ModifyOutcome is what one correction's requests got.
type ModifyOutcome struct {
	// State is Applied (QUEUED), TooLate (locked, reversed, or the
	// modifications spent), Rejected (refused otherwise) or Failed (no
	// final answer).
	State      CorrectionState
	HTTPStatus int
	Attempts   int
	// MaybeSent is set when a request may have reached impact without
	// its answer reaching us.
	MaybeSent    bool
	SubmissionID string
	Messages     []Message
}
