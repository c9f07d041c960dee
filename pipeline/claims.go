package pipeline

import (
	"context"
	"time"
)

// Claimer is implemented by ledgers that several runs use at once (on
// several machines): before a run reads an object or sends an order it
// claims it, with a lease that the ledger renews while the run lives and
// that lapses when the run dies. Other runs skip what is claimed and take
// over a lapsed claim. A Claimer is safe for concurrent use.
type Claimer interface {
	// ClaimObject claims obj for this run. False means another live run
	// holds it: the caller leaves it alone and may try again later.
	ClaimObject(ctx context.Context, obj Object) (bool, error)
	// ReleaseObject drops this run's claim of obj.
	ReleaseObject(ctx context.Context, obj Object) error
	// ClaimOrder claims key for this run, just before its first request.
	// When granted it returns the key's entry as the ledger holds it
	// now, read after the claim (found false when there is none): what
	// another run recorded before it let the key go. granted false means
	// another live run holds the key.
	ClaimOrder(ctx context.Context, key Key) (e Entry, found, granted bool, err error)
	// ReleaseOrder drops this run's claim of key, once its outcome is
	// recorded.
	ReleaseOrder(ctx context.Context, key Key) error
}

// Quota is an account's request quota kept where the runs of the account
// meet (a shared ledger), so that runs side by side, each configured with
// the account's whole quota, together stay within it. Windows are
// aligned to multiples of their length in Unix time, as impact's are. A
// Quota is safe for concurrent use.
type Quota interface {
	// TakeQuota takes up to n requests of the current window (of length
	// window) for this run, as long as the requests taken in the window
	// by all runs stay within ceiling; it returns how many it took
	// (maybe 0) and when the window ends: what is taken is to be spent
	// before then.
	TakeQuota(ctx context.Context, n int, window time.Duration, ceiling int) (taken int, windowEnd time.Time, err error)
}
