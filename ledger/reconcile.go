package ledger

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"convpipe/pipeline"
)

// reconcileMigration is the SQLite schema's step 3: what reconciling needs
// of each accepted conversion (the CampaignId and EventDate sent, when it
// was accepted) and what it learned (the reconcile columns, see
// pipeline.Reconciliation), and the history of what each reconcile
// learned. An entry accepted before has its last write as its acceptance
// time. The new states' CHECK is allowReconcileStates's.
const reconcileMigration = `ALTER TABLE conversions ADD COLUMN campaign_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN event_date INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE conversions ADD COLUMN accepted_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE conversions ADD COLUMN verdict TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN action_id TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN action_state TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN amount TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN currency TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN locking_date INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE conversions ADD COLUMN error_type TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN error_reason TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN meaning TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN note TEXT NOT NULL DEFAULT '';
	ALTER TABLE conversions ADD COLUMN reconciled_at INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE conversions ADD COLUMN final INTEGER NOT NULL DEFAULT 0;
	UPDATE conversions SET accepted_at = updated WHERE state = 'accepted';
	CREATE TABLE reconcile_history (
		account       TEXT NOT NULL DEFAULT '',
		event_type    TEXT NOT NULL,
		order_id      TEXT NOT NULL,
		reconciled_at INTEGER NOT NULL,
		run_id        TEXT NOT NULL DEFAULT '',
		verdict       TEXT NOT NULL,
		action_id     TEXT NOT NULL DEFAULT '',
		action_state  TEXT NOT NULL DEFAULT '',
		amount        TEXT NOT NULL DEFAULT '',
		currency      TEXT NOT NULL DEFAULT '',
		locking_date  INTEGER NOT NULL DEFAULT 0,
		error_type    TEXT NOT NULL DEFAULT '',
		error_reason  TEXT NOT NULL DEFAULT '',
		meaning       TEXT NOT NULL DEFAULT '',
		note          TEXT NOT NULL DEFAULT '',
		final         INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX reconcile_history_key ON reconcile_history (account, event_type, order_id, reconciled_at);`

// migrationFixes are what steps of migrations need beyond their SQL, run
// after it, by the step's index.
var migrationFixes = map[int]func(ctx context.Context, conn *sql.Conn) error{
	2: allowReconcileStates,
}

// The state CHECK of the conversions table before and after step 3.
const (
	stateCheckV2 = `CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed'))`
	stateCheckV3 = `CHECK (state IN ('pending','accepted','rejected','failed','invalid','skipped','changed','tracked','not_tracked'))`
)

