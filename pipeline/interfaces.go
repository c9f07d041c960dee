package pipeline

import (
	"context"
	"errors"
	"time"
)

// Source finds the objects of an export and opens them as streams of rows.
// Where the bytes live (local disk, S3) and how they become rows (CSV,
// Parquet) are the implementation's concern. A Source is safe for
// concurrent use.
type Source interface {
	// Objects lists the objects the source selects (its location, glob
	// and date window), sorted by key. An error means the listing itself
	// failed; nothing was selected.
	Objects(ctx context.Context) ([]Object, error)
	// Open opens one object for reading. An error means the object cannot
	// be read at all (missing, unreadable, not of its format): a file
	// error, recorded by the caller, which goes on with the next object.
	// The caller closes the reader.
	Open(ctx context.Context, obj Object) (RowReader, error)
}

// RowReader streams the rows of one object. It is not safe for
// concurrent use.
type RowReader interface {
	// Header returns the object's columns. It is known as soon as the
	// reader is open, before any row is read, so that the mapping can be
	// checked against it.
	Header() *Header
	// Next returns the next row. At the end it returns io.EOF. A *RowError
	// reports one bad row: the caller records it and may call Next again.
	// Any other error ends the object: the caller records it as a file
	// error and stops reading this object.
	Next() (Row, error)
	// Close releases the reader's resources.
	Close() error
}

// Positioner is implemented by a RowReader that can tell how much of its
// object it has read: a fraction from 0 to 1 (bytes of a CSV stream, rows
// of a Parquet file). The engine uses it to estimate what is left of an
// object it is reading.
type Positioner interface {
	Position() float64
}

// Mapper turns the rows of an export into conversions. It is pure: no I/O,
// no context, and safe for concurrent use.
type Mapper interface {
	// CheckHeader returns an error, listing the header's columns, when the
	// mapping names a column the header lacks.
	CheckHeader(obj Object, h *Header) error
	// OrderKey returns the value that the lines of one order share (the
	// configured order-key columns), by which rows are grouped. It is ""
	// when the row's key columns are empty: the grouping then puts the row
	// in the order above it (group.fill_down) or in an order of its own.
	OrderKey(r Row) string
	// Map turns the lines of one order, in source order, into a
	// conversion, or says why it cannot be sent.
	Map(lines []Row) Mapped
}

// Mapped is the result of mapping one order.
type Mapped struct {
	// Conversion is the conversion built. It is never nil; when Problems
	// or Skip is set it carries what could be built (at least Refs, and the
	// Key if the order had one).
	Conversion *Conversion
	// Skip, when not empty, is why a filter left the whole order out.
	Skip string
	// Reversal, when not empty, is the DispositionCode of the filter that
	// left the order out: the mapping marks it as a reversal (cancelled,
	// returned, test, fraud), so an accepted order it leaves out now is
	// to be reversed.
	Reversal string
	// SkippedRows lists the lines a row filter left out, each with its
	// reason in Text; the rest of the order goes on.
	SkippedRows []Message
	// Problems lists every reason the conversion is invalid; when not
	// empty the conversion is never sent.
	Problems []Message
}

// Sink delivers conversions. Retry and rate limiting are its own layers;
// the caller sends one conversion per call, from more goroutines than the
// sink should have requests in flight (so that a conversion waiting to
// retry holds no other back): a Sink bounds its own concurrency. A Sink is
// safe for concurrent use.
type Sink interface {
	// Send submits one conversion and returns its outcome. Every answer,
	// including a rejection, a failure after retries or a cancelled
	// context, is an Outcome with a nil error. An error means the whole
	// run must stop sending (ErrFatal: bad credentials, a token without
	// the scope; ErrOutOfTime: no request can be made before ctx's
	// deadline, and none was); its Outcome is still valid and records the
	// conversion as not accepted.
	Send(ctx context.Context, c *Conversion) (Outcome, error)
}

