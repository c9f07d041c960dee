package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"convpipe/pipeline"
)

var (
	_ pipeline.CorrectionLedger = (*Ledger)(nil)
	_ pipeline.CorrectionLedger = (*Postgres)(nil)
)

const putLinesSQL = `INSERT INTO order_lines (account, event_type, order_id, payload_hash, lines, created)
	VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`

const getLinesSQL = `SELECT lines FROM order_lines WHERE account = ? AND event_type = ? AND order_id = ? AND payload_hash = ?`

const putCorrectionSQL = `INSERT INTO corrections (account, event_type, order_id, seq, state, data, run_id, created, updated)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (account, event_type, order_id, seq) DO UPDATE SET
		state = excluded.state, data = excluded.data, run_id = excluded.run_id, updated = excluded.updated`

// validCorrectionStates are the states the ledger stores.
var validCorrectionStates = map[pipeline.CorrectionState]bool{
	pipeline.CorrectionPlanned: true, pipeline.CorrectionPending: true, pipeline.CorrectionApplied: true,
	pipeline.CorrectionRejected: true, pipeline.CorrectionFailed: true, pipeline.CorrectionTooLate: true,
	pipeline.CorrectionRefused: true, pipeline.CorrectionManual: true, pipeline.CorrectionSuperseded: true,
}

// linesArgs checks and encodes the lines of a PutLines.
func linesArgs(name string, key pipeline.Key, l pipeline.Lines) (string, error) {
	if key.OrderID == "" || l.PayloadHash == "" {
		return "", fmt.Errorf("ledger %s: put lines of %s: %w: no OrderId or no payload hash", name, key, ErrInvalidEntry)
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", fmt.Errorf("ledger %s: put lines of %s: %w", name, key, err)
	}
	return string(b), nil
}

// PutLines records the lines of key's payload l.PayloadHash, durably; the
// lines of a payload already recorded are kept as they are.
func (l *Ledger) PutLines(ctx context.Context, key pipeline.Key, ln pipeline.Lines) error {
	data, err := linesArgs(l.name, key, ln)
	if err != nil {
		return err
	}
	return l.write(ctx, "put lines of "+key.String(), func(ctx context.Context) error {
		_, err := l.wconn.ExecContext(ctx, putLinesSQL, l.account, key.EventType, key.OrderID, ln.PayloadHash, data, time.Now().UnixNano())
		return err
	})
}

// Lines returns the lines of key's payload hash, and false when the
// ledger has none (a payload never sent, or sent before lines were kept).
func (l *Ledger) Lines(ctx context.Context, key pipeline.Key, hash string) (pipeline.Lines, bool, error) {
	op := "lines of " + key.String()
	if err := l.readable(op); err != nil {
		return pipeline.Lines{}, false, err
	}
	var data string
	err := l.rdb.QueryRowContext(ctx, getLinesSQL, l.account, key.EventType, key.OrderID, hash).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.Lines{}, false, nil
	}
	if err != nil {
		return pipeline.Lines{}, false, fmt.Errorf("ledger %s: %s: %w", l.name, op, sqlError(err))
	}
	return decodeLines(l.name, op, data)
}

func decodeLines(name, op, data string) (pipeline.Lines, bool, error) {
	var ln pipeline.Lines
	if err := json.Unmarshal([]byte(data), &ln); err != nil {
		return ln, false, fmt.Errorf("ledger %s: %s: a damaged record: %w", name, op, err)
	}
	return ln, true, nil
}

// correctionCol is a correction's stored form.
type correctionCol struct {
	data             string
	created, updated int64
}

// correctionArgs checks a correction and encodes it; Created is kept from
// c (or now), Updated set to now.
func correctionArgs(name string, c pipeline.Correction) (correctionCol, error) {
	op := fmt.Sprintf("put correction %d of %s", c.Seq, c.Key)
	switch {
	case c.Key.OrderID == "" || c.Seq < 1:
		return correctionCol{}, fmt.Errorf("ledger %s: %s: %w: no OrderId or no sequence number", name, op, ErrInvalidEntry)
	case !validCorrectionStates[c.State]:
		return correctionCol{}, fmt.Errorf("ledger %s: %s: %w: unknown state %q", name, op, ErrInvalidEntry, c.State)
	}
	now := time.Now().UTC()
	if c.Created.IsZero() {
		c.Created = now
	}
	c.Updated = now
	b, err := json.Marshal(c)
	if err != nil {
		return correctionCol{}, fmt.Errorf("ledger %s: %s: %w", name, op, err)
	}
	return correctionCol{data: string(b), created: c.Created.UnixNano(), updated: now.UnixNano()}, nil
}

