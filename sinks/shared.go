package sinks

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"convpipe/pipeline"
)

// sharedQuota is the pacer's share of an account's quota that several
// runs use at once (pipeline.Quota, kept in a shared ledger): every
// request also spends one request of it. It takes requests in small
// batches (about a tenth of a second's worth at the configured rate) and
// spends a batch only within the window it was taken in, stopping a
// margin before the window's end, so that a request reaches the server
// in the window that counted it.
type sharedQuota struct {
	q       pipeline.Quota
	window  time.Duration
	ceiling int // this run's ceiling per window: the quota less the reserve
	batch   int
	margin  time.Duration

	mu    sync.Mutex // held while taking, so that one caller asks at a time
	left  int        // requests taken and not yet spent
	until time.Time  // when they must be spent by
}

// ShareQuota makes s spend every request of the account's quota q too,
// shared with the other runs of the account, and keep reserve (a
// fraction from 0 to less than 1) of each window for them: this run
// takes requests only while the window's requests stay within the
// quota less the reserve. The quota and its window are sink.rate's
// ("6000/min": 6000 a minute). Call it before the first Send.
func (s *Impact) ShareQuota(q pipeline.Quota, reserve float64) error {
	if reserve < 0 || reserve >= 1 || math.IsNaN(reserve) {
		return fmt.Errorf("reserve %v: must be at least 0 and less than 100%%", reserve)
	}
	n, d, err := ParseQuota(s.cfg.Rate)
	if err != nil {
		return fmt.Errorf("sink.rate: %w", err)
	}
	perSec := n / d.Seconds()
	s.pacer.shared = &sharedQuota{
		q: q, window: d, ceiling: int(math.Floor(n * (1 - reserve))),
		batch:  int(min(max(math.Ceil(perSec/10), 1), 50)),
		margin: min(max(d/50, 20*time.Millisecond), time.Second),
	}
	return nil
}

// take waits until the shared quota lets one request go, and spends it.
// An error means ctx ended, the quota allows nothing before ctx's
// deadline, or the quota could not be read.
func (sq *sharedQuota) take(ctx context.Context) error {
	if sq == nil {
		return nil
	}
	sq.mu.Lock()
	defer sq.mu.Unlock()
	for {
		now := time.Now()
		if sq.left > 0 && now.Before(sq.until) {
			sq.left--
			return nil
		}
		n, end, err := sq.q.TakeQuota(ctx, sq.batch, sq.window, sq.ceiling)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("%w: the shared quota: %w", pipeline.ErrFatal, err)
		}
		sq.left, sq.until = n, end.Add(-sq.margin)
		if n > 0 && time.Now().Before(sq.until) {
			continue
		}
		// Nothing left in this window (for this run): wait for the next.
		if dl, ok := ctx.Deadline(); ok && end.After(dl) {
			return fmt.Errorf("%w (the shared quota's window reopens at %s)", errQuotaDeadline, end.Format(time.RFC3339))
		}
		t := time.NewTimer(time.Until(end))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
