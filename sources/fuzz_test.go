package sources

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"convpipe/pipeline"
)

// FuzzCSV reads arbitrary bytes as CSV with a few delimiters and quote
// modes: it must never panic nor loop, and every row must be well formed.
// The committed corpus is testdata/fuzz/FuzzCSV; the bad-input corpus's
// CSV files are seeds too.
func FuzzCSV(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "bad", "*", "input.csv*"))
	for _, p := range inputs {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, byte(','), false)
		}
	}
	f.Add([]byte("a;b\r\n\"x;\"\"y\";2\r\n"), byte(';'), false)
	f.Add([]byte("a\tb\n5\" tv\t\"open\n"), byte('\t'), true)
	f.Fuzz(func(t *testing.T, data []byte, delim byte, lazy bool) {
		comma := map[byte]string{',': ",", ';': ";", '\t': `\t`, '|': "|"}[delim]
		set, err := Config{Location: "fuzz.csv", CSV: CSVConfig{Delimiter: comma, LazyQuotes: lazy, MaxFieldBytes: 1 << 10}}.compile()
		if err != nil {
			t.Fatal(err)
		}
		obj := &pipeline.Object{Key: "fuzz.csv", Size: int64(len(data))}
		r, err := newCSVReader(obj, io.NopCloser(bytes.NewReader(data)), set)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv") {
				t.Fatalf("open error does not name the file: %v", err)
			}
			return
		}
		defer r.Close()
		h := r.Header()
		for _, n := range h.Names() {
			if !utf8.ValidString(n) {
				t.Fatalf("header name %q is not UTF-8", n)
			}
		}
		for _, d := range h.Duplicates() {
			if d != "" {
				t.Fatalf("duplicate name %q accepted", d)
			}
		}
		last := int64(1)
		for range len(data) + 2 {
			row, err := r.Next()
			var re *pipeline.RowError
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &re):
				if re.Line <= last || re.Object != "fuzz.csv" {
					t.Fatalf("row error at %v after line %d", re.Ref, last)
				}
				last = re.Line
			case err != nil:
				if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || !strings.HasPrefix(err.Error(), "fuzz.csv: read: ") {
					t.Fatalf("file error from an in-memory reader: %v", err)
				}
				return // a broken gzip stream
			default:
				if row.Line <= last || len(row.Values) != h.Len() || row.Nulls != nil {
					t.Fatalf("bad row after line %d: %+v", last, row)
				}
				for _, v := range row.Values {
					if !utf8.ValidString(v) || len(v) > 1<<10 {
						t.Fatalf("bad value %q", v)
					}
				}
				last = row.Line
			}
		}
		t.Fatal("reader does not end")
	})
}
