package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/engine"
)

// mixedOrders returns n orders from first on, as a shop's export has
// them: one to three lines each, one in ten invalid (a quantity that is
// not a number), one in seventeen cancelled (left out by the filter).
func mixedOrders(first, n int) string {
	var b strings.Builder
	b.WriteString(header)
	for i := first; i < first+n; i++ {
		qty, status := "1", "paid"
		if i%10 == 0 {
			qty = "x"
		}
		if i%17 == 0 {
			status = "cancelled"
		}
		for l := 1; l <= 1+i%3; l++ {
			fmt.Fprintf(&b, "A-%d,%s,clk%d,SKU-%d,%s,%d.50,%s\n", i, testDate, i, l, qty, 10+l, status)
		}
	}
	return b.String()
}

// stopAfter returns a context cancelled once n outcomes were reported,
// and the OnOutcome that counts them.
func stopAfter(t *testing.T, n int64) (context.Context, func(pipeline.Outcome)) {
	ctx, cancel := context.WithCancelCause(t.Context())
	t.Cleanup(func() { cancel(nil) })
	var seen atomic.Int64
	return ctx, func(pipeline.Outcome) {
		if seen.Add(1) == n {
			cancel(errors.New("deadline reached"))
		}
	}
}

// TestRunETAWithinTenPercentDuringResume: a run resumed after a stop
// re-reads the orders the stopped run sent (already in the ledger) before
// the new ones. While it sends at a fixed rate, the orders it expects to
// send must stay within 10% of the orders it does send, and its ETA must
// be those orders at that rate. (The stopped run's orders, counted over
// the whole run, made the estimate several times too low.)
func TestRunETAWithinTenPercentDuringResume(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", mixedOrders(1, 1500))
	ctx, onOutcome := stopAfter(t, 400)
	if _, err := h.run(runOpts{ctx: ctx, onOutcome: onOutcome}); err != nil {
		t.Fatal(err)
	}

	const rate = 400.0
	var mu sync.Mutex
	var seen []engine.Progress
	s, err := h.run(runOpts{rate: fmt.Sprintf("%g/s", rate), burst: 1, onProgress: func(p engine.Progress) {
		mu.Lock()
		seen = append(seen, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	total := s.Total.ToSend
	if s.Total.AlreadySent < 400 || total < 500 || s.Total.Unsent != 0 {
		t.Fatalf("the resume: %+v; want 400 or more already sent and the rest sent", s.Total)
	}
	checked := 0
	for _, p := range seen {
		left := total - p.Sent
		// The first tenth stands for the first minute of a real run; the
		// last orders, once every object was read, are counted exactly.
		if p.Sent < total/10 || left < 50 {
			continue
		}
		checked++
		est := p.EstimatedToSend - p.Sent
		if math.Abs(float64(est-left)) > 0.1*float64(left) {
			t.Errorf("after %d sent: expects %d more, %d more were sent (more than 10%% off); %+v", p.Sent, est, left, p)
		}
		if want := time.Duration(float64(est) / rate * float64(time.Second)); p.ETA < want-time.Millisecond || p.ETA > want+time.Millisecond {
			t.Errorf("after %d sent: ETA %v, want %v (%d orders at %g/s)", p.Sent, p.ETA, want, est, rate)
		}
	}
	if checked < 10 {
		t.Fatalf("only %d progress reports to check (of %d)", checked, len(seen))
	}
	last := seen[len(seen)-1]
	if !last.Exact || last.EstimatedToSend != total {
		t.Errorf("the last report: Exact %v, EstimatedToSend %d; want exact, %d", last.Exact, last.EstimatedToSend, total)
	}
}

// TestRunStopCountsWhatWasNotRead: a run stopped early says exactly how
// many orders it read and did not send, and how many more it expects in
// what it did not read, within 10% of what the next run sends.
func TestRunStopCountsWhatWasNotRead(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", mixedOrders(1, 700))
	h.write("b.csv", mixedOrders(701, 500))
	ctx, onOutcome := stopAfter(t, 200)
	s, err := h.run(runOpts{ctx: ctx, rate: "400/s", burst: 1, onOutcome: onOutcome})
	if err != nil {
		t.Fatal(err)
	}
	nr := s.NotRead
	if nr == nil || nr.Objects != 2 || nr.Bytes <= 0 {
		t.Fatalf("NotRead = %+v; want both objects, not read to their end", nr)
	}
	if s.Total.Accepted+s.Total.Failed+s.Total.Unsent != s.Total.ToSend {
		t.Fatalf("counts do not add up: %+v", s.Total)
	}
	next, err := h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	expected := s.Total.Unsent + s.Total.Failed + nr.EstimatedOrders
	if left := next.Total.ToSend; math.Abs(float64(expected-left)) > 0.1*float64(left) {
		t.Errorf("the stopped run left %d read and unsent + %d failed + about %d not read = %d; the next run sent %d",
			s.Total.Unsent, s.Total.Failed, nr.EstimatedOrders, expected, left)
	}
	if next.NotRead != nil {
		t.Errorf("a run that read everything has NotRead %+v", next.NotRead)
	}
}
