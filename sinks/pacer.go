package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"convpipe/pipeline"
)

// errQuotaDeadline is returned when the quota allows no request before the
// context's deadline.
var errQuotaDeadline = pipeline.ErrOutOfTime

// pacer is the layer every attempt passes before its request: a gate that
// the server's rate-limit answers close, then the configured token bucket.
//
// The gate keeps the server's own count: within a window it knows the
// lowest Remaining the server reported and how many requests are in
// flight, and lets a request pass only while Remaining exceeds those in
// flight (each of them may still be counted). When nothing remains and
// nothing is in flight, it closes until the window's reset, and it closes
// for everyone on Retry-After. So no request is spent against a closed
// window, and, once the answers are in, none of the window is wasted.
type pacer struct {
	lim *rate.Limiter
	// configured is the configured rate (sink.rate): the server's hourly
	// limit may lower the limiter's rate, never raise it above this.
	configured rate.Limit
	log        *slog.Logger
	// shared, when set, is the account's quota shared with other runs
	// (see shared.go): each request spends one of it too.
	shared *sharedQuota

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the state changes
	// closedUntil: nothing passes before.
	closedUntil time.Time
	// known: the current window's remaining and reset are known.
	known     bool
	remaining int
	reset     time.Time
	// learned is when the answer that set remaining was read: only a
	// request sent after it was served after that answer, so only its
	// answer can tell a new window from a late one of the same window.
	learned  time.Time
	inflight int
	// loggedUntil is the end of the last closure logged.
	loggedUntil time.Time
}

func newPacer(limit rate.Limit, burst int, log *slog.Logger) *pacer {
	return &pacer{lim: rate.NewLimiter(limit, burst), configured: limit, log: log, changed: make(chan struct{})}
}

// blocked reports whether a request may not pass now, until when it must
// wait (zero: until the state changes), and whether the gate is closed
// (rather than waiting for answers in flight). p.mu is held.
func (p *pacer) blocked(now time.Time) (blocked bool, until time.Time, closed bool) {
	if now.Before(p.closedUntil) {
		return true, p.closedUntil, true
	}
	if p.known && !now.Before(p.reset) {
		p.known = false
	}
	if p.known && p.remaining-p.inflight <= 0 {
		if p.inflight > 0 {
			// An answer in flight will tell more.
			return true, p.reset, false
		}
		p.close(p.reset, "the server reports no requests left in its window", now)
		return true, p.reset, true
	}
	return false, time.Time{}, false
}

// close closes the gate until t and logs it once. p.mu is held.
func (p *pacer) close(t time.Time, why string, now time.Time) {
	if !t.After(p.closedUntil) {
		return
	}
	p.closedUntil = t
	if !now.Before(p.loggedUntil) {
		p.log.Info("sink: quota window closed: waiting", "until", t.Format(time.RFC3339), "in", t.Sub(now).Round(time.Second).String(), "reason", why)
		p.loggedUntil = t
	}
}

// acquire waits until a request may be sent and counts it in flight. The
// caller must call the returned release exactly once, with what the
// answer said. An error means the context ended first, or its deadline
// comes before the quota allows a request.
func (p *pacer) acquire(ctx context.Context) (release func(limits, time.Time), err error) {
	for {
		if err := p.waitGate(ctx); err != nil {
			return nil, err
		}
		if err := p.lim.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, errQuotaDeadline
		}
		if err := p.shared.take(ctx); err != nil {
			return nil, err
		}
		p.mu.Lock()
		if b, _, _ := p.blocked(time.Now()); b {
			// The gate closed while we waited for the limiter.
			p.mu.Unlock()
			continue
		}
		p.inflight++
		p.mu.Unlock()
		sent := time.Now()
		var once sync.Once
		return func(l limits, gate time.Time) { once.Do(func() { p.release(l, gate, sent) }) }, nil
	}
}

func (p *pacer) waitGate(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		b, until, closed := p.blocked(now)
		ch := p.changed
		p.mu.Unlock()
		if !b {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && closed && until.After(dl) {
			return fmt.Errorf("%w (the window reopens at %s)", errQuotaDeadline, until.Format(time.RFC3339))
		}
		t := time.NewTimer(until.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// release ends an attempt let through at sent: it learns the server's
// window from the answer's limits and closes the gate until gate when that
// is set.
func (p *pacer) release(l limits, gate, sent time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.inflight--
	if gate.After(now) {
		p.close(gate, "the server asked to wait (429 or Retry-After)", now)
	}
	if l.remaining >= 0 && l.reset.After(now) {
		switch {
		case !p.known || !p.reset.After(now):
			p.known, p.remaining, p.reset, p.learned = true, l.remaining, l.reset, now
		case l.remaining > p.remaining && l.reset.After(p.reset) && sent.After(p.learned):
			// Remaining only goes up when a new window has begun. Resets
			// given in whole seconds make two windows' resets hard to
			// tell apart, so keeping the lower Remaining here would shut
			// the gate on a window that has already rolled over. Only an
			// answer to a request sent after the lower one was read can
			// show it: an earlier request may have been served first,
			// and its answer, read late, carries a later reset.
			p.remaining, p.reset, p.learned = l.remaining, l.reset, now
		default:
			// The same window. Every answer's reset is at or after the
			// window's real end (seconds rounded up, counted from when
			// the server answered, which is before we read it), so the
			// earliest is the closest.
			if l.remaining < p.remaining {
				p.remaining, p.learned = l.remaining, now
			}
			p.reset = minTime(p.reset, l.reset)
		}
	}
	if l.perHour && l.limit > 0 {
		// The latest answer's limit holds, lower or higher than the one
		// before, but never above the configured rate.
		if r := min(rate.Limit(float64(l.limit)/3600), p.configured); r != p.lim.Limit() {
			p.lim.SetLimit(r)
		}
	}
	close(p.changed)
	p.changed = make(chan struct{})
}

// pace returns the current rate and when a closed window reopens.
func (p *pacer) pace() pipeline.Pace {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	pc := pipeline.Pace{PerSecond: float64(p.lim.Limit())}
	if now.Before(p.closedUntil) {
		pc.WaitingUntil = p.closedUntil
	} else if p.known && now.Before(p.reset) && p.remaining <= 0 {
		pc.WaitingUntil = p.reset
	}
	return pc
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