// PutCorrection inserts or replaces the correction (c.Key, c.Seq) and,
// when e is not nil, the entry e (as Put would), in one transaction:
// durable, all or nothing.
func (l *Ledger) PutCorrection(ctx context.Context, c pipeline.Correction, e *pipeline.Entry) error {
	col, err := correctionArgs(l.name, c)
	if err != nil {
		return err
	}
	var entry []any
	if e != nil {
		cols, err := entryCols(l.name, []pipeline.Entry{*e})
		if err != nil {
			return err
		}
		entry = putArgs(l.account, *e, cols[0])
	}
	return l.writeThen(ctx, fmt.Sprintf("put correction %d of %s", c.Seq, c.Key), func(ctx context.Context) error {
		if _, err := l.wconn.ExecContext(ctx, putCorrectionSQL, l.account, c.Key.EventType, c.Key.OrderID, c.Seq,
			string(c.State), col.data, c.RunID, col.created, col.updated); err != nil {
			return err
		}
		if entry != nil {
			_, err := l.putStmt.ExecContext(ctx, entry...)
			return err
		}
		return nil
	}, func() {
		if ix := l.idx.Load(); ix != nil && e != nil {
			ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
		}
	})
}

// correctionWhere is the WHERE clause of a correction filter; ph makes
// the n-th placeholder.
func correctionWhere(account string, f pipeline.CorrectionFilter, ph func(n int) string, orderID func(string) any) (string, []any) {
	where := []string{"account = " + ph(1)}
	args := []any{account}
	if f.OrderID != "" {
		args = append(args, orderID(f.OrderID))
		where = append(where, "order_id = "+ph(len(args)))
	}
	if f.State != "" {
		args = append(args, string(f.State))
		where = append(where, "state = "+ph(len(args)))
	}
	return strings.Join(where, " AND "), args
}

// Corrections calls fn for each correction f selects, by key then
// sequence number. They are read first: fn may write.
func (l *Ledger) Corrections(ctx context.Context, f pipeline.CorrectionFilter, fn func(pipeline.Correction) error) error {
	if err := l.readable("corrections"); err != nil {
		return err
	}
	where, args := correctionWhere(l.account, f, func(int) string { return "?" }, func(s string) any { return s })
	rows, err := l.rdb.QueryContext(ctx, `SELECT data FROM corrections WHERE `+where+` ORDER BY event_type, order_id, seq`, args...)
	if err != nil {
		return fmt.Errorf("ledger %s: corrections: %w", l.name, sqlError(err))
	}
	var data []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return fmt.Errorf("ledger %s: corrections: %w", l.name, sqlError(err))
		}
		data = append(data, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: corrections: %w", l.name, sqlError(err))
	}
	return eachCorrection(l.name, data, fn)
}

// eachCorrection decodes the stored corrections and calls fn with each.
func eachCorrection(name string, data []string, fn func(pipeline.Correction) error) error {
	for _, d := range data {
		var c pipeline.Correction
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			return fmt.Errorf("ledger %s: corrections: a damaged record: %w", name, err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// CorrectionResult is the results line of a correction: its key, its
// order, the state "correction KIND: STATE", and in messages the change,
// the amounts and what impact or convpipe said.
func CorrectionResult(c pipeline.Correction) Result {
	r := Result{Key: c.Key.String(), Order: c.Key.OrderID, State: fmt.Sprintf("correction %s: %s", c.Kind, c.State), SubmissionID: c.SubmissionID}
	if c.HTTPStatus != 0 {
		r.HTTPStatus = strconv.Itoa(c.HTTPStatus)
	}
	var parts []string
	for _, ch := range c.Changes {
		what := ch.What
		if ch.Sku != "" {
			what += " of " + ch.Sku
		}
		parts = append(parts, fmt.Sprintf("%s %s → %s", what, ch.From, ch.To))
	}
	if c.Before != "" || c.After != "" {
		parts = append(parts, fmt.Sprintf("amount %s → %s %s", c.Before, c.After, c.Currency))
	}
	if c.PaidInError != "" {
		parts = append(parts, fmt.Sprintf("paid in error %s %s", c.PaidInError, c.Currency))
	}
	for _, m := range c.Messages {
		parts = append(parts, FormatMessage(m))
	}
	r.Messages = strings.Join(parts, "; ")
	return r
}

// writeCorrections adds to cw a line per correction the run f selects
// last wrote, when l keeps corrections.
func writeCorrections(ctx context.Context, cw *CSVWriter, l pipeline.Ledger, f pipeline.Filter) error {
	cl, ok := l.(pipeline.CorrectionLedger)
	if !ok || f.RunID == "" {
		return nil
	}
	return cl.Corrections(ctx, pipeline.CorrectionFilter{OrderID: f.OrderID}, func(c pipeline.Correction) error {
		if c.RunID != f.RunID {
			return nil
		}
		return cw.WriteResult(CorrectionResult(c))
	})
}
