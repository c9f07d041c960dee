package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/group"
)

// objectState tracks one object until all its conversions are answered.
type objectState struct {
	obj         pipeline.Object
	sum         pipeline.ObjectSummary
	outstanding int  // conversions queued or in flight
	readDone    bool // read to its end without a file error
	unfinished  bool // some conversion has no final answer
}

type job struct {
	conv *pipeline.Conversion
	hash string
	// source is the fingerprint of the order's lines, or "" (see
	// prepared.source).
	source string
	prev   *pipeline.Entry
	obj    *objectState
}

type runner struct {
	opt   Options
	log   *slog.Logger
	start time.Time

	mu           sync.Mutex // guards everything below
	objects      []*objectState
	inflight     map[pipeline.Key][]pipeline.Ref // keys queued or being sent, with their refs
	toSend       int64
	sent         int64
	bytesDone    int64
	bytesTotal   int64
	objectsDone  int
	objectsTotal int
	// For the estimate of what is left: rows read so far, the bytes of the
	// objects read to their end and of those left out as unchanged, the
	// bytes read of the object being read, and the rows of the orders
	// decided so far, with what was decided of them.
	rowsRead, rowsDecided   int64
	bytesRead, bytesSkipped int64
	bytesReading            float64
	fc                      forecast
	// readDone is set once reading has ended; readAll when it ended
	// because every object was read (not stopped, not fatal).
	readDone, readAll bool
	fatal             error
	// stopped is why the run stopped before its context ended, when it
	// did (no time left for a request); not an error.
	stopped error

	readCtx  context.Context
	stopRead context.CancelFunc
	sendCtx  context.Context

	// What the run's mode implies, chosen once in newRunner.
	policy policy
	// w is where the run writes: the ledger in Send, nowhere otherwise.
	w writer
	// enqueue takes an order decided for sending: queue in a run that
	// sends, countOnly in a check.
	enqueue func(context.Context, *objectState, prepared, *pipeline.Entry, chan<- job) error
	// fingerprints, when set, fingerprints each order's lines, so that
	// the ledger can learn what each payload was built from: in a run
	// that sends, with a Mapper that can. sources, when set, is the
	// ledger that vouches for the payload of lines by their fingerprint
	// (see prepare), with oldest the oldest EventDate the Mapper takes.
	fingerprints pipeline.Fingerprinter
	sources      pipeline.SourceSettler
	oldest       time.Time
}

// writer is the part of the ledger a run writes.
type writer interface {
	Put(ctx context.Context, e pipeline.Entry) error
	MarkObjectDone(ctx context.Context, o pipeline.Object, runID string) error
}

// noWrites is the writer of a check or a dry run: the ledger is read,
// never written.
type noWrites struct{}

func (noWrites) Put(context.Context, pipeline.Entry) error                     { return nil }
func (noWrites) MarkObjectDone(context.Context, pipeline.Object, string) error { return nil }

// ErrLedgerWrite marks a failed ledger write: the run stops sending, since
// it could no longer record what it sends.
var ErrLedgerWrite = errors.New("ledger write failed")

// Run reads every object of the source, groups its rows into orders, maps
// and checks them, decides with the ledger what to send, sends through the
// sink with the configured workers and records every outcome.
//
// When ctx is done (signal, deadline) Run stops reading, lets in-flight
// sends finish within Grace, records their outcomes and returns the
// summary, with Stopped set from context.Cause(ctx). The returned error is
// non-nil only when the run could not go on: the source could not be
// listed, the ledger could not be written, or the sink reported ErrFatal.
func Run(ctx context.Context, opt Options) (pipeline.Summary, error) {
	r, err := newRunner(opt)
	if err != nil {
		return pipeline.Summary{}, err
	}

	// Sends run on their own context: it outlives ctx by Grace, and Abort
	// or a fatal answer ends it at once. It carries ctx's deadline plus
	// Grace, so that a sink can tell a wait it cannot finish in time.
	sends := context.WithoutCancel(ctx)
	if dl, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		sends, cancel = context.WithDeadline(sends, dl.Add(r.opt.Grace))
		defer cancel()
	}
	sendCtx, cancelSends := context.WithCancel(sends)
	defer cancelSends()
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	r.sendCtx, r.readCtx, r.stopRead = sendCtx, readCtx, stopRead
	go r.watchStop(ctx, cancelSends)

	if n, err := group.RemoveStaleSpills(r.opt.Group.TempDir); err != nil {
		r.log.Warn("cannot remove the temporary files of an earlier run", "err", err)
	} else if n > 0 {
		r.log.Info("removed the temporary files of earlier runs that were killed", "folders", n)
	}
	objs, err := r.opt.Source.Objects(readCtx)
	if err != nil {
		return r.summary(ctx), fmt.Errorf("list source: %w", err)
	}
	r.mu.Lock()
	r.objectsTotal = len(objs)
	for _, o := range objs {
		r.bytesTotal += o.Size
	}
	r.mu.Unlock()

	if err := r.startBatches(readCtx); err != nil {
		r.setFatal(err)
		return r.summary(ctx), err
	}
	jobs := make(chan job, r.opt.Queue)
	senders := r.startSenders(jobs)
	stopProgress := r.startProgress()
	var held []pipeline.Object // held by other runs when the run came to them
	for i := range objs {
		if readCtx.Err() != nil {
			break
		}
		if r.readObject(readCtx, objs[i], jobs) {
			held = append(held, objs[i])
		}
	}
	r.readHeld(readCtx, held, jobs)
	r.mu.Lock()
	r.readDone = true
	r.readAll = readCtx.Err() == nil && r.fatal == nil
	r.mu.Unlock()
	close(jobs)
	senders.Wait()
	r.endBatches(ctx)
	stopProgress()
	return r.summary(ctx), r.fatalErr()
}

