package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
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
	e.Source = pipeline.SourceFor(j.source, j.hash)
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
	// A run that does not record (a dry run) builds no entries.
	st := sending{r: r, j: j, records: r.opt.Mode == Send}
	if st.records {
		st.e = pendingEntry(j)
	}
	defer func() {
		if st.claimed {
			r.releaseOrder(key)
		}
	}()
	var out pipeline.Outcome
	var err error
	if an, ok := r.opt.Sink.(pipeline.Announcer); ok {
		// The sink keeps leave until the request goes out: its state
		// moves to the heap here only, not for a sink without requests.
		hs := new(sending)
		*hs = st
		out, err = an.SendAnnounced(r.sendCtx, j.conv, hs.leave)
		st = *hs
	} else if err = st.leave(); err == nil {
		out, err = r.opt.Sink.Send(r.sendCtx, j.conv)
	}
	if !st.announced {
		// No request left (the run stopped while the order waited for
		// the quota or a request slot, the time is up, the ledger or the
		// credentials failed): the order keeps its entry, and the next
		// run sends it.
		r.stopFor(err)
		if errors.Is(err, errSettled) {
			// Sent by another run since this one decided: not to send.
			r.count(j.obj, func(c *pipeline.Counts) { c.ToSend--; c.AlreadySent++ })
			r.release(j.obj, false)
			return
		}
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
	unfinished := !out.State.Final()
	if st.records {
		e, fin := settle(st.e, out)
		if out.State == pipeline.StateAccepted {
			e = acceptedEntry(e, j.conv, time.Now().UTC())
		}
		unfinished = fin
		r.put(e)
	}
	delta := outcomeCounts(out)
	r.count(j.obj, func(c *pipeline.Counts) { c.Add(delta) })
	if err != nil {
		r.setFatal(err)
	}
	r.release(j.obj, unfinished)
}

// sending is what send knows of one order while it waits to go out.
type sending struct {
	r       *runner
	j       job
	e       pipeline.Entry // the order's pending entry, when records
	records bool
	// claimed: the order is claimed (shared ledger); announced: its
	// entry is written and its request may go out.
	claimed, announced bool
}

// leave is called when the order's request is about to go out: it claims
// the order and writes its pending entry. An error keeps the request from
// going out.
func (s *sending) leave() error {
	if s.r.readCtx.Err() != nil {
		return errStopping // no new request once the run stops
	}
	var err error
	if s.claimed, err = s.r.claimOrder(s.j); err != nil {
		return err
	}
	if s.records && !s.r.put(s.e) {
		return ErrLedgerWrite
	}
	s.announced = true
	return nil
}

// acceptedEntry is e once the API accepted c at now: the CampaignId and
// EventDate sent and the time, which reconciling plans by, and no
// reconciliation of an earlier send.
func acceptedEntry(e pipeline.Entry, c *pipeline.Conversion, now time.Time) pipeline.Entry {
	e.CampaignID, _ = c.Get("CampaignId")
	if e.CampaignID == "" {
		e.CampaignID, _ = c.Get("ProgramId")
	}
	e.EventDate = time.Time{}
	switch v, _ := c.Get("EventDate"); {
	case v == "NOW":
		e.EventDate = now
	default:
		if t, r := rules.ParseDate(v); r == rules.None && v != "" {
			e.EventDate = t.UTC()
		}
	}
	e.AcceptedAt, e.Reconciled = now, nil
	return e
}

// errStopping refuses a conversion's first request once the run stops.
var errStopping = errors.New("the run is stopping")

// stopFor stops the run for the error of a send that made no request:
// none (the run is stopping anyway), the time is up, or a fatal error.
func (r *runner) stopFor(err error) {
	switch {
	case err == nil, errors.Is(err, errStopping), errors.Is(err, errClaimed), errors.Is(err, errSettled):
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
	ended := o.outstanding == 0
	done := ended && o.readDone && !o.unfinished && r.fatal == nil
	r.mu.Unlock()
	if done {
		if err := r.w.MarkObjectDone(context.WithoutCancel(r.sendCtx), o.obj, r.opt.RunID); err != nil {
			r.setFatal(fmt.Errorf("%w: mark %s processed: %w", ErrLedgerWrite, o.obj.Key, err))
		}
	}
	if ended {
		r.releaseObject(o.obj)
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
