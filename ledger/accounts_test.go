package ledger

import (
	"errors"
	"reflect"
	"testing"

	"convpipe/pipeline"
)

// TestAccounts: one ledger holds many accounts, each with its own
// entries, objects and runs under the same keys; on PostgreSQL, runs of
// different accounts hold different locks and run at once.
func TestAccounts(t *testing.T) { forEachBackend(t, testAccounts) }

func testAccounts(t *testing.T, b backend) {
	place := b.place(t)
	obj := pipeline.Object{Key: "orders.csv", ETag: "e1", Size: 10}
	write := func(account string, state pipeline.State) {
		t.Helper()
		l, err := b.open(t.Context(), place, Options{Account: account})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if l.Account() != account {
			t.Errorf("Account() = %q, want %q", l.Account(), account)
		}
		if err := l.BeginRun(t.Context(), pipeline.RunInfo{ID: "run-" + account}); err != nil {
			t.Fatal(err)
		}
		e := sample("O-1", state)
		e.RunID = "run-" + account
		mustPut(t, l, e)
		if err := l.MarkObjectDone(t.Context(), obj, e.RunID); err != nil {
			t.Fatal(err)
		}
	}
	write("IRA", pipeline.StateAccepted)
	write("IRB", pipeline.StateRejected)

	for _, a := range []struct {
		account string
		state   pipeline.State
	}{{"IRA", pipeline.StateAccepted}, {"IRB", pipeline.StateRejected}} {
		l, err := b.open(t.Context(), place, Options{Account: a.account})
		if err != nil {
			t.Fatal(err)
		}
		checkAccount(t, l, a.account, a.state, obj)
		l.Close()
	}
	// An account with nothing sees nothing.
	l := b.openT(t, place)
	if _, ok, err := l.Get(t.Context(), sample("O-1", "").Key); ok || err != nil {
		t.Errorf("account \"\": Get = %v, %v; want nothing", ok, err)
	}
	if done, _ := l.ObjectDone(t.Context(), obj); done {
		t.Error("account \"\": the other accounts' object is done")
	}
	if accts, err := l.Accounts(t.Context()); err != nil || !reflect.DeepEqual(accts, []string{"IRA", "IRB"}) {
		t.Errorf("Accounts() = %v, %v", accts, err)
	}
	if err := l.SetAccount("IRA"); err == nil {
		t.Error("SetAccount on a ledger open for a run succeeded")
	}
	l.Close()

	ro, err := b.openRO(t.Context(), place)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Account() != "" {
		t.Errorf("read-only Account() of a ledger of several = %q, want \"\"", ro.Account())
	}
	if err := ro.SetAccount("IRB"); err != nil {
		t.Fatal(err)
	}
	checkAccount(t, ro, "IRB", pipeline.StateRejected, obj)

}

// TestAccountMigration: a ledger made before accounts gives its entries,
// objects and runs to the account of the run that first opens it, which
// then finds everything it had: nothing is sent again.
func TestAccountMigration(t *testing.T) { forEachBackend(t, testAccountMigration) }

func testAccountMigration(t *testing.T, b backend) {
	place := b.place(t)
	b.makeV1(t, place)
	l, err := b.open(t.Context(), place, Options{Account: "IR1"})
	if err != nil {
		t.Fatal(err)
	}
	key := pipeline.Key{EventType: "1", OrderID: "O-1"}
	if e := mustGet(t, l, key); e.State != pipeline.StateAccepted || e.RunID != "r1" {
		t.Errorf("after the migration: %+v", e)
	}
	if done, err := l.ObjectDone(t.Context(), pipeline.Object{Key: "a.csv", ETag: "e", Size: 1}); err != nil || !done {
		t.Errorf("ObjectDone(a.csv) after the migration = %v, %v", done, err)
	}
	if r, ok, err := l.Run(t.Context(), "r1"); err != nil || !ok || r.Args != "convpipe run" {
		t.Errorf("Run(r1) after the migration = %+v, %v, %v", r, ok, err)
	}
	if accts, err := l.Accounts(t.Context()); err != nil || !reflect.DeepEqual(accts, []string{"IR1"}) {
		t.Errorf("Accounts() = %v, %v; want [IR1]", accts, err)
	}
	l.Close()
	// A read-only open of a ledger of one account reads that one.
	ro, err := b.openRO(t.Context(), place)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.Account() != "IR1" {
		t.Errorf("read-only Account() = %q, want IR1", ro.Account())
	}
	mustGet(t, ro, key)
}

