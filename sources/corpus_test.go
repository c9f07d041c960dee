package sources

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// corpusDir holds Parquet files written by real writers (DuckDB, Polars,
// arrow-rs, the Go writers), the rows each must read as, and the manifest
// naming each file's writer: see its README.md for how it is made.
var corpusDir = filepath.Join("testdata", "parquet-corpus")

// corpusEntry is one file of the corpus's manifest.json.
type corpusEntry struct {
	File     string   `json:"file"`
	RowsFile string   `json:"rows_file"`
	Columns  []string `json:"columns"`
	Writer   string   `json:"writer"`
	How      string   `json:"how"`
	Rows     int      `json:"rows"`
	// Refused, when set, is the error the file is refused with today
	// (a column sources cannot read yet).
	Refused string `json:"refused,omitempty"`
}

// corpusRows is a rows file: the values every row must read as, nil for
// a null.
type corpusRows struct {
	Header []string    `json:"header"`
	Rows   [][]*string `json:"rows"`
}

func readCorpusManifest(tb testing.TB) []corpusEntry {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, "manifest.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var m []corpusEntry
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("manifest.json: %v", err)
	}
	if len(m) == 0 {
		tb.Fatal("empty corpus manifest")
	}
	return m
}

func readCorpusRows(tb testing.TB, name string) corpusRows {
	tb.Helper()
	f, err := os.Open(filepath.Join(corpusDir, name))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	var rows corpusRows
	if err := json.NewDecoder(zr).Decode(&rows); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return rows
}

// TestParquetCorpus reads every file of the corpus, from disk and from
// the S3 test server (ranged reads), and compares every value, and every
// null, with the rows its writer's side recorded.
func TestParquetCorpus(t *testing.T) {
	manifest := readCorpusManifest(t)
	stores := []struct {
		name string
		new  func(*testing.T) fixtureStore
	}{
		{"local", func(t *testing.T) fixtureStore { return localFixture{root: t.TempDir()} }},
		{"s3", func(t *testing.T) fixtureStore { return newS3Fixture(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			for _, e := range manifest {
				t.Run(strings.TrimSuffix(e.File, ".parquet"), func(t *testing.T) {
					b, err := os.ReadFile(filepath.Join(corpusDir, e.File))
					if err != nil {
						t.Fatal(err)
					}
					store.put(t, e.File, b)
					readCorpusFile(t, store, e)
				})
			}
		})
	}
}

// readCorpusFile reads the corpus file e from store and compares it with
// its rows.
func readCorpusFile(t *testing.T, store fixtureStore, e corpusEntry) {
	want := readCorpusRows(t, e.RowsFile)
	if len(want.Rows) != e.Rows {
		t.Fatalf("%s has %d rows, the manifest says %d", e.RowsFile, len(want.Rows), e.Rows)
	}
	src := newSource(t, store.config(Config{Location: store.location(e.File)}))
	objs, err := src.Objects(t.Context())
	if err != nil || len(objs) != 1 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	r, err := src.Open(t.Context(), objs[0])
	if e.Refused != "" {
		if err == nil {
			r.Close()
			t.Fatalf("opened; want it refused with %q", e.Refused)
		}
		if !strings.Contains(err.Error(), e.Refused) || !strings.HasPrefix(err.Error(), store.key(e.File)+": ") {
			t.Fatalf("Open = %v, want %q naming the object", err, e.Refused)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	res := readAll(t, r)
	if res.fatal != nil || len(res.errs) > 0 {
		t.Fatalf("after %d rows: errors %v, fatal %v", len(res.rows), res.errs, res.fatal)
	}
	if strings.Join(res.header, ",") != strings.Join(e.Columns, ",") {
		t.Fatalf("header %q, want %q", res.header, e.Columns)
	}
	if len(res.rows) != len(want.Rows) {
		t.Fatalf("%d rows, want %d", len(res.rows), len(want.Rows))
	}
	compareCorpusRows(t, res, want, e.Columns)
}

// compareCorpusRows compares every value of got with want's, by column
// name; it stops after a few differences.
func compareCorpusRows(t *testing.T, got result, want corpusRows, cols []string) {
	t.Helper()
	wantIdx := make(map[string]int, len(want.Header))
	for i, c := range want.Header {
		wantIdx[c] = i
	}
	bad := 0
	for i, row := range got.rows {
		for j, c := range cols {
			k, ok := wantIdx[c]
			if !ok {
				t.Fatalf("column %q is not in the rows file", c)
			}
			w := want.Rows[i][k]
			gotNull := row.Nulls != nil && row.Nulls[j]
			switch {
			case w == nil && !gotNull:
				t.Errorf("row %d %s: %q, want null", i+1, c, row.Values[j])
			case w != nil && gotNull:
				t.Errorf("row %d %s: null, want %q", i+1, c, *w)
			case w != nil && row.Values[j] != *w && !sameJSON(row.Values[j], *w):
				t.Errorf("row %d %s: %q, want %q", i+1, c, row.Values[j], *w)
			default:
				continue
			}
			if bad++; bad >= 10 {
				t.Fatal("too many differences")
			}
		}
	}
}

// sameJSON reports whether got, a list column's JSON array, holds what
// want holds, every scalar compared as text ("qty": 1 is "qty": "1":
// sources renders every value as text).
func sameJSON(got, want string) bool {
	var g, w any
	dg, dw := json.NewDecoder(strings.NewReader(got)), json.NewDecoder(strings.NewReader(want))
	dg.UseNumber()
	dw.UseNumber()
	if dg.Decode(&g) != nil || dw.Decode(&w) != nil {
		return false
	}
	return reflect.DeepEqual(textScalars(g), textScalars(w))
}

// textScalars turns the numbers and booleans of a decoded JSON value
// into their text.
func textScalars(v any) any {
	switch x := v.(type) {
	case []any:
		for i := range x {
			x[i] = textScalars(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = textScalars(x[k])
		}
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	}
	return v
}
