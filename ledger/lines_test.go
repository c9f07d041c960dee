package ledger

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"convpipe/pipeline"
)

func sampleLines(hash string) pipeline.Lines {
	return pipeline.Lines{PayloadHash: hash, CampaignID: "1000", EventDate: "2026-11-20T10:00:00Z", Currency: "EUR",
		Items: []pipeline.LineItem{{Sku: "S1", Quantity: "2", Price: "10.00"}, {Sku: "S2", Quantity: "1", SubTotal: "5.50", Discount: "0.50"}}}
}

func TestLinesConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := b.temp(t)
		ctx := t.Context()
		key := pipeline.Key{EventType: "1", OrderID: "O-1"}
		if _, ok, err := l.Lines(ctx, key, "h1"); err != nil || ok {
			t.Fatalf("lines of a payload never sent: %v %v", ok, err)
		}
		want := sampleLines("h1")
		if err := l.PutLines(ctx, key, want); err != nil {
			t.Fatal(err)
		}
		other := sampleLines("h1")
		other.Items[0].Quantity = "9"
		if err := l.PutLines(ctx, key, other); err != nil {
			t.Fatal(err)
		}
		got, ok, err := l.Lines(ctx, key, "h1")
		if err != nil || !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("lines %v %v %v, want the first write kept: %v", got, ok, err, want)
		}
		if err := l.PutLines(ctx, key, pipeline.Lines{}); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("lines without a hash: %v", err)
		}
	})
}

func TestCorrectionsConformance(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := b.temp(t)
		ctx := t.Context()
		key := pipeline.Key{EventType: "1", OrderID: "O-1"}
		if err := l.Put(ctx, pipeline.Entry{Key: key, State: pipeline.StateChanged, PayloadHash: "h2", SentHash: "h1"}); err != nil {
			t.Fatal(err)
		}
		c := pipeline.Correction{Key: key, Seq: 1, Kind: pipeline.CorrectItems, State: pipeline.CorrectionPlanned,
			FromHash: "h1", ToHash: "h2", Before: "25.00", After: "15.00", Method: "PUT", Form: "Sku=S1&Quantity=1",
			Changes: []pipeline.Change{{Sku: "S1", What: "quantity", From: "2", To: "1"}}, DetectedBy: "r1"}
		if err := l.PutCorrection(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		// Applied: the correction and the entry in one write.
		c.State = pipeline.CorrectionApplied
		e := pipeline.Entry{Key: key, State: pipeline.StateAccepted, PayloadHash: "h2"}
		if err := l.PutCorrection(ctx, c, &e); err != nil {
			t.Fatal(err)
		}
		rev := pipeline.Correction{Key: pipeline.Key{EventType: "1", OrderID: "O-2"}, Seq: 1, Kind: pipeline.CorrectReversal,
			State: pipeline.CorrectionTooLate, Before: "30.00", After: "0.00", PaidInError: "30.00"}
		if err := l.PutCorrection(ctx, rev, nil); err != nil {
			t.Fatal(err)
		}
		var all []pipeline.Correction
		if err := l.Corrections(ctx, pipeline.CorrectionFilter{}, func(c pipeline.Correction) error {
			all = append(all, c)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[0].State != pipeline.CorrectionApplied || all[0].Changes[0].To != "1" || all[1].PaidInError != "30.00" || all[0].Created.IsZero() {
			t.Fatalf("corrections %+v", all)
		}
		n := 0
		l.Corrections(ctx, pipeline.CorrectionFilter{OrderID: "O-2", State: pipeline.CorrectionTooLate}, func(pipeline.Correction) error { n++; return nil })
		if n != 1 {
			t.Fatalf("filtered: %d corrections, want 1", n)
		}
		got, _, err := l.Get(ctx, key)
		if err != nil || got.State != pipeline.StateAccepted || got.PayloadHash != "h2" {
			t.Fatalf("entry after the applied correction: %+v %v", got, err)
		}
		if st, ok, _ := l.Settled(ctx, key, "h2"); !ok || st != pipeline.StateAccepted {
			t.Fatalf("settled after the applied correction: %v %v", st, ok)
		}
		bad := c
		bad.State = "done"
		if err := l.PutCorrection(ctx, bad, nil); !errors.Is(err, ErrInvalidEntry) {
			t.Fatalf("unknown state: %v", err)
		}
	})
}

// TestMigrateToLines opens a ledger of schema version 2 (before lines
// were kept): its entries stay, and have no lines.
func TestMigrateToLines(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		place := b.place(t)
		b.makeV1(t, place)
		// Bring it to version 2 as the convpipe of that version would.
		if b.name == "sqlite" {
			rawSQL(t, place, migrations[1]+"; PRAGMA user_version = 2;")
		} else if err := pgExec(t, place, pgMigrations[1]+"; UPDATE convpipe.meta SET value = '2' WHERE name = 'schema_version';"); err != nil {
			t.Fatal(err)
		}
		l := b.openT(t, place)
		ctx := t.Context()
		key := pipeline.Key{EventType: "1", OrderID: "O-1"}
		e, ok, err := l.Get(ctx, key)
		if err != nil || !ok || e.State != pipeline.StateAccepted || e.PayloadHash != "ab" {
			t.Fatalf("entry after the migration: %+v %v %v", e, ok, err)
		}
		if _, ok, err := l.Lines(ctx, key, "ab"); err != nil || ok {
			t.Fatalf("lines of an entry accepted before lines were kept: %v %v", ok, err)
		}
		if err := l.PutLines(ctx, key, sampleLines("cd")); err != nil {
			t.Fatal(err)
		}
	})
}

// TestResultsFileHasCorrections: the results file of a run has a line per
// correction the run wrote, after its entries' lines.
func TestResultsFileHasCorrections(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l := b.temp(t)
		ctx := t.Context()
		key := pipeline.Key{EventType: "1", OrderID: "O-1"}
		if err := l.Put(ctx, pipeline.Entry{Key: key, State: pipeline.StateAccepted, PayloadHash: "h2", RunID: "r2"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []pipeline.Correction{
			{Key: key, Seq: 1, Kind: pipeline.CorrectItems, State: pipeline.CorrectionApplied, Before: "25.00", After: "15.00", Currency: "EUR",
				Changes: []pipeline.Change{{Sku: "S1", What: "quantity", From: "2", To: "1"}}, RunID: "r2", HTTPStatus: 200, SubmissionID: "S9"},
			{Key: pipeline.Key{EventType: "1", OrderID: "O-2"}, Seq: 1, Kind: pipeline.CorrectReversal, State: pipeline.CorrectionPlanned, RunID: "r1"},
		} {
			if err := l.PutCorrection(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
		}
		var buf strings.Builder
		if err := WriteCSV(ctx, &buf, l, pipeline.Filter{RunID: "r2"}); err != nil {
			t.Fatal(err)
		}
		want := "1/O-1,O-1,,correction items: applied,200,quantity of S1 2 → 1; amount 25.00 → 15.00 EUR,S9\n"
		if lines := strings.Split(buf.String(), "\n"); len(lines) != 4 || lines[2]+"\n" != want {
			t.Fatalf("results file:\n%s\nwant its third line %q", buf.String(), want)
		}
	})
}
