package engine

import (
	"fmt"
	"slices"

	"convpipe/pipeline"
)

// The decision of what to do with one order is a pure function, decide:
// the prepared order, what the ledger and the run know of its key and the
// run's policy in; a verdict out. The applier (order, in apply.go) does
// the looking up before it and the writing, counting and queueing after.

// known is what the ledger and the run know of an order's key.
type known struct {
	// Settled is the state the ledger's index has for the key with this
	// payload ("" when it does not know or has no index).
	Settled pipeline.State
	// Prev is the ledger's entry for the key, if there is one. It is not
	// looked up when Settled answers (see answered).
	Prev *pipeline.Entry
	// InFlight, when set, holds the refs of this run's copy of the key
	// that is queued or being sent.
	InFlight []pipeline.Ref
}

// policy is what the run's options say about deciding.
type policy struct {
	Mode          Mode
	RunID         string
	RetryRejected bool
	Window        EventWindow
}

// verdict is what decide makes of one order.
type verdict struct {
	Action Action
	// Counts are the order's counts, besides Orders and SkippedRows,
	// which tally adds.
	Counts pipeline.Counts
	// Write, if set, is to be written to the ledger before the order is
	// queued or let go. It is never set in a run that does not record.
	Write *pipeline.Entry
	// Warn and WarnArgs, if set, are a warning for the log.
	Warn     string
	WarnArgs []any
	// RowError, if set, is reported like a malformed row.
	RowError *pipeline.Message
}

// answered reports whether the ledger's index answers for an order on its
// own: the order is final with this payload and needs nothing more.
func answered(settled pipeline.State, pol policy) bool {
	switch settled {
	case pipeline.StateAccepted, pipeline.StateChanged, pipeline.StateTracked, pipeline.StateNotTracked:
		return true
	case pipeline.StateRejected:
		return !pol.RetryRejected
	}
	return false
}

// decide decides what to do with one prepared order.
func decide(p prepared, k known, pol policy) verdict {
	if p.dated && pol.Window.excludes(p.event) {
		return verdict{Action: ActionOutside, Counts: pipeline.Counts{OutsideWindow: 1}}
	}
	if p.valid && answered(k.Settled, pol) {
		if k.Settled == pipeline.StateChanged {
			return verdict{Action: ActionChanged, Counts: pipeline.Counts{Changed: 1}}
		}
		return verdict{Action: ActionAlreadySent, Counts: pipeline.Counts{AlreadySent: 1}}
	}
	m, prev := p.m, k.Prev
	records := pol.Mode == Send
	// Accepted (or changed since): the ledger's record of that is never
	// overwritten by a later invalid or skipped copy.
	final := prev != nil && (prev.State.Sent() || prev.State == pipeline.StateChanged)
	var v verdict
	var e *pipeline.Entry
	switch {
	case len(m.Problems) > 0:
		v = verdict{Action: ActionInvalid, Counts: pipeline.Counts{Invalid: 1}}
		if final {
			v.Warn, v.WarnArgs = "order accepted before is now invalid", []any{"key", p.key.String(), "problems", len(m.Problems)}
			return v
		}
		e = base(p, prev)
		e.State, e.Messages = pipeline.StateInvalid, m.Problems
	case m.Skip != "":
		v = verdict{Action: ActionSkip, Counts: pipeline.Counts{Skipped: 1}}
		if final {
			if m.Reversal != "" {
				// Accepted, now cancelled (returned, a test, a fraud):
				// a reversal to make (pipeline/correct), not a skip.
				v.Counts = pipeline.Counts{Reversals: 1}
			}
			return v
		}
		e = base(p, prev)
		e.State, e.Messages = pipeline.StateSkipped, []pipeline.Message{{Text: m.Skip}}
	case k.InFlight != nil || (records && prev != nil && prev.RunID == pol.RunID):
		v, e = duplicate(p, k)
	default:
		v, e = decideValid(p, prev, pol)
	}
	if records {
		v.Write = e
	}
	return v
}

// duplicate is the verdict on an order whose key this run took up before
// (its lines are in two objects, or apart in a sorted one): this copy is
// not sent, and it is recorded as invalid under a key of its own, naming
// both places, so that no line is dropped without a trace and the run's
// exit code says a human is needed.
func duplicate(p prepared, k known) (verdict, *pipeline.Entry) {
	refs := p.m.Conversion.Refs
	first := k.InFlight
	if first == nil && k.Prev != nil {
		first = k.Prev.Refs
	}
	text := "the same order key occurs twice in this run; this copy is not sent"
	if len(first) > 0 {
		text = fmt.Sprintf("order %s was taken up from %s earlier in this run; these lines are not sent: an order's lines must all be in one object (correct the order in impact if they belong to it)",
			p.key.OrderID, refsString(first))
	}
	msg := pipeline.Message{Field: "OrderId", Text: text, Refs: refs}
	v := verdict{Action: ActionDuplicate, Counts: pipeline.Counts{Invalid: 1},
		Warn: "duplicate order key", WarnArgs: []any{"key", p.key.String(), "refs", refsString(refs), "first", refsString(first)},
		RowError: &msg}
	e := &pipeline.Entry{Key: pipeline.Key{EventType: DuplicateEventType, OrderID: refs[0].String()}, State: pipeline.StateInvalid,
		Messages: []pipeline.Message{msg}, Refs: append(slices.Clip(refs), first...)}
	return v, e
}

