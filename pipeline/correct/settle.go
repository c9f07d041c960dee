package correct

import (
	"context"
	"fmt"
	"time"

	"convpipe/pipeline"
)

// seen is what GET /Actions shows of a correction's action.
type seen int

const (
	seenNothing seen = iota // the action was not found
	seenApplied             // the action shows the correction
	seenNot                 // the action is there, without it, and can change
	seenLocked              // the action is there, without it, and locked or reversed
)

// judge decides what act shows of c (pure).
func judge(c pipeline.Correction, act pipeline.Action, now time.Time) seen {
	if c.Kind == pipeline.CorrectReversal {
		if act.State == pipeline.ActionReversed {
			return seenApplied
		}
	} else {
		x, err1 := cents(act.Amount)
		y, err2 := cents(c.After)
		if err1 == nil && err2 == nil && x == y && act.State != pipeline.ActionReversed {
			return seenApplied
		}
	}
	if act.State != pipeline.ActionPending || (!act.LockingDate.IsZero() && !now.Before(act.LockingDate)) {
		return seenLocked
	}
	return seenNot
}

// settle learns whether the earlier request of c, which may have reached
// impact unanswered, was taken: it finds the action in GET /Actions
// around the event date (and around the day the order was sent, where
// impact re-dates a late conversion). It returns c applied, too late, or
// (to be sent again) planned; or c unchanged with Seq 0 when impact
// could not tell (it is then not sent again).
func (a *Applier) settle(ctx context.Context, c pipeline.Correction, e pipeline.Entry) (pipeline.Correction, int, error) {
	unsettled := func(why string) (pipeline.Correction, int, error) {
		a.log().Warn("correction not settled; not sent again", "key", c.Key.String(), "seq", c.Seq, "why", why)
		c.State = pipeline.CorrectionFailed
		c.Messages = msg("not settled, not sent again until GET /Actions shows the action: " + why)
		return c, 0, a.write(ctx, c, nil)
	}
	if a.Reader == nil {
		return unsettled("no reader of actions")
	}
	act, requests, err := a.find(ctx, c, e)
	if err != nil {
		out, _, werr := unsettled(err.Error())
		return out, requests, werr
	}
	if act == nil {
		out, _, werr := unsettled("the action is not listed")
		return out, requests, werr
	}
	switch judge(c, *act, a.now()) {
	case seenApplied:
		c.State, c.MaybeSent = pipeline.CorrectionApplied, false
		c.Messages = msg("settled: GET /Actions shows it applied")
		var entry *pipeline.Entry
		if c.Kind == pipeline.CorrectReversal || (e.State == pipeline.StateChanged && e.PayloadHash == c.ToHash) {
			entry = a.corrected(c, e)
		}
		return c, requests, a.write(ctx, c, entry)
	case seenLocked:
		c = a.tooLate(ctx, c, fmt.Sprintf("GET /Actions shows the action %s without it", act.State))
		return c, requests, a.write(ctx, c, nil)
	}
	// Not taken: send it again.
	c.State, c.MaybeSent = pipeline.CorrectionPlanned, false
	return c, requests, nil
}

// find looks for c's action in GET /Actions: a window of two days around
// its event date, then around the day its entry was first written.
func (a *Applier) find(ctx context.Context, c pipeline.Correction, e pipeline.Entry) (*pipeline.Action, int, error) {
	var days []time.Time
	if t, err := time.Parse(time.RFC3339, c.EventDate); err == nil {
		days = append(days, t)
	} else if t, err := time.Parse("2006-01-02", c.EventDate); err == nil {
		days = append(days, t)
	}
	if !e.Created.IsZero() {
		days = append(days, e.Created)
	}
	requests := 0
	for _, d := range days {
		q := pipeline.ActionQuery{CampaignID: c.CampaignID, Start: d.Add(-24 * time.Hour).Truncate(time.Second), End: d.Add(24 * time.Hour).Truncate(time.Second)}
		for page, pages := 1, 1; page <= pages; page++ {
			p, err := a.Reader.ListActions(ctx, q, page)
			requests++
			if err != nil {
				return nil, requests, err
			}
			for _, act := range p.Actions {
				if act.Matches(c.Key) {
					return &act, requests, nil
				}
			}
			pages = p.Pages
		}
	}
	return nil, requests, nil
}
