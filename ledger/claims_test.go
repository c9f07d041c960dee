package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"convpipe/pipeline"
)

// claimObj and claimKey are what the tests below claim.
var (
	claimObj = pipeline.Object{Key: "a.csv", ETag: "e1", Size: 10}
	claimKey = sample("O-1", "").Key
)

// claimBoth claims claimObj and claimKey, failing unless both are
// granted.
func claimBoth(ctx context.Context, c pipeline.Claimer) error {
	if ok, err := c.ClaimObject(ctx, claimObj); err != nil || !ok {
		return fmt.Errorf("ClaimObject = %v, %v", ok, err)
	}
	if _, _, ok, err := c.ClaimOrder(ctx, claimKey); err != nil || !ok {
		return fmt.Errorf("ClaimOrder = %v, %v", ok, err)
	}
	return nil
}

// openShared opens the ledger at place shared, for account, with lease.
func (b backend) openShared(t *testing.T, place, account string, lease time.Duration) Store {
	t.Helper()
	l, err := b.open(t.Context(), place, Options{Shared: true, Account: account, Lease: lease})
	if err != nil {
		t.Fatalf("open shared: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func claimer(l Store) pipeline.Claimer { return l.(pipeline.Claimer) }

// TestClaimsOneRun: a run's own claims are granted, again and again;
// ClaimOrder returns the entry as it is then; a read-only or closed
// ledger claims nothing.
func TestClaimsOneRun(t *testing.T) { forEachBackend(t, testClaimsOneRun) }

func testClaimsOneRun(t *testing.T, b backend) {
	place := b.place(t)
	l := b.openShared(t, place, "IRA", 0)
	c := claimer(l)
	ctx := t.Context()
	for range 2 {
		if err := claimBoth(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, found, _, err := c.ClaimOrder(ctx, claimKey); err != nil || found {
		t.Errorf("ClaimOrder of a key without an entry: found %v, %v", found, err)
	}
	// The index, once loaded, must not hide an entry from ClaimOrder.
	if _, _, err := l.Settled(ctx, claimKey, "h"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, l, sample("O-1", pipeline.StatePending))
	e, found, ok, err := c.ClaimOrder(ctx, claimKey)
	if err != nil || !ok || !found || e.State != pipeline.StatePending {
		t.Errorf("ClaimOrder after a Put = %s, %v, %v, %v; want pending, found, granted", e.State, found, ok, err)
	}
	if err := c.ReleaseOrder(ctx, claimKey); err != nil {
		t.Error(err)
	}
	if err := c.ReleaseObject(ctx, claimObj); err != nil {
		t.Error(err)
	}
	if err := c.ReleaseObject(ctx, claimObj); err != nil {
		t.Errorf("releasing an object not claimed: %v", err)
	}
	ro, err := b.openRO(ctx, place)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := claimer(ro).ClaimObject(ctx, claimObj); !errors.Is(err, ErrReadOnly) {
		t.Errorf("ClaimObject on a read-only ledger = %v, want ErrReadOnly", err)
	}
	l.Close()
	if _, _, _, err := c.ClaimOrder(ctx, claimKey); !errors.Is(err, ErrClosed) {
		t.Errorf("ClaimOrder on a closed ledger = %v, want ErrClosed", err)
	}
}

// TestClaimsTwoRuns: two runs of one account share a ledger: what one
// claimed the other is refused until it is released (and sees what the
// first recorded before); runs of another account claim the same keys
// freely; a run that does not share cannot open the account while shared
// runs hold it, nor they while it does. On SQLite, whose locks are the
// file's, a run that does not share cannot open the ledger while shared
// runs of any account hold it.
func TestClaimsTwoRuns(t *testing.T) { forEachBackend(t, testClaimsTwoRuns) }

func testClaimsTwoRuns(t *testing.T, b backend) {
	place := b.place(t)
	ctx := t.Context()
	la := b.openShared(t, place, "IRA", 0)
	lb := b.openShared(t, place, "IRA", 0)
	a, bc := claimer(la), claimer(lb)
	if err := claimBoth(ctx, a); err != nil {
		t.Fatal(err)
	}
	if ok, err := bc.ClaimObject(ctx, claimObj); err != nil || ok {
		t.Errorf("B claims A's object: %v, %v; want refused", ok, err)
	}
	if _, _, ok, err := bc.ClaimOrder(ctx, claimKey); err != nil || ok {
		t.Errorf("B claims A's order: %v, %v; want refused", ok, err)
	}
	// B's index is loaded before A records the order.
	if _, _, err := lb.Settled(ctx, claimKey, "h"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, la, sample("O-1", pipeline.StateAccepted))
	if err := a.ReleaseOrder(ctx, claimKey); err != nil {
		t.Fatal(err)
	}
	e, found, ok, err := bc.ClaimOrder(ctx, claimKey)
	if err != nil || !ok || !found || e.State != pipeline.StateAccepted {
		t.Errorf("B claims the order A released: %s, found %v, granted %v, %v; want A's accepted entry", e.State, found, ok, err)
	}
	if _, _, ok, _ := a.ClaimOrder(ctx, claimKey); ok {
		t.Error("A claims the order B holds now: granted")
	}
	lc := b.openShared(t, place, "IRB", 0)
	if err := claimBoth(ctx, claimer(lc)); err != nil {
		t.Errorf("another account's run: %v", err)
	}
	if _, err := b.open(ctx, place, Options{Account: "IRA"}); !errors.Is(err, pipeline.ErrLocked) {
		t.Errorf("a run of IRA that does not share, beside shared ones = %v, want ErrLocked", err)
	}
	lc.Close()
	if b.name == "sqlite" {
		testSQLiteLoneRun(t, place, la, lb)
		return
	}
	lone, err := b.open(ctx, place, Options{Account: "IRB"})
	if err != nil {
		t.Fatalf("a lone run of IRB: %v", err)
	}
	defer lone.Close()
	if _, err := b.open(ctx, place, Options{Shared: true, Account: "IRB"}); !errors.Is(err, pipeline.ErrLocked) {
		t.Errorf("a shared run of IRB beside a lone one = %v, want ErrLocked", err)
	}
	// Close drops a run's claims at once.
	la.Close()
	if ok, err := bc.ClaimObject(ctx, claimObj); err != nil || !ok {
		t.Errorf("B claims the object of A, closed: %v, %v", ok, err)
	}
}

// testSQLiteLoneRun goes on with TestClaimsTwoRuns on SQLite, where the
// shared runs A and B of IRA hold the ledger file: a lone run of another
// account cannot open it beside them, and names who holds it; Close drops
// a run's claims at once; once both are closed a lone run opens it, and
// a shared run cannot beside it.
func testSQLiteLoneRun(t *testing.T, place string, la, lb Store) {
	ctx := t.Context()
	_, err := Open(ctx, place, Options{Account: "IRB"})
	var le *LockedError
	if !errors.As(err, &le) || !le.Holder.Shared || le.Holder.PID != os.Getpid() {
		t.Errorf("a lone run of IRB beside shared runs of IRA = %v, want a *LockedError naming a shared holder", err)
	}
	la.Close()
	if ok, err := claimer(lb).ClaimObject(ctx, claimObj); err != nil || !ok {
		t.Errorf("B claims the object of A, closed: %v, %v", ok, err)
	}
	lb.Close()
	lone, err := Open(ctx, place, Options{Account: "IRB"})
	if err != nil {
		t.Fatalf("a lone run of IRB once the shared runs closed: %v", err)
	}
	defer lone.Close()
	_, err = Open(ctx, place, Options{Shared: true, Account: "IRA"})
	if !errors.As(err, &le) || le.Holder.Shared || le.Holder.PID != os.Getpid() {
		t.Errorf("a shared run beside a lone one = %v, want a *LockedError naming the lone one", err)
	}
}

// TestClaimsLapse: the claims of a run that was killed lapse after its
// lease and go to the next run that claims them; those of a live run
// are renewed.
func TestClaimsLapse(t *testing.T) { forEachBackend(t, testClaimsLapse) }

func testClaimsLapse(t *testing.T, b backend) {
	place := b.place(t)
	b.openT(t, place).Close() // make it
	const lease = 600 * time.Millisecond
	cmd, out, _ := childOn(t, b, "claim", place, int(lease/time.Millisecond))
	if !out.Scan() || out.Text() != "claimed" {
		t.Fatalf("child: %q", out.Text())
	}
	// Alive, the child renews its leases: they move on.
	first := claimExpiry(t, b, place)
	waitFor(t, "the child's lease renewed", func() bool { return claimExpiry(t, b, place).After(first) })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l := b.openShared(t, place, "", lease)
	c := claimer(l)
	waitFor(t, "the killed run's claims lapse", func() bool {
		ok, err := c.ClaimObject(t.Context(), claimObj)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	})
	if _, _, ok, err := c.ClaimOrder(t.Context(), claimKey); err != nil || !ok {
		t.Errorf("ClaimOrder after the lapse = %v, %v", ok, err)
	}
}

// claimExpiry returns when the claim of claimObj ends.
func claimExpiry(t *testing.T, b backend, place string) time.Time {
	t.Helper()
	if b.name == "sqlite" {
		// No ledger of this process has the file open: closing db drops
		// no lock of theirs.
		db, err := sql.Open("sqlite", place)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var ns int64
		if err := db.QueryRowContext(t.Context(), `SELECT expires FROM claims WHERE kind = 'object' AND key = ?`, claimObj.Key).Scan(&ns); err != nil {
			t.Fatal(err)
		}
		return time.Unix(0, ns)
	}
	var exp time.Time
	c := pgConnT(t, place)
	if err := c.QueryRow(t.Context(), `SELECT expires FROM convpipe.claims WHERE kind = 'object' AND key = $1`, []byte(claimObj.Key)).Scan(&exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// waitFor polls cond until it holds, for at most a minute: what it waits
// for (a lease, a renewal) happens in well under that.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostgresMigrateToClaims: a ledger of schema version 2 (before
// claims) opens, migrated, with every entry, object and run it held, and
// its runs can share it.
func TestPostgresMigrateToClaims(t *testing.T) {
	b := postgresBackend
	place := b.place(t)
	rows := strings.NewReplacer("(event_type,", "(account, event_type,", "VALUES ('1'", "VALUES ('IRA', '1'",
		"(key,", "(account, key,", "VALUES ('a.csv'", "VALUES ('IRA', 'a.csv'",
		"(id,", "(account, id,", "VALUES ('r1'", "VALUES ('IRA', 'r1'").
		Replace(fmt.Sprintf(v1Rows, "convpipe.", "'1'::bytea", "'O-1'::bytea", "'a.csv'::bytea"))
	if err := pgExec(t, place, pgMigrations[0]+";"+pgMigrations[1]+"; INSERT INTO convpipe.meta VALUES ('schema_version', '2');"+rows); err != nil {
		t.Fatal(err)
	}
	l := b.openShared(t, place, "IRA", 0)
	if e := mustGet(t, l, pipeline.Key{EventType: "1", OrderID: "O-1"}); e.State != pipeline.StateAccepted || e.RunID != "r1" {
		t.Errorf("entry after the migration = %+v", e)
	}
	if done, err := l.ObjectDone(t.Context(), pipeline.Object{Key: "a.csv", ETag: "e", Size: 1}); err != nil || !done {
		t.Errorf("ObjectDone after the migration = %v, %v", done, err)
	}
	if r, ok, err := l.Run(t.Context(), "r1"); err != nil || !ok || r.Args != "convpipe run" {
		t.Errorf("run after the migration = %+v, %v, %v", r, ok, err)
	}
	if err := claimBoth(t.Context(), claimer(l)); err != nil {
		t.Error(err)
	}
	var v string
	if err := pgConnT(t, place).QueryRow(t.Context(), `SELECT value FROM convpipe.meta WHERE name = 'schema_version'`).Scan(&v); err != nil || v != fmt.Sprint(pgSchemaVersion) {
		t.Errorf("schema_version = %q, %v; want %d", v, err, pgSchemaVersion)
	}
}

// pgConnT connects to the database of the ledger URL place, until the
// test ends.
func pgConnT(t *testing.T, place string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), place)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// TestQuota: the runs of one account take from one quota per window, each
// up to its ceiling (the quota less its reserve), and a new window starts
// afresh; another account has a quota of its own.
func TestQuota(t *testing.T) { forEachBackend(t, testQuota) }

func testQuota(t *testing.T, b backend) {
	place := b.place(t)
	ctx := t.Context()
	la := b.openShared(t, place, "IRA", 0)
	const window = time.Hour
	n, end, err := la.TakeQuota(ctx, 40, window, 100)
	if err != nil || n != 40 {
		t.Fatalf("TakeQuota(40 of 100) = %d, %v", n, err)
	}
	if want := time.Now().Truncate(window).Add(window); end.Sub(want).Abs() > time.Minute {
		t.Errorf("window ends %s, want about %s", end, want)
	}
	lb := b.openShared(t, place, "IRA", 0)
	// B reserves 40 of 100: it may take while the window's total stays
	// within 60.
	if n, _, err := lb.TakeQuota(ctx, 50, window, 60); err != nil || n != 20 {
		t.Errorf("B's TakeQuota(50, ceiling 60) after A took 40 = %d, %v; want 20", n, err)
	}
	if n, _, err := lb.TakeQuota(ctx, 5, window, 60); err != nil || n != 0 {
		t.Errorf("B's TakeQuota at its ceiling = %d, %v; want 0", n, err)
	}
	if n, _, err := la.TakeQuota(ctx, 100, window, 100); err != nil || n != 40 {
		t.Errorf("A's TakeQuota of the rest = %d, %v; want 40", n, err)
	}
	lc := b.openShared(t, place, "IRB", 0)
	if n, _, err := lc.TakeQuota(ctx, 100, window, 100); err != nil || n != 100 {
		t.Errorf("another account's TakeQuota = %d, %v; want 100", n, err)
	}
	// A new window: a window of a second, used up, then the next.
	if n, _, err := la.TakeQuota(ctx, 1000, time.Second, 1000); err != nil || n == 0 {
		t.Fatalf("TakeQuota in a window of a second = %d, %v", n, err)
	}
	waitFor(t, "the next window", func() bool {
		n, _, err := la.TakeQuota(ctx, 1, time.Second, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	})
	ro, err := b.openRO(ctx, place)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, _, err := ro.TakeQuota(ctx, 1, window, 1); !errors.Is(err, ErrReadOnly) {
		t.Errorf("TakeQuota on a read-only ledger = %v, want ErrReadOnly", err)
	}
}
