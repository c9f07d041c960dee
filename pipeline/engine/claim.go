package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"convpipe/pipeline"
)

// Runs that share a ledger (Options.Claims) split an export between
// them by claims: a run claims an object before it reads it and leaves
// alone the objects another live run holds, coming back to them once
// every other object is read, until they are processed or their
// holder's lease lapsed (it died) and they can be claimed. It claims an
// order just before its first request and keeps the claim until the
// outcome is recorded; the claim comes with the order's entry as the
// ledger holds it then, and unless that is the entry the run decided on,
// the order is not sent (another run recorded it since). So no order is
// sent by two runs, and an order whose holder died while sending it is
// pending in the ledger: the run that takes it over sends it as maybe
// sent, as after a crash.

// errClaimed refuses an order's first request when another run holds
// the order, or recorded it after this run decided to send it.
var errClaimed = errors.New("another run holds the order")

// claimPoll is how often a run looks again at the objects other runs
// hold.
const claimPoll = 250 * time.Millisecond

// claimsObjects reports whether the run claims what it reads.
func (r *runner) claimsObjects() bool { return r.opt.Claims != nil && r.opt.Mode == Send }

// claimObject claims obj when the run claims what it reads. It reports
// whether another run holds obj; a ledger failure is fatal (and reported
// as not held).
func (r *runner) claimObject(ctx context.Context, obj pipeline.Object) (held bool) {
	if !r.claimsObjects() {
		return false
	}
	ok, err := r.opt.Claims.ClaimObject(ctx, obj)
	if err != nil {
		if ctx.Err() == nil {
			r.setFatal(fmt.Errorf("%w: claim %s: %w", ErrLedgerWrite, obj.Key, err))
		}
		return false
	}
	if !ok {
		r.log.Debug("another run holds the object; coming back to it later", "object", obj.Key)
	}
	return !ok
}

// releaseObject drops the run's claim of obj, once every order of it is
// answered.
func (r *runner) releaseObject(obj pipeline.Object) {
	if !r.claimsObjects() {
		return
	}
	if err := r.opt.Claims.ReleaseObject(context.WithoutCancel(r.sendCtx), obj); err != nil {
		// The claim lapses with its lease; nothing is lost.
		r.log.Warn("cannot release the claim of an object", "object", obj.Key, "err", err)
	}
}

// readHeld reads the objects that other runs held when the run came to
// them: it looks at them again every claimPoll until each was processed
// by its holder or could be claimed and read, or ctx ends.
func (r *runner) readHeld(ctx context.Context, held []pipeline.Object, jobs chan<- job) {
	if len(held) > 0 {
		r.log.Info("other runs hold objects of this export: waiting for them to be processed, or for their claims to lapse",
			"objects", len(held), "first", held[0].Key)
	}
	for len(held) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(claimPoll):
		}
		left := held[:0]
		for _, obj := range held {
			if ctx.Err() != nil {
				return
			}
			if r.readObject(ctx, obj, jobs) {
				left = append(left, obj)
			}
		}
		held = left
	}
}

// errSettled refuses an order's first request when another run recorded
// it, since this run decided to send it, as final with this payload: it
// counts as already sent.
var errSettled = errors.New("another run sent the order")

// claimOrder claims j's order just before its first request, waiting
// while another run holds it (it is being sent: its holder records the
// outcome, or dies and its lease lapses), and checks that the ledger
// still holds the entry the run decided on. It returns whether the order
// is now claimed, and errSettled, errClaimed, errStopping or
// ErrLedgerWrite when it may not be sent.
func (r *runner) claimOrder(j job) (bool, error) {
	if r.opt.Claims == nil {
		return false, nil
	}
	key := j.conv.Key
	for {
		e, found, granted, err := r.opt.Claims.ClaimOrder(context.WithoutCancel(r.sendCtx), key)
		if err != nil {
			r.setFatal(fmt.Errorf("%w: claim %s: %w", ErrLedgerWrite, key, err))
			return false, ErrLedgerWrite
		}
		if granted {
			return r.checkClaimed(j, e, found)
		}
		select {
		case <-r.readCtx.Done():
			return false, errStopping
		case <-time.After(claimPoll):
		}
	}
}

// checkClaimed keeps the claim of j's order when the entry the ledger
// holds (e, found) is the one the run decided on; otherwise it lets the
// order go, as sent by another run when that one recorded it final with
// this payload.
func (r *runner) checkClaimed(j job, e pipeline.Entry, found bool) (bool, error) {
	if sameEntry(j.prev, e, found) {
		return true, nil
	}
	r.releaseOrder(j.conv.Key)
	if found && decideSend(&e, j.hash, r.policy.RetryRejected) == ActionAlreadySent {
		return false, errSettled
	}
	r.log.Warn("another run recorded the order since this run read it; not sent (the next run decides again)",
		"key", j.conv.Key.String(), "state", e.State, "run", e.RunID)
	return false, errClaimed
}

// releaseOrder drops the run's claim of key, once its outcome is
// recorded (or it was not sent).
func (r *runner) releaseOrder(key pipeline.Key) {
	if err := r.opt.Claims.ReleaseOrder(context.WithoutCancel(r.sendCtx), key); err != nil {
		r.log.Warn("cannot release the claim of an order", "key", key.String(), "err", err)
	}
}

// sameEntry reports whether the entry the ledger holds now (e, found) is
// the one a decision was made on (prev, nil when there was none).
func sameEntry(prev *pipeline.Entry, e pipeline.Entry, found bool) bool {
	if prev == nil || !found {
		return prev == nil && !found
	}
	return e.State == prev.State && e.PayloadHash == prev.PayloadHash && e.Attempts == prev.Attempts &&
		e.RunID == prev.RunID && e.Updated.Equal(prev.Updated)
}
