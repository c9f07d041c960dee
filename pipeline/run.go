package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Options configures Run.
type Options struct {
	// Source and Mapper are required.
	Source Source
	Mapper Mapper
	// Sink receives the conversions to send. Nil maps and checks only
	// (validate, plan): nothing is sent and the ledger is not written.
	Sink Sink
	// Ledger is consulted for what was sent before and, unless DryRun or
	// Sink is nil, written before and after every send. Nil: no ledger.
	Ledger Ledger
	// DryRun reads the ledger but never writes it; the Sink is a dry-run
	// sink whose outcomes are not final.
	DryRun bool
	// Group configures the grouping of rows into orders.
	Group GroupConfig
	// Workers is the number of concurrent sends (default 1).
	Workers int
	// Queue bounds how many mapped conversions may wait for a worker: how
	// far reading runs ahead of sending (default 4×Workers).
	Queue int
	// All reads every object, even those the ledger has as processed.
	All bool
	// RetryRejected sends again what the API rejected, even unchanged.
	RetryRejected bool
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
	OnRowError func(Message)
	// OnOutcome, if set, is called with every send's outcome, from the
	// worker that sent it.
	OnOutcome func(Outcome)
	// OnProgress, if set, is called every ProgressEvery (default 1s) and
	// once at the end.
	OnProgress    func(Progress)
	ProgressEvery time.Duration
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
	// ActionSkip: left out by a filter.
	ActionSkip Action = "skip"
	// ActionDuplicate: the same key twice in one run; the second is invalid.
	ActionDuplicate Action = "duplicate"
)

// Decision is what Run decided for one order.
type Decision struct {
	Action Action
	Mapped Mapped
	// Body is the encoded request body of a valid conversion.
	Body string
	// Hash is PayloadHash(Body).
	Hash string
	// Prev is the ledger's entry from before, if there was one.
	Prev *Entry
}

// Progress is a snapshot of a running Run.
type Progress struct {
	Elapsed      time.Duration
	ObjectsDone  int
	ObjectsTotal int
	// BytesDone counts the bytes of the objects read to their end;
	// BytesTotal those of every selected object.
	BytesDone, BytesTotal int64
	// ReadDone is true once reading has ended.
	ReadDone bool
	// Counts so far.
	Counts Counts
	// ToSend counts orders decided for sending so far; Sent those with an
	// outcome.
	ToSend, Sent int64
	// EstimatedToSend extrapolates ToSend to the whole export, from the
	// share of orders to send among the rows decided so far and the rows
	// and bytes still to come; it is exact once every order is decided.
	EstimatedToSend int64
	// Pace is the sink's pace, if it reports one.
	Pace Pace
	// ETA estimates the time left at the current pace; 0 when unknown.
	ETA time.Duration
}

// objectState tracks one object until all its conversions are answered.
type objectState struct {
	obj         Object
	sum         ObjectSummary
	outstanding int  // conversions queued or in flight
	readDone    bool // read to its end without a file error
	unfinished  bool // some conversion has no final answer
}

type job struct {
	conv *Conversion
	hash string
	prev *Entry
	obj  *objectState
	// staged is set once the stage wrote the job's pending entry, which
	// is then pending.
	staged  bool
	pending Entry
}

