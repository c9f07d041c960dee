package ledger

import (
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// TestSettledSource: a ledger vouches for a payload by the fingerprint of
// the lines it was built from only when the entry is accepted (or tracked
// or not tracked since) with a Source bound to its own payload hash, the
// fingerprint is the same, the accepted EventDate is not too old, and the
// entry was not written since the index was loaded; it keeps Source
// through a reopen.
func TestSettledSource(t *testing.T) { forEachBackend(t, testSettledSource) }

func testSettledSource(t *testing.T, b backend) {
	place := b.place(t)
	l := b.openT(t, place)
	ctx := t.Context()
	key := func(o string) pipeline.Key { return pipeline.Key{EventType: "1", OrderID: o} }
	fp := func(s string) string { return pipeline.PayloadHash("lines " + s)[:32] }
	ph := func(s string) string { return pipeline.PayloadHash("payload " + s) }
	day := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	put := func(o string, st pipeline.State, payload, source string) {
		t.Helper()
		mustPut(t, l, pipeline.Entry{Key: key(o), State: st, PayloadHash: payload, Source: source, EventDate: day})
	}
	put("acc", pipeline.StateAccepted, ph("acc"), pipeline.SourceFor(fp("acc"), ph("acc")))
	put("trk", pipeline.StateTracked, ph("trk"), pipeline.SourceFor(fp("trk"), ph("trk")))
	put("rej", pipeline.StateRejected, ph("rej"), pipeline.SourceFor(fp("rej"), ph("rej")))
	put("pen", pipeline.StatePending, ph("pen"), pipeline.SourceFor(fp("pen"), ph("pen")))
	put("none", pipeline.StateAccepted, ph("none"), "")
	// Source kept from an earlier payload: a write that changed the payload
	// hash and not Source.
	put("stale", pipeline.StateAccepted, ph("stale2"), pipeline.SourceFor(fp("stale"), ph("stale")))
	put("junk", pipeline.StateAccepted, ph("junk"), "zz"+strings.Repeat("x", 30)+"/"+ph("junk")[:16])
	mustPut(t, l, pipeline.Entry{Key: key("undated"), State: pipeline.StateAccepted, PayloadHash: ph("undated"),
		Source: pipeline.SourceFor(fp("undated"), ph("undated"))})

	if got := mustGet(t, l, key("acc")).Source; got != pipeline.SourceFor(fp("acc"), ph("acc")) {
		t.Fatalf("Get: Source %q, want it as written", got)
	}
	check := func(t *testing.T, o, f string, oldest time.Time, want pipeline.State) {
		t.Helper()
		st, ok, err := l.SettledSource(ctx, key(o), f, oldest)
		if err != nil || st != want || ok != (want != "") {
			t.Errorf("SettledSource(%s, %.8s, %s) = %q, %v, %v; want %q", o, f, oldest.Format(time.DateOnly), st, ok, err, want)
		}
	}
	tests := []struct {
		name, order, fp string
		oldest          time.Time
		want            pipeline.State
	}{
		{"accepted, same lines", "acc", fp("acc"), time.Time{}, pipeline.StateAccepted},
		{"accepted, other lines", "acc", fp("acc2"), time.Time{}, ""},
		{"tracked since", "trk", fp("trk"), time.Time{}, pipeline.StateTracked},
		{"rejected is mapped again", "rej", fp("rej"), time.Time{}, ""},
		{"pending is mapped again", "pen", fp("pen"), time.Time{}, ""},
		{"no source", "none", fp("none"), time.Time{}, ""},
		{"source of an earlier payload", "stale", fp("stale"), time.Time{}, ""},
		{"source not hex", "junk", "zz" + strings.Repeat("x", 30), time.Time{}, ""},
		{"absent", "new", fp("new"), time.Time{}, ""},
		{"empty fingerprint", "acc", "", time.Time{}, ""},
		{"event not too old", "acc", fp("acc"), day.Add(-24 * time.Hour), pipeline.StateAccepted},
		{"event on the limit's day, the limit at its start", "acc", fp("acc"), day.Truncate(24 * time.Hour), pipeline.StateAccepted},
		{"event after the limit on its day", "acc", fp("acc"), day.Add(-time.Hour), ""},
		{"event too old", "acc", fp("acc"), day.Add(time.Hour), ""},
		{"no event date, an age limit", "undated", fp("undated"), day, ""},
		{"no event date, no limit", "undated", fp("undated"), time.Time{}, pipeline.StateAccepted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.order, tt.fp, tt.oldest, tt.want) })
	}
	t.Run("written since the load", func(t *testing.T) {
		put("trk", pipeline.StateTracked, ph("trk"), pipeline.SourceFor(fp("trk"), ph("trk")))
		check(t, "trk", fp("trk"), time.Time{}, "")
		if st, ok, err := l.Settled(ctx, key("trk"), ph("trk")); err != nil || !ok || st != pipeline.StateTracked {
			t.Errorf("Settled after the write = %q, %v, %v; want tracked", st, ok, err)
		}
	})
	t.Run("reopened", func(t *testing.T) {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = b.openT(t, place)
		check(t, "acc", fp("acc"), time.Time{}, pipeline.StateAccepted)
		check(t, "trk", fp("trk"), time.Time{}, pipeline.StateTracked)
		check(t, "stale", fp("stale"), time.Time{}, "")
	})
}

// TestSettledSourceMigrated: the entries of a ledger made before Source
// are mapped again: none is vouched for.
func TestSettledSourceMigrated(t *testing.T) { forEachBackend(t, testSettledSourceMigrated) }

func testSettledSourceMigrated(t *testing.T, b backend) {
	place := b.place(t)
	b.makeV2(t, place)
	l, err := b.open(t.Context(), place, Options{Account: "IR1"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	e := mustGet(t, l, pipeline.Key{EventType: "1", OrderID: "acc"})
	if e.Source != "" {
		t.Fatalf("migrated entry has Source %q", e.Source)
	}
	if st, ok, err := l.SettledSource(t.Context(), e.Key, strings.Repeat("a", 32), time.Time{}); ok || err != nil {
		t.Errorf("SettledSource of a migrated entry = %q, %v, %v; want false", st, ok, err)
	}
}

// TestPackSource: a slot's source keeps the fingerprint's first 48 bits
// and the event's day; an unknown or far-off day is 0.
func TestPackSource(t *testing.T) {
	fp := uint64(0x0123456789abcdef)
	day := time.Date(2026, 11, 20, 23, 59, 0, 0, time.UTC)
	tests := []struct {
		name string
		ev   int64
		want uint64
	}{
		{"a day", day.UnixNano(), 0x0123456789ab0000 | uint64(day.Unix()/86400)},
		{"unknown", 0, 0x0123456789ab0000},
		{"before 1970", -day.UnixNano(), 0x0123456789ab0000},
		{"after 2149", time.Date(2150, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), 0x0123456789ab0000},
	}
	for _, tt := range tests {
		if got := packSource(fp, tt.ev); got != tt.want {
			t.Errorf("%s: packSource = %x, want %x", tt.name, got, tt.want)
		}
	}
}
