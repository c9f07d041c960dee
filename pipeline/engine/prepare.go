package engine

import (
	"context"
	"runtime"
	"sync"
	"time"

	"convpipe/pipeline"
)

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
	lines  []pipeline.Row
	rowErr *pipeline.RowError
	p      prepared
}

// prepared is one order mapped and, when valid, encoded and hashed: the
// part of deciding it that needs neither the ledger nor the run's state.
type prepared struct {
	m     pipeline.Mapped
	key   pipeline.Key
	valid bool
	body  string
	hash  string
	lines int
	// event is the order's EventDate, when dated: read only when the run
	// has an event window.
	event time.Time
	dated bool
	// source is the fingerprint of the lines (pipeline.Fingerprinter),
	// recorded with the payload it was mapped to; "" when the run does
	// not fingerprint or the mapping left some of the lines out.
	source string
	// settled, when set, is the ledger's state for the key with the
	// payload these lines were mapped to before, learnt by their
	// fingerprint without mapping them: m then holds only the key.
	settled pipeline.State
}

// prepare maps the lines of one order; a valid conversion is encoded and
// hashed. In a run that sends, the lines are fingerprinted first: when
// the ledger has their key accepted with the payload that lines of this
// fingerprint were mapped to (a rerun of an unchanged export), the order
// is already sent, and its mapping, encoding and hashing are skipped.
func (r *runner) prepare(lines []pipeline.Row) prepared {
	var fp string
	if r.fingerprints != nil {
		var key pipeline.Key
		key, fp = r.fingerprints.Fingerprint(lines)
		if r.sources != nil && fp != "" && key.OrderID != "" && key.EventType != "" {
			// An error is the ledger's: the lookup that follows reports it.
			st, ok, err := r.sources.SettledSource(r.readCtx, key, fp, r.oldest)
			if err == nil && ok {
				return prepared{m: pipeline.Mapped{Conversion: &pipeline.Conversion{Key: key}}, key: key, valid: true,
					lines: len(lines), source: fp, settled: st}
			}
		}
	}
	m := r.opt.Mapper.Map(lines)
	c := m.Conversion
	if c == nil {
		c = &pipeline.Conversion{}
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
		p.key = pipeline.Key{EventType: "!order", OrderID: c.Refs[0].String()}
	}
	if !r.opt.Events.IsZero() {
		p.event, p.dated = eventDate(c)
	}
	p.valid = len(m.Problems) == 0 && m.Skip == ""
	if p.valid {
		p.body = c.Encode()
		p.hash = pipeline.PayloadHash(p.body)
		if len(m.SkippedRows) == 0 {
			p.source = fp
		}
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
func (p *orderPipe) order(lines []pipeline.Row) error {
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
func (p *orderPipe) rowError(re *pipeline.RowError) {
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

func (r *runner) rowError(re *pipeline.RowError) {
	msg := pipeline.Message{Field: re.Field, Text: re.Err.Error(), Refs: []pipeline.Ref{re.Ref}}
	r.log.Warn("bad row", "ref", re.Ref.String(), "field", re.Field, "err", re.Err.Error())
	if r.opt.OnRowError != nil {
		r.opt.OnRowError(msg)
	}
	r.put(pipeline.Entry{Key: pipeline.Key{EventType: "!row", OrderID: re.Ref.String()}, State: pipeline.StateInvalid, Messages: []pipeline.Message{msg}, Refs: msg.Refs})
}

// eventDate reads a conversion's EventDate: an ISO 8601 date (the start of
// its day, UTC) or a date-time with its offset. NOW, or a value that does
// not parse, is not dated: the window cannot tell, and the mapping's own
// checks judge it.
func eventDate(c *pipeline.Conversion) (time.Time, bool) {
	v, _ := c.Get("EventDate")
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, true
	}
	return time.Time{}, false
}
