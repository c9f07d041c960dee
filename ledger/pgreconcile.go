package ledger

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/pipeline"
)

// pgReconcileMigration is the PostgreSQL schema's step 3, as
// reconcileMigration is SQLite's: the new states, the reconcile columns
// and the history.
const pgReconcileMigration = `ALTER TABLE convpipe.conversions DROP CONSTRAINT conversions_state_check;
	ALTER TABLE convpipe.conversions ADD CONSTRAINT conversions_state_check
		CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed','tracked','not_tracked'));
	ALTER TABLE convpipe.conversions
		ADD COLUMN campaign_id text NOT NULL DEFAULT '',
		ADD COLUMN event_date bigint NOT NULL DEFAULT 0,
		ADD COLUMN accepted_at bigint NOT NULL DEFAULT 0,
		ADD COLUMN verdict text NOT NULL DEFAULT '',
		ADD COLUMN action_id text NOT NULL DEFAULT '',
		ADD COLUMN action_state text NOT NULL DEFAULT '',
		ADD COLUMN amount text NOT NULL DEFAULT '',
		ADD COLUMN currency text NOT NULL DEFAULT '',
		ADD COLUMN locking_date bigint NOT NULL DEFAULT 0,
		ADD COLUMN error_type text NOT NULL DEFAULT '',
		ADD COLUMN error_reason text NOT NULL DEFAULT '',
		ADD COLUMN meaning text NOT NULL DEFAULT '',
		ADD COLUMN note text NOT NULL DEFAULT '',
		ADD COLUMN reconciled_at bigint NOT NULL DEFAULT 0,
		ADD COLUMN final boolean NOT NULL DEFAULT false;
	UPDATE convpipe.conversions SET accepted_at = updated WHERE state = 'accepted';
	CREATE TABLE convpipe.reconcile_history (
		seq           bigserial PRIMARY KEY,
		account       text COLLATE "C" NOT NULL DEFAULT '',
		event_type    bytea NOT NULL,
		order_id      bytea NOT NULL,
		reconciled_at bigint NOT NULL,
		run_id        text COLLATE "C" NOT NULL DEFAULT '',
		verdict       text NOT NULL,
		action_id     text NOT NULL DEFAULT '',
		action_state  text NOT NULL DEFAULT '',
		amount        text NOT NULL DEFAULT '',
		currency      text NOT NULL DEFAULT '',
		locking_date  bigint NOT NULL DEFAULT 0,
		error_type    text NOT NULL DEFAULT '',
		error_reason  text NOT NULL DEFAULT '',
		meaning       text NOT NULL DEFAULT '',
		note          text NOT NULL DEFAULT '',
		final         boolean NOT NULL DEFAULT false
	);
	CREATE INDEX reconcile_history_key ON convpipe.reconcile_history (account, event_type, order_id, reconciled_at);`

// pgReconcileScan is reconcileScan with PostgreSQL's boolean final.
type pgReconcileScan struct {
	reconcileScan
	final bool
}

func (s *pgReconcileScan) dests() []any {
	d := s.reconcileScan.dests()
	d[len(d)-1] = &s.final
	return d
}

func (s *pgReconcileScan) apply(e *pipeline.Entry) {
	if s.final {
		s.reconcileScan.final = 1
	}
	s.reconcileScan.apply(e)
}

// pgPlaceholders returns "$from, ..., $to".
func pgPlaceholders(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		if i > from {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(i))
	}
	return b.String()
}

var pgHistoryInsertSQL = `INSERT INTO convpipe.reconcile_history (account, event_type, order_id, ` + historyColumns + `)
	VALUES (` + pgPlaceholders(1, 16) + `)`

// PutReconciled is the SQLite ledger's PutReconciled.
func (l *Postgres) PutReconciled(ctx context.Context, es []pipeline.Entry) error {
	if len(es) == 0 {
		return nil
	}
	if err := checkReconciled(l.name, es); err != nil {
		return err
	}
	cols, err := entryCols(l.name, es)
	if err != nil {
		return err
	}
	r := &pgWriteReq{}
	for i, e := range es {
		r.stmts = append(r.stmts, pgStmt{pgPutSQL, pgPutArgs(l.account, e, cols[i])},
			pgStmt{pgHistoryInsertSQL, append([]any{l.account, []byte(e.Key.EventType), []byte(e.Key.OrderID)}, historyArgs(*e.Reconciled)...)})
	}
	r.after = func() {
		if ix := l.idx.Load(); ix != nil {
			for _, e := range es {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	}
	return l.write(ctx, reconciledOp(es), r)
}

// ReconcileHistory is the SQLite ledger's ReconcileHistory.
func (l *Postgres) ReconcileHistory(ctx context.Context, key pipeline.Key) ([]pipeline.Reconciliation, error) {
	op := "reconcile history of " + key.String()
	if err := l.readable(op); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, `SELECT `+historyColumns+` FROM convpipe.reconcile_history
		WHERE account = $1 AND event_type = $2 AND order_id = $3 ORDER BY reconciled_at, seq`, l.account, []byte(key.EventType), []byte(key.OrderID))
	if err != nil {
		return nil, l.readErr(op, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (pipeline.Reconciliation, error) {
		var r pipeline.Reconciliation
		var at, locking int64
		var st string
		err := row.Scan(&at, &r.RunID, &r.Verdict, &r.ActionID, &st, &r.Amount, &r.Currency, &locking,
			&r.ErrorType, &r.ErrorReason, &r.Meaning, &r.Note, &r.Final)
		r.At, r.LockingDate, r.ActionState = fromNanos(at), fromNanos(locking), pipeline.ActionState(st)
		return r, err
	})
	if err != nil {
		return nil, l.readErr(op, err)
	}
	return out, nil
}

// Problems is the SQLite ledger's Problems.
func (l *Postgres) Problems(ctx context.Context) ([]Problem, error) {
	if err := l.readable("problems"); err != nil {
		return nil, err
	}
	q := strings.Replace(strings.Replace(problemsSQL, "FROM conversions", "FROM convpipe.conversions", 1), "account = ?", "account = $1", 1)
	rows, err := l.pool.Query(ctx, q, l.account)
	if err != nil {
		return nil, l.readErr("problems", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Problem, error) {
		var p Problem
		var st string
		var oldest int64
		err := row.Scan(&st, &p.Count, &oldest)
		p.State, p.Oldest = pipeline.State(st), fromNanos(oldest)
		return p, err
	})
	if err != nil {
		return nil, l.readErr("problems", err)
	}
	return out, nil
}

// Reconcilable is the SQLite ledger's Reconcilable.
func (l *Postgres) Reconcilable(ctx context.Context, acceptedBefore time.Time, fn func(pipeline.Entry) error) error {
	op := "reconcilable entries"
	if err := l.readable(op); err != nil {
		return err
	}
	where := strings.Replace(reconcilableWhere, "final = 0", "NOT final", 1)
	rows, err := l.pool.Query(ctx, `SELECT `+pgEntryColumns+` FROM convpipe.conversions WHERE account = $1`+where+`$2 ORDER BY event_type, order_id`,
		l.account, acceptedBefore.UnixNano())
	if err != nil {
		return l.readErr(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		e, err := pgScanEntry(rows)
		if err != nil {
			return l.readErr(op, err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return l.readErr(op, err)
	}
	return nil
}
