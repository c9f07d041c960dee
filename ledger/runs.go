package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"convpipe/pipeline"
)

const beginRunSQL = `INSERT INTO runs (id, started, args, account) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

// finishRunSQL also records a run that was never begun (started is then
// its finish time), so that no summary is lost.
const finishRunSQL = `INSERT INTO runs (id, started, finished, args, summary, account) VALUES (?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET finished = excluded.finished, summary = excluded.summary,
		args = CASE WHEN excluded.args != '' THEN excluded.args ELSE runs.args END`

const runColumns = `id, started, finished, args, summary`

// BeginRun records the start of a run, durably, and names it in the lock
// file and the marker file. A run ID already recorded is an error.
func (l *Ledger) BeginRun(ctx context.Context, run pipeline.RunInfo) error {
	op := "begin run " + run.ID
	if run.ID == "" {
		return fmt.Errorf("ledger %s: begin run: empty run id", l.name)
	}
	started := run.Started
	if started.IsZero() {
		started = time.Now()
	}
	err := l.write(ctx, op, func(ctx context.Context) error {
		res, err := l.beginStmt.ExecContext(ctx, run.ID, started.UnixNano(), run.Args, l.account)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err == nil && n == 0 {
			return errors.New("a run with this id is already recorded")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := l.lock.setRun(run.ID); err != nil {
		return fmt.Errorf("ledger %s: %s: write lock file: %w", l.name, op, err)
	}
	if err := l.markRun(run.ID, started); err != nil {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, err)
	}
	return nil
}

// FinishRun records the end of a run and its summary, durably. Finished
// defaults to now.
func (l *Ledger) FinishRun(ctx context.Context, run pipeline.RunInfo) error {
	op := "finish run " + run.ID
	if run.ID == "" {
		return fmt.Errorf("ledger %s: finish run: empty run id", l.name)
	}
	finished := run.Finished
	if finished.IsZero() {
		finished = time.Now()
	}
	started := run.Started
	if started.IsZero() {
		started = finished
	}
	var summary any
	if run.Summary != nil {
		b, err := json.Marshal(run.Summary)
		if err != nil {
			return fmt.Errorf("ledger %s: %s: summary: %w", l.name, op, err)
		}
		summary = string(b)
	}
	return l.write(ctx, op, func(ctx context.Context) error {
		_, err := l.endStmt.ExecContext(ctx, run.ID, started.UnixNano(), finished.UnixNano(), run.Args, summary, l.account)
		return err
	})
}

// Run returns the run with the given id, and false when there is none.
func (l *Ledger) Run(ctx context.Context, id string) (pipeline.RunInfo, bool, error) {
	if err := l.readable("run " + id); err != nil {
		return pipeline.RunInfo{}, false, err
	}
	r, err := scanRun(l.rdb.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ? AND account = ?`, id, l.account))
	if errors.Is(err, sql.ErrNoRows) {
		return pipeline.RunInfo{}, false, nil
	}
	if err != nil {
		return pipeline.RunInfo{}, false, fmt.Errorf("ledger %s: run %s: %w", l.name, id, sqlError(err))
	}
	return r, true, nil
}

// Runs calls fn for each recorded run, oldest first, until fn returns an
// error, which Runs returns as is.
func (l *Ledger) Runs(ctx context.Context, fn func(pipeline.RunInfo) error) error {
	if err := l.readable("runs"); err != nil {
		return err
	}
	rows, err := l.rdb.QueryContext(ctx, `SELECT `+runColumns+` FROM runs WHERE account = ? ORDER BY started, id`, l.account)
	if err != nil {
		return fmt.Errorf("ledger %s: runs: %w", l.name, sqlError(err))
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return fmt.Errorf("ledger %s: runs: %w", l.name, sqlError(err))
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger %s: runs: %w", l.name, sqlError(err))
	}
	return nil
}

func scanRun(s scanner) (pipeline.RunInfo, error) {
	var (
		r        pipeline.RunInfo
		started  int64
		finished sql.NullInt64
		summary  sql.NullString
	)
	if err := s.Scan(&r.ID, &started, &finished, &r.Args, &summary); err != nil {
		return r, err
	}
	r.Started = fromNanos(started)
	if finished.Valid {
		r.Finished = fromNanos(finished.Int64)
	}
	if summary.Valid {
		r.Summary = new(pipeline.Summary)
		if err := json.Unmarshal([]byte(summary.String), r.Summary); err != nil {
			return r, fmt.Errorf("run %s: summary: %w", r.ID, err)
		}
	}
	return r, nil
}
