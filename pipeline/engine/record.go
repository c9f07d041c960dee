package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"convpipe/pipeline"
)

// sendersPerWorker is how many conversions Run keeps in progress per
// worker: a sink holds its requests in flight to Workers itself (the
// impact sink has a slot per worker), and a conversion it holds back to
// retry after a transient fault must not stop the others being sent.
const sendersPerWorker = 4

// startSenders starts the senders of a run that sends. It returns what
// to wait on once jobs is closed; a check starts nothing.
func (r *runner) startSenders(jobs <-chan job) *sync.WaitGroup {
	var wg sync.WaitGroup
	if r.opt.Mode == Check {
		return &wg
	}
	if r.opt.Batch != nil {
		wg.Go(func() { r.batcher(jobs) })
		return &wg
	}
	for range r.opt.Workers * sendersPerWorker {
		wg.Go(func() {
			for j := range jobs {
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

// pendingEntry is j's entry once its request may have left.
func pendingEntry(j job) pipeline.Entry {
	e := pipeline.Entry{Key: j.conv.Key, Refs: j.conv.Refs}
	if j.prev != nil {
		e = *j.prev
		e.Refs = j.conv.Refs
	}
	e.State, e.PayloadHash = pipeline.StatePending, j.hash
	return e
}

// send sends one conversion, recording it before and after: pending just
// before its first request leaves (when the sink can say when that is, an
// Announcer, after any wait for the quota), so that pending means "may
// have reached the API" and a crash never leaves an order that was only
// waiting looking as if it had been sent; then its outcome.
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
		r.notSent(j)
		return
	}
	e := pendingEntry(j)
	announced := false
	leaving := func() error {
		if r.readCtx.Err() != nil {
			return errStopping // no new request once the run stops
		}
		if !r.put(e) {
			return ErrLedgerWrite
		}
		announced = true
		return nil
	}
	var out pipeline.Outcome
	var err error
	if an, ok := r.opt.Sink.(pipeline.Announcer); ok {
		out, err = an.SendAnnounced(r.sendCtx, j.conv, leaving)
	} else if err = leaving(); err == nil {
		out, err = r.opt.Sink.Send(r.sendCtx, j.conv)
	}
	if !announced {
		// No request left (the run stopped while the order waited for
		// the quota or a request slot, the time is up, the ledger or the
		// credentials failed): the order keeps its entry, and the next
		// run sends it.
		r.stopFor(err)
		r.notSent(j)
		return
	}
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

// errStopping refuses a conversion's first request once the run stops.
var errStopping = errors.New("the run is stopping")

// stopFor stops the run for the error of a send that made no request:
// none (the run is stopping anyway), the time is up, or a fatal error.
func (r *runner) stopFor(err error) {
	switch {
	case err == nil, errors.Is(err, errStopping):
	case errors.Is(err, pipeline.ErrOutOfTime), errors.Is(err, ErrLedgerWrite):
		r.stop(err)
	default:
		r.setFatal(err)
	}
}

// notSent ends a job whose conversion the run did not send: the ledger
// keeps the order's earlier entry (or none), and the next run sends it.
func (r *runner) notSent(j job) {
	r.count(j.obj, func(c *pipeline.Counts) { c.Unsent++ })
	r.release(j.obj, true)
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