// Announcer is implemented by sinks that may hold a conversion back
// before its first request (to wait for the quota): the caller learns when
// the request is about to leave, to record then that it may reach the
// API, and not before.
type Announcer interface {
	// SendAnnounced is Send, calling leaving just before the first
	// request for c is made. When leaving returns an error, no request is
	// made: SendAnnounced returns that error (wrapped) and an Outcome that
	// is failed and not sent. leaving is never called when no request is
	// made (the context ended, ErrOutOfTime).
	SendAnnounced(ctx context.Context, c *Conversion, leaving func() error) (Outcome, error)
}

// Pacer is implemented by sinks that pace their sending. Progress reports
// use it for the rate and the ETA.
type Pacer interface {
	// Pace returns the sink's current pace.
	Pace() Pace
}

// Pace describes how fast a sink can send now.
type Pace struct {
	// PerSecond is the configured or server-announced rate.
	PerSecond float64
	// WaitingUntil, when not zero, is when the server's closed quota
	// window reopens; nothing is sent before then.
	WaitingUntil time.Time
}

// ErrFatal marks an error that must stop the run: every further request
// would fail the same way (bad credentials, a missing scope).
var ErrFatal = errors.New("fatal")

// ErrOutOfTime marks a send that was not made because no request can be
// made before the send context's deadline (the quota window reopens
// after it). It is no failure of the conversion: the run stops as at its
// deadline, and the next run sends it.
var ErrOutOfTime = errors.New("the quota allows no request before the deadline")

// ErrLocked is returned when another run holds the ledger's lock.
var ErrLocked = errors.New("ledger is locked by another run")

// Entry is the ledger's record of one conversion key.
type Entry struct {
	// Key is the conversion's identity; Key.String() is the ledger's key.
	Key Key `json:"key"`
	// State is the current state.
	State State `json:"state"`
	// PayloadHash is the PayloadHash of the body last built for the key.
	PayloadHash string `json:"payload_hash,omitempty"`
	// SentHash is the PayloadHash of the body the API accepted or
	// rejected, kept when a later run finds the payload changed.
	SentHash string `json:"sent_hash,omitempty"`
	// Attempts counts every request ever made for the key, over all runs.
	Attempts int `json:"attempts"`
	// HTTPStatus is the status of the last answer.
	HTTPStatus int `json:"http_status,omitempty"`
	// Messages are the last messages: the API's, validation's or the
	// skip reason.
	Messages []Message `json:"messages,omitempty"`
	// SubmissionID and QueuedURI come from the API's QUEUED answer.
	SubmissionID string `json:"submission_id,omitempty"`
	QueuedURI    string `json:"queued_uri,omitempty"`
	// MaybeSent is set when an attempt may have reached the server
	// without its answer reaching us.
	MaybeSent bool `json:"maybe_sent,omitempty"`
	// Refs are the source rows the conversion was built from.
	Refs []Ref `json:"refs,omitempty"`
	// RunID is the run that last wrote the entry.
	RunID string `json:"run_id"`
	// Created and Updated are when the entry was first and last written.
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	// CampaignID and EventDate are the CampaignId and EventDate of the
	// accepted send, and AcceptedAt when it was accepted (kept by later
	// writes): what reconciling plans its listings by.
	CampaignID string    `json:"campaign_id,omitempty"`
	EventDate  time.Time `json:"event_date,omitzero"`
	AcceptedAt time.Time `json:"accepted_at,omitzero"`
	// Reconciled is what the last reconcile learned; nil before any.
	Reconciled *Reconciliation `json:"reconciled,omitempty"`
	// Source, when the run that built PayloadHash knew it, says what the
	// payload was built from: the Fingerprinter's fingerprint of the
	// order's lines and mapping, bound to the payload (SourceFor). A rerun
	// that finds the same fingerprint knows the payload without mapping
	// the lines again (SourceSettler). A later write that changes
	// PayloadHash without it leaves a Source that no longer matches, which
	// is then ignored.
	Source string `json:"source,omitempty"`
}

