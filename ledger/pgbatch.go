package ledger

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/pipeline"
)

// pgBatchTablesSQL is the PostgreSQL migration of batchTablesSQL; keys
// are bytea, as in the conversions.
const pgBatchTablesSQL = `CREATE TABLE convpipe.batch_files (
		account       text COLLATE "C" NOT NULL DEFAULT '',
		name          text COLLATE "C" NOT NULL,
		state         text NOT NULL CHECK (state IN ('written','uploaded','processed','refused')),
		batch_id      text NOT NULL DEFAULT '',
		orders        integer NOT NULL DEFAULT 0,
		lines         integer NOT NULL DEFAULT 0,
		total_records integer NOT NULL DEFAULT 0,
		total_errors  integer NOT NULL DEFAULT 0,
		message       text NOT NULL DEFAULT '',
		data          bytea,
		run_id        text COLLATE "C" NOT NULL DEFAULT '',
		created       bigint NOT NULL,
		updated       bigint NOT NULL,
		PRIMARY KEY (account, name)
	);
	CREATE INDEX batch_files_state ON convpipe.batch_files (account, state, created);
	CREATE TABLE convpipe.batch_lines (
		account    text COLLATE "C" NOT NULL DEFAULT '',
		file       text COLLATE "C" NOT NULL,
		event_type bytea NOT NULL,
		order_id   bytea NOT NULL,
		first_line integer NOT NULL,
		last_line  integer NOT NULL,
		PRIMARY KEY (account, file, event_type, order_id)
	);
	CREATE INDEX batch_lines_key ON convpipe.batch_lines (account, event_type, order_id);`

var (
	pgTableRe = regexp.MustCompile(`\b(batch_files|batch_lines)\b( [a-z]\b| WHERE| \(| VALUES| ORDER| ON)`)
	pgMarkRe  = regexp.MustCompile(`\?`)
)

// pgSQL turns a statement of the SQLite batch tables into PostgreSQL's:
// numbered placeholders, the tables in the convpipe schema.
func pgSQL(q string) string {
	q = pgTableRe.ReplaceAllString(q, "convpipe.$1$2")
	n := 0
	return pgMarkRe.ReplaceAllStringFunc(q, func(string) string {
		n++
		return "$" + strconv.Itoa(n)
	})
}

var (
	pgBatchFileUpsertSQL = pgSQL(batchFileUpsertSQL)
	pgBatchLineUpsertSQL = pgSQL(batchLineUpsertSQL)
)

// pgBatchTakenSQL finds an order of the file being recorded that is in
// another file not processed yet.
const pgBatchTakenSQL = `SELECT l.event_type, l.order_id, l.file FROM convpipe.batch_lines l
	JOIN convpipe.batch_files f ON f.account = l.account AND f.name = l.file
	JOIN unnest($3::bytea[], $4::bytea[]) AS k(et, oid) ON l.event_type = k.et AND l.order_id = k.oid
	WHERE l.account = $1 AND l.file <> $2 AND f.state IN ('written','uploaded') LIMIT 1`

// RecordBatch records a new batch file, its orders' places and entries in
// one transaction (see pipeline.BatchLedger).
func (l *Postgres) RecordBatch(ctx context.Context, rec pipeline.BatchRecord, lines []pipeline.BatchLine, es []pipeline.Entry) error {
	if err := checkBatch(l.name, rec, lines); err != nil {
		return err
	}
	return l.writeBatch(ctx, "record batch file "+rec.Name, rec, lines, es)
}

// UpdateBatch replaces a file's record and writes entries in one
// transaction (see pipeline.BatchLedger).
func (l *Postgres) UpdateBatch(ctx context.Context, rec pipeline.BatchRecord, es []pipeline.Entry) error {
	if err := checkBatch(l.name, rec, nil); err != nil {
		return err
	}
	return l.writeBatch(ctx, "update batch file "+rec.Name, rec, nil, es)
}

