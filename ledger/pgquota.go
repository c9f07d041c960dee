package ledger

import (
	"context"
	"time"

	"convpipe/pipeline"
)

var (
	_ pipeline.Quota = (*Postgres)(nil)
	_ pipeline.Quota = (*Ledger)(nil)
)

// TakeQuota takes up to n requests of the account's current quota window
// (see pipeline.Quota) from the account's row of the quota table, in one
// transaction that locks the row: runs taking at once take in turn. The
// window is the server's (clock_timestamp()), so that runners whose
// clocks differ agree on it.
func (l *Postgres) TakeQuota(ctx context.Context, n int, window time.Duration, ceiling int) (int, time.Time, error) {
	op := "take quota"
	if err := l.claimable(op); err != nil {
		return 0, time.Time{}, err
	}
	tx, err := l.pool.Begin(ctx)
	if err != nil {
		return 0, time.Time{}, l.readErr(op, err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `INSERT INTO convpipe.quota (account, window_start, used) VALUES ($1, 'epoch', 0)
		ON CONFLICT (account) DO NOTHING`, l.account); err != nil {
		return 0, time.Time{}, l.readErr(op, err)
	}
	var start, cur time.Time
	var used int64
	err = tx.QueryRow(ctx, `SELECT window_start, used, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / $2) * $2)
		FROM convpipe.quota WHERE account = $1 FOR UPDATE`, l.account, window.Seconds()).Scan(&start, &used, &cur)
	if err != nil {
		return 0, time.Time{}, l.readErr(op, err)
	}
	if !start.Equal(cur) {
		used = 0
	}
	taken := max(min(int64(n), int64(ceiling)-used), 0)
	if _, err := tx.Exec(ctx, `UPDATE convpipe.quota SET window_start = $2, used = $3 WHERE account = $1`, l.account, cur, used+taken); err != nil {
		return 0, time.Time{}, l.readErr(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, time.Time{}, l.readErr(op, err)
	}
	return int(taken), cur.Add(window), nil
}