// allowReconcileStates lets the conversions table hold the states tracked
// and not_tracked. SQLite cannot alter a CHECK; it documents editing the
// table's definition in sqlite_schema for a looser one (the stored rows
// need no change), which keeps every column other steps may add.
func allowReconcileStates(ctx context.Context, conn *sql.Conn) error {
	var def string
	var version int
	if err := conn.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'conversions'`).Scan(&def); err != nil {
		return err
	}
	if !strings.Contains(def, stateCheckV2) {
		return fmt.Errorf("the conversions table has no state check %s", stateCheckV2)
	}
	if err := conn.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return err
	}
	steps := []struct {
		q    string
		args []any
	}{
		{`PRAGMA writable_schema = ON`, nil},
		{`UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = 'conversions'`, []any{strings.Replace(def, stateCheckV2, stateCheckV3, 1)}},
		{fmt.Sprintf(`PRAGMA schema_version = %d`, version+1), nil},
		{`PRAGMA writable_schema = OFF`, nil},
	}
	for _, st := range steps {
		if _, err := conn.ExecContext(ctx, st.q, st.args...); err != nil {
			return fmt.Errorf("%s: %w", st.q, err)
		}
	}
	return nil
}

// reconcileColumns are the columns of the conversions table that
// reconciling reads and writes, in reconcileArgs's order.
const reconcileColumns = `campaign_id, event_date, accepted_at, verdict, action_id, action_state, amount, currency,
	locking_date, error_type, error_reason, meaning, note, reconciled_at, final`

// reconcileSet is the ON CONFLICT assignment of reconcileColumns.
const reconcileSet = `campaign_id = excluded.campaign_id, event_date = excluded.event_date,
		accepted_at = excluded.accepted_at, verdict = excluded.verdict, action_id = excluded.action_id,
		action_state = excluded.action_state, amount = excluded.amount, currency = excluded.currency,
		locking_date = excluded.locking_date, error_type = excluded.error_type,
		error_reason = excluded.error_reason, meaning = excluded.meaning, note = excluded.note,
		reconciled_at = excluded.reconciled_at, final = excluded.final`

// reconcileArgs are e's values of reconcileColumns.
func reconcileArgs(e pipeline.Entry) []any {
	r := pipeline.Reconciliation{}
	if e.Reconciled != nil {
		r = *e.Reconciled
	}
	return []any{e.CampaignID, nanos(e.EventDate), nanos(e.AcceptedAt), r.Verdict, r.ActionID, string(r.ActionState),
		r.Amount, r.Currency, nanos(r.LockingDate), r.ErrorType, r.ErrorReason, r.Meaning, r.Note, nanos(r.At), r.Final}
}

// reconcileScan holds the scanned reconcile columns of one row.
type reconcileScan struct {
	campaign                            string
	event, accepted, locking, at, final int64
	verdict, actionID, actionState      string
	amount, currency, errType, reason   string
	meaning, note                       string
}

// dests are the scan destinations of reconcileColumns.
func (s *reconcileScan) dests() []any {
	return []any{&s.campaign, &s.event, &s.accepted, &s.verdict, &s.actionID, &s.actionState, &s.amount, &s.currency,
		&s.locking, &s.errType, &s.reason, &s.meaning, &s.note, &s.at, &s.final}
}

// apply sets e's reconcile fields from the scanned columns.
func (s *reconcileScan) apply(e *pipeline.Entry) {
	e.CampaignID, e.EventDate, e.AcceptedAt = s.campaign, fromNanos(s.event), fromNanos(s.accepted)
	if s.verdict == "" {
		return
	}
	e.Reconciled = &pipeline.Reconciliation{Verdict: s.verdict, ActionID: s.actionID, ActionState: pipeline.ActionState(s.actionState),
		Amount: s.amount, Currency: s.currency, LockingDate: fromNanos(s.locking), ErrorType: s.errType, ErrorReason: s.reason,
		Meaning: s.meaning, Note: s.note, At: fromNanos(s.at), Final: s.final != 0}
}

const historyColumns = `reconciled_at, run_id, verdict, action_id, action_state, amount, currency, locking_date,
	error_type, error_reason, meaning, note, final`

const historyInsertSQL = `INSERT INTO reconcile_history (account, event_type, order_id, ` + historyColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// historyArgs are the values of historyColumns of r.
func historyArgs(r pipeline.Reconciliation) []any {
	return []any{nanos(r.At), r.RunID, r.Verdict, r.ActionID, string(r.ActionState), r.Amount, r.Currency, nanos(r.LockingDate),
		r.ErrorType, r.ErrorReason, r.Meaning, r.Note, r.Final}
}

// checkReconciled checks the entries PutReconciled is given.
func checkReconciled(ledger string, es []pipeline.Entry) error {
	for _, e := range es {
		if e.Reconciled == nil || e.Reconciled.At.IsZero() {
			return fmt.Errorf("ledger %s: record the reconcile of %s: %w: no reconciliation or no time", ledger, e.Key, ErrInvalidEntry)
		}
	}
	return nil
}

// reconciledOp describes a PutReconciled of es for messages.
func reconciledOp(es []pipeline.Entry) string {
	if len(es) > 1 {
		return fmt.Sprintf("record the reconcile of %d entries (%s, ...)", len(es), es[0].Key)
	}
	return "record the reconcile of " + es[0].Key.String()
}

// PutReconciled writes entries whose Reconciled a reconcile has just set,
// as PutAll does, and adds each one's reconciliation to its history, in
// the same transaction.
func (l *Ledger) PutReconciled(ctx context.Context, es []pipeline.Entry) error {
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
	return l.writeThen(ctx, reconciledOp(es), func(ctx context.Context) error {
		for i, e := range es {
			if _, err := l.putStmt.ExecContext(ctx, putArgs(l.account, e, cols[i])...); err != nil {
				return fmt.Errorf("%s: %w", e.Key, err)
			}
			args := append([]any{l.account, e.Key.EventType, e.Key.OrderID}, historyArgs(*e.Reconciled)...)
			if _, err := l.wconn.ExecContext(ctx, historyInsertSQL, args...); err != nil {
				return fmt.Errorf("%s: history: %w", e.Key, err)
			}
		}
		return nil
	}, func() {
		if ix := l.idx.Load(); ix != nil {
			for _, e := range es {
				ix.set(ix.hash(e.Key), pack(string(e.State), e.PayloadHash))
			}
		}
	})
}

// ReconcileHistory returns what each reconcile that learned something new
// of key recorded, oldest first.
func (l *Ledger) ReconcileHistory(ctx context.Context, key pipeline.Key) ([]pipeline.Reconciliation, error) {
	if err := l.readable("reconcile history of " + key.String()); err != nil {
		return nil, err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT `+historyColumns+` FROM reconcile_history
		WHERE account = ? AND event_type = ? AND order_id = ? ORDER BY reconciled_at, rowid`, l.account, key.EventType, key.OrderID)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: reconcile history of %s: %w", l.name, key, sqlError(err))
	}
	defer rows.Close()
	var out []pipeline.Reconciliation
	for rows.Next() {
		var r pipeline.Reconciliation
		var at, locking, final int64
		var st string
		if err := rows.Scan(&at, &r.RunID, &r.Verdict, &r.ActionID, &st, &r.Amount, &r.Currency, &locking,
			&r.ErrorType, &r.ErrorReason, &r.Meaning, &r.Note, &final); err != nil {
			return nil, fmt.Errorf("ledger %s: reconcile history of %s: %w", l.name, key, sqlError(err))
		}
		r.At, r.LockingDate, r.ActionState, r.Final = fromNanos(at), fromNanos(locking), pipeline.ActionState(st), final != 0
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: reconcile history of %s: %w", l.name, key, sqlError(err))
	}
	return out, nil
}