type runner struct {
	opt   Options
	log   *slog.Logger
	start time.Time

	mu           sync.Mutex // guards everything below
	objects      []*objectState
	inflight     map[Key]bool // keys queued or being sent
	toSend       int64
	sent         int64
	bytesDone    int64
	bytesTotal   int64
	objectsDone  int
	objectsTotal int
	// For the estimate of what is left: rows read so far, the bytes of the
	// objects read to their end and of those left out as unchanged, and
	// the rows of the orders decided so far.
	rowsRead, rowsDecided   int64
	bytesRead, bytesSkipped int64
	readDone                bool
	fatal                   error

	readCtx  context.Context
	stopRead context.CancelFunc
	sendCtx  context.Context
	// batch is the ledger as a BatchLedger, when the run writes the
	// ledger and the ledger is one.
	batch BatchLedger
}

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
func Run(ctx context.Context, opt Options) (Summary, error) {
	if opt.Source == nil || opt.Mapper == nil {
		return Summary{}, errors.New("pipeline: a source and a mapper are required")
	}
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
	r := &runner{opt: opt, log: opt.Logger, start: time.Now(), inflight: map[Key]bool{}}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	// Sends run on their own context: it outlives ctx by Grace, and Abort
	// or a fatal answer ends it at once.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	r.sendCtx = sendCtx
	readCtx, stopRead := context.WithCancel(ctx)
	defer stopRead()
	r.readCtx, r.stopRead = readCtx, stopRead
	go func() {
		defer cancelSends()
		select {
		case <-ctx.Done():
		case <-opt.Abort:
			r.log.Warn("aborted: cancelling in-flight requests")
			return
		case <-sendCtx.Done():
			return
		}
		t := time.NewTimer(opt.Grace)
		defer t.Stop()
		select {
		case <-t.C:
			r.log.Warn("grace period over: cancelling in-flight requests", "grace", opt.Grace)
		case <-opt.Abort:
			r.log.Warn("aborted: cancelling in-flight requests")
		case <-sendCtx.Done():
		}
	}()

	if n, err := RemoveStaleSpills(opt.Group.TempDir); err != nil {
		r.log.Warn("cannot remove the temporary files of an earlier run", "err", err)
	} else if n > 0 {
		r.log.Info("removed the temporary files of earlier runs that were killed", "folders", n)
	}

	objs, err := opt.Source.Objects(readCtx)
	if err != nil {
		return r.summary(ctx), fmt.Errorf("list source: %w", err)
	}
	r.mu.Lock()
	r.objectsTotal = len(objs)
	for _, o := range objs {
		r.bytesTotal += o.Size
	}
	r.mu.Unlock()

	jobs := make(chan job, opt.Queue)
	var wg sync.WaitGroup
	if opt.Sink != nil {
		ready := (<-chan job)(jobs)
		if bl, ok := opt.Ledger.(BatchLedger); ok && r.writes() {
			r.batch = bl
			n := r.stageSize()
			staged := make(chan job, n)
			wg.Go(func() { r.stage(jobs, staged, n) })
			ready = staged
		}
		for range opt.Workers {
			wg.Go(func() {
				for j := range ready {
					r.send(j)
				}
			})
		}
	}
	progressDone := make(chan struct{})
	var pwg sync.WaitGroup
	if opt.OnProgress != nil {
		pwg.Go(func() { r.progressLoop(progressDone) })
	}

	for i := range objs {
		if readCtx.Err() != nil {
			break
		}
		r.readObject(readCtx, objs[i], jobs)
	}
	r.mu.Lock()
	r.readDone = true
	r.mu.Unlock()
	close(jobs)
	wg.Wait()
	close(progressDone)
	pwg.Wait()
	if opt.OnProgress != nil {
		opt.OnProgress(r.progress())
	}
	return r.summary(ctx), r.fatalErr()
}

// summary builds the run's summary from the objects' counts.
func (r *runner) summary(ctx context.Context) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{RunID: r.opt.RunID, DryRun: r.opt.DryRun || r.opt.Sink == nil, Objects: []ObjectSummary{}}
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
	case ctx.Err() != nil:
		s.Stopped = context.Cause(ctx).Error()
	}
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

func (r *runner) fatalErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal
}

// writes reports whether the run records its work in the ledger.
func (r *runner) writes() bool {
	return r.opt.Ledger != nil && r.opt.Sink != nil && !r.opt.DryRun
}

func (r *runner) count(o *objectState, f func(c *Counts)) {
	r.mu.Lock()
	f(&o.sum.Counts)
	r.mu.Unlock()
}

// put writes e to the ledger; a failure is fatal for the run.
func (r *runner) put(e Entry) bool {
	if !r.writes() {
		return true
	}
	// A write must not be lost to a cancelled run: use the send context,
	// which lives until the grace period ends.
	if err := r.opt.Ledger.Put(context.WithoutCancel(r.sendCtx), r.stamp(e)); err != nil {
		r.setFatal(fmt.Errorf("%w: %s: %w", ErrLedgerWrite, e.Key, err))
		return false
	}
	return true
}

