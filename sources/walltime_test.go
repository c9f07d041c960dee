package sources

import (
	"path/filepath"
	"testing"
	"time"

	"convpipe/mapping"
	"convpipe/pipeline"
)

// TestParquetWallTimeInZone follows typed timestamps from a DuckDB file
// through the mapping: a TIMESTAMP not adjusted to UTC is a wall time and
// gets the offset of the zone the mapping names (New York's, summer or
// winter time by the day); a TIMESTAMPTZ stays the instant it is; and a
// wall time read as RFC 3339 is an error, never silently taken for UTC.
func TestParquetWallTimeInZone(t *testing.T) {
	p := filepath.Join(corpusDir, "duckdb_snappy_v1.parquet")
	src := newSource(t, Config{Location: p})
	r, err := src.Open(t.Context(), pipeline.Object{Key: p})
	if err != nil {
		t.Fatal(err)
	}
	res := readAll(t, r)
	if res.fatal != nil || len(res.rows) != 5000 {
		t.Fatalf("%d rows, fatal %v", len(res.rows), res.fatal)
	}
	for _, tc := range []struct {
		name, column, layout string
		row                  int // index in the file
		in, want             string
	}{
		// 2026-11-01 02:00 New York: summer time ends.
		{"wall time, summer", "event_local", "2006-01-02T15:04:05", 0,
			"2026-10-31T22:00:16.360117", "2026-10-31T22:00:16.360117-04:00"},
		{"wall time, winter", "event_local", "2006-01-02T15:04:05", 4999,
			"2026-11-03T01:22:53.074439", "2026-11-03T01:22:53.074439-05:00"},
		{"wall time in nanoseconds", "event_ns", "2006-01-02T15:04:05", 0,
			"2026-10-31T22:00:16.36011707", "2026-10-31T22:00:16.36011707-04:00"},
		// A time with its offset keeps it (docs/mapping.md, time): the
		// zone is for times without one.
		{"UTC stays UTC", "event_utc", "rfc3339", 0,
			"2026-10-31T22:00:16.360117Z", "2026-10-31T22:00:16.360117Z"},
		{"wall time is not RFC 3339", "event_local", "rfc3339", 0, "2026-10-31T22:00:16.360117", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := mapping.ParseConfig([]byte(`
order_key: [order_id]
fields:
  EventTypeId: {const: "12345"}
  CampaignId: {const: "1000"}
  OrderId: order_id
  ClickId: click_id
  EventDate: {column: ` + tc.column + `, transforms: [{time: {layout: "` + tc.layout + `", zone: America/New_York}}]}
`))
			if err != nil {
				t.Fatal(err)
			}
			m, err := mapping.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			// The file's dates are fixed: checked as of the day it was made.
			m.SetClock(func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) })
			row := res.rows[tc.row]
			if v, _ := row.Value(tc.column); v != tc.in {
				t.Fatalf("%s = %q, want %q", tc.column, v, tc.in)
			}
			md := m.Map([]pipeline.Row{row})
			got := ""
			for _, f := range md.Conversion.Fields {
				if f.Name == "EventDate" {
					got = f.Value
				}
			}
			if tc.want == "" {
				if len(md.Problems) == 0 {
					t.Fatalf("EventDate %q and no problem, want an error", got)
				}
				return
			}
			if len(md.Problems) > 0 || got != tc.want {
				t.Fatalf("EventDate %q, problems %v; want %q", got, md.Problems, tc.want)
			}
		})
	}
}