// watchStop cancels the sends (cancel) once ctx is done and the grace
// period is over, or at once on Abort; it returns when the sends end.
func (r *runner) watchStop(ctx context.Context, cancel context.CancelFunc) {
	defer cancel()
	select {
	case <-ctx.Done():
	case <-r.opt.Abort:
		r.log.Warn("aborted: cancelling in-flight requests")
		return
	case <-r.sendCtx.Done():
		return
	}
	t := time.NewTimer(r.opt.Grace)
	defer t.Stop()
	select {
	case <-t.C:
		r.log.Warn("grace period over: cancelling in-flight requests", "grace", r.opt.Grace)
	case <-r.opt.Abort:
		r.log.Warn("aborted: cancelling in-flight requests")
	case <-r.sendCtx.Done():
	}
}

// summary builds the run's summary from the objects' counts.
func (r *runner) summary(ctx context.Context) pipeline.Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := pipeline.Summary{RunID: r.opt.RunID, DryRun: r.opt.Mode != Send, Objects: []pipeline.ObjectSummary{}}
	for _, o := range r.objects {
		s.Objects = append(s.Objects, o.sum)
		s.Total.Add(o.sum.Counts)
		if o.sum.Error != "" {
			s.FileErrors++
		}
	}
	switch {
	case r.fatal != nil:
		s.Stopped = "fatal: " + r.fatal.Error()
	case r.stopped != nil:
		s.Stopped = r.stopped.Error()
	case ctx.Err() != nil:
		s.Stopped = context.Cause(ctx).Error()
	}
	s.NotRead = r.notRead()
	s.Seconds = time.Since(r.start).Seconds()
	return s
}

// setFatal stops reading and sending after a fatal error; the first wins.
func (r *runner) setFatal(err error) {
	r.mu.Lock()
	first := r.fatal == nil
	if first {
		r.fatal = err
	}
	r.mu.Unlock()
	if first {
		r.log.Error("stopping the run", "err", err)
	}
	r.stopRead()
}

// stop stops reading and sending because of err: fatal when it is a
// ledger failure (setFatal was called already), otherwise the run's time
// is up; the first reason wins.
func (r *runner) stop(err error) {
	if errors.Is(err, ErrLedgerWrite) {
		r.stopRead()
		return
	}
	r.mu.Lock()
	first := r.stopped == nil && r.fatal == nil
	if first {
		r.stopped = err
	}
	r.mu.Unlock()
	if first {
		r.log.Warn("stopping the run: no time left for a request", "reason", err.Error())
	}
	r.stopRead()
}

func (r *runner) fatalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

// newRunner checks opt, fills in its defaults and chooses what its mode
// implies.
func newRunner(opt Options) (*runner, error) {
	switch {
	case opt.Mode < Check || opt.Mode > Send:
		return nil, fmt.Errorf("engine: unknown mode %s", opt.Mode)
	case opt.Source == nil || opt.Mapper == nil:
		return nil, errors.New("engine: a source and a mapper are required")
	case opt.Mode == Check && opt.Sink != nil:
		return nil, errors.New("engine: a check sends nothing: it takes no sink")
	case opt.Batch != nil && (opt.Mode != Send || opt.Sink != nil):
		return nil, errors.New("engine: batch files are sent in mode send, without a sink")
	case opt.Batch != nil:
		if _, ok := opt.Ledger.(pipeline.BatchLedger); !ok {
			return nil, errNoBatchLedger
		}
	case opt.Mode != Check && opt.Sink == nil:
		return nil, fmt.Errorf("engine: mode %s needs a sink", opt.Mode)
	case opt.Mode == Send && opt.Ledger == nil:
		return nil, errors.New("engine: mode send needs a ledger to record what it sends")
	}
	opt.Group = opt.Group.WithDefaults()
	if opt.Workers <= 0 {
		opt.Workers = 1
	}
	if opt.Queue <= 0 {
		opt.Queue = 4 * opt.Workers
	}
	if opt.Grace <= 0 {
		opt.Grace = 30 * time.Second
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = time.Second
	}
	r := &runner{opt: opt, log: opt.Logger, start: time.Now(), inflight: map[pipeline.Key][]pipeline.Ref{}, fc: newForecast(),
		policy: policy{Mode: opt.Mode, RunID: opt.RunID, RetryRejected: opt.RetryRejected, Window: opt.Events},
		w:      noWrites{}}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	r.enqueue = r.queue
	switch opt.Mode {
	case Check:
		r.enqueue = r.countOnly
	case Send:
		r.w = opt.Ledger
		r.fingerprints, _ = opt.Mapper.(pipeline.Fingerprinter)
	}
	// The shortcut answers "already sent" without the conversion: not
	// when the run's event window needs its EventDate.
	if ss, ok := opt.Ledger.(pipeline.SourceSettler); ok && r.fingerprints != nil && opt.Events.IsZero() {
		r.sources, r.oldest = ss, r.fingerprints.OldestEvent()
	}
	return r, nil
}

func (r *runner) count(o *objectState, f func(c *pipeline.Counts)) {
	r.mu.Lock()
	f(&o.sum.Counts)
	r.mu.Unlock()
}