// stamp sets the times and the run of an entry about to be written.
func (r *runner) stamp(e Entry) Entry {
	now := time.Now().UTC()
	if e.Created.IsZero() {
		e.Created = now
	}
	e.Updated = now
	e.RunID = r.opt.RunID
	return e
}

// stageSize is how many sends the stage writes pending in one
// transaction: a tenth of a second of the sink's pace, at least one per
// worker, at most 256.
func (r *runner) stageSize() int {
	n := r.opt.Workers
	most := max(256, r.opt.Workers)
	if pc, ok := r.opt.Sink.(Pacer); ok {
		// An unlimited pace is a huge float: compare before converting.
		if tenth := math.Ceil(pc.Pace().PerSecond / 10); tenth > float64(n) {
			n = int(min(tenth, float64(most)))
		}
	}
	return min(n, most)
}

// stage writes the pending entries of the jobs waiting to be sent a batch
// at a time, each batch in one transaction, and hands the jobs on to the
// workers. Between a batch's write and the workers' sends, its entries
// are pending without having been sent: a job that the run then does not
// send gets its earlier entry back (see unstage); after a crash the next
// run settles them as possibly sent.
func (r *runner) stage(jobs <-chan job, ready chan<- job, size int) {
	defer close(ready)
	batch := make([]job, 0, size)
	es := make([]Entry, 0, size)
	for j := range jobs {
		batch = append(batch[:0], j)
	fill:
		for len(batch) < size {
			select {
			case j, ok := <-jobs:
				if !ok {
					break fill
				}
				batch = append(batch, j)
			default:
				break fill
			}
		}
		if r.readCtx.Err() == nil {
			es = es[:0]
			for i := range batch {
				batch[i].pending = r.stamp(pendingEntry(batch[i]))
				es = append(es, batch[i].pending)
			}
			if err := r.batch.PutAll(context.WithoutCancel(r.sendCtx), es); err != nil {
				r.setFatal(fmt.Errorf("%w: %s: %w", ErrLedgerWrite, es[0].Key, err))
			} else {
				for i := range batch {
					batch[i].staged = true
				}
			}
		}
		for _, j := range batch {
			ready <- j
		}
		clear(batch)
	}
}

// pendingEntry is j's entry while it is being sent.
func pendingEntry(j job) Entry {
	e := Entry{Key: j.conv.Key, Refs: j.conv.Refs}
	if j.prev != nil {
		e = *j.prev
		e.Refs = j.conv.Refs
	}
	e.State, e.PayloadHash = StatePending, j.hash
	return e
}

// unstage puts back the entry a staged job had before the stage wrote it
// pending, since the run stopped before sending it; a key new to the
// ledger is deleted again. Either way the ledger is as if the run had
// never taken the order up, and the next run sends it.
func (r *runner) unstage(j job) {
	ctx := context.WithoutCancel(r.sendCtx)
	var err error
	if j.prev != nil {
		// Written as it was: its run, times and state are the earlier
		// run's.
		err = r.opt.Ledger.Put(ctx, *j.prev)
	} else {
		err = r.batch.Delete(ctx, j.conv.Key)
	}
	if err != nil {
		r.setFatal(fmt.Errorf("%w: %s: %w", ErrLedgerWrite, j.conv.Key, err))
	}
}

func (r *runner) readObject(ctx context.Context, obj Object, jobs chan<- job) {
	o := &objectState{obj: obj, sum: ObjectSummary{Key: obj.Key}}
	if !r.opt.All && r.opt.Ledger != nil {
		done, err := r.opt.Ledger.ObjectDone(ctx, obj)
		if err != nil {
			r.setFatal(fmt.Errorf("ledger: %s: %w", obj.Key, err))
			return
		}
		if done {
			o.sum.Unchanged = true
			r.mu.Lock()
			r.bytesSkipped += obj.Size
			r.objects = append(r.objects, o)
			r.objectsDone++
			r.bytesDone += obj.Size
			r.mu.Unlock()
			return
		}
	}
	r.mu.Lock()
	r.objects = append(r.objects, o)
	o.outstanding++ // held by the reader until the object is read
	r.mu.Unlock()

	ok := r.readRows(ctx, o, jobs)

	r.mu.Lock()
	o.readDone = ok
	r.objectsDone++
	r.bytesDone += obj.Size
	r.mu.Unlock()
	r.release(o, false)
}

