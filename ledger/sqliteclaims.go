package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// sqliteClaims is the claims state of a SQLite ledger opened with
// Options.Shared: several runs on one machine use it at once, each
// holding the ledger's locks shared (a run without Shared holds them
// alone: see Locking in the package documentation), and claiming each
// object and order in the claims table (see pipeline.Claimer), as
// pgClaims does on PostgreSQL.
//
// A claim is a row (account, kind, key) naming its owner, this Ledger,
// and when its lease ends, in the machine's clock (the runs are on one
// machine). A claim is granted when there is no row, the row is the
// owner's own, or its lease has ended: an upsert whose update only
// happens under that condition, in a write transaction (BEGIN
// IMMEDIATE), which the runs of the machine take in turn, so that of two
// runs claiming at once exactly one gets the row. While the Ledger is
// open it renews the leases of all its claims every lease/3; a run that
// dies (SIGKILL) stops renewing, and its claims lapse after the lease.
// Close drops the Ledger's claims at once.
//
// Claims are writes of the ledger like any other: the writer goroutine
// commits them, grouped with the other writes waiting, and a write of
// another run waits for the commit in progress (sharedBusyTimeoutMS),
// never failing for it. The in-memory index then answers only what this
// run wrote or read at its load: Get reads the database (other runs
// write it), as ClaimOrder does.
type sqliteClaims struct{ leases }

// sharedTablesSQL is the claims table and the quota table (one row per
// account: the requests its runs took in the current window, see
// TakeQuota) of a shared ledger. Times are nanoseconds since the Unix
// epoch.
const sharedTablesSQL = `CREATE TABLE claims (
		account TEXT NOT NULL,
		kind    TEXT NOT NULL,
		key     TEXT NOT NULL,
		owner   TEXT NOT NULL,
		holder  TEXT NOT NULL DEFAULT '',
		expires INTEGER NOT NULL,
		PRIMARY KEY (account, kind, key)
	);
	CREATE INDEX claims_owner ON claims (owner);
	CREATE TABLE quota (
		account      TEXT PRIMARY KEY,
		window_start INTEGER NOT NULL,
		used         INTEGER NOT NULL
	);`

const sqliteClaimSQL = `INSERT INTO claims AS c (account, kind, key, owner, holder, expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
	ON CONFLICT (account, kind, key) DO UPDATE SET owner = excluded.owner, holder = excluded.holder, expires = excluded.expires
		WHERE c.owner = excluded.owner OR c.expires < ?7
	RETURNING 1`

const sqliteReleaseSQL = `DELETE FROM claims WHERE account = ? AND kind = ? AND key = ? AND owner = ?`

const sqliteRenewSQL = `UPDATE claims SET expires = ? WHERE owner = ?`

// startClaims makes l's claims state and starts renewing its leases.
func (l *Ledger) startClaims(opts Options) {
	h, _ := json.Marshal(l.lock.current())
	l.claims = &sqliteClaims{newLeases(opts, string(h))}
	go l.renew()
}

// renew renews the leases of l's claims every lease/3 until
// stopRenewing.
func (l *Ledger) renew() {
	c := l.claims
	c.keep(func() {
		// A renewal that fails is tried again at the next tick; a ledger
		// that cannot be written fails the run's writes too.
		_ = l.write(context.Background(), "renew claims", func(ctx context.Context) error {
			_, err := l.wconn.ExecContext(ctx, sqliteRenewSQL, time.Now().Add(c.lease).UnixNano(), c.owner)
			return err
		})
	})
}

// stopRenewing stops the renewals of a shared Ledger.
func (l *Ledger) stopRenewing() {
	if l.claims == nil {
		return
	}
	l.claims.end(func() {})
}

// dropClaims deletes l's claims, once its writer is done.
func (l *Ledger) dropClaims() {
	if l.claims == nil || l.wconn == nil {
		return
	}
	// Left behind, they lapse with their lease.
	_ = runTx(context.Background(), l.wconn, func(ctx context.Context) error {
		_, err := l.wconn.ExecContext(ctx, `DELETE FROM claims WHERE owner = ?`, l.claims.owner)
		return err
	}, nil)
}

// claim claims (kind, key) for l, and reports whether it got it.
func (l *Ledger) claim(ctx context.Context, kind, key string) (bool, error) {
	op := "claim " + kind + " " + key
	if err := l.claimable(op); err != nil {
		return false, err
	}
	c := l.claims
	var granted bool
	err := l.write(ctx, op, func(ctx context.Context) error {
		now := time.Now()
		var one int
		err := l.wconn.QueryRowContext(ctx, sqliteClaimSQL, l.account, kind, key, c.owner, c.holder,
			now.Add(c.lease).UnixNano(), now.UnixNano()).Scan(&one)
		granted = err == nil
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		return err
	})
	return granted && err == nil, err
}

// release drops l's claim of (kind, key), if it has it.
func (l *Ledger) release(ctx context.Context, kind, key string) error {
	op := "release " + kind + " " + key
	if err := l.claimable(op); err != nil {
		return err
	}
	return l.write(ctx, op, func(ctx context.Context) error {
		_, err := l.wconn.ExecContext(ctx, sqliteReleaseSQL, l.account, kind, key, l.claims.owner)
		return err
	})
}
