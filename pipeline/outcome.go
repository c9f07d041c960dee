package pipeline

import "time"

// State is where a conversion stands in the ledger.
type State string

// The states of a conversion. Pending is written before a conversion is
// sent; every other state is written after its outcome is known.
const (
	// StatePending: about to be sent, or sent with no answer recorded yet
	// (a crash in between). The next run sends it again.
	StatePending State = "pending"
	// StateAccepted: the API answered QUEUED (or reported the OrderId as a
	// duplicate of an earlier attempt of ours). Never sent again.
	StateAccepted State = "accepted"
	// StateRejected: the API refused it (400 and the like). Sent again only
	// when its payload changes or with --retry-rejected.
	StateRejected State = "rejected"
	// StateFailed: no final answer (retries exhausted, quota, network,
	// stopped). Sent again by the next run.
	StateFailed State = "failed"
	// StateInvalid: failed convpipe's own checks; never sent.
	StateInvalid State = "invalid"
	// StateSkipped: left out by a filter of the mapping, with its reason.
	StateSkipped State = "skipped"
	// StateChanged: accepted earlier, and its payload has changed since; it
	// needs a correction, which a new conversion cannot make.
	StateChanged State = "changed"
)

// Final reports whether the state needs no further sending as it stands.
func (s State) Final() bool {
	switch s {
	case StateAccepted, StateRejected, StateInvalid, StateSkipped, StateChanged, StateTracked, StateNotTracked:
		return true
	}
	return false
}

// Message is one message about a conversion: from the API (a field error),
// from validation, or from the transport.
type Message struct {
	// Field is the API field or source column concerned, if any.
	Field string `json:"field,omitempty"`
	// Value is the offending value, if any. Never a plain e-mail address:
	// mappers and validators redact those before they get here.
	Value string `json:"value,omitempty"`
	// Text says what is wrong.
	Text string `json:"text"`
	// Refs are the source rows concerned, if known.
	Refs []Ref `json:"refs,omitempty"`
}

// Outcome is what happened to one conversion in one run. Outcomes are
// data: a rejected or failed conversion is an Outcome, not an error.
type Outcome struct {
	// Key is the conversion's identity.
	Key Key `json:"key"`
	// State is the resulting state.
	State State `json:"state"`
	// HTTPStatus is the status of the last answer, 0 when none came.
	HTTPStatus int `json:"http_status,omitempty"`
	// Attempts counts the requests made for this conversion in this run.
	Attempts int `json:"attempts,omitempty"`
	// Messages holds the API's field messages, validation problems or
	// the last transport error.
	Messages []Message `json:"messages,omitempty"`
	// SubmissionID is the API's batch id, from QueuedUri.
	SubmissionID string `json:"submission_id,omitempty"`
	// QueuedURI is the API's QueuedUri.
	QueuedURI string `json:"queued_uri,omitempty"`
	// MaybeSent marks a conversion for which some attempt may have
	// reached the server without its answer reaching us.
	MaybeSent bool `json:"maybe_sent,omitempty"`
	// Duration is the time spent from the first attempt to the last answer.
	Duration time.Duration `json:"duration,omitempty"`
}