// SourceFor is the Entry.Source of a payload hash built from lines whose
// fingerprint is fp: the fingerprint, a slash and the first 16 hex digits
// of the payload hash. It is "" when either is missing.
func SourceFor(fp, payloadHash string) string {
	if fp == "" || len(payloadHash) < 16 {
		return ""
	}
	return fp + "/" + payloadHash[:16]
}

// Filter selects ledger entries; zero fields select everything.
type Filter struct {
	State State
	RunID string
	// OrderID selects the entries of one order, of any event type.
	OrderID string
}

// RunInfo describes one run of convpipe in the ledger.
type RunInfo struct {
	ID       string    `json:"id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Args is the command line, with secrets redacted.
	Args string `json:"args,omitempty"`
	// Summary is the run's summary, set when it finishes.
	Summary *Summary `json:"summary,omitempty"`
}

// Ledger is the durable record of every conversion, every processed object
// and every run. It belongs to the pipeline: sinks report, the pipeline
// records. Every write is durable when the call returns. A Ledger is safe
// for concurrent use. Opening one takes its lock; a second opener gets
// ErrLocked.
type Ledger interface {
	// BeginRun records the start of a run.
	BeginRun(ctx context.Context, run RunInfo) error
	// FinishRun records the end of a run and its summary.
	FinishRun(ctx context.Context, run RunInfo) error
	// Get returns the entry of key, and false when there is none.
	Get(ctx context.Context, key Key) (Entry, bool, error)
	// Put inserts or replaces the entry of e.Key.
	Put(ctx context.Context, e Entry) error
	// Entries calls fn for each entry that f selects, in key order, until
	// fn returns an error, which Entries returns.
	Entries(ctx context.Context, f Filter, fn func(Entry) error) error
	// ObjectDone reports whether obj was fully processed before, with the
	// same key, ETag and size.
	ObjectDone(ctx context.Context, obj Object) (bool, error)
	// MarkObjectDone records obj as fully processed by run.
	MarkObjectDone(ctx context.Context, obj Object, runID string) error
	// Close releases the lock and closes the ledger.
	Close() error
}

// Settler is implemented by ledgers that can tell cheaply, without reading
// the whole entry, whether a key is final with a given payload hash. Run
// uses it, when the ledger has it, for every order of a rerun.
type Settler interface {
	// Settled reports whether key is in a final state with exactly this
	// payload hash, and which state. False means "ask Get".
	Settled(ctx context.Context, key Key, payloadHash string) (State, bool, error)
}

// A Fingerprinter (a Mapper) tells whether the lines of an order are those
// it mapped before, without mapping them: a rerun of an unchanged export
// then skips the mapping, encoding and hashing of every order it sent.
type Fingerprinter interface {
	// Fingerprint returns a digest of the lines (every value, null and
	// column name, in order) and of the mapping itself, as hex; the same
	// lines under the same mapping give the same fingerprint, wherever
	// they are read from. key is the key Map would most likely give the
	// lines, read without mapping them: only a ledger entry of that key
	// whose Source holds fp vouches for it.
	Fingerprint(lines []Row) (key Key, fp string)
	// OldestEvent is the oldest EventDate Map accepts now (its
	// max_event_age), or zero when it accepts any.
	OldestEvent() time.Time
}

// SourceSettler is implemented by ledgers that can tell cheaply whether
// a key was accepted with a payload built from lines of a given
// fingerprint (Entry.Source).
type SourceSettler interface {
	// SettledSource reports whether key is accepted (or tracked or not
	// tracked since) with the payload that lines of fingerprint fp were
	// mapped to, and which state; when oldest is not zero, also that the
	// accepted EventDate is not before it. False means "map the lines".
	SettledSource(ctx context.Context, key Key, fp string, oldest time.Time) (State, bool, error)
}
