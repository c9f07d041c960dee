package mapping

import (
	"slices"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// TestFingerprint: the fingerprint changes with every cell the mapping
// reads, with the lines' number and order and with the mapping, and with
// nothing else (where the lines come from, the columns it does not read,
// their order in the header); its key is Map's.
func TestFingerprint(t *testing.T) {
	m := mustMapping(t, unitYAML)
	two := rowsOf("a.csv", unitHeader, unitLine("O-1", "S1"), unitLine("O-1", "S2"))
	key, fp := m.Fingerprint(two)
	if len(fp) != 32 {
		t.Fatalf("fingerprint %q: want 32 hex digits", fp)
	}
	if mk := m.Map(two).Conversion.Key; key != mk {
		t.Errorf("Fingerprint's key %v, Map's %v", key, mk)
	}

	same := map[string][]pipeline.Row{
		"another object and lines": func() []pipeline.Row {
			r := rowsOf("b.parquet", unitHeader, unitLine("O-1", "S1"), unitLine("O-1", "S2"))
			for i := range r {
				r[i].Line += 100
			}
			return r
		}(),
		"a column it does not read": rowsOf("a.csv", append(slices.Clone(unitHeader), "note"),
			append(unitLine("O-1", "S1"), "gift"), append(unitLine("O-1", "S2"), "wrap")),
		"columns in another order": rowsOf("a.csv", []string{"price", "qty", "sku", "currency", "click", "created", "order_id"},
			reversed(unitLine("O-1", "S1")), reversed(unitLine("O-1", "S2"))),
	}
	for name, lines := range same {
		if _, got := m.Fingerprint(lines); got != fp {
			t.Errorf("%s: fingerprint %s, want %s", name, got, fp)
		}
	}

	differ := map[string][]pipeline.Row{
		"one line":          two[:1],
		"lines swapped":     {two[1], two[0]},
		"a third line":      rowsOf("a.csv", unitHeader, unitLine("O-1", "S1"), unitLine("O-1", "S2"), unitLine("O-1", "S3")),
		"a price":           withCell(two, 1, 6, "9.98"),
		"the click id":      withCell(two, 0, 2, "clk2"),
		"an empty currency": withCell(two, 0, 3, ""),
		"a cell's bounds": rowsOf("a.csv", unitHeader,
			[]string{"O-1", "2024-05-01 10:00:00", "clke", "ur", "S1", "1", "9.99"}, unitLine("O-1", "S2")),
		"a column missing": rowsOf("a.csv", unitHeader[:6], unitLine("O-1", "S1")[:6], unitLine("O-1", "S2")[:6]),
	}
	seen := map[string]string{fp: "the lines"}
	for name, lines := range differ {
		_, got := m.Fingerprint(lines)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: fingerprint %s, the same as %s's", name, got, other)
		}
		seen[got] = name
	}
	// A column the header lacks and an empty cell in each line differ.
	noCurrency := rowsOf("a.csv", slices.Delete(slices.Clone(unitHeader), 3, 4),
		slices.Delete(unitLine("O-1", "S1"), 3, 4), slices.Delete(unitLine("O-1", "S2"), 3, 4))
	_, missing := m.Fingerprint(noCurrency)
	_, empty := m.Fingerprint(withCell(withCell(two, 0, 3, ""), 1, 3, ""))
	if missing == empty {
		t.Error("a missing column and empty cells have one fingerprint")
	}

	mappings := map[string]*Mapping{
		"another transform":     mustMapping(t, strings.Replace(unitYAML, "{default: EUR}", "{default: USD}", 1)),
		"another max_event_age": mustMapping(t, "max_event_age: 30d\n"+unitYAML),
		"allow old":             allowOld(t, unitYAML),
	}
	for name, mm := range mappings {
		if _, got := mm.Fingerprint(two); got == fp || got == "" {
			t.Errorf("%s: fingerprint %q, want another than %s", name, got, fp)
		}
	}
	if _, again := mustMapping(t, unitYAML).Fingerprint(two); again != fp {
		t.Errorf("the same mapping compiled again: %s, want %s", again, fp)
	}
	if _, got := mustMapping(t, "allow_now: true\n"+unitYAML).Fingerprint(two); got != "" {
		t.Errorf("allow_now: fingerprint %q, want none (the conversion depends on the time)", got)
	}
	if k, got := m.Fingerprint(nil); got != "" || k != (pipeline.Key{}) {
		t.Errorf("no lines: %v, %q; want nothing", k, got)
	}
}

func TestOldestEvent(t *testing.T) {
	m := mustMapping(t, "max_event_age: 30d\n"+unitYAML)
	if got, want := m.OldestEvent(), testNow.Add(-29*24*time.Hour); !got.Equal(want) {
		t.Errorf("OldestEvent = %v, want %v (30 days ago, a day of margin)", got, want)
	}
	if got := allowOld(t, unitYAML).OldestEvent(); !got.IsZero() {
		t.Errorf("--allow-old: OldestEvent = %v, want zero", got)
	}
}

// allowOld compiles the mapping y as a run with --allow-old does.
func allowOld(t *testing.T, y string) *Mapping {
	t.Helper()
	cfg, err := ParseConfig([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AllowOld = true
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func reversed(s []string) []string {
	s = slices.Clone(s)
	slices.Reverse(s)
	return s
}

// withCell returns a copy of lines with line i's value at column c set to v.
func withCell(lines []pipeline.Row, i, c int, v string) []pipeline.Row {
	out := slices.Clone(lines)
	out[i].Values = slices.Clone(out[i].Values)
	out[i].Values[c] = v
	return out
}
