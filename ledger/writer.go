package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// laterDelay is the longest a write queued by PutLater waits for company
// before the writer commits it: it bounds the outcomes a crash can lose
// to those of the last fraction of a second (their entries stay pending,
// and the next run settles them like any interrupted send).
const laterDelay = 100 * time.Millisecond

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	// exec runs the write's statements inside the batch's transaction.
	exec func(ctx context.Context) error
	// after, when not nil, runs in the writer goroutine once the
	// transaction holding the write committed, before done is sent.
	after func()
	// done receives the write's result once its transaction committed or
	// failed; nil for a write queued by PutLater, whose caller does not
	// wait.
	done chan error
	// op names the write in errors.
	op string
}

// write hands exec to the writer and waits until the transaction holding
// it committed. ctx bounds only the wait to be taken in: once taken, the
// write goes through even if ctx ends, so that an outcome recorded during
// shutdown is not lost, and its caller learns its real result.
func (l *Ledger) write(ctx context.Context, op string, exec func(ctx context.Context) error) error {
	return l.writeThen(ctx, op, exec, nil)
}

// writeThen is write with a function to run in the writer goroutine after
// the commit, in commit order.
func (l *Ledger) writeThen(ctx context.Context, op string, exec func(ctx context.Context) error, after func()) error {
	r := &writeReq{exec: exec, after: after, done: make(chan error, 1), op: op}
	if err := l.enqueue(ctx, r); err != nil {
		return err
	}
	if err := <-r.done; err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, sqlError(err))
	}
	// A PutLater write queued before this one finished before it: when
	// that failed, say so now rather than at the next write.
	if err := l.laterError(); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, err)
	}
	return nil
}

// enqueue hands r to the writer. It fails when the ledger is read-only or
// closed, when a write queued earlier by PutLater failed, or when ctx
// ends before the writer takes r.
func (l *Ledger) enqueue(ctx context.Context, r *writeReq) error {
	if l.readOnly {
		return fmt.Errorf("ledger %s: %s: %w", l.name, r.op, ErrReadOnly)
	}
	// The read lock orders this send before Close: once Close holds the
	// lock, nothing more is queued, and the writer commits all that was.
	l.sendMu.RLock()
	defer l.sendMu.RUnlock()
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, r.op, ErrClosed)
	}
	if err := l.laterError(); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, r.op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, r.op, err)
	}
	select {
	case l.reqs <- r:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ledger %s: %s: %w", l.name, r.op, ctx.Err())
	}
}

// laterError returns the error of a failed PutLater write, if any.
func (l *Ledger) laterError() error {
	if p := l.laterErr.Load(); p != nil {
		return *p
	}
	return nil
}

// writer is the only goroutine that writes. It takes one request, then
// every request already waiting (callers that arrived during the previous
// commit), up to maxBatch, and commits them in one transaction: one fsync
// for the whole batch. A batch of PutLater writes alone, which nobody
// waits for, waits up to laterDelay for more before it commits. When the
// ledger closes, the writer commits every write still queued.
func (l *Ledger) writer() {
	defer close(l.writerDone)
	batch := make([]*writeReq, 0, l.maxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		quitting := false
		select {
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		case <-l.quit:
			quitting = true
		}
		if !quitting {
			// Let the callers that the last commit woke up line up again:
			// without this, the writer often takes one request alone and
			// the rest wait for a whole commit more (batches alternate 1
			// and n-1).
			runtime.Gosched()
		}
		waiting := len(batch) > 0 && batch[0].done != nil
		timed := false
	fill:
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				waiting = waiting || r.done != nil
				continue
			default:
			}
			if waiting || quitting || len(batch) == 0 {
				break
			}
			if !timed {
				timer.Reset(laterDelay)
				timed = true
			}
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
				waiting = r.done != nil
			case <-timer.C:
				timed = false
				break fill
			case <-l.quit:
				quitting = true
			}
		}
		if timed {
			timer.Stop() // no stale tick is delivered after Stop (Go 1.23+)
		}
		if len(batch) > 0 {
			l.commit(batch)
			clear(batch)
			batch = batch[:0]
		}
		if quitting && len(l.reqs) == 0 {
			return
		}
	}
}

// commit runs a batch in one transaction. When it fails, each write is
// run again in a transaction of its own, so that one bad write does not
// fail the others and every caller gets its own result.
func (l *Ledger) commit(batch []*writeReq) {
	ctx := context.Background()
	err := runTx(ctx, l.wconn, func(ctx context.Context) error {
		for _, r := range batch {
			if err := r.exec(ctx); err != nil {
				return err
			}
		}
		return nil
	}, nil)
	if err == nil || len(batch) == 1 {
		for _, r := range batch {
			l.finish(r, err)
		}
		return
	}
	for _, r := range batch {
		l.finish(r, runTx(ctx, l.wconn, r.exec, nil))
	}
}

// runTx runs fn in a BEGIN IMMEDIATE transaction on conn and commits it,
// rolling back on failure. wrap, when not nil, wraps the error.
func runTx(ctx context.Context, conn *sql.Conn, fn func(ctx context.Context) error, wrap func(error) error) error {
	err := func() error {
		if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		if err := fn(ctx); err != nil {
			_, _ = conn.ExecContext(context.Background(), `ROLLBACK`)
			return err
		}
		if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
			_, _ = conn.ExecContext(context.Background(), `ROLLBACK`)
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	if err != nil && wrap != nil {
		return wrap(err)
	}
	return err
}

// finish runs the request's after hook when its write committed, then
// hands the caller its result. A PutLater write has no caller waiting:
// its failure is kept, and every later write and Flush returns it.
func (l *Ledger) finish(r *writeReq, err error) {
	if err == nil && r.after != nil {
		r.after()
	}
	if r.done != nil {
		r.done <- err
		return
	}
	if err != nil {
		e := fmt.Errorf("%w: %s: %w", ErrLaterWrite, r.op, sqlError(err))
		l.laterErr.CompareAndSwap(nil, &e)
	}
}

// ErrLaterWrite is wrapped by the error every write returns once a write
// queued by PutLater failed: what it wrote may be lost, so the caller must
// stop writing.
var ErrLaterWrite = errors.New("an earlier queued write failed")
