package engine

import (
	"fmt"
	"log/slog"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/group"
)

// Options configures Run.
type Options struct {
	// Source and Mapper are required.
	Source pipeline.Source
	Mapper pipeline.Mapper
	// Mode is what the run does with the orders it decides to send: check
	// them only (the zero value), send them to a dry-run sink, or send and
	// record them.
	Mode Mode
	// Sink receives the conversions to send; required by DryRun and Send,
	// and nil in Check.
	Sink pipeline.Sink
	// Batch, when set instead of Sink, sends by batch files (see
	// batch.go): Mode must be Send, and Ledger a pipeline.BatchLedger.
	// BatchStatus, if set, learns impact's outcome of the files uploaded,
	// at the start and the end of the run.
	Batch       pipeline.BatchSink
	BatchStatus pipeline.BatchStatusReader
	// Ledger is consulted for what was sent before and, in Send, written
	// before and after every send (required there). Nil in Check or
	// DryRun: no ledger, everything is new.
	Ledger pipeline.Ledger
	// Claims, when set (a ledger that several runs use at once), is where
	// a run that sends claims each object before it reads it and each
	// order before its first request (see claim.go); nil when the run
	// has its ledger to itself.
	Claims pipeline.Claimer
	// Group configures the grouping of rows into orders.
	Group group.Config
	// Workers is the number of requests the sink keeps in flight (default
	// 1). Run calls Send from sendersPerWorker × Workers goroutines, so
	// that conversions waiting to retry do not hold the others back; the
	// sink bounds its own requests in flight.
	Workers int
	// Queue bounds how many mapped conversions may wait for a worker: how
	// far reading runs ahead of sending (default 4×Workers).
	Queue int
	// All reads every object, even those the ledger has as processed.
	All bool
	// RetryRejected sends again what the API rejected, even unchanged.
	RetryRejected bool
	// Events, when set, selects orders by their EventDate: the others are
	// neither sent nor recorded, only counted (Counts.OutsideWindow).
	Events EventWindow
	// RunID names the run in the ledger.
	RunID string
	// Grace is how long in-flight sends may take to finish once ctx is
	// done (default 30s).
	Grace time.Duration
	// Abort, when closed, cancels in-flight sends at once.
	Abort <-chan struct{}
	// Logger receives the run's log; nil discards it.
	Logger *slog.Logger
	// OnDecision, if set, is called for every order once Run has decided
	// what to do with it, in the order the orders were grouped.
	OnDecision func(Decision)
	// OnRowError, if set, is called for every malformed row, in its place
	// among the orders' decisions, and every object that could not be
	// read. Calls to OnDecision and OnRowError never overlap: they need no
	// locking of their own.
	OnRowError func(pipeline.Message)
	// OnOutcome, if set, is called with every send's outcome, from the
	// worker that sent it.
	OnOutcome func(pipeline.Outcome)
	// OnProgress, if set, is called every ProgressEvery (default 1s) and
	// once at the end.
	OnProgress    func(Progress)
	ProgressEvery time.Duration
}

// Mode is what a run does with the orders it decides to send. The stages
// receive what the mode implies (a ledger writer or none, a queue to the
// sink or a count), chosen once in Run.
type Mode int

// The modes of a run.
const (
	// Check maps and checks every order and decides it against the ledger
	// (validate, plan): nothing is sent, the ledger is not written.
	Check Mode = iota
	// DryRun sends to a dry-run sink, whose outcomes are not final; the
	// ledger, if any, is read and never written.
	DryRun
	// Send sends through the sink and records everything in the ledger.
	Send
)

// String names the mode as the command line does.
func (m Mode) String() string {
	switch m {
	case Check:
		return "check"
	case DryRun:
		return "dry-run"
	case Send:
		return "send"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Action is what Run does with one order.
type Action string

// The actions Run takes on an order.
const (
	// ActionSend: new, failed before, or changed after a rejection.
	ActionSend Action = "send"
	// ActionAlreadySent: final in the ledger with the same payload.
	ActionAlreadySent Action = "already-sent"
	// ActionChanged: accepted before; the payload has changed since.
	ActionChanged Action = "changed"
	// ActionInvalid: failed the mapping's checks.
	ActionInvalid Action = "invalid"
	// ActionOutside: dated outside Options.Events; not recorded.
	ActionOutside Action = "outside-window"
	// ActionSkip: left out by a filter.
	ActionSkip Action = "skip"
	// ActionDuplicate: a key this run took up before (an order's lines in
	// two objects, or apart in a sorted one): the later copy is not sent,
	// and is recorded as invalid under DuplicateEventType, naming both.
	ActionDuplicate Action = "duplicate"
)

// Decision is what Run decided for one order.
type Decision struct {
	Action Action
	// Mapped is the order mapped. An order of a run that sends whose
	// lines the ledger knows by their fingerprint as accepted with their
	// payload (pipeline.SourceSettler) is decided ActionAlreadySent
	// without being mapped: its Conversion holds only the Key, and Body
	// and Hash are empty.
	Mapped pipeline.Mapped
	// Body is the encoded request body of a valid conversion.
	Body string
	// Hash is PayloadHash(Body).
	Hash string
	// Prev is the ledger's entry from before, if there was one.
	Prev *pipeline.Entry
}

// Progress is a snapshot of a running Run.
type Progress struct {
	Elapsed      time.Duration
	ObjectsDone  int
	ObjectsTotal int
	// BytesDone counts the bytes of the objects read to their end;
	// BytesTotal those of every selected object.
	BytesDone, BytesTotal int64
	// ReadDone is true once reading has ended; Exact when it ended
	// because every object was read, so that EstimatedToSend is exact. A
	// run that stopped early has ReadDone without Exact.
	ReadDone, Exact bool
	// Counts so far.
	Counts pipeline.Counts
	// ToSend counts orders decided for sending so far; Sent those with an
	// outcome.
	ToSend, Sent int64
	// EstimatedToSend extrapolates ToSend to the whole export: ToSend,
	// plus the orders to send estimated in the rows not yet decided (see
	// forecast); it is exact once every object was read (Exact).
	EstimatedToSend int64
	// Pace is the sink's pace, if it reports one.
	Pace pipeline.Pace
	// ETA estimates the time left at the current pace; 0 when unknown.
	ETA time.Duration
}

// EventWindow selects orders by their EventDate: at or after Since, before
// Until; a zero bound is open.
type EventWindow struct {
	Since, Until time.Time
}

// IsZero reports whether the window selects every order.
func (w EventWindow) IsZero() bool { return w.Since.IsZero() && w.Until.IsZero() }

// excludes reports whether an order dated t falls outside the window.
func (w EventWindow) excludes(t time.Time) bool {
	return (!w.Since.IsZero() && t.Before(w.Since)) || (!w.Until.IsZero() && !t.Before(w.Until))
}
