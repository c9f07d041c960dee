package sources

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"convpipe/pipeline"
)

// repeatReader returns its pattern over and over, never ending.
type repeatReader struct {
	pat string
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pat[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pat)
	}
	return n, nil
}

// repeated is head, then n bytes of pat repeated, then tail, as a stream.
func repeated(head, pat string, n int64, tail string) io.Reader {
	pat = strings.Repeat(pat, max(1, 32<<10/len(pat))) // the same stream, in larger copies
	return io.MultiReader(strings.NewReader(head), io.LimitReader(&repeatReader{pat: pat}, n), strings.NewReader(tail))
}

// gzipStream compresses r, which may be long: only the compressed bytes
// are kept.
func gzipStream(tb testing.TB, r io.Reader) []byte {
	tb.Helper()
	var b strings.Builder
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	if _, err := io.Copy(zw, r); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return []byte(b.String())
}

func readBytes(tb testing.TB, r io.Reader) []byte {
	tb.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestUnboundedRecordMemory reads records far over the limit on one
// record's bytes: each is a row error naming the line and the setting,
// reading goes on with the next record on its right line, and the parser
// is never handed the whole record (the bytes it consumed stay near the
// limit).
func TestUnboundedRecordMemory(t *testing.T) {
	for _, tc := range longRecordCases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "in.csv"
			}
			p := filepath.Join(t.TempDir(), file)
			writeFile(t, p, tc.input(t))
			src := newSource(t, Config{Location: p, CSV: tc.csv})
			objs, err := src.Objects(t.Context())
			if err != nil || len(objs) != 1 {
				t.Fatalf("Objects = %v, %v", objs, err)
			}
			r, err := src.Open(t.Context(), objs[0])
			var parsed func() int64
			if c, ok := r.(*csvReader); ok {
				parsed = c.r.InputOffset
			}
			got := strings.ReplaceAll(transcript(r, err), p, "F")
			if got != tc.want {
				t.Errorf("got\n%.2000s\nwant\n%s", got, tc.want)
			}
			if parsed != nil && parsed() > mib+64 {
				t.Errorf("the parser consumed %d bytes, want at most the limit and the short records", parsed())
			}
		})
	}
}

const (
	mib     = 1 << 20
	tooLong = "record of more than 1 MiB (source.csv.max_record_bytes)"
)

