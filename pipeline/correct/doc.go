// Package correct keeps impact in step with the shop once an order it
// accepted changes: a return, a cancelled line, a corrected price, an
// order cancelled whole. Impact takes no second conversion for an order
// (the OrderId is taken); it takes a modification of the action (PUT
// /Actions) or its reversal (DELETE /Actions), until the action locks.
//
// The decisions are pure functions: Detect compares what impact accepted
// (the ledger's Lines of the accepted payload) with the order now and
// returns the correction to make; Reverse makes the reversal of an order
// that a filter marked as a reversal now leaves out; Guard refuses a run
// whose corrections would touch more than a share of its accepted orders
// (a mapping change, not the shops); limits says, before a request is
// spent, whether impact can still take a correction. Recorder (the
// engine's hooks) and Applier (the requests) are the thin appliers
// around them, with the same ledger discipline as sending: a correction
// is written pending before its request leaves and its outcome after, an
// ambiguous one settled against GET /Actions before it is sent again.
package correct
