package ledger

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"convpipe/pipeline"
)

// v2Rows are the rows makeV2 writes: an entry of every state of schema 2
// (account IR1), times in nanoseconds. %[1]s is the table prefix, %[2]s
// the cast of the key columns, %[3]s and %[4]s true and false.
const v2Rows = `INSERT INTO %[1]sconversions (account, event_type, order_id, state, payload_hash, submission_id, queued_uri, maybe_sent, run_id, created, updated) VALUES
	('IR1', '1'%[2]s, 'acc'%[2]s, 'accepted', 'h1', 'S1', '/Advertisers/IR1/APISubmissions/S1', %[3]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'pen'%[2]s, 'pending', 'h2', '', '', %[4]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'rej'%[2]s, 'rejected', 'h3', '', '', %[4]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'fai'%[2]s, 'failed', 'h4', '', '', %[4]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'inv'%[2]s, 'invalid', '', '', '', %[4]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'ski'%[2]s, 'skipped', '', '', '', %[4]s, 'r1', 1000, 2000),
	('IR1', '1'%[2]s, 'cha'%[2]s, 'changed', 'h5', '', '', %[4]s, 'r1', 1000, 2000);`

// acceptedEntry returns an accepted entry as the engine writes it.
func acceptedEntry(id string) pipeline.Entry {
	return pipeline.Entry{Key: pipeline.Key{EventType: "12345", OrderID: id}, State: pipeline.StateAccepted,
		PayloadHash: pipeline.PayloadHash(id), Attempts: 1, HTTPStatus: 200, SubmissionID: "S-" + id,
		QueuedURI: "/Advertisers/IR1/APISubmissions/S-" + id, RunID: "r1", CampaignID: "1000",
		EventDate:  time.Date(2026, 11, 21, 9, 30, 0, 0, time.UTC),
		AcceptedAt: time.Date(2026, 11, 22, 1, 0, 0, 123, time.UTC)}
}

// TestReconcileFields: the fields reconciling reads and writes round-trip,
// PutReconciled records the history, the new states are filtered,
// counted and settled like accepted.
func TestReconcileFields(t *testing.T) { forEachBackend(t, testReconcileFields) }

func testReconcileFields(t *testing.T, b backend) {
	l := b.temp(t)
	e := acceptedEntry("O-1")
	mustPut(t, l, e)
	if got := withoutTimes(mustGet(t, l, e.Key)); !reflect.DeepEqual(got, e) {
		t.Fatalf("accepted: Get() =\n%+v\nwant\n%+v", got, e)
	}
	at := time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)
	pend := pipeline.Reconciliation{Verdict: "tracked", ActionID: "1000.12345.O-1", ActionState: pipeline.ActionPending, Amount: "39.80",
		Currency: "EUR", LockingDate: time.Date(2026, 12, 21, 0, 0, 0, 0, time.UTC), At: at, RunID: "r2"}
	e.State, e.Reconciled = pipeline.StateTracked, &pend
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{e}); err != nil {
		t.Fatal(err)
	}
	// The entry's reconciliation has no run: the history's have.
	if got := withoutTimes(mustGet(t, l, e.Key)); got.Reconciled == nil || !reflect.DeepEqual(*got.Reconciled, withoutRun(pend)) {
		t.Fatalf("tracked: Get() =\n%+v\nwant\n%+v", got.Reconciled, pend)
	} else if got.Reconciled = e.Reconciled; !reflect.DeepEqual(got, e) {
		t.Fatalf("tracked: Get() =\n%+v\nwant\n%+v", got, e)
	}
	approved := pend
	approved.ActionState, approved.Final, approved.At, approved.RunID = pipeline.ActionApproved, true, at.Add(24*time.Hour), "r3"
	e.Reconciled = &approved
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{e}); err != nil {
		t.Fatal(err)
	}
	h, err := l.ReconcileHistory(t.Context(), e.Key)
	if err != nil || !reflect.DeepEqual(h, []pipeline.Reconciliation{pend, approved}) {
		t.Fatalf("history = %+v, %v; want the pending, then the approved action", h, err)
	}
	// A not-tracked one, with its reason in plain words.
	n := acceptedEntry("O-2")
	n.State = pipeline.StateNotTracked
	n.Reconciled = &pipeline.Reconciliation{Verdict: "not_tracked", ErrorType: "Contract Error", ErrorReason: "CONTRACT_NOT_FOUND",
		Meaning: "no partner contract", Note: "n", Final: true, At: at, RunID: "r2"}
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{n, acceptedEntry("O-3")}); err == nil {
		t.Error("PutReconciled of an entry without a reconciliation: no error")
	}
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{n}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := l.Entries(t.Context(), pipeline.Filter{State: pipeline.StateNotTracked}, func(e pipeline.Entry) error {
		got = append(got, e.Key.OrderID+" "+e.Reconciled.ErrorReason)
		return nil
	}); err != nil || !slices.Equal(got, []string{"O-2 CONTRACT_NOT_FOUND"}) {
		t.Errorf("Entries(not_tracked) = %v, %v", got, err)
	}
	if c, err := l.Counts(t.Context()); err != nil || c[pipeline.StateTracked] != 1 || c[pipeline.StateNotTracked] != 1 {
		t.Errorf("Counts() = %v, %v", c, err)
	}
	if h, err := l.ReconcileHistory(t.Context(), pipeline.Key{EventType: "12345", OrderID: "none"}); err != nil || len(h) != 0 {
		t.Errorf("history of an unknown key = %v, %v", h, err)
	}
	for _, k := range []pipeline.Entry{e, n} {
		if st, ok, err := l.Settled(t.Context(), k.Key, k.PayloadHash); err != nil || !ok || st != k.State {
			t.Errorf("Settled(%s) = %s, %v, %v; want %s", k.Key, st, ok, err, k.State)
		}
	}
}

