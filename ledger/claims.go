package ledger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"convpipe/pipeline"
)

// The SQLite ledger implements pipeline.Claimer in two ways. Opened
// without Options.Shared, trivially: its file lock (see Locking in the
// package documentation) is a claim of the whole ledger, held by one run
// at a time and dropped by the kernel when that run dies, however it
// dies; so every claim of the run holding it is granted, and no other
// run can hold one. Opened with Options.Shared, by the rows of its
// claims table, with leases, as on PostgreSQL (see sqliteClaims): runs
// on one machine share the ledger file (a WAL database) at once. Runs on
// several machines share a PostgreSQL ledger (see pgClaims): a SQLite
// file on a network file system is no ledger to share (WAL needs the
// shared memory of one machine).

// leases is what the claims of a shared ledger have in common on both
// backends (sqliteClaims, pgClaims): the Ledger's owner id, the lease
// its claims get and the renewing of it every lease/3 while it is open.
type leases struct {
	owner  string        // this Ledger's claims
	lease  time.Duration // how long a claim outlives its last renewal
	holder string        // the Holder as JSON, for a person reading the table
	stop   chan struct{}
	done   chan struct{}
	ended  sync.Once
}

// newLeases returns the leases of a Ledger opened with opts, under a new
// random owner id.
func newLeases(opts Options, holder string) leases {
	lease := opts.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	b := make([]byte, 12)
	rand.Read(b)
	return leases{owner: hex.EncodeToString(b), lease: lease, holder: holder,
		stop: make(chan struct{}), done: make(chan struct{})}
}

// keep calls renew every lease/3 until end; it is the Ledger's renewing
// goroutine.
func (c *leases) keep(renew func()) {
	defer close(c.done)
	t := time.NewTicker(c.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		renew()
	}
}

// end stops the renewals and waits for keep to return, then runs then;
// later calls do nothing.
func (c *leases) end(then func()) {
	c.ended.Do(func() {
		close(c.stop)
		<-c.done
		then()
	})
}

// ClaimObject claims obj for this run: granted at once to a run that
// holds the ledger alone (its file lock holds everything).
func (l *Ledger) ClaimObject(ctx context.Context, obj pipeline.Object) (bool, error) {
	if l.claims != nil {
		return l.claim(ctx, "object", obj.Key)
	}
	if err := l.claimable("claim object " + obj.Key); err != nil {
		return false, err
	}
	return true, nil
}

// ReleaseObject drops this run's claim of obj. A run that holds the
// ledger alone has nothing to drop: Close releases its file lock.
func (l *Ledger) ReleaseObject(ctx context.Context, obj pipeline.Object) error {
	if l.claims != nil {
		return l.release(ctx, "object", obj.Key)
	}
	return l.claimable("release object " + obj.Key)
}

// ClaimOrder claims key and, when granted, returns its entry as Get
// does: for a shared Ledger, read from the database after the claim
// (never from the index: other runs write it), so that it sees every
// write that the claim's last holder committed before it let go.
func (l *Ledger) ClaimOrder(ctx context.Context, key pipeline.Key) (pipeline.Entry, bool, bool, error) {
	if l.claims != nil {
		ok, err := l.claim(ctx, "order", key.String())
		if err != nil || !ok {
			return pipeline.Entry{}, false, ok, err
		}
	} else if err := l.claimable("claim order " + key.String()); err != nil {
		return pipeline.Entry{}, false, false, err
	}
	e, found, err := l.Get(ctx, key)
	if err != nil {
		return pipeline.Entry{}, false, false, err
	}
	return e, found, true, nil
}

// ReleaseOrder drops this run's claim of key. A run that holds the
// ledger alone has nothing to drop: Close releases its file lock.
func (l *Ledger) ReleaseOrder(ctx context.Context, key pipeline.Key) error {
	if l.claims != nil {
		return l.release(ctx, "order", key.String())
	}
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
