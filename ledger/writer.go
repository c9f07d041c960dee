package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
)

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	// exec runs the write's statements inside the batch's transaction.
	exec func(ctx context.Context) error
	// after, when not nil, runs in the writer goroutine once the
	// transaction holding the write committed, before done is sent.
	after func()
	// done receives the write's result once its transaction committed or
	// failed.
	done chan error
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
	if l.readOnly {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrReadOnly)
	}
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, err)
	}
	r := &writeReq{exec: exec, after: after, done: make(chan error, 1)}
	select {
	case l.reqs <- r:
	case <-l.quit:
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ctx.Err())
	}
	if err := <-r.done; err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, sqlError(err))
	}
	return nil
}

// writer is the only goroutine that writes. It takes one request, then
// every request already waiting (callers that arrived during the previous
// commit), up to maxBatch, and commits them in one transaction: one fsync
// for the whole batch.
func (l *Ledger) writer() {
	defer close(l.writerDone)
	batch := make([]*writeReq, 0, l.maxBatch)
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		case <-l.quit:
			return
		}
		// Let the callers that the last commit woke up line up again:
		// without this, the writer often takes one request alone and the
		// rest wait for a whole commit more (batches alternate 1 and n-1).
		runtime.Gosched()
	fill:
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		l.commit(batch)
		clear(batch)
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
			r.finish(err)
		}
		return
	}
	for _, r := range batch {
		r.finish(runTx(ctx, l.wconn, r.exec, nil))
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
// hands the caller its result.
func (r *writeReq) finish(err error) {
	if err == nil && r.after != nil {
		r.after()
	}
	r.done <- err
}
