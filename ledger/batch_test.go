package ledger

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"convpipe/pipeline"
)

func TestBatchLedger(t *testing.T) { forEachBackend(t, testBatchLedger) }

func batchKeys(ids ...string) []pipeline.Key {
	ks := make([]pipeline.Key, len(ids))
	for i, id := range ids {
		ks[i] = pipeline.Key{EventType: "7", OrderID: id}
	}
	return ks
}

// batchOf is a file of the orders ids, two lines each, with their
// entries in state.
func batchOf(name string, state pipeline.State, ids ...string) (pipeline.BatchRecord, []pipeline.BatchLine, []pipeline.Entry) {
	rec := pipeline.BatchRecord{Name: name, State: pipeline.BatchWritten, Orders: len(ids), Lines: 2 * len(ids), Data: []byte("header\n" + name), RunID: "r1"}
	var lines []pipeline.BatchLine
	var es []pipeline.Entry
	for i, k := range batchKeys(ids...) {
		lines = append(lines, pipeline.BatchLine{Key: k, File: name, First: 2 + 2*i, Last: 3 + 2*i})
		es = append(es, pipeline.Entry{Key: k, State: state, PayloadHash: "h-" + k.OrderID, SubmissionID: name, RunID: "r1"})
	}
	return rec, lines, es
}

func batchNames(t *testing.T, l Store, states ...pipeline.BatchState) []string {
	t.Helper()
	var names []string
	if err := l.BatchFiles(t.Context(), func(r pipeline.BatchRecord) error {
		names = append(names, fmt.Sprintf("%s:%s:%d", r.Name, r.State, len(r.Data)))
		return nil
	}, states...); err != nil {
		t.Fatal(err)
	}
	return names
}

func testBatchLedger(t *testing.T, b backend) {
	ctx := t.Context()
	l := b.temp(t)
	recA, linesA, esA := batchOf("a.csv", pipeline.StatePending, "O-1", "O-2", "O-3")
	if err := l.RecordBatch(ctx, recA, linesA, esA); err != nil {
		t.Fatal(err)
	}
	if got := batchNames(t, l, pipeline.BatchWritten); !slices.Equal(got, []string{"a.csv:written:12"}) {
		t.Errorf("written files %v", got)
	}
	got, err := l.BatchLines(ctx, "a.csv")
	if err != nil || !slices.Equal(got, linesA) {
		t.Errorf("lines of a.csv: %+v, %v", got, err)
	}
	if e := mustGet(t, l, esA[1].Key); e.State != pipeline.StatePending || e.SubmissionID != "a.csv" {
		t.Errorf("entry %+v", e)
	}
	// An order of a file not processed yet goes in no other file: the
	// whole of b.csv is refused.
	recB, linesB, esB := batchOf("b.csv", pipeline.StatePending, "O-4", "O-2")
	tryB := func() error { return l.RecordBatch(ctx, recB, linesB, esB) }
	if err := tryB(); !errors.Is(err, pipeline.ErrInFile) {
		t.Fatalf("O-2 in a second file: %v", err)
	}
	if _, found, _ := l.Get(ctx, esB[0].Key); found || len(batchNames(t, l)) != 1 {
		t.Fatalf("a refused file left a trace: %v", batchNames(t, l))
	}
	recA.State, recA.BatchID = pipeline.BatchUploaded, "FTP1"
	for i := range esA {
		esA[i].State = pipeline.StateAccepted
	}
	if err := l.UpdateBatch(ctx, recA, esA); err != nil {
		t.Fatal(err)
	}
	if e := mustGet(t, l, esA[0].Key); e.State != pipeline.StateAccepted {
		t.Errorf("after the upload: %+v", e)
	}
	if err := tryB(); !errors.Is(err, pipeline.ErrInFile) {
		t.Fatalf("O-2 in a second file while the first is uploaded: %v", err)
	}
	// Processed, the file keeps its counts and drops its data; its
	// orders may go into another file (sent again after a rejection).
	recA.State, recA.TotalRecords, recA.TotalErrors = pipeline.BatchProcessed, 6, 2
	esA[1].State, esA[1].Messages = pipeline.StateRejected, []pipeline.Message{{Field: "line 4", Text: "CONV_DUPLICATE"}}
	if err := l.UpdateBatch(ctx, recA, esA[1:2]); err != nil {
		t.Fatal(err)
	}
	if err := tryB(); err != nil {
		t.Fatal(err)
	}
	if got := batchNames(t, l); !slices.Equal(got, []string{"a.csv:processed:0", "b.csv:written:12"}) {
		t.Errorf("files %v", got)
	}
	if got := batchNames(t, l, pipeline.BatchUploaded, pipeline.BatchWritten); !slices.Equal(got, []string{"b.csv:written:12"}) {
		t.Errorf("files written or uploaded %v", got)
	}
	var totals [2]int
	_ = l.BatchFiles(ctx, func(r pipeline.BatchRecord) error { totals = [2]int{r.TotalRecords, r.TotalErrors}; return nil }, pipeline.BatchProcessed)
	if totals != [2]int{6, 2} {
		t.Errorf("totals %v", totals)
	}
	if e := mustGet(t, l, esA[1].Key); e.State != pipeline.StatePending || e.SubmissionID != "b.csv" {
		t.Errorf("O-2 in b.csv: %+v", e)
	}
	// A file of the size a run writes, in one transaction.
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = fmt.Sprintf("BIG-%05d", i)
	}
	recC, linesC, esC := batchOf("c.csv", pipeline.StatePending, ids...)
	if err := l.RecordBatch(ctx, recC, linesC, esC); err != nil {
		t.Fatal(err)
	}
	if got, err := l.BatchLines(ctx, "c.csv"); err != nil || len(got) != 5000 || got[4999] != linesC[4999] {
		t.Errorf("lines of c.csv: %d, %v", len(got), err)
	}
	if n, err := l.Counts(ctx); err != nil || n[pipeline.StatePending] != 5002 {
		t.Errorf("counts %v, %v", n, err)
	}
	bad := recA
	bad.State = "lost"
	if err := l.UpdateBatch(ctx, bad, nil); !errors.Is(err, ErrInvalidEntry) {
		t.Errorf("unknown state: %v", err)
	}
}

// TestBatchMigration: a ledger of today's schema (version 2, before batch
// files) opens migrated, its entries kept, and takes batch files.
func TestBatchMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		place := b.place(t)
		b.makeV1(t, place)
		// Version 2 of the code migrates it first, as convpipe before
		// batch files did.
		switch b.name {
		case "sqlite":
			rawSQL(t, place, migrations[1]+"; PRAGMA user_version = 2;")
		case "postgres":
			if err := pgExec(t, place, pgMigrations[1]+"; UPDATE convpipe.meta SET value = '2' WHERE name = 'schema_version'"); err != nil {
				t.Fatal(err)
			}
		}
		l := b.openT(t, place)
		if e := mustGet(t, l, pipeline.Key{EventType: "1", OrderID: "O-1"}); e.State != pipeline.StateAccepted {
			t.Errorf("entry after the migration: %+v", e)
		}
		rec, lines, es := batchOf("a.csv", pipeline.StatePending, "O-9")
		if err := l.RecordBatch(t.Context(), rec, lines, es); err != nil {
			t.Fatal(err)
		}
		if n, err := l.Counts(t.Context()); err != nil || n[pipeline.StateAccepted] != 1 || n[pipeline.StatePending] != 1 {
			t.Errorf("counts %v, %v", n, err)
		}
	})
}
