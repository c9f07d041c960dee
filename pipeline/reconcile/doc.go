// Package reconcile learns what impact made of accepted conversions, at a
// fraction of a request each. impact answers QUEUED before it processes a
// conversion; processing then creates an action, or completes the
// submission with an error (CONTRACT_NOT_FOUND, CONV_DUPLICATE, ...).
//
// The decisions are pure functions: PlanListing chooses the Actions
// listings (per campaign, event-date windows of at most 45 days) that
// confirm the tracked conversions in bulk, up to 20,000 per request;
// PlanLookups chooses the few submissions to look up one by one (only
// conversions settled and not found in a listing, whose record impact
// still keeps); Decide turns the actions listed and the submissions
// looked up into one Result per conversion: tracked, not tracked (with
// impact's ErrorType and ErrorReason and their meaning in plain words,
// see Meaning), or still unknown and why. Run is the thin applier that
// makes the requests through a pipeline.OutcomeReader within a request
// budget.
//
// It imports only pipeline.
package reconcile
