package engine

import (
	"context"
	"fmt"

	"convpipe/pipeline"
)

// order decides one grouped, prepared order (see decide) and applies the
// verdict: it reports it, counts it, writes its entry and queues it for
// sending. An error stops the reading of the object.
func (r *runner) order(ctx context.Context, o *objectState, p prepared, jobs chan<- job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k, err := r.lookup(ctx, p)
	if err != nil {
		return err
	}
	v := decide(p, k, r.policy)
	if r.opt.OnDecision != nil {
		r.opt.OnDecision(Decision{Action: v.Action, Mapped: p.m, Body: p.body, Hash: p.hash, Prev: k.Prev})
	}
	r.tally(o, p, v.Counts, v.Action == ActionSend)
	if v.Warn != "" {
		r.log.Warn(v.Warn, v.WarnArgs...)
	}
	if v.RowError != nil && r.opt.OnRowError != nil {
		r.opt.OnRowError(*v.RowError)
	}
	if v.Write != nil && !r.put(*v.Write) {
		return r.fatalErr()
	}
	if v.Action == ActionSend {
		return r.enqueue(ctx, o, p, k.Prev, jobs)
	}
	return r.fatalErr()
}

// lookup learns what the ledger and the run know of p's key. A rerun asks
// this of every order: the ledger's index answers it when it can, without
// reading the whole entry.
func (r *runner) lookup(ctx context.Context, p prepared) (known, error) {
	var k known
	if p.settled != "" {
		k.Settled = p.settled // answered by the fingerprint of the lines
		return k, nil
	}
	if p.valid {
		k.Settled = r.settled(ctx, p.key, p.hash)
		if answered(k.Settled, r.policy) {
			return k, nil
		}
	}
	if r.opt.Ledger != nil {
		e, found, err := r.opt.Ledger.Get(ctx, p.key)
		if err != nil {
			r.setFatal(fmt.Errorf("ledger: get %s: %w", p.key, err))
			return k, err
		}
		if found {
			k.Prev = &e
		}
	}
	r.mu.Lock()
	k.InFlight = r.inflight[p.key]
	r.mu.Unlock()
	return k, nil
}

// settled is the state a ledger that implements Settler has for key with
// this payload; "" when it has none (or cannot say: Get then decides, and
// reports a failing ledger).
func (r *runner) settled(ctx context.Context, key pipeline.Key, hash string) pipeline.State {
	st, ok := r.opt.Ledger.(pipeline.Settler)
	if !ok {
		return ""
	}
	state, found, err := st.Settled(ctx, key, hash)
	if err != nil || !found {
		return ""
	}
	return state
}

// queue hands an order decided for sending to the workers; it is enqueue
// in a run that sends.
func (r *runner) queue(ctx context.Context, o *objectState, p prepared, prev *pipeline.Entry, jobs chan<- job) error {
	c := p.m.Conversion
	r.mu.Lock()
	r.inflight[p.key] = c.Refs
	o.outstanding++
	r.toSend++
	r.mu.Unlock()
	c.Key = p.key
	c.MaybeSent = prev != nil && (prev.State == pipeline.StatePending || prev.MaybeSent)
	select {
	case jobs <- job{conv: c, hash: p.hash, source: p.source, prev: prev, obj: o}:
		return r.fatalErr()
	case <-ctx.Done():
		r.mu.Lock()
		delete(r.inflight, p.key)
		o.sum.Unsent++
		r.mu.Unlock()
		r.release(o, true)
		return ctx.Err()
	}
}

// countOnly counts an order decided for sending; it is enqueue in a check.
func (r *runner) countOnly(context.Context, *objectState, prepared, *pipeline.Entry, chan<- job) error {
	r.mu.Lock()
	r.toSend++
	r.mu.Unlock()
	return r.fatalErr()
}

// tally counts one decided order of o: delta, plus the order itself and
// the rows a filter left out of it; send says it was decided for sending.
func (r *runner) tally(o *objectState, p prepared, delta pipeline.Counts, send bool) {
	delta.Orders = 1
	delta.SkippedRows = int64(len(p.m.SkippedRows))
	r.mu.Lock()
	o.sum.Counts.Add(delta)
	r.rowsDecided += int64(p.lines)
	r.fc.add(p.lines, delta.AlreadySent > 0, send)
	r.mu.Unlock()
}
