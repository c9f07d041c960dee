package sinks

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// answerer returns a function that passes one request through p and
// releases it with the answer's Remaining and reset.
func answerer(p *pacer) func(remaining int, reset time.Time) {
	return func(remaining int, reset time.Time) {
		p.mu.Lock()
		p.inflight++
		p.mu.Unlock()
		sent := time.Now()
		p.release(limits{limit: 50, remaining: remaining, reset: reset}, time.Time{}, sent)
	}
}

// TestPacerWindowRollover: with resets given in whole seconds, answers of
// two consecutive windows carry resets that overlap. A window that was
// spent must not keep the gate shut once an answer shows a new window
// (Remaining back up).
func TestPacerWindowRollover(t *testing.T) {
	p := newPacer(rate.Inf, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	answer := answerer(p)
	// The first window is nearly spent: its last answers say 3, then 2
	// left, with the reset rounded up to whole seconds.
	answer(3, now.Add(900*time.Millisecond))
	answer(2, now.Add(1900*time.Millisecond))
	// Requests sent just after the real reset are answered from the new
	// window, whose rounded reset overlaps the old one's.
	answer(49, now.Add(2*time.Second))
	p.mu.Lock()
	blocked, until, _ := p.blocked(time.Now())
	remaining := p.remaining
	p.mu.Unlock()
	if blocked || remaining != 49 {
		t.Fatalf("after an answer from a new window (49 left): blocked=%v until %v, remaining %d", blocked, until, remaining)
	}
	// Answers of the same window that come back out of order keep the
	// lowest Remaining.
	answer(47, now.Add(2*time.Second))
	answer(48, now.Add(2*time.Second))
	if p.remaining != 47 {
		t.Fatalf("remaining %d after out-of-order answers of one window, want 47", p.remaining)
	}
}

// TestPacerLateAnswerIsNoRollover: an answer to a request sent before the
// lowest Remaining was read may have been served before it; read late,
// its whole-seconds reset is later and its Remaining higher, as a new
// window's would be. It must not reopen a spent window (the cause of
// requests sent into a closed window under load).
func TestPacerLateAnswerIsNoRollover(t *testing.T) {
	p := newPacer(rate.Inf, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	p.mu.Lock()
	p.inflight = 2
	p.mu.Unlock()
	early := time.Now() // both requests let through now
	time.Sleep(time.Millisecond)
	p.release(limits{limit: 50, remaining: 0, reset: now.Add(900 * time.Millisecond)}, time.Time{}, early)
	p.release(limits{limit: 50, remaining: 5, reset: now.Add(1900 * time.Millisecond)}, time.Time{}, early)
	p.mu.Lock()
	blocked, until, closed := p.blocked(time.Now())
	remaining := p.remaining
	p.mu.Unlock()
	if !blocked || !closed || remaining != 0 || !until.Equal(now.Add(900*time.Millisecond)) {
		t.Fatalf("late answer of the spent window: blocked=%v closed=%v until %v, remaining %d; want closed until %v with 0 left",
			blocked, closed, until, remaining, now.Add(900*time.Millisecond))
	}
}

// TestPacerWindowEndsAtEarliestReset: every answer's reset, rounded up to
// whole seconds from the moment the server answered, is at or after the
// window's real end, so the earliest of one window's answers is the
// closest: a spent window keeps the gate shut until then, not until the
// latest.
func TestPacerWindowEndsAtEarliestReset(t *testing.T) {
	p := newPacer(rate.Inf, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	now := time.Now()
	answer := answerer(p)
	answer(2, now.Add(10*time.Second))
	answer(1, now.Add(10*time.Second+500*time.Millisecond))
	answer(0, now.Add(10*time.Second+900*time.Millisecond))
	p.mu.Lock()
	blocked, until, closed := p.blocked(time.Now())
	p.mu.Unlock()
	if !blocked || !closed || !until.Equal(now.Add(10*time.Second)) {
		t.Fatalf("spent window: blocked=%v closed=%v until %v; want closed until the earliest reset %v", blocked, closed, until, now.Add(10*time.Second))
	}
}
