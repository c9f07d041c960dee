package ledger

import (
	"context"
	"fmt"

	"convpipe/pipeline"
)

// The SQLite ledger implements pipeline.Claimer trivially: its file lock
// (see Locking in the package documentation) is a claim of the whole
// ledger, held by one run at a time and dropped by the kernel when that
// run dies, however it dies; so every claim of the run holding it is
// granted, and no other run can hold one. A SQLite ledger opened with
// Options.Shared behaves as one opened without: runs on one machine take
// turns. Sharing a ledger between runs that run at once, on one machine
// or several, takes a PostgreSQL ledger (see pgClaims).

// ClaimObject grants obj: the run holding the file lock holds everything.
func (l *Ledger) ClaimObject(ctx context.Context, obj pipeline.Object) (bool, error) {
	if err := l.claimable("claim object " + obj.Key); err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseObject does nothing: the file lock is released by Close.
func (l *Ledger) ReleaseObject(ctx context.Context, obj pipeline.Object) error {
	return l.claimable("release object " + obj.Key)
}

// ClaimOrder grants key and returns its entry as Get does.
func (l *Ledger) ClaimOrder(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, bool, error) {
	if err := l.claimable("claim order " + key.String()); err != nil {
		return pipeline.Entry{}, false, false, err
	}
	e, found, err := l.Get(ctx, key)
	if err != nil {
		return pipeline.Entry{}, false, false, err
	}
	return e, found, true, nil
}

// ReleaseOrder does nothing: the file lock is released by Close.
func (l *Ledger) ReleaseOrder(ctx context.Context, key pipeline.Key) error {
	return l.claimable("release order " + key.String())
}

// claimable says why l cannot claim, if it cannot: a read-only Ledger
// holds no lock, a closed one none any more.
func (l *Ledger) claimable(op string) error {
	if l.readOnly {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrReadOnly)
	}
	if l.closed.Load() {
		return fmt.Errorf("ledger %s: %s: %w", l.name, op, ErrClosed)
	}
	return nil
}
