package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/pipeline"
)

var (
	_ pipeline.Claimer = (*Postgres)(nil)
	_ pipeline.Claimer = (*Ledger)(nil)
)

// pgClaims is the claims state of a PostgreSQL ledger opened with
// Options.Shared: several runs of one account use it at once, each
// holding the account's run lock shared (a run without Shared holds it
// alone, and waits for none of them, nor they for it: see tryLock), and
// claiming each object and order in the claims table (see
// pipeline.Claimer).
//
// A claim is a row (account, kind, key) naming its owner, this Ledger,
// and when its lease ends, in the server's clock (the runners' clocks
// may differ). A claim is granted when there is no row, the row is the
// owner's own, or its lease has ended: an upsert whose update only
// happens under that condition, so that of two runs claiming at once
// exactly one gets the row. While the Ledger is open it renews the
// leases of all its claims every lease/3; a run that dies (SIGKILL, its
// machine gone) stops renewing, and its claims lapse after the lease.
// Close drops the Ledger's claims at once.
type pgClaims struct{ leases }

// DefaultLease is how long a shared ledger's claims outlive their
// runner's last renewal when ledger.lease is not set.
const DefaultLease = 30 * time.Second

const pgClaimSQL = `INSERT INTO convpipe.claims AS c (account, kind, key, owner, holder, expires)
	VALUES ($1, $2, $3, $4, $5, clock_timestamp() + make_interval(secs => $6))
	ON CONFLICT (account, kind, key) DO UPDATE SET owner = excluded.owner, holder = excluded.holder, expires = excluded.expires
		WHERE c.owner = excluded.owner OR c.expires < clock_timestamp()
	RETURNING true`

const pgReleaseSQL = `DELETE FROM convpipe.claims WHERE account = $1 AND kind = $2 AND key = $3 AND owner = $4`

const pgRenewSQL = `UPDATE convpipe.claims SET expires = clock_timestamp() + make_interval(secs => $2) WHERE owner = $1`

// newPgClaims makes the claims state of a Ledger opened with opts.
func newPgClaims(opts Options, holder string) *pgClaims {
	return &pgClaims{newLeases(opts, holder)}
}

// renew renews the leases of l's claims every lease/3 until stopClaims.
func (l *Postgres) renew() {
	c := l.claims
	c.keep(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.lease/3)
		defer cancel()
		// A renewal that fails is tried again at the next tick; a
		// database gone for longer than the lease fails the writes too.
		_, _ = l.pool.Exec(ctx, pgRenewSQL, c.owner, c.lease.Seconds())
	})
}

// stopClaims stops the renewals and drops l's claims.
func (l *Postgres) stopClaims() {
	c := l.claims
	if c == nil {
		return
	}
	c.end(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Left behind, they lapse with their lease.
		_, _ = l.pool.Exec(ctx, `DELETE FROM convpipe.claims WHERE owner = $1`, c.owner)
	})
}

// claim claims (kind, key) for l, and reports whether it got it.
func (l *Postgres) claim(ctx context.Context, kind string, key []byte) (bool, error) {
	op := "claim " + kind + " " + string(key)
	if err := l.claimable(op); err != nil {
		return false, err
	}
	c := l.claims
	var ok bool
	err := l.pool.QueryRow(ctx, pgClaimSQL, l.account, kind, key, c.owner, c.holder, c.lease.Seconds()).Scan(&ok)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, l.readErr(op, err)
	}
	return ok, nil
}

// release drops l's claim of (kind, key), if it has it.
func (l *Postgres) release(ctx context.Context, kind string, key []byte) error {
	op := "release " + kind + " " + string(key)
	if err := l.claimable(op); err != nil {
		return err
	}
	if _, err := l.pool.Exec(ctx, pgReleaseSQL, l.account, kind, key, l.claims.owner); err != nil {
		return l.readErr(op, err)
	}
	return nil
}

// claimable says why l cannot claim, if it cannot.
func (l *Postgres) claimable(op string) error {
	switch {
	case l.readOnly:
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrReadOnly)
	case l.claims == nil:
		return fmt.Errorf("ledger %s: %s: not opened shared (ledger.shared)", l.name, op)
	case l.closed.Load():
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	return l.usable()
}

// ClaimObject claims obj for this Ledger (see pgClaims).
func (l *Postgres) ClaimObject(ctx context.Context, obj pipeline.Object) (bool, error) {
	return l.claim(ctx, "object", []byte(obj.Key))
}

// ReleaseObject drops this Ledger's claim of obj.
func (l *Postgres) ReleaseObject(ctx context.Context, obj pipeline.Object) error {
	return l.release(ctx, "object", []byte(obj.Key))
}

// ClaimOrder claims key for this Ledger and, when granted, reads its
// entry from the database (never from the index: other runs write it).
// The read is a statement of its own, after the claim's: it sees every
// write that the claim's last holder committed before it let go.
func (l *Postgres) ClaimOrder(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, bool, error) {
	ok, err := l.claim(ctx, "order", []byte(key.String()))
	if err != nil || !ok {
		return pipeline.Entry{}, false, ok, err
	}
	e, err := pgScanEntry(l.pool.QueryRow(ctx, pgGetSQL, l.account, []byte(key.EventType), []byte(key.OrderID)))
	if errors.Is(err, pgx.ErrNoRows) {
		return pipeline.Entry{}, false, true, nil
	}
	if err != nil {
		return pipeline.Entry{}, false, false, l.readErr("get "+key.String(), err)
	}
	return e, true, true, nil
}

// ReleaseOrder drops this Ledger's claim of key.
func (l *Postgres) ReleaseOrder(ctx context.Context, key pipeline.Key) error {
	return l.release(ctx, "order", []byte(key.String()))
}