func withoutRun(r pipeline.Reconciliation) pipeline.Reconciliation {
	r.RunID = ""
	return r
}

// TestProblems: the open problems are counted by state with the first
// write of the oldest; accepted, tracked and skipped entries are none.
func TestProblems(t *testing.T) { forEachBackend(t, testProblems) }

func testProblems(t *testing.T, b backend) {
	l := b.temp(t)
	if p, err := l.Problems(t.Context()); err != nil || len(p) != 0 {
		t.Fatalf("Problems() of an empty ledger = %v, %v", p, err)
	}
	day := func(d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, time.UTC) }
	var es []pipeline.Entry
	for i, s := range []struct {
		state pipeline.State
		day   int
	}{{pipeline.StateInvalid, 5}, {pipeline.StateInvalid, 3}, {pipeline.StateRejected, 7}, {pipeline.StateNotTracked, 9},
		{pipeline.StateAccepted, 1}, {pipeline.StateTracked, 1}, {pipeline.StateSkipped, 1}} {
		es = append(es, pipeline.Entry{Key: pipeline.Key{EventType: "1", OrderID: fmt.Sprint(i)}, State: s.state, Created: day(s.day)})
	}
	if err := l.PutAll(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	want := []Problem{{State: pipeline.StateInvalid, Count: 2, Oldest: day(3)}, {State: pipeline.StateNotTracked, Count: 1, Oldest: day(9)},
		{State: pipeline.StateRejected, Count: 1, Oldest: day(7)}}
	if p, err := l.Problems(t.Context()); err != nil || !reflect.DeepEqual(p, want) {
		t.Errorf("Problems() = %+v, %v; want %+v", p, err, want)
	}
}

// TestReconcileMigration: a ledger of schema 2, as today's convpipe
// writes it, is migrated without losing an entry; its accepted entries
// take their last write as their acceptance time, and it takes the new
// states.
func TestReconcileMigration(t *testing.T) { forEachBackend(t, testReconcileMigration) }