// fileError records that obj could not be read (or read to its end).
func (r *runner) fileError(o *objectState, err error) {
	// The ref names the object; the text need not say it again.
	msg := Message{Text: strings.TrimPrefix(err.Error(), o.obj.Key+": "), Refs: []Ref{{Object: o.obj.Key}}}
	r.mu.Lock()
	o.sum.Error = err.Error()
	r.mu.Unlock()
	r.log.Error("cannot read object", "object", o.obj.Key, "err", err)
	if r.opt.OnRowError != nil {
		r.opt.OnRowError(msg)
	}
	r.put(Entry{Key: Key{EventType: "!file", OrderID: o.obj.Key}, State: StateInvalid, Messages: []Message{msg}, Refs: msg.Refs})
}

// readRows reads, groups, maps and decides the orders of one object. It
// reports whether the object was read to its end.
func (r *runner) readRows(ctx context.Context, o *objectState, jobs chan<- job) bool {
	rr, err := r.opt.Source.Open(ctx, o.obj)
	if err != nil {
		if ctx.Err() == nil {
			r.fileError(o, err)
		}
		return false
	}
	defer rr.Close()
	if rr.Header().Len() == 0 {
		return true // an empty object: zero rows, not an error
	}
	if err := r.opt.Mapper.CheckHeader(o.obj, rr.Header()); err != nil {
		r.fileError(o, err)
		return false
	}
	pipe := r.newOrderPipe(ctx, o, jobs)
	defer pipe.close()
	g := NewGrouper(r.opt.Group, r.opt.Mapper.OrderKey, pipe.order)
	defer g.Close()
	var rows, rowErrs int64
	flush := func() {
		r.count(o, func(c *Counts) { c.Rows += rows; c.RowErrors += rowErrs; r.rowsRead += rows })
		rows, rowErrs = 0, 0
	}
	defer flush()
	for {
		if rows&1023 == 0 && ctx.Err() != nil {
			return false
		}
		row, err := rr.Next()
		if err == io.EOF {
			flush()
			r.mu.Lock()
			r.bytesRead += o.obj.Size
			r.mu.Unlock()
			break
		}
		var re *RowError
		if errors.As(err, &re) {
			rowErrs++
			pipe.rowError(re)
			continue
		}
		// A file error is reported once the orders before it are decided.
		if err != nil {
			pipe.close()
			if ctx.Err() == nil {
				r.fileError(o, err)
			}
			return false
		}
		rows++
		if err := g.Add(row); err != nil {
			pipe.close()
			if ctx.Err() == nil && r.fatalErr() == nil {
				r.fileError(o, err)
			}
			return false
		}
		if rows >= 4096 {
			flush()
		}
	}
	if err := g.Flush(); err != nil {
		pipe.close()
		if ctx.Err() == nil && r.fatalErr() == nil {
			r.fileError(o, err)
		}
		return false
	}
	if err := pipe.close(); err != nil {
		return false
	}
	return ctx.Err() == nil && r.fatalErr() == nil
}

// The orders of an object are mapped, encoded and hashed (prepare) on up
// to GOMAXPROCS goroutines, in batches, while one goroutine decides them
// (order) one at a time, in the order the Grouper handed them out: a run
// is not held to one core's mapping speed, and every decision, ledger
// write and callback still happens in source order, never two at once.
// With one core everything happens on the reading goroutine, as before.
const (
	// pipeBatchLen is how many orders a batch holds.
	pipeBatchLen = 64
	// pipeBatchAge is how long a batch waits for more orders, at most
	// until the next order comes.
	pipeBatchAge = 50 * time.Millisecond
)

// orderPipe takes the orders and malformed rows of one object from the
// reading goroutine to the deciding one.
type orderPipe struct {
	r    *runner
	ctx  context.Context
	o    *objectState
	jobs chan<- job

	// Nil work: decide on the calling goroutine.
	work    chan *pipeBatch
	ordered chan *pipeBatch
	cur     *pipeBatch
	workers sync.WaitGroup
	decided chan struct{}
	closed  bool

	mu  sync.Mutex
	err error // the first error of a decision: the run is stopping
}

