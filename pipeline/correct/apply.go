package correct

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"convpipe/pipeline"
)

// Applier sends the corrections a ledger holds and records their
// outcomes. It is not safe for concurrent use.
type Applier struct {
	Ledger   Store
	Modifier pipeline.Modifier
	// Reader settles a correction whose request may have reached impact
	// unanswered, against GET /Actions, before it is sent again; without
	// one, such a correction is not sent again.
	Reader pipeline.OutcomeReader
	RunID  string
	// MaxShare and GuardMin are the mass-change guard's (0: the
	// defaults).
	MaxShare float64
	GuardMin int64
	// Locking, when set, returns an action's locking date when it is
	// known (reconcile learns it); unknown, a request is sent and impact's
	// refusal recorded.
	Locking func(pipeline.Key) (time.Time, bool)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	Log *slog.Logger
}

// Result is what one Apply did.
type Result struct {
	// Corrections are the corrections Apply wrote, as they ended.
	Corrections []pipeline.Correction
	// Counts by the state they ended in.
	States map[pipeline.CorrectionState]int
	// Requests counts the requests made.
	Requests int
}

// Pending returns the corrections of l that are not final (planned,
// pending, failed), by order and sequence number.
func Pending(ctx context.Context, l Store) ([]pipeline.Correction, error) {
	var out []pipeline.Correction
	err := l.Corrections(ctx, pipeline.CorrectionFilter{}, func(c pipeline.Correction) error {
		if !c.State.Final() {
			out = append(out, c)
		}
		return nil
	})
	return out, err
}