func testReconcileMigration(t *testing.T, b backend) {
	place := b.place(t)
	b.makeV2(t, place)
	l, err := b.open(t.Context(), place, Options{Account: "IR1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var states []string
	err = l.Entries(t.Context(), pipeline.Filter{}, func(e pipeline.Entry) error {
		states = append(states, e.Key.OrderID+"="+string(e.State))
		if e.State == pipeline.StateAccepted && (!e.AcceptedAt.Equal(time.Unix(0, 2000).UTC()) || e.SubmissionID != "S1" || !e.MaybeSent) {
			t.Errorf("accepted after the migration: %+v", e)
		}
		if e.State != pipeline.StateAccepted && !e.AcceptedAt.IsZero() {
			t.Errorf("%s has an acceptance time", e.Key)
		}
		return nil
	})
	want := []string{"acc=accepted", "cha=changed", "fai=failed", "inv=invalid", "pen=pending", "rej=rejected", "ski=skipped"}
	if err != nil || !slices.Equal(states, want) {
		t.Fatalf("after the migration: %v, %v; want %v", states, err, want)
	}
	e := mustGet(t, l, pipeline.Key{EventType: "1", OrderID: "acc"})
	e.State = pipeline.StateNotTracked
	e.Reconciled = &pipeline.Reconciliation{Verdict: "not_tracked", ErrorReason: "CONTRACT_NOT_FOUND", At: time.Now().UTC(), Final: true}
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{e}); err != nil {
		t.Fatalf("a not-tracked entry in the migrated ledger: %v", err)
	}
}

// TestOpenTodaysLedger: testdata/v2-sample.db is the ledger that
// convpipe's `run` of the sample export wrote before reconciling (schema
// 2, made by the convpipe of commit 09d9fa8: `convpipe run --config
// configs/sample.yaml --simulate`). It opens, migrates, and keeps every
// entry, and its accepted entries are tracked once reconciled.
func TestOpenTodaysLedger(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "v2-sample.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ledger.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	count := func(l Store) map[pipeline.State]int64 {
		c, err := l.Counts(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	l, err := Open(t.Context(), path, Options{Account: "IRSIMULATOR"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	want := map[pipeline.State]int64{pipeline.StateAccepted: 14, pipeline.StateInvalid: 4, pipeline.StateSkipped: 2}
	if got := count(l); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the migration: %v, want %v", got, want)
	}
	var accepted []pipeline.Entry
	if err := l.Entries(t.Context(), pipeline.Filter{State: pipeline.StateAccepted}, func(e pipeline.Entry) error {
		if e.AcceptedAt.IsZero() || !e.AcceptedAt.Equal(e.Updated) || e.QueuedURI == "" || len(e.Refs) == 0 {
			t.Errorf("migrated accepted entry: %+v", e)
		}
		e.State, e.Reconciled = pipeline.StateTracked, &pipeline.Reconciliation{Verdict: "tracked", At: time.Now().UTC()}
		accepted = append(accepted, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.PutReconciled(t.Context(), accepted); err != nil {
		t.Fatal(err)
	}
	if got := count(l); got[pipeline.StateTracked] != 14 || got[pipeline.StateAccepted] != 0 {
		t.Errorf("after reconciling: %v", got)
	}
}

// TestStateCheckKeepsOtherColumns: SQLite's step 3 loosens the state
// CHECK by editing the table's definition, so a column another step
// added before it stays, with its values.
func TestStateCheckKeepsOtherColumns(t *testing.T) {
	place := sqliteBackend.place(t)
	sqliteBackend.makeV2(t, place)
	rawSQL(t, place, `ALTER TABLE conversions ADD COLUMN other TEXT NOT NULL DEFAULT 'kept'`)
	l, err := Open(t.Context(), place, Options{Account: "IR1"})
	if err != nil {
		t.Fatal(err)
	}
	e := mustGet(t, l, pipeline.Key{EventType: "1", OrderID: "acc"})
	e.State, e.Reconciled = pipeline.StateTracked, &pipeline.Reconciliation{Verdict: "tracked", At: time.Now().UTC()}
	if err := l.PutReconciled(t.Context(), []pipeline.Entry{e}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	db, err := sql.Open("sqlite", place)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var check string
	if err := db.QueryRow(`SELECT count(*) FROM conversions WHERE other = 'kept'`).Scan(&n); err != nil || n != 7 {
		t.Errorf("the other step's column: %d rows keep it, %v", n, err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
	if _, err := db.Exec(`INSERT INTO conversions (account, event_type, order_id, state, created, updated) VALUES ('IR1', '1', 'bad', 'bogus', 1, 1)`); err == nil {
		t.Error("the state CHECK is gone: a bogus state was stored")
	}
}

// TestReconcilable: a reconcile reads only the entries it asks about:
// accepted or tracked, not final, accepted the settle time ago or
// earlier.
func TestReconcilable(t *testing.T) { forEachBackend(t, testReconcilable) }

func testReconcilable(t *testing.T, b backend) {
	l := b.temp(t)
	cutoff := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	mk := func(id string, st pipeline.State, accepted time.Time, r *pipeline.Reconciliation) pipeline.Entry {
		e := acceptedEntry(id)
		e.State, e.AcceptedAt, e.Reconciled = st, accepted, r
		return e
	}
	old, recent := cutoff.Add(-time.Hour), cutoff.Add(time.Minute)
	pending := &pipeline.Reconciliation{Verdict: "tracked", ActionID: "A", ActionState: pipeline.ActionPending, At: cutoff}
	final := &pipeline.Reconciliation{Verdict: "tracked", ActionID: "A", ActionState: pipeline.ActionApproved, At: cutoff, Final: true}
	expired := &pipeline.Reconciliation{Verdict: "unknown", Note: "expired", At: cutoff, Final: true}
	es := []pipeline.Entry{
		mk("a-old", pipeline.StateAccepted, old, nil), mk("a-at", pipeline.StateAccepted, cutoff, nil),
		mk("a-recent", pipeline.StateAccepted, recent, nil), mk("a-expired", pipeline.StateAccepted, old, expired),
		mk("t-pending", pipeline.StateTracked, old, pending), mk("t-final", pipeline.StateTracked, old, final),
		mk("n", pipeline.StateNotTracked, old, &pipeline.Reconciliation{Verdict: "not_tracked", At: cutoff, Final: true}),
		mk("r", pipeline.StateRejected, time.Time{}, nil),
	}
	if err := l.PutAll(t.Context(), es); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := l.Reconcilable(t.Context(), cutoff, func(e pipeline.Entry) error {
		got = append(got, e.Key.OrderID)
		if e.CampaignID != "1000" || e.QueuedURI == "" {
			t.Errorf("%s read without its fields: %+v", e.Key, e)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a-at", "a-old", "t-pending"}; !slices.Equal(got, want) {
		t.Errorf("Reconcilable() = %v, want %v", got, want)
	}
}
