package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"convpipe/pipeline"
)

var (
	_ pipeline.BatchLedger = (*Ledger)(nil)
	_ pipeline.BatchLedger = (*Postgres)(nil)
)

// batchTablesSQL is the SQLite migration that adds the batch files and
// the place of each order in them. A file's data is kept until impact
// processed or refused it.
const batchTablesSQL = `CREATE TABLE batch_files (
		account       TEXT NOT NULL DEFAULT '',
		name          TEXT NOT NULL,
		state         TEXT NOT NULL CHECK (state IN ('written','uploaded','processed','refused')),
		batch_id      TEXT NOT NULL DEFAULT '',
		orders        INTEGER NOT NULL DEFAULT 0,
		lines         INTEGER NOT NULL DEFAULT 0,
		total_records INTEGER NOT NULL DEFAULT 0,
		total_errors  INTEGER NOT NULL DEFAULT 0,
		message       TEXT NOT NULL DEFAULT '',
		data          BLOB,
		run_id        TEXT NOT NULL DEFAULT '',
		created       INTEGER NOT NULL,
		updated       INTEGER NOT NULL,
		PRIMARY KEY (account, name)
	);
	CREATE INDEX batch_files_state ON batch_files (account, state, created);
	CREATE TABLE batch_lines (
		account    TEXT NOT NULL DEFAULT '',
		file       TEXT NOT NULL,
		event_type TEXT NOT NULL,
		order_id   TEXT NOT NULL,
		first_line INTEGER NOT NULL,
		last_line  INTEGER NOT NULL,
		PRIMARY KEY (account, file, event_type, order_id)
	);
	CREATE INDEX batch_lines_key ON batch_lines (account, event_type, order_id);`

// The statements of the batch tables, "?" placeholders; the PostgreSQL
// ledger numbers them and names its schema.
const (
	batchFileUpsertSQL = `INSERT INTO batch_files (account, name, state, batch_id, orders, lines, total_records, total_errors, message, data, run_id, created, updated)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account, name) DO UPDATE SET state = excluded.state, batch_id = excluded.batch_id,
			orders = excluded.orders, lines = excluded.lines, total_records = excluded.total_records,
			total_errors = excluded.total_errors, message = excluded.message, data = excluded.data,
			run_id = excluded.run_id, updated = excluded.updated`
	batchLineUpsertSQL = `INSERT INTO batch_lines (account, file, event_type, order_id, first_line, last_line)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (account, file, event_type, order_id) DO UPDATE SET first_line = excluded.first_line, last_line = excluded.last_line`
	// batchTakenSQL finds the file not processed yet, other than the one
	// being recorded, that holds an order.
	// It goes by the order's key: the primary key would read every line
	// of the account.
	batchTakenSQL = `SELECT l.file FROM batch_lines l INDEXED BY batch_lines_key JOIN batch_files f ON f.account = l.account AND f.name = l.file
		WHERE l.account = ? AND l.event_type = ? AND l.order_id = ? AND l.file <> ? AND f.state IN ('written','uploaded') LIMIT 1`
	batchFileColumns = `name, state, batch_id, orders, lines, total_records, total_errors, message, data, run_id, created, updated`
)

// batchFileArgs are the upsert's arguments for rec.
func batchFileArgs(account string, rec pipeline.BatchRecord, now int64) []any {
	data := rec.Data
	if rec.State == pipeline.BatchProcessed || rec.State == pipeline.BatchRefused {
		data = nil
	}
	created := nanos(rec.Created)
	if created == 0 {
		created = now
	}
	return []any{account, rec.Name, string(rec.State), rec.BatchID, rec.Orders, rec.Lines, rec.TotalRecords,
		rec.TotalErrors, rec.Message, data, rec.RunID, created, now}
}

// checkBatch checks a record and its lines before a write.
func checkBatch(ledger string, rec pipeline.BatchRecord, lines []pipeline.BatchLine) error {
	switch rec.State {
	case pipeline.BatchWritten, pipeline.BatchUploaded, pipeline.BatchProcessed, pipeline.BatchRefused:
	default:
		return fmt.Errorf("ledger %s: batch file %s: %w: unknown state %q", ledger, rec.Name, ErrInvalidEntry, rec.State)
	}
	if rec.Name == "" {
		return fmt.Errorf("ledger %s: batch file: %w: no name", ledger, ErrInvalidEntry)
	}
	for _, ln := range lines {
		if ln.File != rec.Name || ln.Key.OrderID == "" || ln.First < 2 || ln.Last < ln.First {
			return fmt.Errorf("ledger %s: batch file %s: %w: bad line record %+v", ledger, rec.Name, ErrInvalidEntry, ln)
		}
	}
	return nil
}

// takenError is the error of an order found in another file.
func takenError(ledger string, rec pipeline.BatchRecord, key pipeline.Key, other string) error {
	return fmt.Errorf("ledger %s: batch file %s: order %s: %w: it is in %s", ledger, rec.Name, key, pipeline.ErrInFile, other)
}

// RecordBatch records a new batch file, its orders' places and entries in
// one transaction (see pipeline.BatchLedger).
func (l *Ledger) RecordBatch(ctx context.Context, rec pipeline.BatchRecord, lines []pipeline.BatchLine, es []pipeline.Entry) error {
	if err := checkBatch(l.name, rec, lines); err != nil {
		return err
	}
	return l.writeBatch(ctx, "record batch file "+rec.Name, rec, lines, es)
}