// longRecordCases are the cases of TestUnboundedRecordMemory: inputs made
// as they are read, and their transcripts with the object's key as "F".
var longRecordCases = []struct {
	name  string
	file  string // "in.csv" when empty
	csv   CSVConfig
	input func(testing.TB) []byte
	want  string
}{
	{
		name: "gzip line of 16 MiB",
		file: "in.csv.gz",
		input: func(tb testing.TB) []byte {
			return gzipStream(tb, repeated("id,note\n1,a\n2,", "x", 16*mib, "\n3,c\n"))
		},
		want: "header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: " + tooLong + "\n4 [\"3\",\"c\"]\nEOF\n",
	},
	{
		name:  "plain line of 3 MiB",
		input: func(tb testing.TB) []byte { return readBytes(tb, repeated("id,note\n1,a\n2,", "x", 3*mib, "\n3,c\n")) },
		want:  "header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: " + tooLong + "\n4 [\"3\",\"c\"]\nEOF\n",
	},
	{
		name: "quoted CRLF value of 6 MiB over 2M lines",
		file: "in.csv.gz",
		input: func(tb testing.TB) []byte {
			return gzipStream(tb, repeated("id,note\r\n1,a\r\n2,\"", "x\r\n", 3*2*mib, "\"\r\n3,c\r\n"))
		},
		want: fmt.Sprintf("header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: %s\n%d [\"3\",\"c\"]\nEOF\n", tooLong, 4+2*mib),
	},
	{
		name:  "last record without a newline",
		input: func(tb testing.TB) []byte { return readBytes(tb, repeated("id,note\n1,a\n2,", "x", 2*mib, "")) },
		want:  "header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: " + tooLong + "\nEOF\n",
	},
	{
		name: "bare quote before the cut",
		input: func(tb testing.TB) []byte {
			return readBytes(tb, repeated("id,note\n1,a\n2,b\"", "x", 2*mib, "\n3,c\n"))
		},
		want: "header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: " + tooLong + "\n4 [\"3\",\"c\"]\nEOF\n",
	},
	{
		name: "lazy quote inside a long quoted value",
		csv:  CSVConfig{LazyQuotes: true},
		input: func(tb testing.TB) []byte {
			return readBytes(tb, repeated("id,note\n1,a\n2,\"x\"y", "z\n", 2*mib, "\"\n3,c\n"))
		},
		want: fmt.Sprintf("header: [\"id\",\"note\"]\n2 [\"1\",\"a\"]\n3 error: F:3: %s\n%d [\"3\",\"c\"]\nEOF\n", tooLong, 4+mib),
	},
	{
		name:  "configured limit, exactly reached and passed",
		csv:   CSVConfig{MaxRecordBytes: 10},
		input: func(testing.TB) []byte { return []byte("id,v\n12345,7890\n12345,78901\n3,c\n") },
		want: "header: [\"id\",\"v\"]\n2 [\"12345\",\"7890\"]\n" +
			"3 error: F:3: record of more than 10 bytes (source.csv.max_record_bytes)\n4 [\"3\",\"c\"]\nEOF\n",
	},
	{
		name: "configured limit, invalid UTF-8 after dropped records",
		csv:  CSVConfig{MaxRecordBytes: 16},
		input: func(tb testing.TB) []byte {
			return readBytes(tb, io.MultiReader(repeated("id,v\n1,", "x", 1000, "\n"), repeated("2,\"", "y\n", 600, "\"\n3,caf\xe9\n4,ok\n")))
		},
		want: "header: [\"id\",\"v\"]\n2 error: F:2: record of more than 16 bytes (source.csv.max_record_bytes)\n" +
			"3 error: F:3: record of more than 16 bytes (source.csv.max_record_bytes)\n" +
			"304 error: F:304: v: not UTF-8 at byte 3 of the value: is it windows-1252? set source.csv.encoding\n305 [\"4\",\"ok\"]\nEOF\n",
	},
	{
		name:  "header",
		input: func(tb testing.TB) []byte { return readBytes(tb, repeated("id,", "h", 2*mib, "\n1,2\n")) },
		want:  "file error: F:1: header: " + tooLong + "\n",
	},
}

// TestUnboundedInflate reads a gzip object that inflates far more than
// any export does: past the ratio (and the floor below which small
// objects are never refused) it is a file error naming the ratio.
func TestUnboundedInflate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bomb.csv.gz")
	// 80 MiB of one byte compress about 1000 to 1: far over the default
	// ratio, and over the floor.
	writeFile(t, p, gzipStream(t, repeated("id,note\n1,a\n2,", "x", 80*mib, "\n3,c\n")))
	src := newSource(t, Config{Location: p})
	objs, err := src.Objects(t.Context())
	if err != nil || len(objs) != 1 {
		t.Fatalf("Objects = %v, %v", objs, err)
	}
	r, err := src.Open(t.Context(), objs[0])
	if err != nil {
		t.Fatal(err)
	}
	res := readAll(t, r)
	want := fmt.Sprintf("%s: read: gzip: over 100 times the object's %d bytes (source.csv.max_inflate_ratio)", p, objs[0].Size)
	if len(res.rows) != 1 || res.fatal == nil || !strings.HasPrefix(res.fatal.Error(), want) {
		t.Fatalf("rows %d, errs %v, fatal %v\nwant a file error starting %q", len(res.rows), res.errs, res.fatal, want)
	}
}

// event is one result of Next, rendered, with the bytes the parser
// consumed for it.
type event struct {
	text     string
	line     int64
	consumed int64
}