// DuplicateEventType is the event type of the ledger entries that record
// a duplicate order's lines (see ActionDuplicate); their OrderID is where
// the duplicate's lines begin.
const DuplicateEventType = "!duplicate"

// decideValid decides for a valid order that is neither final in the
// ledger's index nor a duplicate, and says what to write, if anything.
func decideValid(p prepared, prev *pipeline.Entry, pol policy) (verdict, *pipeline.Entry) {
	switch decideSend(prev, p.hash, pol.RetryRejected) {
	case ActionAlreadySent:
		v := verdict{Action: ActionAlreadySent, Counts: pipeline.Counts{AlreadySent: 1}}
		if prev.State != pipeline.StateChanged {
			return v, nil
		}
		// The payload is back to what was accepted.
		e := base(p, prev)
		e.State, e.PayloadHash = reconciledState(prev), p.hash
		e.Source = pipeline.SourceFor(p.source, p.hash)
		return v, e
	case ActionChanged:
		v := verdict{Action: ActionChanged, Counts: pipeline.Counts{Changed: 1}}
		if prev.State == pipeline.StateChanged && prev.PayloadHash == p.hash {
			return v, nil // recorded as changed with this payload already
		}
		e := base(p, prev)
		if e.SentHash == "" {
			e.SentHash = prev.PayloadHash
		}
		e.State, e.PayloadHash = pipeline.StateChanged, p.hash
		e.Source = pipeline.SourceFor(p.source, p.hash)
		e.Messages = []pipeline.Message{{Text: "accepted earlier with a different payload; needs a correction (PUT/DELETE Actions), not a new conversion"}}
		return v, e
	}
	return verdict{Action: ActionSend, Counts: pipeline.Counts{ToSend: 1}}, nil
}

// base is the entry an order's write starts from: its earlier entry, if
// any, with the order's current refs.
func base(p prepared, prev *pipeline.Entry) *pipeline.Entry {
	e := pipeline.Entry{Key: p.key}
	if prev != nil {
		e = *prev
	}
	e.Refs = p.m.Conversion.Refs
	return &e
}

// decideSend decides for a valid conversion with the given payload hash.
func decideSend(prev *pipeline.Entry, hash string, retryRejected bool) Action {
	if prev == nil {
		return ActionSend
	}
	switch prev.State {
	case pipeline.StateAccepted, pipeline.StateTracked, pipeline.StateNotTracked:
		if prev.PayloadHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case pipeline.StateChanged:
		if prev.SentHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case pipeline.StateRejected:
		if prev.PayloadHash == hash && !retryRejected {
			return ActionAlreadySent
		}
		return ActionSend
	}
	return ActionSend // pending, failed, invalid, skipped
}

// reconciledState is the state of an accepted conversion whose payload
// is back to what was sent: what reconciling learned of it, if anything.
func reconciledState(prev *pipeline.Entry) pipeline.State {
	if r := prev.Reconciled; r != nil {
		switch v := pipeline.State(r.Verdict); v {
		case pipeline.StateTracked, pipeline.StateNotTracked:
			return v
		}
	}
	return pipeline.StateAccepted
}

// settle is the entry e of a sent conversion once its outcome is known,
// and whether the conversion is unfinished (has no final answer). An
// unfinished one is recorded as failed, so the next run sends it again.
func settle(e pipeline.Entry, out pipeline.Outcome) (pipeline.Entry, bool) {
	e.State = out.State
	e.Attempts += out.Attempts
	e.HTTPStatus = out.HTTPStatus
	e.Messages = out.Messages
	if out.SubmissionID != "" || out.State == pipeline.StateAccepted {
		e.SubmissionID, e.QueuedURI = out.SubmissionID, out.QueuedURI
	}
	e.MaybeSent = e.MaybeSent || out.MaybeSent
	if out.State == pipeline.StateAccepted || out.State == pipeline.StateRejected {
		e.SentHash = ""
	}
	if out.State.Final() {
		return e, false
	}
	e.State = pipeline.StateFailed
	return e, true
}

// outcomeCounts are the counts of one send's outcome.
func outcomeCounts(out pipeline.Outcome) pipeline.Counts {
	c := pipeline.Counts{Requests: int64(out.Attempts)}
	switch out.State {
	case pipeline.StateAccepted:
		c.Accepted = 1
	case pipeline.StateRejected:
		c.Rejected = 1
	case pipeline.StatePending:
		// A dry run's: not sent, so neither accepted nor failed.
	default:
		c.Failed = 1
	}
	return c
}
