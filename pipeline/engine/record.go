package engine

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"convpipe/pipeline"
)

// startSenders starts the send stage of a run that sends: the workers
// and, before them, the stage that writes pending entries a batch at a
// time when the ledger can. It returns what to wait on once jobs is
// closed; a check starts nothing.
func (r *runner) startSenders(jobs <-chan job) *sync.WaitGroup {
	var wg sync.WaitGroup
	if r.opt.Mode == Check {
		return &wg
	}
	ready := jobs
	if bl, ok := r.opt.Ledger.(pipeline.BatchLedger); ok && r.opt.Mode == Send {
		r.batch = bl
		n := r.stageSize()
		staged := make(chan job, n)
		wg.Go(func() { r.stage(jobs, staged, n) })
		ready = staged
	}
	for range r.opt.Workers {
		wg.Go(func() {
			for j := range ready {
				r.send(j)
			}
		})
	}
	return &wg
}

// put writes e to the ledger; a failure is fatal for the run.
func (r *runner) put(e pipeline.Entry) bool {
	// A write must not be lost to a cancelled run: use the send context,
	// which lives until the grace period ends.
	if err := r.w.Put(context.WithoutCancel(r.sendCtx), r.stamp(e)); err != nil {
		r.setFatal(fmt.Errorf("%w: %s: %w", ErrLedgerWrite, e.Key, err))
		return false
	}
	return true
}

// stamp sets the times and the run of an entry about to be written.
func (r *runner) stamp(e pipeline.Entry) pipeline.Entry {
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
	if pc, ok := r.opt.Sink.(pipeline.Pacer); ok {
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
	es := make([]pipeline.Entry, 0, size)
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
func pendingEntry(j job) pipeline.Entry {
	e := pipeline.Entry{Key: j.conv.Key, Refs: j.conv.Refs}
	if j.prev != nil {
		e = *j.prev
		e.Refs = j.conv.Refs
	}
	e.State, e.PayloadHash = pipeline.StatePending, j.hash
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
		err = r.w.Put(ctx, *j.prev)
	} else {
		err = r.batch.Delete(ctx, j.conv.Key)
	}
	if err != nil {
		r.setFatal(fmt.Errorf("%w: %s: %w", ErrLedgerWrite, j.conv.Key, err))
	}
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
		r.count(j.obj, func(c *pipeline.Counts) { c.Unsent++ })
		r.release(j.obj, true)
		return
	}
	e := j.pending
	if !j.staged {
		e = pendingEntry(j)
		if !r.put(e) {
			r.count(j.obj, func(c *pipeline.Counts) { c.Unsent++ })
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
	e, unfinished := settle(e, out)
	r.put(e)
	delta := outcomeCounts(out)
	r.count(j.obj, func(c *pipeline.Counts) { c.Add(delta) })
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
	if done {
		if err := r.w.MarkObjectDone(context.WithoutCancel(r.sendCtx), o.obj, r.opt.RunID); err != nil {
			r.setFatal(fmt.Errorf("%w: mark %s processed: %w", ErrLedgerWrite, o.obj.Key, err))
		}
	}
}

func refsString(refs []pipeline.Ref) string {
	s := ""
	for i, rf := range refs {
		if i > 0 {
			s += ", "
		}
		s += rf.String()
	}
	return s
}