// readEvents reads data as CSV, chunk bytes a read, and returns what Next
// gave, or the error of the open.
func readEvents(tb testing.TB, data []byte, set *settings, chunk int) ([]event, error) {
	tb.Helper()
	obj := &pipeline.Object{Key: "d.csv", Size: int64(len(data))}
	r, err := newCSVReader(obj, io.NopCloser(&chunkReader{data: data, n: chunk}), set)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var events []event
	prev := r.r.InputOffset()
	for range len(data) + 2 {
		row, err := r.Next()
		var e event
		var re *pipeline.RowError
		switch {
		case err == nil:
			e = event{text: fmt.Sprintf("%d %q", row.Line, row.Values), line: row.Line}
		case errors.Is(err, io.EOF):
			e = event{text: "EOF"}
		case errors.As(err, &re):
			e = event{text: re.Error(), line: re.Line}
		default:
			e = event{text: "file error: " + err.Error()}
		}
		e.consumed, prev = r.r.InputOffset()-prev, r.r.InputOffset()
		events = append(events, e)
		if e.line == 0 {
			return events, nil
		}
	}
	tb.Fatalf("%q: the reader does not end", data)
	return nil, nil
}

// limitCase is one input read without a record limit: what Next gave.
type limitCase struct {
	data    []byte
	set     *settings
	chunk   int
	want    []event
	wantErr error
}

func newLimitCase(t *testing.T, data []byte, cfg CSVConfig, chunk int) *limitCase {
	t.Helper()
	cfg.MaxFieldBytes, cfg.MaxRecordBytes = 1<<30, 1<<30
	set, err := Config{Location: "d.csv", CSV: cfg}.compile()
	if err != nil {
		t.Fatal(err)
	}
	lc := &limitCase{data: data, set: set, chunk: chunk}
	lc.want, lc.wantErr = readEvents(t, data, set, chunk)
	return lc
}

// check checks that the input read with max bytes a record gives what it
// gives without a limit, except for records of more than max bytes (by
// what the parser consumed for them without the limit), which may each
// be one row error saying so, on the same line.
func (lc *limitCase) check(t *testing.T, max int) {
	t.Helper()
	lim := *lc.set
	lim.maxRecord = max
	got, gotErr := readEvents(t, lc.data, &lim, lc.chunk)
	tooLong := fmt.Sprintf(": record of more than %s (source.csv.max_record_bytes)", byteSize(int64(max)))
	if lc.wantErr != nil || gotErr != nil {
		if fmt.Sprint(gotErr) != fmt.Sprint(lc.wantErr) && !strings.HasSuffix(fmt.Sprint(gotErr), ": header"+tooLong) {
			t.Fatalf("%q, max %d: open = %v, without the limit %v", lc.data, max, gotErr, lc.wantErr)
		}
		return
	}
	if len(got) != len(lc.want) {
		t.Fatalf("%q, max %d: %d results, without the limit %d\ngot  %+v\nwant %+v", lc.data, max, len(got), len(lc.want), got, lc.want)
	}
	for i, w := range lc.want {
		g := got[i]
		if g.text == w.text {
			continue
		}
		if g.text != fmt.Sprintf("d.csv:%d%s", w.line, tooLong) || w.line == 0 || w.consumed <= int64(max) {
			t.Fatalf("%q, max %d: result %d is %q, without the limit %q (%d bytes)", lc.data, max, i, g.text, w.text, w.consumed)
		}
	}
}

// limitInputs are inputs that the framing of records must get right.
var limitInputs = []string{
	"a,b\n1,2\n3,4\n",
	"a,b\r\n\"x\r\ny\",2\r\n\r\n\r\n3,\"\"\"q\"\"\"\r\n",
	"a,b\n\"open\nstill,open\n",
	"a,b\n\"x\"y,1\n2,3\n\"p\"\r\r\n4,5\n",
	"a,b\nb\"ad,1\n\"\",\"\"\n\n\n\"x\"\n",
	"a,b\n1,2\r",
	"a¦b\n1¦\"2¦\xc2\"\xc2¦\n\"3\"¦\xc2\xc2¦4\n",
	"a,b\n1,caf\xe9\n\"2\n\xe9\",ok\n3,4",
	// Unquoted runs longer than plainRun's window, before a quoted
	// field with a line break and a quote in an unquoted field.
	"a,b\n" + strings.Repeat("x", 1300) + ",\"q\nq\"\n" + strings.Repeat("y,", 700) + "z\"w\n1,2\n",
}