// pipeBatch is a batch of orders and malformed rows, in source order.
type pipeBatch struct {
	items []pipeItem
	start time.Time
	ready chan struct{} // closed once every order is prepared
}

type pipeItem struct {
	lines  []Row
	rowErr *RowError
	p      prepared
}

// prepared is one order mapped and, when valid, encoded and hashed: the
// part of deciding it that needs neither the ledger nor the run's state.
type prepared struct {
	m     Mapped
	key   Key
	valid bool
	body  string
	hash  string
	lines int
}

// prepare maps the lines of one order; a valid conversion is encoded and
// hashed.
func (r *runner) prepare(lines []Row) prepared {
	m := r.opt.Mapper.Map(lines)
	c := m.Conversion
	if c == nil {
		c = &Conversion{}
		m.Conversion = c
	}
	if len(c.Refs) == 0 {
		for _, l := range lines {
			c.Refs = append(c.Refs, l.Ref())
		}
	}
	p := prepared{m: m, key: c.Key, lines: len(lines)}
	if p.key.OrderID == "" || p.key.EventType == "" {
		// Without a key the order cannot be sent or found again: record it
		// under where it came from.
		p.key = Key{EventType: "!order", OrderID: c.Refs[0].String()}
	}
	p.valid = len(m.Problems) == 0 && m.Skip == ""
	if p.valid {
		p.body = c.Encode()
		p.hash = PayloadHash(p.body)
	}
	return p
}

func (r *runner) newOrderPipe(ctx context.Context, o *objectState, jobs chan<- job) *orderPipe {
	p := &orderPipe{r: r, ctx: ctx, o: o, jobs: jobs}
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return p
	}
	p.work = make(chan *pipeBatch, 2*n)
	p.ordered = make(chan *pipeBatch, 2*n)
	p.decided = make(chan struct{})
	for range n {
		p.workers.Go(func() {
			for b := range p.work {
				for i := range b.items {
					if it := &b.items[i]; it.lines != nil {
						it.p, it.lines = r.prepare(it.lines), nil
					}
				}
				close(b.ready)
			}
		})
	}
	go func() {
		defer close(p.decided)
		for b := range p.ordered {
			<-b.ready
			for i := range b.items {
				if p.failed() != nil {
					break // drain: the reader stops at its next order
				}
				if err := p.decide(&b.items[i]); err != nil {
					p.mu.Lock()
					p.err = err
					p.mu.Unlock()
				}
			}
		}
	}()
	return p
}

// order takes the lines of one order; it is the Grouper's emit function.
// An error means the run is stopping.
func (p *orderPipe) order(lines []Row) error {
	if p.work == nil {
		return p.r.order(p.ctx, p.o, p.r.prepare(lines), p.jobs)
	}
	if err := p.failed(); err != nil {
		return err
	}
	p.add(pipeItem{lines: lines})
	return nil
}

// rowError reports a malformed row in its place among the orders.
func (p *orderPipe) rowError(re *RowError) {
	if p.work == nil {
		p.r.rowError(re)
		return
	}
	p.add(pipeItem{rowErr: re})
}

func (p *orderPipe) add(it pipeItem) {
	if p.cur == nil {
		p.cur = &pipeBatch{items: make([]pipeItem, 0, pipeBatchLen), start: time.Now(), ready: make(chan struct{})}
	}
	p.cur.items = append(p.cur.items, it)
	if len(p.cur.items) >= pipeBatchLen || time.Since(p.cur.start) >= pipeBatchAge {
		p.submit()
	}
}

// submit hands the current batch to the workers and, in order, to the
// deciding goroutine; it blocks while decisions are behind (the queue to
// the sink is full).
func (p *orderPipe) submit() {
	b := p.cur
	p.cur = nil
	p.ordered <- b
	p.work <- b
}

