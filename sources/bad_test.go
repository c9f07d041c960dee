package sources

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"convpipe/pipeline"
)

// generatedBad makes the binary inputs of the bad-input corpus; -update
// writes them to testdata/bad/<case>/.
var generatedBad = map[string]func(testing.TB) []byte{
	"binary_named_csv/input.csv": func(testing.TB) []byte {
		return []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00")
	},
	"truncated_csv_gz/input.csv.gz": func(tb testing.TB) []byte {
		var b bytes.Buffer
		b.WriteString("order_id,qty\n")
		for i := range 3000 {
			fmt.Fprintf(&b, "O%d,%d\n", i*7919%100003, i%9)
		}
		gz := gzipBytes(tb, b.Bytes())
		return gz[:len(gz)/20]
	},
	"empty_parquet/input.parquet": func(tb testing.TB) []byte {
		return parquetBytes[orderLine](tb, nil, 0)
	},
	"truncated_parquet/input.parquet": func(tb testing.TB) []byte {
		b := parquetBytes(tb, orderLines(0, 200), 50)
		return b[:len(b)*6/10]
	},
	"corrupt_parquet_page/input.parquet": func(tb testing.TB) []byte {
		// Two row groups; the second one's first page is overwritten: the
		// first row group's rows come through, then a file error.
		b := parquetBytes(tb, orderLines(0, 40), 20)
		footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
		dataEnd := len(b) - 8 - footer
		return corrupt(b, 4+(dataEnd-4)*3/4, 24)
	},
	"corrupt_parquet_footer/input.parquet": func(tb testing.TB) []byte {
		b := parquetBytes(tb, orderLines(0, 10), 0)
		footer := int(binary.LittleEndian.Uint32(b[len(b)-8:]))
		return corrupt(b, len(b)-8-footer+3, 12)
	},
	"not_parquet/input.parquet": func(testing.TB) []byte {
		return []byte("order_id,qty\nA,1\n")
	},
}

// corrupt overwrites n bytes of b at off with a fixed pattern.
func corrupt(b []byte, off, n int) []byte {
	c := bytes.Clone(b)
	for i := range n {
		c[off+i] = byte(0xA5 ^ i*37)
	}
	return c
}