// TestAccountAdoption: rows without an account (written by an opener
// without one, such as a ledger of an older convpipe) go to the first run
// that has an account, and only while no other account holds anything.
func TestAccountAdoption(t *testing.T) { forEachBackend(t, testAccountAdoption) }

func testAccountAdoption(t *testing.T, b backend) {
	place := b.place(t)
	l := b.openT(t, place)
	mustPut(t, l, sample("O-1", pipeline.StateAccepted))
	l.Close()
	for _, account := range []string{"IR2", "IR3"} {
		l, err := b.open(t.Context(), place, Options{Account: account})
		if err != nil {
			t.Fatal(err)
		}
		_, ok, err := l.Get(t.Context(), sample("O-1", "").Key)
		if err != nil || ok != (account == "IR2") {
			t.Errorf("account %s: O-1 found %v, %v; want it only in IR2, the first", account, ok, err)
		}
		l.Close()
	}
}

// checkAccount checks that l reads account's entry O-1 (in state want),
// run, counts and object, and nothing of another account.
func checkAccount(t *testing.T, l Store, account string, want pipeline.State, obj pipeline.Object) {
	t.Helper()
	if got := mustGet(t, l, sample("O-1", "").Key); got.State != want || got.RunID != "run-"+account {
		t.Errorf("account %s: Get = %s of %s, want %s of run-%s", account, got.State, got.RunID, want, account)
	}
	st, ok, err := l.Settled(t.Context(), sample("O-1", "").Key, sample("O-1", "").PayloadHash)
	if err != nil || !ok || st != want {
		t.Errorf("account %s: Settled = %s, %v, %v; want %s", account, st, ok, err, want)
	}
	var runs []string
	if err := l.Runs(t.Context(), func(r pipeline.RunInfo) error { runs = append(runs, r.ID); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(runs, []string{"run-" + account}) {
		t.Errorf("account %s: Runs = %v", account, runs)
	}
	if c, err := l.Counts(t.Context()); err != nil || c[want] != 1 || len(c) != 1 {
		t.Errorf("account %s: Counts = %v, %v", account, c, err)
	}
	if done, err := l.ObjectDone(t.Context(), obj); err != nil || !done {
		t.Errorf("account %s: ObjectDone = %v, %v", account, done, err)
	}
}

// TestPostgresAccountLocks: on PostgreSQL, runs of two accounts hold
// their ledger at once; a second run of one of them is refused.
func TestPostgresAccountLocks(t *testing.T) {
	b := postgresBackend
	place := b.place(t)
	la, err := b.open(t.Context(), place, Options{Account: "IRA"})
	if err != nil {
		t.Fatal(err)
	}
	defer la.Close()
	lb, err := b.open(t.Context(), place, Options{Account: "IRB"})
	if err != nil {
		t.Fatalf("a run of account IRB while one of IRA runs: %v", err)
	}
	defer lb.Close()
	if _, err := b.open(t.Context(), place, Options{Account: "IRA"}); !errors.Is(err, pipeline.ErrLocked) {
		t.Errorf("a second run of IRA = %v, want ErrLocked", err)
	}
	mustPut(t, la, sample("O-2", pipeline.StateAccepted))
	mustPut(t, lb, sample("O-2", pipeline.StateFailed))
	if e := mustGet(t, la, sample("O-2", "").Key); e.State != pipeline.StateAccepted {
		t.Errorf("IRA's O-2 = %s", e.State)
	}
}