func (p *orderPipe) decide(it *pipeItem) error {
	if it.rowErr != nil {
		p.r.rowError(it.rowErr)
		return nil
	}
	return p.r.order(p.ctx, p.o, it.p, p.jobs)
}

func (p *orderPipe) failed() error {
	if p.work == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// close hands over the last batch, waits until everything handed over is
// decided and returns the first error of a decision. It may be called
// more than once.
func (p *orderPipe) close() error {
	if p.work == nil || p.closed {
		return p.failed()
	}
	p.closed = true
	if p.cur != nil {
		p.submit()
	}
	close(p.ordered)
	close(p.work)
	<-p.decided
	p.workers.Wait()
	return p.failed()
}

func (r *runner) rowError(re *RowError) {
	msg := Message{Field: re.Field, Text: re.Err.Error(), Refs: []Ref{re.Ref}}
	r.log.Warn("bad row", "ref", re.Ref.String(), "field", re.Field, "err", re.Err.Error())
	if r.opt.OnRowError != nil {
		r.opt.OnRowError(msg)
	}
	r.put(Entry{Key: Key{EventType: "!row", OrderID: re.Ref.String()}, State: StateInvalid, Messages: []Message{msg}, Refs: msg.Refs})
}

// order decides what to do with one grouped, prepared order and queues it
// for sending if it is to be sent. An error stops the reading of the
// object.
func (r *runner) order(ctx context.Context, o *objectState, p prepared, jobs chan<- job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m, c, key := p.m, p.m.Conversion, p.key
	d := Decision{Mapped: m}
	if p.valid {
		d.Body, d.Hash = p.body, p.hash
		// A rerun asks this of every order: answer it from the ledger's
		// index when it has one, without reading the whole entry.
		if st, ok := r.settled(ctx, key, d.Hash); ok {
			d.Action = ActionAlreadySent
			if st == StateChanged {
				d.Action = ActionChanged
			}
			if r.opt.OnDecision != nil {
				r.opt.OnDecision(d)
			}
			delta := Counts{AlreadySent: 1}
			if d.Action == ActionChanged {
				delta = Counts{Changed: 1}
			}
			r.tally(o, p, delta)
			return nil
		}
	}
	var prev *Entry
	if r.opt.Ledger != nil {
		e, found, err := r.opt.Ledger.Get(ctx, key)
		if err != nil {
			r.setFatal(fmt.Errorf("ledger: get %s: %w", key, err))
			return err
		}
		if found {
			prev = &e
		}
	}
	d.Prev = prev
	r.mu.Lock()
	dup := r.inflight[key] || (prev != nil && prev.RunID == r.opt.RunID && r.writes())
	r.mu.Unlock()

	switch {
	case len(m.Problems) > 0:
		d.Action = ActionInvalid
	case m.Skip != "":
		d.Action = ActionSkip
	case dup:
		d.Action = ActionDuplicate
	default:
		d.Action = decideSend(prev, d.Hash, r.opt.RetryRejected)
	}
	if r.opt.OnDecision != nil {
		r.opt.OnDecision(d)
	}

	final := prev != nil && (prev.State == StateAccepted || prev.State == StateChanged)
	base := Entry{Key: key, Refs: c.Refs}
	if prev != nil {
		base = *prev
		base.Refs = c.Refs
	}
	switch d.Action {
	case ActionInvalid:
		r.tally(o, p, Counts{Invalid: 1})
		if final {
			// Never overwrite an accepted order's record; report only.
			r.log.Warn("order accepted before is now invalid", "key", key.String(), "problems", len(m.Problems))
			return nil
		}
		e := base
		e.State, e.Messages = StateInvalid, m.Problems
		r.put(e)
	case ActionSkip:
		r.tally(o, p, Counts{Skipped: 1})
		if final {
			return nil
		}
		e := base
		e.State, e.Messages = StateSkipped, []Message{{Text: m.Skip}}
		r.put(e)
	case ActionDuplicate:
		r.tally(o, p, Counts{Invalid: 1})
		msg := Message{Field: "OrderId", Text: "the same order key occurs twice in this run; this copy is not sent", Refs: c.Refs}
		r.log.Warn("duplicate order key", "key", key.String(), "refs", refsString(c.Refs))
		if r.opt.OnRowError != nil {
			r.opt.OnRowError(msg)
		}
	case ActionAlreadySent:
		r.tally(o, p, Counts{AlreadySent: 1})
		if prev.State == StateChanged {
			// The payload is back to what was accepted.
			e := base
			e.State, e.PayloadHash = StateAccepted, d.Hash
			r.put(e)
		}
	case ActionChanged:
		r.tally(o, p, Counts{Changed: 1})
		if prev.State != StateChanged || prev.PayloadHash != d.Hash {
			e := base
			if e.SentHash == "" {
				e.SentHash = prev.PayloadHash
			}
			e.State, e.PayloadHash = StateChanged, d.Hash
			e.Messages = []Message{{Text: "accepted earlier with a different payload; needs a correction (PUT/DELETE Actions), not a new conversion"}}
			r.put(e)
		}
	case ActionSend:
		r.tally(o, p, Counts{ToSend: 1})
		if r.opt.Sink == nil {
			r.mu.Lock()
			r.toSend++
			r.mu.Unlock()
			return nil
		}
		r.mu.Lock()
		r.inflight[key] = true
		o.outstanding++
		r.toSend++
		r.mu.Unlock()
		c.Key = key
		c.MaybeSent = prev != nil && (prev.State == StatePending || prev.MaybeSent)
		select {
		case jobs <- job{conv: c, hash: d.Hash, prev: prev, obj: o}:
		case <-ctx.Done():
			r.mu.Lock()
			delete(r.inflight, key)
			o.sum.Unsent++
			r.mu.Unlock()
			r.release(o, true)
			return ctx.Err()
		}
	}
	if r.fatalErr() != nil {
		return r.fatalErr()
	}
	return nil
}

// tally counts one decided order of o: delta, plus the order itself and
// the rows a filter left out of it.
func (r *runner) tally(o *objectState, p prepared, delta Counts) {
	delta.Orders = 1
	delta.SkippedRows = int64(len(p.m.SkippedRows))
	r.mu.Lock()
	o.sum.Counts.Add(delta)
	r.rowsDecided += int64(p.lines)
	r.mu.Unlock()
}

// settled reports, from a ledger that implements Settler, whether key is
// final with this payload and needs nothing more: accepted (or changed and
// still reported), or rejected unless rejected ones are retried.
func (r *runner) settled(ctx context.Context, key Key, hash string) (State, bool) {
	st, ok := r.opt.Ledger.(Settler)
	if !ok {
		return "", false
	}
	state, found, err := st.Settled(ctx, key, hash)
	if err != nil || !found {
		return "", false // Get decides, and reports a failing ledger
	}
	switch state {
	case StateAccepted, StateChanged:
		return state, true
	case StateRejected:
		return state, !r.opt.RetryRejected
	}
	return "", false
}

// decideSend decides for a valid conversion with the given payload hash.
func decideSend(prev *Entry, hash string, retryRejected bool) Action {
	if prev == nil {
		return ActionSend
	}
	switch prev.State {
	case StateAccepted:
		if prev.PayloadHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case StateChanged:
		if prev.SentHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case StateRejected:
		if prev.PayloadHash == hash && !retryRejected {
			return ActionAlreadySent
		}
		return ActionSend
	}
	return ActionSend // pending, failed, invalid, skipped
}

// send sends one conversion, recording it before and after.
func (r *runner) send(j job) {
	key := j.conv.Key
	defer func() {
		r.mu.Lock()
		delete(r.inflight, key)
		r.mu.Unlock()
	}()
	if r.readCtx.Err() != nil {
		// Not sent: the run is stopping (signal, deadline, fatal error).
		// Its record stays as it was, and the next run sends it.
		if j.staged {
			r.unstage(j)
		}
		r.count(j.obj, func(c *Counts) { c.Unsent++ })
		r.release(j.obj, true)
		return
	}
	e := j.pending
	if !j.staged {
		e = pendingEntry(j)
		if !r.put(e) {
			r.count(j.obj, func(c *Counts) { c.Unsent++ })
			r.release(j.obj, true)
			return
		}
	}
	out, err := r.opt.Sink.Send(r.sendCtx, j.conv)
	out.Key = key
	if r.opt.OnOutcome != nil {
		r.opt.OnOutcome(out)
	}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	unfinished := false
	if r.writes() {
		e.State = out.State
		e.Attempts += out.Attempts
		e.HTTPStatus = out.HTTPStatus
		e.Messages = out.Messages
		if out.SubmissionID != "" || out.State == StateAccepted {
			e.SubmissionID, e.QueuedURI = out.SubmissionID, out.QueuedURI
		}
		e.MaybeSent = e.MaybeSent || out.MaybeSent
		if out.State == StateAccepted || out.State == StateRejected {
			e.SentHash = ""
		}
		if !out.State.Final() {
			if out.State != StateFailed {
				e.State = StateFailed
			}
			unfinished = true
		}
		r.put(e)
	} else if !out.State.Final() {
		unfinished = true
	}
	r.count(j.obj, func(c *Counts) {
		c.Requests += int64(out.Attempts)
		switch e.State {
		case StateAccepted:
			c.Accepted++
		case StateRejected:
			c.Rejected++
		default:
			if r.writes() {
				c.Failed++
			}
		}
	})
	if err != nil {
		r.setFatal(err)
	}
	r.release(j.obj, unfinished)
}

// release ends one outstanding conversion (or the reading) of an object;
// the last one marks the object as processed when everything in it has a
// final answer.
func (r *runner) release(o *objectState, unfinished bool) {
	r.mu.Lock()
	if unfinished {
		o.unfinished = true
	}
	o.outstanding--
	done := o.outstanding == 0 && o.readDone && !o.unfinished && r.fatal == nil
	r.mu.Unlock()
	if done && r.writes() {
		if err := r.opt.Ledger.MarkObjectDone(context.WithoutCancel(r.sendCtx), o.obj, r.opt.RunID); err != nil {
			r.setFatal(fmt.Errorf("%w: mark %s processed: %w", ErrLedgerWrite, o.obj.Key, err))
		}
	}
}

func refsString(refs []Ref) string {
	s := ""
	for i, rf := range refs {
		if i > 0 {
			s += ", "
		}
		s += rf.String()
	}
	return s
}

func (r *runner) progressLoop(done <-chan struct{}) {
	t := time.NewTicker(r.opt.ProgressEvery)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			r.opt.OnProgress(r.progress())
		}
	}
}

