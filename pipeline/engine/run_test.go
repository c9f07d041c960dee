package engine_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/mapping"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/pipeline/group"
	"convpipe/sim"
	"convpipe/sinks"
	"convpipe/sources"
)

// testDay is the day the test orders are dated: ten days ago, so that
// they stay inside the age guards (mapping.max_event_age, 88 days for
// batch files) whenever the tests run; testDate is a time on it.
var (
	testDay  = time.Now().UTC().AddDate(0, 0, -10).Format(time.DateOnly)
	testDate = testDay + "T10:00:00Z"
)

// These tests run engine.Run with the real parts around it: CSV files on
// disk, the YAML mapping, the HTTP sink against the simulator on loopback,
// and a SQLite ledger.

const testMapping = `
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  EventDate: {column: created_at, transforms: [{time: {layout: rfc3339}}]}
  ClickId: click_id
  CurrencyCode: {const: EUR}
items:
  ItemSku: sku
  ItemCategory: {const: tools}
  ItemQuantity: {column: qty, transforms: [integer]}
  ItemPrice: {column: price, transforms: [number]}
filters:
  - {skip: order, when: {column: status, in: [cancelled]}, reason: order cancelled}
`

const header = "order_id,created_at,click_id,sku,qty,price,status\n"

// orders returns n orders of two lines each, ids from first on.
func orders(first, n int) string {
	var b strings.Builder
	b.WriteString(header)
	for i := first; i < first+n; i++ {
		for l := 1; l <= 2; l++ {
			fmt.Fprintf(&b, "A-%d,%s,clk%d,SKU-%d,%d,%d.50,paid\n", i, testDate, i, l, l, 10+l)
		}
	}
	return b.String()
}

type harness struct {
	t      *testing.T
	dir    string
	sim    *sim.Server
	mapper *mapping.Mapping
	ledger string
	token  string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), token: sim.DefaultAuthToken}
	h.sim = sim.NewTestServer(t, sim.Config{})
	cfg, err := mapping.ParseConfig([]byte(testMapping))
	if err != nil {
		t.Fatal(err)
	}
	if h.mapper, err = mapping.New(cfg); err != nil {
		t.Fatal(err)
	}
	h.ledger = filepath.Join(h.dir, "ledger.db")
	if err := os.Mkdir(filepath.Join(h.dir, "export"), 0o755); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) write(name, content string) {
	h.t.Helper()
	p := filepath.Join(h.dir, "export", name)
	old, statErr := os.Stat(p)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	if statErr == nil { // a rewrite must look changed whatever the clock's resolution
		os.Chtimes(p, time.Now(), old.ModTime().Add(time.Second))
	}
}

type runOpts struct {
	all, retryRejected bool
	ctx                context.Context
	onOutcome          func(pipeline.Outcome)
	workers            int    // default 4
	rate               string // default 2000/s
	burst              int    // default 20
	onProgress         func(engine.Progress)
	group              group.Config
	mapper             pipeline.Mapper // default h.mapper
}

