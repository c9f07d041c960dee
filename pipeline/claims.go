package pipeline

import "context"

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
