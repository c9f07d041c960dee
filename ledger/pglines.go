package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/pipeline"
)

const pgPutLinesSQL = `INSERT INTO convpipe.order_lines (account, event_type, order_id, payload_hash, lines, created)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`

const pgGetLinesSQL = `SELECT lines FROM convpipe.order_lines WHERE account = $1 AND event_type = $2 AND order_id = $3 AND payload_hash = $4`

const pgPutCorrectionSQL = `INSERT INTO convpipe.corrections (account, event_type, order_id, seq, state, data, run_id, created, updated)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
	ON CONFLICT (account, event_type, order_id, seq) DO UPDATE SET
		state = excluded.state, data = excluded.data, run_id = excluded.run_id, updated = excluded.updated`

// PutLines records the lines of key's payload, as the SQLite ledger's
// PutLines does.
func (l *Postgres) PutLines(ctx context.Context, key pipeline.Key, ln pipeline.Lines) error {
	data, err := linesArgs(l.name, key, ln)
	if err != nil {
		return err
	}
	return l.write(ctx, "put lines of "+key.String(), &pgWriteReq{stmts: []pgStmt{{pgPutLinesSQL,
		[]any{l.account, []byte(key.EventType), []byte(key.OrderID), ln.PayloadHash, data, time.Now().UnixNano()}}}})
}

// Lines returns the lines of key's payload hash, and false when the
// ledger has none.
func (l *Postgres) Lines(ctx context.Context, key pipeline.Key, hash string) (pipeline.Lines, bool, error) {
	op := "lines of " + key.String()
	if err := l.readable(op); err != nil {
		return pipeline.Lines{}, false, err
	}
	var data string
	err := l.pool.QueryRow(ctx, pgGetLinesSQL, l.account, []byte(key.EventType), []byte(key.OrderID), hash).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Lines{}, false, nil
	}
	if err != nil {
		return pipeline.Lines{}, false, l.readErr(op, err)
	}
	return decodeLines(l.name, op, data)
}

// PutCorrection inserts or replaces the correction and, when e is not
// nil, the entry e, in one transaction, as the SQLite ledger's does.
func (l *Postgres) PutCorrection(ctx context.Context, c pipeline.Correction, e *pipeline.Entry) error {
	col, err := correctionArgs(l.name, c)
	if err != nil {
		return err
	}
	r := &pgWriteReq{stmts: []pgStmt{{pgPutCorrectionSQL, []any{l.account, []byte(c.Key.EventType), []byte(c.Key.OrderID),
		c.Seq, string(c.State), col.data, c.RunID, col.created, col.updated}}}}
	if e != nil {
		cols, err := entryCols(l.name, []pipeline.Entry{*e})
		if err != nil {
			return err
		}
		r.stmts = append(r.stmts, pgStmt{pgPutSQL, pgPutArgs(l.account, *e, cols[0])})
		r.after = func() {
			if ix := l.idx.Load(); ix != nil {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	}
	return l.write(ctx, fmt.Sprintf("put correction %d of %s", c.Seq, c.Key), r)
}

// Corrections calls fn for each correction f selects, by key then
// sequence number. They are read first: fn may write.
func (l *Postgres) Corrections(ctx context.Context, f pipeline.CorrectionFilter, fn func(pipeline.Correction) error) error {
	if err := l.readable("corrections"); err != nil {
		return err
	}
	where, args := correctionWhere(l.account, f, func(n int) string { return "$" + strconv.Itoa(n) }, func(s string) any { return []byte(s) })
	rows, err := l.pool.Query(ctx, `SELECT data FROM convpipe.corrections WHERE `+where+` ORDER BY event_type, order_id, seq`, args...)
	if err != nil {
		return l.readErr("corrections", err)
	}
	data, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return l.readErr("corrections", err)
	}
	return eachCorrection(l.name, data, fn)
}
