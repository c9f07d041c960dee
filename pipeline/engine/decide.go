package engine

import (
	"context"
	"fmt"

	"convpipe/pipeline"
)

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
			if st == pipeline.StateChanged {
				d.Action = ActionChanged
			}
			if r.opt.OnDecision != nil {
				r.opt.OnDecision(d)
			}
			delta := pipeline.Counts{AlreadySent: 1}
			if d.Action == ActionChanged {
				delta = pipeline.Counts{Changed: 1}
			}
			r.tally(o, p, delta)
			return nil
		}
	}
	var prev *pipeline.Entry
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

	final := prev != nil && (prev.State == pipeline.StateAccepted || prev.State == pipeline.StateChanged)
	base := pipeline.Entry{Key: key, Refs: c.Refs}
	if prev != nil {
		base = *prev
		base.Refs = c.Refs
	}
	switch d.Action {
	case ActionInvalid:
		r.tally(o, p, pipeline.Counts{Invalid: 1})
		if final {
			// Never overwrite an accepted order's record; report only.
			r.log.Warn("order accepted before is now invalid", "key", key.String(), "problems", len(m.Problems))
			return nil
		}
		e := base
		e.State, e.Messages = pipeline.StateInvalid, m.Problems
		r.put(e)
	case ActionSkip:
		r.tally(o, p, pipeline.Counts{Skipped: 1})
		if final {
			return nil
		}
		e := base
		e.State, e.Messages = pipeline.StateSkipped, []pipeline.Message{{Text: m.Skip}}
		r.put(e)
	case ActionDuplicate:
		r.tally(o, p, pipeline.Counts{Invalid: 1})
		msg := pipeline.Message{Field: "OrderId", Text: "the same order key occurs twice in this run; this copy is not sent", Refs: c.Refs}
		r.log.Warn("duplicate order key", "key", key.String(), "refs", refsString(c.Refs))
		if r.opt.OnRowError != nil {
			r.opt.OnRowError(msg)
		}
	case ActionAlreadySent:
		r.tally(o, p, pipeline.Counts{AlreadySent: 1})
		if prev.State == pipeline.StateChanged {
			// The payload is back to what was accepted.
			e := base
			e.State, e.PayloadHash = pipeline.StateAccepted, d.Hash
			r.put(e)
		}
	case ActionChanged:
		r.tally(o, p, pipeline.Counts{Changed: 1})
		if prev.State != pipeline.StateChanged || prev.PayloadHash != d.Hash {
			e := base
			if e.SentHash == "" {
				e.SentHash = prev.PayloadHash
			}
			e.State, e.PayloadHash = pipeline.StateChanged, d.Hash
			e.Messages = []pipeline.Message{{Text: "accepted earlier with a different payload; needs a correction (PUT/DELETE Actions), not a new conversion"}}
			r.put(e)
		}
	case ActionSend:
		r.tally(o, p, pipeline.Counts{ToSend: 1})
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
		c.MaybeSent = prev != nil && (prev.State == pipeline.StatePending || prev.MaybeSent)
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
func (r *runner) tally(o *objectState, p prepared, delta pipeline.Counts) {
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
func (r *runner) settled(ctx context.Context, key pipeline.Key, hash string) (pipeline.State, bool) {
	st, ok := r.opt.Ledger.(pipeline.Settler)
	if !ok {
		return "", false
	}
	state, found, err := st.Settled(ctx, key, hash)
	if err != nil || !found {
		return "", false // Get decides, and reports a failing ledger
	}
	switch state {
	case pipeline.StateAccepted, pipeline.StateChanged:
		return state, true
	case pipeline.StateRejected:
		return state, !r.opt.RetryRejected
	}
	return "", false
}

// decideSend decides for a valid conversion with the given payload hash.
func decideSend(prev *pipeline.Entry, hash string, retryRejected bool) Action {
	if prev == nil {
		return ActionSend
	}
	switch prev.State {
	case pipeline.StateAccepted:
		if prev.PayloadHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case pipeline.StateChanged:
		if prev.SentHash == hash {
			return ActionAlreadySent
		}
		return ActionChanged
	case pipeline.StateRejected:
		if prev.PayloadHash == hash && !retryRejected {
			return ActionAlreadySent
		}
		return ActionSend
	}
	return ActionSend // pending, failed, invalid, skipped
}
