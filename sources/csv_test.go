package sources

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"convpipe/pipeline"
)

func TestCSV(t *testing.T) {
	tests := []struct {
		name  string
		file  string // file name, "in.csv" when empty
		csv   CSVConfig
		input []byte
		want  string // transcript with the object's key as "F"
	}{
		{
			name:  "plain",
			input: []byte("a,b,c\n1,2,3\nx,,z\n"),
			want:  "header: [\"a\",\"b\",\"c\"]\n2 [\"1\",\"2\",\"3\"]\n3 [\"x\",\"\",\"z\"]\nEOF\n",
		},
		{
			name:  "no final newline",
			input: []byte("a,b\n1,2"),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\nEOF\n",
		},
		{
			name:  "CRLF",
			input: []byte("a,b\r\n1,2\r\n3,4\r\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\n3 [\"3\",\"4\"]\nEOF\n",
		},
		{
			name:  "BOM stripped",
			input: []byte("\xEF\xBB\xBForder_id,qty\nA1,2\n"),
			want:  "header: [\"order_id\",\"qty\"]\n2 [\"A1\",\"2\"]\nEOF\n",
		},
		{
			name:  "semicolon",
			csv:   CSVConfig{Delimiter: ";"},
			input: []byte("a;b\n1,5;2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"1,5\",\"2\"]\nEOF\n",
		},
		{
			name:  "tab",
			csv:   CSVConfig{Delimiter: `\t`},
			input: []byte("a\tb\n1\t2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\nEOF\n",
		},
		{
			name:  "quoted newlines keep physical line numbers",
			input: []byte("id,note\n1,\"two\nlines\"\n2,\"a \"\"quote\"\", a comma\"\n\n3,x\n"),
			want: "header: [\"id\",\"note\"]\n2 [\"1\",\"two\\nlines\"]\n4 [\"2\",\"a \\\"quote\\\", a comma\"]\n" +
				"6 [\"3\",\"x\"]\nEOF\n",
		},
		{
			name:  "quoted CRLF inside a field",
			input: []byte("id,note\r\n1,\"x\r\ny\"\r\n2,z\r\n"),
			want:  "header: [\"id\",\"note\"]\n2 [\"1\",\"x\\ny\"]\n4 [\"2\",\"z\"]\nEOF\n",
		},
		{
			name:  "gzip by content",
			file:  "in.csv.gz",
			input: gzipBytes(t, []byte("a,b\n1,2\n")),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\nEOF\n",
		},
		{
			name:  "gzip under a plain name",
			input: gzipBytes(t, []byte("a,b\n1,2\n")),
			want:  "header: [\"a\",\"b\"]\n2 [\"1\",\"2\"]\nEOF\n",
		},
		{
			name:  "empty file",
			input: nil,
			want:  "header: []\nEOF\n",
		},
		{
			name:  "header alone",
			input: []byte("a,b\n"),
			want:  "header: [\"a\",\"b\"]\nEOF\n",
		},
		{
			name:  "header alone without newline",
			input: []byte("a,b"),
			want:  "header: [\"a\",\"b\"]\nEOF\n",
		},
		{
			name:  "lazy quotes",
			csv:   CSVConfig{LazyQuotes: true},
			input: []byte("a,b\n5\" screen,2\n"),
			want:  "header: [\"a\",\"b\"]\n2 [\"5\\\" screen\",\"2\"]\nEOF\n",
		},
		{
			name:  "bare quote is a row error",
			input: []byte("a,b\n5\" screen,2\nok,3\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: bare \" in non-quoted-field (column 2)\n" +
				"3 [\"ok\",\"3\"]\nEOF\n",
		},
		{
			name:  "wrong field count is a row error",
			input: []byte("a,b\n1,2,3\n4\n5,6\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: 3 fields, the header has 2\n" +
				"3 error: F:3: 1 fields, the header has 2\n4 [\"5\",\"6\"]\nEOF\n",
		},
		{
			name:  "invalid UTF-8 names the field",
			input: []byte("a,b\n1,caf\xe9\n2,ok\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: b: not UTF-8 at byte 3 of the value: is it windows-1252? set source.csv.encoding\n" +
				"3 [\"2\",\"ok\"]\nEOF\n",
		},
		{
			name:  "value over the size limit names the field",
			csv:   CSVConfig{MaxFieldBytes: 4},
			input: []byte("a,b\n1,12345\n2,1234\n"),
			want: "header: [\"a\",\"b\"]\n2 error: F:2: b: value of 5 bytes is over the limit of 4 (source.csv.max_field_bytes)\n" +
				"3 [\"2\",\"1234\"]\nEOF\n",
		},
		{
			name:  "duplicate header names",
			input: []byte("a,b,a,c,b\n1,2,3,4,5\n"),
			want:  "file error: F:1: header: duplicate column names \"a\", \"b\"\n",
		},
		{
			name:  "empty header names may repeat",
			input: []byte("a,b,,\n1,2,,\n"),
			want:  "header: [\"a\",\"b\",\"\",\"\"]\n2 [\"1\",\"2\",\"\",\"\"]\nEOF\n",
		},
		{
			name:  "binary data",
			input: []byte("PK\x03\x04\x00\x00binary"),
			want:  "file error: F: binary data (NUL byte at offset 4), not CSV\n",
		},
		{
			name:  "UTF-16 by its byte order mark",
			input: []byte("\xFF\xFEa\x00,\x00b\x00"),
			want:  "header: [\"a\",\"b\"]\nEOF\n",
		},
		{
			name:  "truncated gzip",
			input: truncatedGzip(t),
			want:  "", // checked below: rows, then a file error
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "in.csv"
			}
			p := filepath.Join(t.TempDir(), file)
			writeFile(t, p, tc.input)
			src := newSource(t, Config{Location: p, CSV: tc.csv})
			objs, err := src.Objects(t.Context())
			if err != nil || len(objs) != 1 {
				t.Fatalf("Objects = %v, %v", objs, err)
			}
			r, err := src.Open(t.Context(), objs[0])
			got := strings.ReplaceAll(transcript(r, err), p, "F")
			if tc.want == "" {
				if !strings.HasPrefix(got, "header: [\"a\",\"b\"]\n") || !strings.Contains(got, "file error: F: read: unexpected EOF") {
					t.Errorf("got\n%s", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestCSVRowsAreFreshAndCarryTheirObject(t *testing.T) {
	p := filepath.Join(t.TempDir(), "in.csv")
	var sb strings.Builder
	sb.WriteString("a,b\n")
	for i := range 500 {
		sb.WriteString(strings.Repeat("x", i%7) + ",y\n")
	}
	writeFile(t, p, []byte(sb.String()))
	src := newSource(t, Config{Location: p})
	objs, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(t.Context(), objs[0])
	if err != nil {
		t.Fatal(err)
	}
	res := readAll(t, r)
	if len(res.rows) != 500 || res.fatal != nil || len(res.errs) != 0 {
		t.Fatalf("rows %d, errs %v, fatal %v", len(res.rows), res.errs, res.fatal)
	}
	for i, row := range res.rows {
		if want := strings.Repeat("x", i%7); row.Values[0] != want || row.Values[1] != "y" {
			t.Fatalf("row %d = %q, want [%q y] (values overwritten?)", i, row.Values, want)
		}
		if row.Line != int64(i+2) || *row.Object != objs[0] || row.Nulls != nil {
			t.Fatalf("row %d: line %d, object %+v, nulls %v", i, row.Line, row.Object, row.Nulls)
		}
		if v, ok := row.Value("b"); !ok || v != "y" {
			t.Fatalf("row %d: Value(b) = %q, %v", i, v, ok)
		}
	}
	// Appending to one row's values must not touch the next row's.
	_ = append(res.rows[0].Values, "extra")
	if res.rows[1].Values[0] != "x" {
		t.Fatalf("rows share storage: %q", res.rows[1].Values)
	}
	if _, err := r.Next(); err == nil {
		t.Fatal("Next after Close succeeded")
	}
}

func TestCSVReadError(t *testing.T) {
	// A stream that fails mid-way ends the object with a file error that is
	// not a RowError.
	obj := &pipeline.Object{Key: "broken.csv"}
	set, _ := Config{Location: "x"}.compile()
	data := "a,b\n" + strings.Repeat("1,2\n", 5000) + "3,"
	rc := io.NopCloser(io.MultiReader(strings.NewReader(data), errReader{}))
	r, err := newCSVReader(obj, rc, set)
	if err != nil {
		t.Fatal(err)
	}
	res := readAll(t, r)
	var re *pipeline.RowError
	if len(res.rows) != 5000 || res.fatal == nil || errors.As(res.fatal, &re) || !strings.Contains(res.fatal.Error(), "broken.csv: read: disk on fire") {
		t.Fatalf("rows %d, fatal %v", len(res.rows), res.fatal)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// truncatedGzip is a gzip CSV cut in the middle of its compressed data.
func truncatedGzip(tb testing.TB) []byte {
	var sb strings.Builder
	sb.WriteString("a,b\n")
	for i := range 20000 {
		fmt.Fprintf(&sb, "%d,%d\n", i, i*7919%10007)
	}
	gz := gzipBytes(tb, []byte(sb.String()))
	return gz[:len(gz)/2]
}

func TestUTF8Scan(t *testing.T) {
	valid := strings.Repeat("añ€😀b", 50)
	tests := []struct {
		name string
		data string
		bad  int64
	}{
		{"valid", valid, -1},
		{"invalid in the middle", valid[:99] + "\xff" + valid, 99},
		{"rune cut in the middle", valid[:101] + valid, 100},
		{"rune cut by the end", valid + "\xe2\x82", int64(len(valid))},
		{"bad continuation", valid + "\xe2\x28\xa1", int64(len(valid))},
		{"lone continuation first", "\x80abc", 0},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 2, 3, 5, 7, 64} {
			t.Run(fmt.Sprintf("%s/%d", tc.name, chunk), func(t *testing.T) {
				s := &utf8Scan{r: &chunkReader{data: []byte(tc.data), n: chunk}, bad: -1}
				got, err := io.ReadAll(s)
				if err != nil || string(got) != tc.data {
					t.Fatalf("passed %q, %v", got, err)
				}
				if s.bad != tc.bad {
					t.Fatalf("bad = %d, want %d", s.bad, tc.bad)
				}
			})
		}
	}
}

// chunkReader returns at most n bytes a read.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.n)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// TestCSVInvalidUTF8FarIn checks the rows around an invalid byte that
// comes long after the first buffer, with multi-byte runes across buffer
// boundaries before and after it.
func TestCSVInvalidUTF8FarIn(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("id,name\n")
	for i := range 20000 {
		name := strings.Repeat("€", i%5) + "Zoë"
		if i == 15000 {
			name = "caf\xe9"
		}
		fmt.Fprintf(&sb, "%d,%s\n", i, name)
	}
	for _, gz := range []bool{false, true} {
		t.Run(fmt.Sprint("gzip=", gz), func(t *testing.T) {
			data := []byte(sb.String())
			if gz {
				data = gzipBytes(t, data)
			}
			obj := &pipeline.Object{Key: "far.csv"}
			set, _ := Config{Location: "x"}.compile()
			r, err := newCSVReader(obj, io.NopCloser(&chunkReader{data: data, n: 4093}), set)
			if err != nil {
				t.Fatal(err)
			}
			res := readAll(t, r)
			if res.fatal != nil || len(res.rows) != 19999 || len(res.errs) != 1 {
				t.Fatalf("%d rows, errs %v, fatal %v", len(res.rows), res.errs, res.fatal)
			}
			if e := res.errs[0]; e.Line != 15002 || e.Field != "name" {
				t.Fatalf("error %v", e)
			}
			if last := res.rows[len(res.rows)-1]; last.Values[1] != strings.Repeat("€", 19999%5)+"Zoë" {
				t.Fatalf("last row %q", last.Values)
			}
		})
	}
}

// TestTruncatedLastLine reads exports whose last line has no line break:
// when it does not parse to the header's columns (too few fields, a
// quoted value the file ends in) it is a row error, never a row with
// missing or cut values; when it does, it is a row, as many writers leave
// out the last line break.
func TestTruncatedLastLine(t *testing.T) {
	const head = "header: [\"a\",\"b\",\"c\"]\n2 [\"1\",\"2\",\"3\"]\n"
	const inQuotes = "3 error: F:3: c: the file ends inside this quoted value (is it cut short?)\nEOF\n"
	tests := []struct {
		name  string
		lazy  bool
		input string
		gzip  bool
		want  string
	}{
		{"too few fields", false, "a,b,c\n1,2,3\n4,5", false, head + "3 error: F:3: 2 fields, the header has 3\nEOF\n"},
		{"too few fields, gzip", false, "a,b,c\n1,2,3\n4,5", true, head + "3 error: F:3: 2 fields, the header has 3\nEOF\n"},
		{"too few fields, CRLF cut after CR", false, "a,b,c\r\n1,2,3\r\n4,5\r", false, head + "3 error: F:3: 2 fields, the header has 3\nEOF\n"},
		{"too few fields, lazy quotes", true, "a,b,c\n1,2,3\n4,5", false, head + "3 error: F:3: 2 fields, the header has 3\nEOF\n"},
		{"one field of three", false, "a,b,c\n1,2,3\n4", false, head + "3 error: F:3: 1 fields, the header has 3\nEOF\n"},
		{"all fields", false, "a,b,c\n1,2,3\n4,5,6", false, head + "3 [\"4\",\"5\",\"6\"]\nEOF\n"},
		{"all fields, last one quoted", true, "a,b,c\n1,2,3\n4,5,\"6\"", false, head + "3 [\"4\",\"5\",\"6\"]\nEOF\n"},
		{"cut in a quoted value", false, "a,b,c\n1,2,3\n4,5,\"six\nsev", false,
			head + "3 error: F:3: extraneous or missing \" in quoted-field (at line 4, column 4; an unbalanced quote runs to the next quote or the end of the file)\nEOF\n"},
		{"cut in a quoted value, lazy quotes", true, "a,b,c\n1,2,3\n4,5,\"six\nsev", false, head + inQuotes},
		{"cut in a quoted value, lazy quotes, gzip", true, "a,b,c\n1,2,3\n4,5,\"six\nsev", true, head + inQuotes},
		{"cut after a doubled quote, lazy quotes", true, "a,b,c\n1,2,3\n4,5,\"6\"\"", false, head + inQuotes},
		{"cut after a stray quote, lazy quotes", true, "a,b,c\n1,2,3\n4,5,\"6\"x", false, head + inQuotes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.input)
			if tc.gzip {
				data = gzipBytes(t, data)
			}
			p := filepath.Join(t.TempDir(), "in.csv")
			writeFile(t, p, data)
			src := newSource(t, Config{Location: p, CSV: CSVConfig{LazyQuotes: tc.lazy}})
			r, err := src.Open(t.Context(), pipeline.Object{Key: p})
			if got := strings.ReplaceAll(transcript(r, err), p, "F"); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}