// Apply applies todo in order, after the guard let the planned ones of
// them pass for the accepted orders they were detected among. An error
// means Apply stopped: the guard refused, the ledger failed, or the
// Modifier's error (credentials, time) stopped it; what it wrote until
// then is in Result.
func (a *Applier) Apply(ctx context.Context, todo []pipeline.Correction, accepted int64) (Result, error) {
	res := Result{States: map[pipeline.CorrectionState]int{}}
	var planned int64
	for _, c := range todo {
		if c.State == pipeline.CorrectionPlanned {
			planned++
		}
	}
	if err := Guard(planned, accepted, cmpOrF(a.MaxShare, DefaultMaxShare), cmpOrI(a.GuardMin, DefaultGuardMin)); err != nil {
		return res, err
	}
	for _, c := range todo {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		out, requests, err := a.one(ctx, c)
		res.Requests += requests
		if out.Seq != 0 {
			res.Corrections = append(res.Corrections, out)
			res.States[out.State]++
		}
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func cmpOrF(a, b float64) float64 {
	if a != 0 {
		return a
	}
	return b
}

func cmpOrI(a, b int64) int64 {
	if a != 0 {
		return a
	}
	return b
}

func (a *Applier) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Applier) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// history is what the ledger knows of an order's other corrections.
type history struct {
	reversed      bool
	modifications int
}

func (a *Applier) history(ctx context.Context, c pipeline.Correction) (history, error) {
	var h history
	err := a.Ledger.Corrections(ctx, pipeline.CorrectionFilter{OrderID: c.Key.OrderID, State: pipeline.CorrectionApplied}, func(e pipeline.Correction) error {
		if e.Key != c.Key || e.Seq == c.Seq {
			return nil
		}
		if e.Kind == pipeline.CorrectReversal {
			h.reversed = true
		} else {
			h.modifications++
		}
		return nil
	})
	return h, err
}

// one applies one correction and returns it as it ended (Seq 0 when it
// was left as it was), and the requests made.
func (a *Applier) one(ctx context.Context, c pipeline.Correction) (pipeline.Correction, int, error) {
	e, ok, err := a.Ledger.Get(ctx, c.Key)
	if err != nil {
		return pipeline.Correction{}, 0, err
	}
	if !ok {
		c.State, c.Messages = pipeline.CorrectionManual, msg("the ledger has no entry for the order any more: correct it by hand")
		return c, 0, a.write(ctx, c, nil)
	}
	requests := 0
	if c.State == pipeline.CorrectionPending || c.MaybeSent {
		settled, n, err := a.settle(ctx, c, e)
		requests += n
		if err != nil || settled.State != pipeline.CorrectionPlanned {
			return settled, requests, err
		}
		c = settled
	}
	if c.Kind != pipeline.CorrectReversal && (e.State != pipeline.StateChanged || e.PayloadHash != c.ToHash) {
		c.State, c.Messages = pipeline.CorrectionSuperseded, msg("not sent: the order changed again (or back) since it was planned")
		return c, requests, a.write(ctx, c, nil)
	}
	h, err := a.history(ctx, c)
	if err != nil {
		return pipeline.Correction{}, requests, err
	}
	var locking time.Time
	if a.Locking != nil {
		locking, _ = a.Locking(c.Key)
	}
	if why := limit(c, h.reversed, h.modifications, locking, a.now()); why != "" {
		c = a.tooLate(ctx, c, why)
		return c, requests, a.write(ctx, c, nil)
	}
	// An answer lost after the request may have reached impact is
	// settled against GET /Actions before the correction is sent again.
	for try := 1; ; try++ {
		out, n, err := a.send(ctx, c, e)
		requests += n
		if err != nil || out.State != pipeline.CorrectionFailed || !out.MaybeSent || try >= maxSends {
			return out, requests, err
		}
		settled, n, err := a.settle(ctx, out, e)
		requests += n
		if err != nil || settled.State != pipeline.CorrectionPlanned {
			return settled, requests, err
		}
		c = settled
	}
}

// maxSends is how many times one Apply sends a correction whose answers
// were lost, settling it between sends.
const maxSends = 3

// tooLate is c when impact can no longer take it.
func (a *Applier) tooLate(_ context.Context, c pipeline.Correction, why string) pipeline.Correction {
	c.State = pipeline.CorrectionTooLate
	c.PaidInError = PaidInError(c)
	text := "too late: " + why
	if c.PaidInError != "" {
		text += fmt.Sprintf("; %s %s is paid in error: settle it with the partner by hand", c.PaidInError, c.Currency)
	}
	c.Messages = append(msg(text), c.Messages...)
	return c
}

// send writes c pending, makes its request and records its outcome.
func (a *Applier) send(ctx context.Context, c pipeline.Correction, e pipeline.Entry) (pipeline.Correction, int, error) {
	pending := c
	pending.State = pipeline.CorrectionPending
	announced := false
	leaving := func() error {
		if err := a.write(ctx, pending, nil); err != nil {
			return err
		}
		announced = true
		return nil
	}
	out, err := a.Modifier.Modify(ctx, &c, leaving)
	if !announced {
		if err == nil {
			err = errors.New("corrections: no request was made")
		}
		return pipeline.Correction{}, 0, err
	}
	c.Attempts += out.Attempts
	c.HTTPStatus = out.HTTPStatus
	c.MaybeSent = c.MaybeSent || out.MaybeSent
	c.Messages = out.Messages
	c.SubmissionID = cmpOr(out.SubmissionID, c.SubmissionID)
	c.State = out.State
	if c.State == pipeline.CorrectionTooLate {
		c = a.tooLate(ctx, c, "impact refused it")
	}
	var entry *pipeline.Entry
	if c.State == pipeline.CorrectionApplied {
		c.MaybeSent = false
		entry = a.corrected(c, e)
	}
	if werr := a.write(ctx, c, entry); werr != nil {
		return c, out.Attempts, werr
	}
	a.log().Info("correction", "key", c.Key.String(), "seq", c.Seq, "kind", string(c.Kind), "state", string(c.State))
	return c, out.Attempts, err
}

// corrected is the order's entry once impact took c: a modification
// makes the corrected payload the accepted one.
func (a *Applier) corrected(c pipeline.Correction, e pipeline.Entry) *pipeline.Entry {
	e.RunID, e.Updated = a.RunID, a.now()
	if c.Kind == pipeline.CorrectReversal {
		e.Messages = msg(fmt.Sprintf("reversed in impact (%s): %s → 0.00", c.Reason, c.Before))
		return &e
	}
	if e.State != pipeline.StateTracked {
		e.State = pipeline.StateAccepted
	}
	e.PayloadHash, e.SentHash = c.ToHash, ""
	e.Messages = msg(fmt.Sprintf("corrected in impact: %s, %s → %s", describe(c.Changes), c.Before, c.After))
	return &e
}

// describe lists changes as a person reads them.
func describe(ch []pipeline.Change) string {
	var parts []string
	for _, c := range ch {
		what := c.What
		if c.Sku != "" {
			what += " of " + c.Sku
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", what, c.From, c.To))
	}
	return strings.Join(parts, ", ")
}

// Describe lists c's changes as a person reads them: "quantity of S1 2 → 1".
func Describe(c pipeline.Correction) string { return describe(c.Changes) }

func (a *Applier) write(ctx context.Context, c pipeline.Correction, e *pipeline.Entry) error {
	c.RunID = a.RunID
	// An outcome must not be lost to a stopping run.
	return a.Ledger.PutCorrection(context.WithoutCancel(ctx), c, e)
}