// TestBadInput reads every case of testdata/bad: the transcript (rows,
// row errors, file error) must match want.txt; -update rewrites it.
func TestBadInput(t *testing.T) {
	if *update {
		for name, gen := range generatedBad {
			writeFile(t, filepath.Join("testdata", "bad", name), gen(t))
		}
	}
	cases, err := os.ReadDir(filepath.Join("testdata", "bad"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			dir := filepath.Join("testdata", "bad", c.Name())
			inputs, _ := filepath.Glob(filepath.Join(dir, "input.*"))
			if len(inputs) != 1 {
				t.Fatalf("%s: want one input.* file, have %v (run go test -update to generate)", dir, inputs)
			}
			src := newSource(t, Config{Location: inputs[0]})
			objs, err := src.Objects(t.Context())
			if err != nil || len(objs) != 1 {
				t.Fatalf("Objects = %v, %v", objs, err)
			}
			r, err := src.Open(t.Context(), objs[0])
			got := transcript(r, err)
			checkTranscript(t, inputs[0], got)
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				writeFile(t, wantFile, []byte(got))
				return
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// checkTranscript checks what every bad input must give: an end (EOF or a
// file error) and errors that name the file and the row.
func checkTranscript(t *testing.T, key, got string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	last := lines[len(lines)-1]
	if last != "EOF" && !strings.HasPrefix(last, "file error: "+key) {
		t.Errorf("transcript ends with %q, want EOF or a file error naming %s", last, key)
	}
	for _, l := range lines {
		if line, rest, ok := strings.Cut(l, " error: "); ok && line != "file" && !strings.HasPrefix(rest, key+":"+line+":") {
			t.Errorf("row error %q does not name %s:%s", l, key, line)
		}
	}
}

// TestBigField reads a 10 MB value: over the default limits it is a row
// error (of the record, which is cut before the parser holds it; with a
// larger record limit, of the field, naming it); with larger limits it
// comes through. The rows around it come through either way.
func TestBigField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big_field.csv")
	big := strings.Repeat("x", 10<<20)
	writeFile(t, p, []byte("id,note\n1,a\n2,\""+big+"\"\n3,c\n"))
	for _, tc := range []struct {
		name  string
		csv   CSVConfig
		rows  int
		err   string
		field string
	}{
		{"defaults", CSVConfig{}, 2, p + ":3: record of more than 1 MiB (source.csv.max_record_bytes)", ""},
		{"larger record limit", CSVConfig{MaxRecordBytes: 16 << 20}, 2,
			p + ":3: note: value of 10485760 bytes is over the limit of 1048576 (source.csv.max_field_bytes)", "note"},
		{"larger field limit", CSVConfig{MaxFieldBytes: 16 << 20}, 3, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newSource(t, Config{Location: p, CSV: tc.csv})
			r, err := src.Open(t.Context(), pipeline.Object{Key: p})
			if err != nil {
				t.Fatal(err)
			}
			res := readAll(t, r)
			if res.fatal != nil || len(res.rows) != tc.rows {
				t.Fatalf("%d rows, fatal %v", len(res.rows), res.fatal)
			}
			if tc.err != "" && (len(res.errs) != 1 || res.errs[0].Error() != tc.err || res.errs[0].Field != tc.field) {
				t.Fatalf("errs %v, want %q", res.errs, tc.err)
			}
			if last := res.rows[len(res.rows)-1]; last.Line != 4 || last.Values[1] != "c" {
				t.Fatalf("last row %v line %d", last.Values, last.Line)
			}
		})
	}
}

// TestParquetCorruptionNeverPanics damages valid files (one of parquet-go,
// DuckDB's and arrow-rs's of the corpus, with data pages v2 and their
// encodings, and DuckDB's nested items) at many bytes, and truncates them at many lengths: every
// read ends, with rows, row errors or a file error naming the object,
// and never panics out of the reader.
func TestParquetCorruptionNeverPanics(t *testing.T) {
	corpusFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(corpusDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	nestedItems, err := os.ReadFile(filepath.Join("testdata", "cases", "parquet-nested-items", "input", "orders.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		valid []byte
		rows  int
		step  int
	}{
		{"parquet-go", parquetBytes(t, orderLines(0, 30), 10), 30, 2},
		{"duckdb_tiny_v2", corpusFile("duckdb_tiny_v2.parquet"), 300, 7},
		{"arrow_tiny_v2", corpusFile("arrow_tiny_v2.parquet"), 300, 23},
		// DuckDB's nested items: LIST<STRUCT<…>>, 16-row row groups.
		{"duckdb_nested_items", nestedItems, 40, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step := tc.step
			if testing.Short() {
				step = tc.step*5 + 1
			}
			opened, failed := corruptAndRead(t, tc.valid, tc.rows, step)
			t.Logf("%d opened, %d refused at open", opened, failed)
		})
	}
}

// corruptAndRead reads valid, of rows rows, damaged at every step-th
// byte and cut at every 13*step-th length, and checks how each read ends.
func corruptAndRead(t *testing.T, valid []byte, rows, step int) (opened, failed int) {
	try := func(name string, b []byte) {
		obj := &pipeline.Object{Key: name, Size: int64(len(b))}
		r, err := newParquetReader(obj, nopCloser{bytes.NewReader(b)}, int64(len(b)))
		if err != nil {
			failed++
			if strings.Contains(err.Error(), "decoder panicked") {
				t.Logf("%s: %v", name, err)
			}
			if !strings.HasPrefix(err.Error(), name+": ") {
				t.Fatalf("open error does not name the object: %v", err)
			}
			return
		}
		opened++
		defer r.Close()
		for n := range rows + 100 {
			_, err := r.Next()
			var re *pipeline.RowError
			if errors.Is(err, io.EOF) {
				if n != rows {
					t.Fatalf("%s: EOF after %d rows of %d and no error", name, n, rows)
				}
				return
			}
			if err != nil && !errors.As(err, &re) {
				if !strings.HasPrefix(err.Error(), name+": ") {
					t.Fatalf("file error does not name the object: %v", err)
				}
				if strings.Contains(err.Error(), "decoder panicked") {
					t.Logf("%s: %v", name, err)
				}
				return
			}
		}
		t.Fatalf("%s: more than %d results from %d rows", name, rows+100, rows)
	}
	obj := &pipeline.Object{Key: "valid", Size: int64(len(valid))}
	r, err := newParquetReader(obj, nopCloser{bytes.NewReader(valid)}, int64(len(valid)))
	if err != nil {
		t.Fatal(err)
	}
	if res := readAll(t, r); res.fatal != nil || len(res.errs) > 0 || len(res.rows) != rows {
		t.Fatalf("the valid file: %d rows of %d, errors %v, fatal %v", len(res.rows), rows, res.errs, res.fatal)
	}
	for i := 0; i < len(valid); i += step {
		try(fmt.Sprintf("flip-%d", i), corrupt(valid, i, 1))
	}
	for n := 0; n < len(valid); n += 13 * step {
		try(fmt.Sprintf("cut-%d", n), valid[:n])
	}
	return opened, failed
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