func (h *harness) run(o runOpts) (pipeline.Summary, error) {
	h.t.Helper()
	h.t.Setenv(sinks.EnvAccountSID, h.sim.AccountSID())
	h.t.Setenv(sinks.EnvAuthToken, h.token)
	src, err := sources.New(h.t.Context(), sources.Config{Location: filepath.Join(h.dir, "export")})
	if err != nil {
		h.t.Fatal(err)
	}
	workers := cmp.Or(o.workers, 4)
	sink, err := sinks.New(sinks.Config{BaseURL: h.sim.URL(), Rate: cmp.Or(o.rate, "2000/s"), Burst: cmp.Or(o.burst, 20), Workers: workers, MaxAttempts: 3,
		BackoffInitial: time.Millisecond, BackoffMax: 10 * time.Millisecond}.WithDefaults(), "test", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	defer sink.Close()
	led, err := ledger.Open(h.t.Context(), h.ledger, ledger.Options{})
	if err != nil {
		h.t.Fatal(err)
	}
	defer led.Close()
	ctx := o.ctx
	if ctx == nil {
		ctx = h.t.Context()
	}
	return engine.Run(ctx, engine.Options{
		Mode: engine.Send, Source: src, Mapper: cmp.Or[pipeline.Mapper](o.mapper, h.mapper), Sink: sink, Ledger: led, Workers: workers,
		All: o.all, RetryRejected: o.retryRejected, RunID: fmt.Sprintf("run-%d", time.Now().UnixNano()),
		Grace: 5 * time.Second, OnOutcome: o.onOutcome, OnProgress: o.onProgress, ProgressEvery: 10 * time.Millisecond,
		Group: o.group,
	})
}

// states reads the ledger's entries by state.
func (h *harness) states() map[pipeline.State]int {
	h.t.Helper()
	l, err := ledger.OpenReadOnly(h.t.Context(), h.ledger)
	if err != nil {
		h.t.Fatal(err)
	}
	defer l.Close()
	got := map[pipeline.State]int{}
	if err := l.Entries(h.t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error { got[e.State]++; return nil }); err != nil {
		h.t.Fatal(err)
	}
	return got
}

// acceptedOnce checks that the simulator accepted each of the ids exactly once.
func (h *harness) acceptedOnce(ids ...string) {
	h.t.Helper()
	seen := map[string]int{}
	for _, r := range h.sim.Accepted() {
		seen[r.OrderID]++
	}
	for _, id := range ids {
		if seen[id] != 1 {
			h.t.Errorf("order %s accepted %d times at the simulator, want once", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		h.t.Errorf("simulator accepted %d distinct orders, want %d", len(seen), len(ids))
	}
}

func ids(first, n int) []string {
	var out []string
	for i := first; i < first+n; i++ {
		out = append(out, fmt.Sprintf("A-%d", i))
	}
	return out
}

func TestRunRerunChangedAndNew(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 20))
	s, err := h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 20 || s.Total.ToSend != 20 || s.Total.Orders != 20 || s.Total.Rows != 40 {
		t.Fatalf("first run: %+v", s.Total)
	}
	h.acceptedOnce(ids(1, 20)...)

	// Unchanged objects are not read again.
	before := len(h.sim.Requests())
	s, err = h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Objects[0].Unchanged || s.Total.Rows != 0 || len(h.sim.Requests()) != before {
		t.Fatalf("rerun read or sent something: %+v, requests %d → %d", s, before, len(h.sim.Requests()))
	}

	// --all reads everything; the ledger says it was all sent.
	s, err = h.run(runOpts{all: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.AlreadySent != 20 || s.Total.Requests != 0 || len(h.sim.Requests()) != before {
		t.Fatalf("rerun --all: %+v", s.Total)
	}

	// A corrected amount on an accepted order, and new orders in the same
	// file: the new ones are sent, the changed one is reported.
	content := orders(1, 25)
	content = strings.Replace(content, "A-3,"+testDate+",clk3,SKU-1,1,11.50", "A-3,"+testDate+",clk3,SKU-1,1,9.99", 1)
	h.write("a.csv", content)
	s, err = h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 5 || s.Total.Changed != 1 || s.Total.AlreadySent != 19 {
		t.Fatalf("changed export: %+v", s.Total)
	}
	h.acceptedOnce(ids(1, 25)...)
	if got := h.states(); got[pipeline.StateAccepted] != 24 || got[pipeline.StateChanged] != 1 {
		t.Fatalf("ledger states %v, want 24 accepted and 1 changed", got)
	}
	// Still changed next time, and still not sent.
	s, err = h.run(runOpts{all: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Changed != 1 || s.Total.Requests != 0 {
		t.Fatalf("changed order on the next run: %+v", s.Total)
	}
}

func TestRunRejectedNotResentUnlessAsked(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 3))
	h.sim.FailNext(400) // the first conversion is refused
	s, err := h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Rejected != 1 || s.Total.Accepted != 2 {
		t.Fatalf("first run: %+v", s.Total)
	}
	s, err = h.run(runOpts{all: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Requests != 0 || s.Total.AlreadySent != 3 {
		t.Fatalf("rerun resent a rejected conversion: %+v", s.Total)
	}
	s, err = h.run(runOpts{all: true, retryRejected: true})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Requests != 1 || s.Total.Accepted != 1 {
		t.Fatalf("--retry-rejected: %+v", s.Total)
	}
	h.acceptedOnce(ids(1, 3)...)
	if got := h.states(); got[pipeline.StateAccepted] != 3 {
		t.Fatalf("ledger states %v", got)
	}
}

func TestRunDuplicateOrderAcrossFiles(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 3))
	h.write("b.csv", orders(3, 2)) // A-3 again
	s, err := h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 4 || s.Total.Invalid != 1 {
		t.Fatalf("summary %+v, want 4 accepted and the second A-3 invalid", s.Total)
	}
	h.acceptedOnce(ids(1, 4)...)
}

// TestRunOrderSplitAcrossObjectsIsRecorded: an order whose lines are in
// two objects of one run is sent from the first; the lines in the second
// are not sent, and they are recorded in the ledger as invalid, naming
// both places (before, they were only logged: b.csv was marked processed
// and its lines were lost without a trace).
func TestRunOrderSplitAcrossObjectsIsRecorded(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", header+"SP2,"+testDate+",clk,SKU1,1,10.00,paid\n")
	h.write("b.csv", header+"SP2,"+testDate+",clk,SKU2,1,99.00,paid\n")
	s, err := h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 1 || s.Total.Invalid != 1 {
		t.Fatalf("summary %+v, want SP2 accepted from a.csv and its part in b.csv invalid", s.Total)
	}
	l, err := ledger.OpenReadOnly(t.Context(), h.ledger)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var found []pipeline.Entry
	err = l.Entries(t.Context(), pipeline.Filter{State: pipeline.StateInvalid}, func(e pipeline.Entry) error {
		found = append(found, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 {
		t.Fatalf("%d invalid entries, want the part of SP2 in b.csv: %+v", len(found), found)
	}
	e := found[0]
	refs := refsText(e.Refs)
	if e.Key.EventType != engine.DuplicateEventType || !strings.Contains(refs, "b.csv:2") || !strings.Contains(refs, "a.csv:2") ||
		len(e.Messages) != 1 || !strings.Contains(e.Messages[0].Text, "a.csv:2") || !strings.Contains(e.Messages[0].Text, "SP2") {
		t.Errorf("entry %+v: want SP2's lines in b.csv recorded, naming b.csv:2 and a.csv:2", e)
	}
}

func refsText(refs []pipeline.Ref) string {
	var parts []string
	for _, r := range refs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

func TestRunFatalCredentialsStop(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 30))
	h.token = "wrong-token"
	s, err := h.run(runOpts{})
	if !errors.Is(err, pipeline.ErrFatal) {
		t.Fatalf("err = %v, want ErrFatal", err)
	}
	if strings.Contains(err.Error(), "wrong-token") || strings.Contains(s.Stopped, "wrong-token") {
		t.Fatal("the token appears in the error")
	}
	if n := len(h.sim.Requests()); n > 4 {
		t.Fatalf("%d requests after a 401; want the run to stop at once (at most one per worker)", n)
	}
	if got := h.states(); got[pipeline.StatePending] != 0 || got[pipeline.StateAccepted] != 0 {
		t.Fatalf("ledger states after a 401: %v", got)
	}
	// With the right token the next run sends everything.
	h.token = sim.DefaultAuthToken
	if _, err := h.run(runOpts{}); err != nil {
		t.Fatal(err)
	}
	h.acceptedOnce(ids(1, 30)...)
}

func TestRunStopAndResume(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 60))
	h.sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	ctx, cancel := context.WithCancelCause(t.Context())
	var outcomes atomic.Int64
	s, err := h.run(runOpts{ctx: ctx, onOutcome: func(pipeline.Outcome) {
		if outcomes.Add(1) == 10 {
			cancel(errors.New("deadline reached"))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Stopped != "deadline reached" {
		t.Fatalf("Stopped = %q", s.Stopped)
	}
	if s.Total.Accepted < 10 || s.Total.Accepted >= 60 {
		t.Fatalf("accepted %d before the stop, want some but not all", s.Total.Accepted)
	}
	if s.Total.Accepted+s.Total.Failed+s.Total.Unsent != s.Total.ToSend {
		t.Fatalf("counts do not add up: %+v", s.Total)
	}
	if got := h.states(); got[pipeline.StatePending] != 0 {
		t.Fatalf("pending entries after a clean stop: %v", got)
	}
	// The object was not finished: the next run reads it and sends the rest.
	s, err = h.run(runOpts{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.AlreadySent+s.Total.Accepted != 60 {
		t.Fatalf("resume: %+v", s.Total)
	}
	h.acceptedOnce(ids(1, 60)...)
}

// entries reads the ledger's entries by OrderId.
func (h *harness) entries() map[string]pipeline.Entry {
	h.t.Helper()
	l, err := ledger.OpenReadOnly(h.t.Context(), h.ledger)
	if err != nil {
		h.t.Fatal(err)
	}
	defer l.Close()
	got := map[string]pipeline.Entry{}
	if err := l.Entries(h.t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error { got[e.Key.OrderID] = e; return nil }); err != nil {
		h.t.Fatal(err)
	}
	return got
}

// TestRunStopKeepsUnsentEntries: Run writes an order pending only when its
// request is about to leave; an order that the run did not send, because
// it stopped, keeps the entry it had, or, when it had none, none; nothing
// stays pending.
func TestRunStopKeepsUnsentEntries(t *testing.T) {
	h := newHarness(t)
	h.write("a.csv", orders(1, 60))
	// First run: every request fails (after its retries), so every order
	// has a failed entry of that run.
	h.sim.SetFaults(sim.Faults{ErrorRate: 1})
	if _, err := h.run(runOpts{}); err != nil {
		t.Fatal(err)
	}
	before := h.entries()
	if len(before) != 60 {
		t.Fatalf("%d entries after the first run, want 60", len(before))
	}
	for id, e := range before {
		if e.State != pipeline.StateFailed || e.Attempts == 0 {
			t.Fatalf("%s after the first run: %s with %d attempts, want failed after attempts", id, e.State, e.Attempts)
		}
	}
	// Second run: stopped after a few outcomes, with orders queued for
	// the workers and others not read yet.
	h.sim.SetFaults(sim.Faults{Latency: 20 * time.Millisecond})
	ctx, cancel := context.WithCancelCause(t.Context())
	var outcomes atomic.Int64
	s, err := h.run(runOpts{ctx: ctx, all: true, onOutcome: func(pipeline.Outcome) {
		if outcomes.Add(1) == 5 {
			cancel(errors.New("deadline reached"))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Unsent == 0 || s.Total.Accepted == 0 {
		t.Fatalf("the stop left nothing unsent or sent nothing: %+v", s.Total)
	}
	after := h.entries()
	restored := 0
	for id, e := range after {
		switch e.State {
		case pipeline.StateAccepted:
		case pipeline.StateFailed:
			b := before[id]
			if e.Attempts != b.Attempts || e.RunID != b.RunID || e.MaybeSent != b.MaybeSent || !reflect.DeepEqual(e.Messages, b.Messages) {
				t.Errorf("%s not sent in the second run: entry %+v, want the first run's back: %+v", id, e, b)
			}
			restored++
		default:
			t.Errorf("%s: %s after a clean stop, want accepted or its earlier entry", id, e.State)
		}
	}
	// The orders queued but not sent (Unsent) and those the reading never
	// reached keep the first run's entries.
	if int64(restored) < s.Total.Unsent || restored+int(s.Total.Accepted) != len(after) {
		t.Errorf("%d entries as the first run left them and %d accepted of %d: want every order not sent (%d unsent) as it was",
			restored, s.Total.Accepted, len(after), s.Total.Unsent)
	}

	// A third run, from a fresh ledger, stopped early: new orders that were
	// queued but not sent leave no entry, as if the run had never taken
	// them up.
	h.ledger = filepath.Join(h.dir, "ledger2.db")
	h.write("a.csv", orders(1000, 60))
	ctx, cancel = context.WithCancelCause(t.Context())
	outcomes.Store(0)
	s, err = h.run(runOpts{ctx: ctx, onOutcome: func(pipeline.Outcome) {
		if outcomes.Add(1) == 5 {
			cancel(errors.New("deadline reached"))
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := h.entries()
	for id, e := range got {
		if e.State != pipeline.StateAccepted {
			t.Errorf("%s: %+v after a clean stop, want only the accepted orders in the ledger", id, e)
		}
	}
	if int64(len(got)) != s.Total.Accepted || s.Total.Unsent == 0 {
		t.Errorf("%d entries, %d accepted, %d unsent: want one entry per accepted order, and some unsent", len(got), s.Total.Accepted, s.Total.Unsent)
	}
}

// signalHandler is a slog handler that closes seen the first time a record
// whose message contains want is logged.
type signalHandler struct {
	want string
	once *sync.Once
	seen chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.want) {
		h.once.Do(func() { close(h.seen) })
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// TestRunWaitingOrderIsNotPending: an order is written pending only when
// its request is about to leave, not while it waits for the quota. Before,
// the orders queued behind a closed window were already pending, and a
// crash (kill -9) then made the next run take a duplicate answer for any
// of them as its own acceptance, although no request for them had left.
// Here the ledger is read at the moment a crash would find it: the only
// worker waits for a window that reopens in an hour.
func TestRunWaitingOrderIsNotPending(t *testing.T) {
	h := newHarness(t)
	// The first answer says the window is spent for an hour from now (a
	// quota window of an hour would be aligned to the clock, and may end
	// within the test's deadline).
	h.sim.CloseWindow(time.Hour)
	h.write("a.csv", orders(1, 3))
	waiting := make(chan struct{})
	log := slog.New(signalHandler{want: "quota window closed", once: &sync.Once{}, seen: waiting})
	sink, err := sinks.NewWithCredentials(sinks.Config{BaseURL: h.sim.URL(), Rate: "2000/s", Burst: 1, Workers: 1, MaxAttempts: 3,
		BackoffInitial: time.Millisecond, BackoffMax: 10 * time.Millisecond},
		sinks.Credentials{AccountSID: h.sim.AccountSID(), AuthToken: h.token}, "test", log)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	src, err := sources.New(t.Context(), sources.Config{Location: filepath.Join(h.dir, "export")})
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(t.Context(), h.ledger, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	ctx, cancel := context.WithCancel(t.Context())
	abort := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := engine.Run(ctx, engine.Options{Mode: engine.Send, Source: src, Mapper: h.mapper, Sink: sink, Ledger: led,
			Workers: 1, RunID: "crash", Grace: time.Minute, Abort: abort})
		done <- err
	}()
	select {
	case <-waiting:
	case err := <-done:
		t.Fatalf("the run ended (%v) before waiting for the quota", err)
	}
	got := map[string]pipeline.State{}
	ro, err := ledger.OpenReadOnly(t.Context(), h.ledger)
	if err != nil {
		t.Fatal(err)
	}
	err = ro.Entries(t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error { got[e.Key.OrderID] = e.State; return nil })
	ro.Close()
	cancel()
	close(abort)
	if rerr := <-done; rerr != nil {
		t.Errorf("Run: %v", rerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	received := map[string]bool{}
	for _, r := range h.sim.Requests() {
		received[r.OrderID] = true
	}
	if len(received) != 1 {
		t.Fatalf("the simulator received requests for %v, want one order", received)
	}
	for id, st := range got {
		if !received[id] {
			t.Errorf("ledger while the worker waits for the quota: %s is %s, but no request for it has left (%v)", id, st, got)
		}
	}
}

// TestRunStopsWhenTheQuotaOutlastsTheDeadline: when the quota window
// reopens only after the run's deadline, the run stops at once, as at its
// deadline: the orders left are not sent and not recorded as failed, and
// the summary says why. Before, the send context had no deadline, so the
// sink's early exit never fired and the run sat until the deadline.
func TestRunStopsWhenTheQuotaOutlastsTheDeadline(t *testing.T) {
	h := newHarness(t)
	// The first answer says the window is spent for an hour from now (a
	// quota window of an hour would be aligned to the clock, and may end
	// within the test's deadline).
	h.sim.CloseWindow(time.Hour)
	h.write("a.csv", orders(1, 3))
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	s, err := h.run(runOpts{ctx: ctx, workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Accepted != 1 || s.Total.Failed != 0 || s.Total.Unsent < 1 || !strings.Contains(s.Stopped, "no request before the deadline") {
		t.Fatalf("summary %+v, stopped %q: want 1 accepted, the rest unsent, stopped for the quota", s.Total, s.Stopped)
	}
	if ctx.Err() != nil {
		t.Errorf("the run waited until its deadline")
	}
	got := h.states()
	if got[pipeline.StateAccepted] != 1 || len(got) != 1 {
		t.Errorf("ledger states %v, want only the accepted order", got)
	}
}
