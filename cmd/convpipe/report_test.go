package main

import (
	"errors"
	"slices"
	"testing"

	"convpipe/pipeline"
)

// TestJudge: the verdict of a run's end, from its summary, its error and
// the command's notes.
func TestJudge(t *testing.T) {
	one := []pipeline.ObjectSummary{{Key: "in/a.csv"}}
	notes := summaryNotes{ledger: "out/ledger.db", source: "in/"}
	tests := []struct {
		name      string
		s         pipeline.Summary
		err       error
		n         summaryNotes
		failed    bool
		attention []string
		okNote    string
	}{
		{name: "clean", s: pipeline.Summary{Objects: one}, n: notes},
		{name: "unchanged objects are not none", s: pipeline.Summary{Objects: []pipeline.ObjectSummary{{Key: "in/a.csv", Unchanged: true}}}, n: notes},
		{name: "invalid and rejected", s: pipeline.Summary{Objects: one, Total: pipeline.Counts{RowErrors: 1, Rejected: 2}}, n: notes,
			attention: []string{"1 malformed rows, 2 rejected orders: see `convpipe ledger export --ledger out/ledger.db --state invalid`, `convpipe ledger export --ledger out/ledger.db --state rejected`"}},
		{name: "default ledger path", s: pipeline.Summary{Objects: one, Total: pipeline.Counts{Changed: 1}}, n: summaryNotes{ledger: "convpipe-ledger.db"},
			attention: []string{"1 orders changed after acceptance (need a correction): see `convpipe ledger export --state changed`, `convpipe corrections plan`"}},
		{name: "accepted, now cancelled", s: pipeline.Summary{Objects: one, Total: pipeline.Counts{Reversals: 1}}, n: summaryNotes{ledger: "convpipe-ledger.db"},
			attention: []string{"1 accepted orders now cancelled, returned, a test or a fraud (need a reversal): see `convpipe corrections plan`"}},
		{name: "dry run: no hint", s: pipeline.Summary{Objects: one, DryRun: true, Total: pipeline.Counts{Invalid: 1}}, n: summaryNotes{source: "in/"},
			attention: []string{"1 invalid orders"}},
		{name: "results file", s: pipeline.Summary{RunID: "R1", Objects: one}, n: summaryNotes{ledger: "my ledger.db", resultsErr: errors.New("disk full")},
			attention: []string{"the results file could not be written (disk full); the ledger has its lines: `convpipe ledger export --ledger 'my ledger.db' --run R1`"}},
		{name: "no objects", s: pipeline.Summary{}, n: notes,
			attention: []string{"no objects matched in/: is the export late, or the location wrong? (run.allow_empty: true if nights without objects are normal)"}},
		{name: "no objects, allowed", s: pipeline.Summary{}, n: summaryNotes{source: "in/", allowEmpty: true}, okNote: "no objects matched in/; run.allow_empty"},
		{name: "stopped before any object", s: pipeline.Summary{Stopped: "deadline 2026-11-23T06:00:00Z reached"}, n: notes},
		{name: "fatal stop", s: pipeline.Summary{Stopped: "fatal: 401"}, n: notes, failed: true},
		{name: "an error the summary does not show", s: pipeline.Summary{Objects: one}, err: errors.New("ledger: finish run"), n: notes, failed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.s, tc.err, tc.n)
			if v.failed != tc.failed || !slices.Equal(v.attention, tc.attention) || v.okNote != tc.okNote {
				t.Errorf("judge = failed %v, attention %q, ok note %q\nwant failed %v, attention %q, ok note %q",
					v.failed, v.attention, v.okNote, tc.failed, tc.attention, tc.okNote)
			}
		})
	}
}

// TestShellQuote: what shellQuote leaves alone and what it quotes.
func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"out/demo/ledger.db": "out/demo/ledger.db",
		"/var/lib/c-p/l.db":  "/var/lib/c-p/l.db",
		"my ledger.db":       "'my ledger.db'",
		"it's.db":            `'it'\''s.db'`,
		"$HOME/l.db":         "'$HOME/l.db'",
		"":                   "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}