// Problem is what the ledger holds open in one state that needs a human:
// how many entries, and the first write of the oldest.
type Problem = pipeline.OpenProblem

// ProblemStates are the states of entries that stay open problems until
// a human acts: orders that could not be sent as they are, or that impact
// did not track.
var ProblemStates = []pipeline.State{pipeline.StateInvalid, pipeline.StateRejected, pipeline.StateFailed,
	pipeline.StateChanged, pipeline.StateNotTracked}

// problemsSQL counts the entries of each problem state; ? is the account.
var problemsSQL = `SELECT state, count(*), min(created) FROM conversions WHERE account = ? AND state IN ('` +
	strings.Join(func() []string {
		s := make([]string, len(ProblemStates))
		for i, st := range ProblemStates {
			s[i] = string(st)
		}
		return s
	}(), "','") + `') GROUP BY state ORDER BY state`

// Problems returns the open problems of the ledger's account, by state
// (those with any), in state order.
func (l *Ledger) Problems(ctx context.Context) ([]Problem, error) {
	if err := l.readable("problems"); err != nil {
		return nil, err
	}
	rows, err := l.rdb.QueryContext(ctx, problemsSQL, l.account)
	if err != nil {
		return nil, fmt.Errorf("ledger %s: problems: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	var out []Problem
	for rows.Next() {
		var p Problem
		var st string
		var oldest int64
		if err := rows.Scan(&st, &p.Count, &oldest); err != nil {
			return nil, fmt.Errorf("ledger %s: problems: %w", l.name, sqlError(err))
		}
		p.State, p.Oldest = pipeline.State(st), fromNanos(oldest)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger %s: problems: %w", l.name, sqlError(err))
	}
	return out, nil
}

// ReconciledText says in one line what a reconciliation learned, empty
// for none: "tracked: action A PENDING, 39.80 EUR, locks 2026-12-21",
// "not tracked: CONTRACT_NOT_FOUND (Contract Error): no partner ...", or
// the note of an outcome not known.
func ReconciledText(r *pipeline.Reconciliation) string {
	if r == nil {
		return ""
	}
	var b strings.Builder
	switch r.Verdict {
	case "tracked":
		b.WriteString("tracked")
		if r.ActionID != "" {
			fmt.Fprintf(&b, ": action %s %s", r.ActionID, r.ActionState)
			if r.Amount != "" {
				fmt.Fprintf(&b, ", %s %s", r.Amount, r.Currency)
			}
			if !r.LockingDate.IsZero() {
				fmt.Fprintf(&b, ", locks %s", r.LockingDate.Format("2006-01-02"))
			}
		}
	case "not_tracked":
		fmt.Fprintf(&b, "not tracked: %s", r.ErrorReason)
		if r.ErrorType != "" {
			fmt.Fprintf(&b, " (%s)", r.ErrorType)
		}
		if r.Meaning != "" {
			b.WriteString(": " + r.Meaning)
		}
	default:
		b.WriteString("unknown")
	}
	if r.Note != "" {
		b.WriteString("; " + r.Note)
	}
	return b.String()
}

// reconcilableWhere selects, after the account, the entries a reconcile
// asks about (reconcile.Asks): accepted, or tracked, not final, accepted
// at or before a time (the settle time ago).
const reconcilableWhere = ` AND state IN ('accepted', 'tracked') AND final = 0 AND accepted_at <= `

// Reconcilable calls fn, in key order, for each entry that a reconcile
// asks about and that was accepted at or before acceptedBefore: accepted
// or tracked, and not final. The rest of the ledger (final outcomes,
// what was just sent) is not read.
func (l *Ledger) Reconcilable(ctx context.Context, acceptedBefore time.Time, fn func(pipeline.Entry) error) error {
	if err := l.readable("reconcilable entries"); err != nil {
		return err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT `+entryColumns+` FROM conversions WHERE account = ?`+reconcilableWhere+`? ORDER BY event_type, order_id`,
		l.account, acceptedBefore.UnixNano())
	if err != nil {
		return fmt.Errorf("ledger %s: reconcilable entries: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return fmt.Errorf("ledger %s: reconcilable entries: %w", l.name, sqlError(err))
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: reconcilable entries: %w", l.name, sqlError(err))
	}
	return nil
}