// UpdateBatch replaces a file's record and writes entries in one
// transaction (see pipeline.BatchLedger).
func (l *Ledger) UpdateBatch(ctx context.Context, rec pipeline.BatchRecord, es []pipeline.Entry) error {
	if err := checkBatch(l.name, rec, nil); err != nil {
		return err
	}
	return l.writeBatch(ctx, "update batch file "+rec.Name, rec, nil, es)
}

// writeBatch writes a file's record, its lines (refused when an order is
// in another file not processed yet) and entries in one transaction.
func (l *Ledger) writeBatch(ctx context.Context, op string, rec pipeline.BatchRecord, lines []pipeline.BatchLine, es []pipeline.Entry) error {
	cols, err := entryCols(l.name, es)
	if err != nil {
		return err
	}
	now := time.Now().UnixNano()
	return l.writeThen(ctx, op, func(ctx context.Context) error {
		if _, err := l.wconn.ExecContext(ctx, batchFileUpsertSQL, batchFileArgs(l.account, rec, now)...); err != nil {
			return err
		}
		if err := l.insertLines(ctx, rec, lines); err != nil {
			return err
		}
		for i, e := range es {
			if _, err := l.putStmt.ExecContext(ctx, putArgs(l.account, e, cols[i])...); err != nil {
				return fmt.Errorf("%s: %w", e.Key, err)
			}
		}
		return nil
	}, func() { l.indexEntries(es) })
}

// insertLines writes the lines of rec, each checked first.
func (l *Ledger) insertLines(ctx context.Context, rec pipeline.BatchRecord, lines []pipeline.BatchLine) error {
	if len(lines) == 0 {
		return nil
	}
	taken, err := l.wconn.PrepareContext(ctx, batchTakenSQL)
	if err != nil {
		return err
	}
	defer taken.Close()
	ins, err := l.wconn.PrepareContext(ctx, batchLineUpsertSQL)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, ln := range lines {
		var other string
		err := taken.QueryRowContext(ctx, l.account, ln.Key.EventType, ln.Key.OrderID, rec.Name).Scan(&other)
		switch {
		case err == nil:
			return takenError(l.name, rec, ln.Key, other)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := ins.ExecContext(ctx, l.account, rec.Name, ln.Key.EventType, ln.Key.OrderID, ln.First, ln.Last); err != nil {
			return err
		}
	}
	return nil
}

// indexEntries updates the index with entries just written.
func (l *Ledger) indexEntries(es []pipeline.Entry) {
	if ix := l.idx.Load(); ix != nil {
		for _, e := range es {
			ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
		}
	}
}

// BatchFiles calls fn for each batch file in one of states (every file
// when none are given), oldest first.
func (l *Ledger) BatchFiles(ctx context.Context, fn func(pipeline.BatchRecord) error, states ...pipeline.BatchState) error {
	if err := l.readable("batch files"); err != nil {
		return err
	}
	q, args := batchFilesQuery("?", l.account, states)
	rows, err := l.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("ledger %s: batch files: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	var recs []pipeline.BatchRecord
	for rows.Next() {
		var r pipeline.BatchRecord
		var created, updated int64
		if err := rows.Scan(&r.Name, &r.State, &r.BatchID, &r.Orders, &r.Lines, &r.TotalRecords, &r.TotalErrors, &r.Message, &r.Data, &r.RunID, &created, &updated); err != nil {
			return fmt.Errorf("ledger %s: batch files: %w", l.name, sqlError(err))
		}
		r.Created, r.Updated = fromNanos(created), fromNanos(updated)
		recs = append(recs, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: batch files: %w", l.name, sqlError(err))
	}
	rows.Close()
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// batchFilesQuery is the query of BatchFiles, with placeholder ph ("?",
// or "$" to number them).
func batchFilesQuery(ph, account string, states []pipeline.BatchState) (string, []any) {
	n := 0
	next := func() string {
		n++
		if ph == "$" {
			return fmt.Sprintf("$%d", n)
		}
		return "?"
	}
	q := `SELECT ` + batchFileColumns + ` FROM batch_files WHERE account = ` + next()
	args := []any{account}
	if len(states) > 0 {
		marks := make([]string, len(states))
		for i, s := range states {
			marks[i] = next()
			args = append(args, string(s))
		}
		q += ` AND state IN (` + strings.Join(marks, ", ") + `)`
	}
	return q + ` ORDER BY created, name`, args
}

// BatchLines returns the orders of one batch file, in file order.
func (l *Ledger) BatchLines(ctx context.Context, file string) ([]pipeline.BatchLine, error) {
	if err := l.readable("batch lines of " + file); err != nil {
		return nil, err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT event_type, order_id, first_line, last_line FROM batch_lines
		WHERE account = ? AND file = ? ORDER BY first_line`, l.account, file)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: batch lines of %s: %w", l.name, file, sqlError(err))
	}
	defer rows.Close()
	var out []pipeline.BatchLine
	for rows.Next() {
		ln := pipeline.BatchLine{File: file}
		if err := rows.Scan(&ln.Key.EventType, &ln.Key.OrderID, &ln.First, &ln.Last); err != nil {
			return nil, fmt.Errorf("ledger %s: batch lines of %s: %w", l.name, file, sqlError(err))
		}
		out = append(out, ln)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: batch lines of %s: %w", l.name, file, sqlError(err))
	}
	return out, nil
}