// FuzzRecordLimit checks the framing of records against encoding/csv's
// on any input: see TestRecordLimitMatchesParser.
func FuzzRecordLimit(f *testing.F) {
	for _, in := range limitInputs {
		f.Add([]byte(in), uint8(3), false, false)
		f.Add([]byte(in), uint8(1), true, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, max uint8, lazy, wide bool) {
		cfg := CSVConfig{LazyQuotes: lazy}
		if wide {
			cfg.Delimiter = "¦"
		}
		newLimitCase(t, data, cfg, 1+int(max)%7).check(t, 1+int(max)%32)
	})
}

// TestRecordLimitMatchesParser checks the framing of records against
// encoding/csv's own: on inputs made of the bytes that matter (quotes,
// line breaks, delimiters, a two-byte delimiter's halves), read in chunks
// of every size, a record limit changes nothing but the records it cuts,
// and reading goes on with the same records on the same lines.
func TestRecordLimitMatchesParser(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", ",", ";", "\"", "\"", "\n", "\r\n", "\r", "¦", "\xc2", "\xa6", "\xe9"}
	var inputs []string
	inputs = append(inputs, limitInputs...)
	for range 150 {
		var b strings.Builder
		b.WriteString("a,b\n")
		for range rnd.IntN(60) {
			b.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		inputs = append(inputs, b.String())
	}
	for i, in := range inputs {
		for j, cfg := range []CSVConfig{{}, {LazyQuotes: true}, {Delimiter: "¦"}, {Delimiter: "¦", LazyQuotes: true}} {
			lc := newLimitCase(t, []byte(in), cfg, []int{1, 2, 5, 64 << 10}[(i+j)%4])
			for _, max := range []int{1, 4, 16} {
				lc.check(t, max)
			}
		}
	}
}

// TestInflateRatio checks the bound on a gzip object's decompressed bytes
// at its edge, with the floor lowered so that a small object meets it,
// and that the floor lets a small object through whatever its ratio.
func TestInflateRatio(t *testing.T) {
	var b strings.Builder
	b.WriteString("id,v\n")
	for range 20000 {
		b.WriteString("1,xxxxxxxxxxxxxxxx\n")
	}
	plain := b.String()
	gz := gzipBytes(t, []byte(plain))
	need := (len(plain) + len(gz) - 1) / len(gz) // the least ratio that lets it through
	if need <= 2 {
		t.Fatalf("%d bytes compress to %d: not a test", len(plain), len(gz))
	}
	for _, tc := range []struct {
		name  string
		ratio int
		floor int64
		size  int64 // the listed size
		ok    bool
	}{
		{"at the ratio", need, 0, int64(len(gz)), true},
		{"over the ratio", need - 1, 0, int64(len(gz)), false},
		{"over the ratio, size unknown", need - 1, 0, 0, false},
		{"over the ratio, under the floor", need - 1, int64(len(plain)), int64(len(gz)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Config{Location: "x", CSV: CSVConfig{MaxInflateRatio: tc.ratio}}.compile()
			if err != nil {
				t.Fatal(err)
			}
			set.inflateFloor = tc.floor
			obj := &pipeline.Object{Key: "d.csv.gz", Size: tc.size}
			r, err := newCSVReader(obj, io.NopCloser(strings.NewReader(string(gz))), set)
			if err != nil {
				t.Fatal(err)
			}
			res := readAll(t, r)
			if tc.ok {
				if res.fatal != nil || len(res.errs) != 0 || len(res.rows) != 20000 {
					t.Fatalf("%d rows, errs %v, fatal %v", len(res.rows), res.errs, res.fatal)
				}
				return
			}
			want := fmt.Sprintf("d.csv.gz: read: gzip: over %d times the object's %d bytes (source.csv.max_inflate_ratio)", tc.ratio, len(gz))
			if res.fatal == nil || !strings.HasPrefix(res.fatal.Error(), want) || len(res.rows) == 20000 {
				t.Fatalf("%d rows, fatal %v\nwant a file error starting %q", len(res.rows), res.fatal, want)
			}
		})
	}
}