func (r *runner) progress() Progress {
	r.mu.Lock()
	p := Progress{
		Elapsed:      time.Since(r.start),
		ObjectsDone:  r.objectsDone,
		BytesDone:    r.bytesDone,
		BytesTotal:   r.bytesTotal,
		ReadDone:     r.readDone,
		ToSend:       r.toSend,
		Sent:         r.sent,
		ObjectsTotal: r.objectsTotal,
	}
	rowsRead, rowsDecided, bytesRead, bytesSkipped := r.rowsRead, r.rowsDecided, r.bytesRead, r.bytesSkipped
	for _, o := range r.objects {
		p.Counts.Add(o.sum.Counts)
	}
	r.mu.Unlock()
	p.EstimatedToSend = p.ToSend
	// Extrapolate: the rows still to come (from the bytes not yet read)
	// hold orders to send in the proportion seen so far.
	if rowsDecided > 0 {
		estRows := float64(rowsRead)
		if toRead := p.BytesTotal - bytesSkipped; !p.ReadDone && bytesRead > 0 && toRead > bytesRead {
			estRows = float64(rowsRead) * float64(toRead) / float64(bytesRead)
		}
		if est := int64(float64(p.ToSend) * estRows / float64(rowsDecided)); est > p.ToSend {
			p.EstimatedToSend = est
		}
	}
	if pc, ok := r.opt.Sink.(Pacer); ok {
		p.Pace = pc.Pace()
	}
	left := p.EstimatedToSend - p.Sent
	if p.Pace.PerSecond > 0 && left > 0 {
		p.ETA = time.Duration(float64(left) / p.Pace.PerSecond * float64(time.Second))
		if w := time.Until(p.Pace.WaitingUntil); w > 0 {
			p.ETA += w
		}
	}
	return p
}
