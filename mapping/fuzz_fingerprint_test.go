package mapping

import (
	"slices"
	"testing"

	"convpipe/pipeline"
)

// FuzzFingerprint checks, on arbitrary CSV records, what a rerun relies
// on when a ledger vouches for a payload by the fingerprint of its lines:
// lines of one fingerprint map alike. The same records under a header
// in another order, with a column the mapping does not read, and from
// another object, have the same fingerprint and map to the same
// conversion; any two orders of the input with one fingerprint map to the
// same body, key and verdict.
func FuzzFingerprint(f *testing.F) {
	f.Add("de,1,2024-05-01 10:00:00,clk,C1,jane@example.com,new,eur,\"1,000.00\",S1,2,\"9,99\",,0\nde,1,2024-05-01 10:00:00,clk,C1,jane@example.com,new,eur,\"1,000.00\",S2,1,\"1,00\",,0\n")
	f.Add("de,2,1714557600,,x@y.example,a@b.example,cancelled,usd,(5),S1,2.5,fifty,3,1\nde,3,1714557600,,x@y.example,a@b.example,paid,usd,(5),S1,2.5,fifty,3,1\n")
	f.Add("de,4,2024-05-01 10:00:00,c,,,,,,S1,1,1.00,,\nde,5,2024-05-01 10:00:00,c,,,,,,S1,1,1.00,,\nde,4,2024-05-01 10:00:00,c,,,,,,S1,1,1.00,,\n")
	m := fuzzMapping(f)
	h := pipeline.NewHeader(fuzzHeader)
	// The other header: the columns reversed, and one more.
	other := append(slices.Clone(fuzzHeader), "unread")
	slices.Reverse(other)
	h2 := pipeline.NewHeader(other)
	obj, obj2 := &pipeline.Object{Key: "fuzz.csv"}, &pipeline.Object{Key: "other.parquet"}
	type result struct {
		key          pipeline.Key
		body, skip   string
		problems     int
		skippedLines int
	}
	resultOf := func(md pipeline.Mapped) result {
		return result{md.Conversion.Key, md.Conversion.Encode(), md.Skip, len(md.Problems), len(md.SkippedRows)}
	}
	f.Fuzz(func(t *testing.T, data string) {
		seen := map[string]result{}
		for _, lines := range group(m, fuzzRows(data, obj, h)) {
			key, fp := m.Fingerprint(lines)
			if len(fp) != 32 {
				t.Fatalf("fingerprint %q", fp)
			}
			got := resultOf(m.Map(lines))
			if prev, ok := seen[fp]; ok && prev != got {
				t.Fatalf("one fingerprint, two conversions: %+v and %+v", prev, got)
			}
			seen[fp] = got
			if got.skip == "" && got.problems == 0 && got.skippedLines == 0 && key != got.key {
				t.Errorf("Fingerprint's key %v, Map's %v", key, got.key)
			}
			moved := make([]pipeline.Row, len(lines))
			for i, r := range lines {
				vals := make([]string, len(other))
				for j, name := range other {
					if k, ok := h.Index(name); ok && k < len(r.Values) {
						vals[j] = r.Values[k]
					} else if name == "unread" {
						vals[j] = data
					}
				}
				moved[i] = pipeline.Row{Object: obj2, Line: r.Line + 7, Header: h2, Values: vals}
			}
			if _, fp2 := m.Fingerprint(moved); fp2 != fp {
				t.Errorf("the same lines elsewhere: fingerprint %s, want %s", fp2, fp)
			}
			if got2 := resultOf(m.Map(moved)); got2 != got {
				t.Errorf("the same lines elsewhere map to %+v, want %+v", got2, got)
			}
		}
	})
}