// writeBatch runs alone on the writer's connection, in a transaction of
// its own: the check of the lines can then undo the whole write.
func (l *Postgres) writeBatch(ctx context.Context, op string, rec pipeline.BatchRecord, lines []pipeline.BatchLine, es []pipeline.Entry) error {
	cols, err := entryCols(l.name, es)
	if err != nil {
		return err
	}
	now := time.Now().UnixNano()
	r := &pgWriteReq{direct: func(ctx context.Context, conn *pgx.Conn) error {
		return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := l.checkTaken(ctx, tx, rec, lines); err != nil {
				return err
			}
			b := &pgx.Batch{}
			b.Queue(pgBatchFileUpsertSQL, batchFileArgs(l.account, rec, now)...)
			for _, ln := range lines {
				b.Queue(pgBatchLineUpsertSQL, l.account, rec.Name, []byte(ln.Key.EventType), []byte(ln.Key.OrderID), ln.First, ln.Last)
			}
			for i, e := range es {
				b.Queue(pgPutSQL, pgPutArgs(l.account, e, cols[i])...)
			}
			return tx.SendBatch(ctx, b).Close()
		})
	}, after: func() {
		if ix := l.idx.Load(); ix != nil {
			for _, e := range es {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	}}
	return l.write(ctx, op, r)
}

// checkTaken refuses lines whose order is in another file not processed
// yet.
func (l *Postgres) checkTaken(ctx context.Context, tx pgx.Tx, rec pipeline.BatchRecord, lines []pipeline.BatchLine) error {
	if len(lines) == 0 {
		return nil
	}
	ets, oids := make([][]byte, len(lines)), make([][]byte, len(lines))
	for i, ln := range lines {
		ets[i], oids[i] = []byte(ln.Key.EventType), []byte(ln.Key.OrderID)
	}
	var et, oid []byte
	var other string
	err := tx.QueryRow(ctx, pgBatchTakenSQL, l.account, rec.Name, ets, oids).Scan(&et, &oid, &other)
	switch {
	case err == nil:
		return takenError(l.name, rec, pipeline.Key{EventType: string(et), OrderID: string(oid)}, other)
	case err == pgx.ErrNoRows:
		return nil
	}
	return err
}

// BatchFiles calls fn for each batch file in one of states (every file
// when none are given), oldest first.
func (l *Postgres) BatchFiles(ctx context.Context, fn func(pipeline.BatchRecord) error, states ...pipeline.BatchState) error {
	if err := l.readable("batch files"); err != nil {
		return err
	}
	q, args := batchFilesQuery("$", l.account, states)
	rows, err := l.pool.Query(ctx, pgTableRe.ReplaceAllString(q, "convpipe.$1$2"), args...)
	if err != nil {
		return l.readErr("batch files", err)
	}
	recs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pipeline.BatchRecord, error) {
		var r pipeline.BatchRecord
		var state string
		var created, updated int64
		err := row.Scan(&r.Name, &state, &r.BatchID, &r.Orders, &r.Lines, &r.TotalRecords, &r.TotalErrors, &r.Message, &r.Data, &r.RunID, &created, &updated)
		r.State, r.Created, r.Updated = pipeline.BatchState(state), fromNanos(created), fromNanos(updated)
		return r, err
	})
	if err != nil {
		return l.readErr("batch files", err)
	}
	for _, r := range recs {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// BatchLines returns the orders of one batch file, in file order.
func (l *Postgres) BatchLines(ctx context.Context, file string) ([]pipeline.BatchLine, error) {
	op := "batch lines of " + file
	if err := l.readable(op); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, `SELECT event_type, order_id, first_line, last_line FROM convpipe.batch_lines
		WHERE account = $1 AND file = $2 ORDER BY first_line`, l.account, file)
	if err != nil {
		return nil, l.readErr(op, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pipeline.BatchLine, error) {
		var et, oid []byte
		ln := pipeline.BatchLine{File: file}
		err := row.Scan(&et, &oid, &ln.First, &ln.Last)
		ln.Key = pipeline.Key{EventType: string(et), OrderID: string(oid)}
		return ln, err
	})
	if err != nil {
		return nil, l.readErr(op, fmt.Errorf("%w", err))
	}
	return out, nil
}
