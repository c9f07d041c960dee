package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const (
	quotaGetSQL = `SELECT window_start, used FROM quota WHERE account = ?`
	quotaSetSQL = `INSERT INTO quota (account, window_start, used) VALUES (?, ?, ?)
		ON CONFLICT (account) DO UPDATE SET window_start = excluded.window_start, used = excluded.used`
)

// TakeQuota takes up to n requests of the account's current quota window
// (see pipeline.Quota). A shared Ledger (Options.Shared) takes them from
// the account's row of the quota table, in a write transaction, which
// the runs of the machine take in turn; the window is the machine's
// clock's, which all of them read. A Ledger opened without Shared has one
// run at a time (its file lock), whose own pacing keeps the account's
// quota: it grants n up to ceiling.
func (l *Ledger) TakeQuota(ctx context.Context, n int, window time.Duration, ceiling int) (int, time.Time, error) {
	op := "take quota"
	if err := l.claimable(op); err != nil {
		return 0, time.Time{}, err
	}
	if window <= 0 {
		return 0, time.Time{}, fmt.Errorf("ledger %s: take quota: window %s", l.name, window)
	}
	if l.claims == nil {
		return max(min(n, ceiling), 0), windowOf(time.Now(), window).Add(window), nil
	}
	var taken int64
	var cur time.Time
	err := l.write(ctx, op, func(ctx context.Context) error {
		cur = windowOf(time.Now(), window)
		var start, used int64
		err := l.wconn.QueryRowContext(ctx, quotaGetSQL, l.account).Scan(&start, &used)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if start != cur.UnixNano() {
			used = 0
		}
		taken = max(min(int64(n), int64(ceiling)-used), 0)
		_, err = l.wconn.ExecContext(ctx, quotaSetSQL, l.account, cur.UnixNano(), used+taken)
		return err
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return int(taken), cur.Add(window), nil
}

// windowOf returns the start of the window of length window that holds
// t, aligned to multiples of window in Unix time.
func windowOf(t time.Time, window time.Duration) time.Time {
	ns := t.UnixNano()
	return time.Unix(0, ns-ns%int64(window))
}
