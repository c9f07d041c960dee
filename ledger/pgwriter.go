package ledger

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgWriteTimeout bounds one batch (or one direct request, such as the
// index load) of the writer. A server that stops answering (its host gone
// without closing the connection) fails the batch after it: pgx then
// closes the connection, and with it the lock, so every later write
// fails and the run stops, as when the server goes away.
var pgWriteTimeout = 2 * time.Minute

// pgStmt is one statement of a write.
type pgStmt struct {
	sql  string
	args []any
}

// pgWriteReq is one write waiting for the Postgres writer goroutine.
type pgWriteReq struct {
	// stmts are the write's statements, run in the batch's transaction.
	stmts []pgStmt
	// check, when not nil, judges the statements' command tags: an
	// error fails this write alone (its statements changed nothing that
	// must be undone, such as an INSERT ... DO NOTHING that hit a row).
	check func(tags []pgconn.CommandTag) error
	// direct, when not nil, runs alone on the writer's connection,
	// between batches, instead of stmts.
	direct func(ctx context.Context, conn *pgx.Conn) error
	// after, when not nil, runs in the writer goroutine once the write
	// committed, before done is sent.
	after func()
	// done receives the write's result.
	done chan error
}

// write hands r to the writer and waits until the transaction holding it
// committed. As in the SQLite ledger, ctx bounds only the wait to be
// taken in.
func (l *Postgres) write(ctx context.Context, op string, r *pgWriteReq) error {
	if l.readOnly {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrReadOnly)
	}
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, err)
	}
	r.done = make(chan error, 1)
	select {
	case l.reqs <- r:
	case <-l.quit:
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ctx.Err())
	}
	if err := <-r.done; err != nil {
		return l.redact(fmt.Errorf("ledger %s: %s: %w", l.name, op, pgError(err)))
	}
	return nil
}

// writer is the only goroutine that writes, on the one connection that
// holds the run lock. It takes one request, then every request already
// waiting, up to maxBatch, and sends them as one pipelined batch: one
// round trip and one implicit transaction (one WAL flush) for all.
func (l *Postgres) writer() {
	defer close(l.writerDone)
	batch := make([]*pgWriteReq, 0, l.maxBatch)
	for {
		select {
		case r := <-l.reqs:
			batch = append(batch[:0], r)
		case <-l.quit:
			return
		}
		if batch[0].direct != nil {
			l.finish(batch[0], l.runDirect(batch[0]))
			continue
		}
		runtime.Gosched() // see the SQLite writer
	fill:
		for len(batch) < l.maxBatch {
			select {
			case r := <-l.reqs:
				if r.direct != nil {
					l.commit(batch)
					l.finish(r, l.runDirect(r))
					batch = batch[:0]
					continue
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		if len(batch) > 0 {
			l.commit(batch)
		}
		clear(batch)
	}
}

func (l *Postgres) runDirect(r *pgWriteReq) error {
	if err := l.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgWriteTimeout)
	defer cancel()
	return l.noteBroken(r.direct(ctx, l.wconn))
}

// commit runs a batch in one transaction. When it fails on the server's
// verdict, each write is run again alone, so that one bad write does not
// fail the others. When the connection fails, every write fails: the
// run lock went with the connection, and no write is made without it.
func (l *Postgres) commit(batch []*pgWriteReq) {
	errs, err := l.sendBatch(batch)
	if err == nil || len(batch) == 1 || l.broken.Load() != nil {
		for i, r := range batch {
			if err != nil {
				l.finish(r, err)
			} else {
				l.finish(r, errs[i])
			}
		}
		return
	}
	for _, r := range batch {
		errs, err := l.sendBatch([]*pgWriteReq{r})
		if err == nil {
			err = errs[0]
		}
		l.finish(r, err)
	}
}

// sendBatch sends the statements of batch as one pipelined batch, which
// PostgreSQL runs as one implicit transaction. It returns each write's
// check result, or the error that rolled the whole batch back.
func (l *Postgres) sendBatch(batch []*pgWriteReq) ([]error, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgWriteTimeout)
	defer cancel()
	b := &pgx.Batch{}
	for _, r := range batch {
		for _, s := range r.stmts {
			b.Queue(s.sql, s.args...)
		}
	}
	br := l.wconn.SendBatch(ctx, b)
	errs := make([]error, len(batch))
	var first error
	for i, r := range batch {
		tags := make([]pgconn.CommandTag, 0, len(r.stmts))
		for range r.stmts {
			tag, err := br.Exec()
			if err != nil && first == nil {
				first = err
			}
			tags = append(tags, tag)
		}
		if first == nil && r.check != nil {
			errs[i] = r.check(tags)
		}
	}
	if err := br.Close(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return nil, l.noteBroken(first)
	}
	return errs, nil
}

// noteBroken records that the writer's connection is gone when err says
// so, and returns err.
func (l *Postgres) noteBroken(err error) error {
	if err != nil && l.wconn.IsClosed() {
		e := fmt.Errorf("the connection to the database was lost, and the run lock with it (%w); no further write is made: stop, and run again", err)
		l.broken.CompareAndSwap(nil, &e)
		return e
	}
	return err
}

// usable returns the error that broke the writer's connection, if any.
func (l *Postgres) usable() error {
	if e := l.broken.Load(); e != nil {
		return *e
	}
	return nil
}

func (l *Postgres) finish(r *pgWriteReq, err error) {
	if err == nil && r.after != nil {
		r.after()
	}
	r.done <- err
}

// pgError puts what a person must act on into plain words in front of
// PostgreSQL's own message.
func pgError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code[:2] {
	case "53": // insufficient resources
		return fmt.Errorf("the database server is out of resources (disk full?): %w", err)
	case "57": // operator intervention: shutdown, statement timeout
		if pe.Code == "57014" {
			return fmt.Errorf("statement timeout: %w", err)
		}
		return fmt.Errorf("the database server is shutting down: %w", err)
	case "25":
		if pe.Code == "25006" {
			return fmt.Errorf("the database is read-only: %w", err)
		}
	case "42":
		if pe.Code == "42501" {
			return fmt.Errorf("permission denied: %w", err)
		}
	}
	return err
}
