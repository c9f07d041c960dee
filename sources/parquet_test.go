package sources

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go/deprecated"

	"convpipe/pipeline"
)

// allTypes has a column of every common Parquet type.
type allTypes struct {
	Str    *string  `parquet:"str,optional"`
	Dict   string   `parquet:"dict,dict"`
	JSON   string   `parquet:"json,json"`
	Bin    []byte   `parquet:"bin"`
	I32    *int32   `parquet:"i32,optional"`
	I64    int64    `parquet:"i64"`
	U32    uint32   `parquet:"u32"`
	U64    uint64   `parquet:"u64"`
	I8     int8     `parquet:"i8"`
	Dec32  int32    `parquet:"dec32,decimal(2:9)"`
	Dec64  *int64   `parquet:"dec64,decimal(4:18),optional"`
	DecFix [12]byte `parquet:"decfix,decimal(3:27)"`
	DecBig [13]byte `parquet:"decbig,decimal(2:30)"`
	F32    float32  `parquet:"f32"`
	F64    *float64 `parquet:"f64,optional"`
	Bool   *bool    `parquet:"bool,optional"`
	Date   int32    `parquet:"date,date"`
	TimeMs int32    `parquet:"time_ms,time(millisecond)"`
	TimeUs int64    `parquet:"time_us,time(microsecond)"`
	// ts_ms and ts_local are not adjusted to UTC: wall times.
	TsMs    int64            `parquet:"ts_ms,timestamp(millisecond:local)"`
	TsUs    *int64           `parquet:"ts_us,timestamp(microsecond:utc),optional"`
	TsNs    int64            `parquet:"ts_ns,timestamp(nanosecond:utc)"`
	TsLocal int64            `parquet:"ts_local,timestamp(microsecond:local)"`
	I96     deprecated.Int96 `parquet:"i96"`
	UUID    [16]byte         `parquet:"uuid,uuid"`
	Addr    struct {
		City *string `parquet:"city,optional"`
	} `parquet:"addr"`
}

func ptr[T any](v T) *T { return &v }

// int96 encodes t as a legacy INT96 timestamp: nanoseconds of the day
// in the first two words, the Julian day in the third.
func int96(t time.Time) deprecated.Int96 {
	t = t.UTC()
	day := t.Truncate(24 * time.Hour)
	ns := uint64(t.Sub(day))
	return deprecated.Int96{uint32(ns), uint32(ns >> 32), uint32(day.Unix()/86400 + julianUnixEpoch)}
}

// fixed is b right-aligned in n bytes, sign-extended.
func fixed(n int, b string) []byte {
	fill := byte(0)
	if len(b) > 0 && b[0]&0x80 != 0 {
		fill = 0xff
	}
	s := bytes.Repeat([]byte{fill}, n)
	copy(s[n-len(b):], b)
	return s
}

var allTypesHeader = []string{"str", "dict", "json", "bin", "i32", "i64", "u32", "u64", "i8", "dec32", "dec64",
	"decfix", "decbig", "f32", "f64", "bool", "date", "time_ms", "time_us", "ts_ms", "ts_us", "ts_ns", "ts_local",
	"i96", "uuid", "addr.city"}

func allTypesRows() ([]allTypes, []string) {
	ts := time.Date(2026, 11, 22, 10, 15, 30, 123456789, time.UTC)
	full := allTypes{
		Str: ptr("Zoë"), Dict: "red", JSON: `{"a":1}`, Bin: []byte("plain text"), I32: ptr(int32(-42)), I64: 1 << 40,
		U32: math.MaxUint32, U64: math.MaxUint64, I8: -8, Dec32: -1250, Dec64: ptr(int64(5)), DecFix: [12]byte(fixed(12, "\x01\xe2\x40")),
		DecBig: [13]byte(fixed(13, "\xff\x85")), F32: 1.5, F64: ptr(0.1), Bool: ptr(true),
		Date: int32(ts.Unix() / 86400), TimeMs: int32((10*3600 + 15*60 + 30) * 1000), TimeUs: (10*3600+15*60+30)*1e6 + 250,
		TsMs: ts.UnixMilli(), TsUs: ptr(ts.UnixMicro()), TsNs: ts.UnixNano(), TsLocal: ts.Truncate(time.Second).UnixMicro(),
		I96: int96(ts), UUID: [16]byte(fixed(16, "\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34\x56\x78\x9a\xbc\xde\xf0")),
	}
	full.Addr.City = ptr("Köln")
	nulls := allTypes{
		Dict: "blue", JSON: "[]", Bin: []byte("\xff\x00"), I64: -1, DecFix: [12]byte(fixed(12, "\xff")),
		DecBig: [13]byte(fixed(13, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")), Date: -1, TsMs: 0, TsNs: 0, I96: int96(time.Unix(0, 0)),
	}
	want := []string{
		`["Zoë","red","{\"a\":1}","plain text","-42","1099511627776","4294967295","18446744073709551615","-8","-12.50","0.0005",` +
			`"123.456","-1.23","1.5","0.1","true","2026-11-22","10:15:30","10:15:30.00025","2026-11-22T10:15:30.123",` +
			`"2026-11-22T10:15:30.123456Z","2026-11-22T10:15:30.123456789Z","2026-11-22T10:15:30",` +
			`"2026-11-22T10:15:30.123456789Z","12345678-9abc-def0-1234-56789abcdef0","Köln"]`,
		`["","blue","[]","ff00","","-1","0","0","0","0.00","","-0.001","47223664828696452136.96","0","","","1969-12-31",` +
			`"00:00:00","00:00:00","1970-01-01T00:00:00","","1970-01-01T00:00:00Z","1970-01-01T00:00:00",` +
			`"1970-01-01T00:00:00Z","00000000-0000-0000-0000-000000000000",""] nulls: [0 4 10 14 15 20 25]`,
	}
	return []allTypes{full, nulls}, want
}

func TestParquetTypes(t *testing.T) {
	rows, want := allTypesRows()
	p := filepath.Join(t.TempDir(), "types.parquet")
	writeFile(t, p, parquetBytes(t, rows, 0))
	src := newSource(t, Config{Location: p})
	objs, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(t.Context(), objs[0])
	got := transcript(r, err)
	wantText := fmt.Sprintf("header: %s\n1 %s\n2 %s\nEOF\n", jsonList(allTypesHeader), want[0], want[1])
	if got != wantText {
		t.Errorf("got\n%s\nwant\n%s", got, wantText)
	}
}

func jsonList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return "[" + strings.Join(q, ",") + "]"
}

// wide is a plain order line, for multi-row-group files.
type wide struct {
	ID    int64   `parquet:"id"`
	Order string  `parquet:"order_id,dict"`
	Note  *string `parquet:"note,optional"`
	Price int64   `parquet:"price,decimal(2:12)"`
}

func wideRows(n int) []wide {
	rows := make([]wide, n)
	for i := range rows {
		rows[i] = wide{ID: int64(i), Order: fmt.Sprintf("O%d", i/3), Price: int64(i * 101)}
		if i%5 != 0 {
			rows[i].Note = ptr(fmt.Sprintf("note %d", i))
		}
	}
	return rows
}

func TestParquetRowGroups(t *testing.T) {
	for _, groupRows := range []int{0, 1, 7, 1000} {
		t.Run(fmt.Sprint(groupRows), func(t *testing.T) {
			const n = 2500
			p := filepath.Join(t.TempDir(), "wide.parquet")
			writeFile(t, p, parquetBytes(t, wideRows(n), groupRows))
			src := newSource(t, Config{Location: p})
			objs, err := src.Objects(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			r, err := src.Open(t.Context(), objs[0])
			if err != nil {
				t.Fatal(err)
			}
			if pr := r.(*parquetReader); groupRows > 0 && len(pr.meta.RowGroups) != (n+groupRows-1)/groupRows {
				t.Fatalf("%d row groups, want %d", len(pr.meta.RowGroups), (n+groupRows-1)/groupRows)
			}
			res := readAll(t, r)
			if res.fatal != nil || len(res.errs) > 0 || len(res.rows) != n {
				t.Fatalf("rows %d, errs %v, fatal %v", len(res.rows), res.errs, res.fatal)
			}
			for i, row := range res.rows {
				wantNote, wantNull := fmt.Sprintf("note %d", i), false
				if i%5 == 0 {
					wantNote, wantNull = "", true
				}
				want := []string{fmt.Sprint(i), fmt.Sprintf("O%d", i/3), wantNote, fmt.Sprintf("%d.%02d", i*101/100, i*101%100)}
				if row.Line != int64(i+1) || strings.Join(row.Values, "|") != strings.Join(want, "|") ||
					row.IsNull("note") != wantNull || row.IsNull("id") || row.Object.Key != p {
					t.Fatalf("row %d: line %d %q nulls %v, want %q", i, row.Line, row.Values, row.Nulls, want)
				}
			}
		})
	}
}

// TestParquetLists reads lists of scalars, as a LIST and as a bare
// repeated field, as JSON arrays (an empty one is "[]"; the corpus has
// null lists), and refuses a map and a list inside a list naming their
// columns.
func TestParquetLists(t *testing.T) {
	type withList struct {
		ID   int64    `parquet:"id"`
		Tags []string `parquet:"tags,list"`
		Bare []int32  `parquet:"bare"`
	}
	p := filepath.Join(t.TempDir(), "list.parquet")
	writeFile(t, p, parquetBytes(t, []withList{
		{ID: 1, Tags: []string{"a", `b "q"`}, Bare: []int32{3, 4}},
		{ID: 2},
	}, 0))
	src := newSource(t, Config{Location: p})
	r, err := src.Open(t.Context(), pipeline.Object{Key: p})
	got := transcript(r, err)
	want := `header: ["id","tags","bare"]
1 ["1","[\"a\",\"b \\\"q\\\"\"]","[\"3\",\"4\"]"]
2 ["2","[]","[]"]
EOF
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	type withMap struct {
		ID    int64             `parquet:"id"`
		Attrs map[string]string `parquet:"attrs"`
	}
	p = filepath.Join(t.TempDir(), "map.parquet")
	writeFile(t, p, parquetBytes(t, []withMap{{ID: 1, Attrs: map[string]string{"a": "b"}}}, 0))
	src = newSource(t, Config{Location: p})
	_, err = src.Open(t.Context(), pipeline.Object{Key: p})
	if err == nil || !strings.Contains(err.Error(), `column "attrs" is a map: not supported`) {
		t.Fatalf("Open = %v, want a map error", err)
	}

	type inner struct {
		Tags []string `parquet:"tags,list"`
	}
	type withNested struct {
		ID    int64   `parquet:"id"`
		Items []inner `parquet:"items,list"`
	}
	p = filepath.Join(t.TempDir(), "nested.parquet")
	writeFile(t, p, parquetBytes(t, []withNested{{ID: 1, Items: []inner{{Tags: []string{"a"}}}}}, 0))
	src = newSource(t, Config{Location: p})
	_, err = src.Open(t.Context(), pipeline.Object{Key: p})
	if err == nil || !strings.Contains(err.Error(), `column "items" is a list inside a list: not supported`) {
		t.Fatalf("Open = %v, want a list-inside-a-list error", err)
	}
}

// TestParquetPosition follows Position (the share of the file's rows
// returned, for progress) through a file of several row groups: 0 before
// the first row, the rows' share after each, 1 at the end.
func TestParquetPosition(t *testing.T) {
	const n = 1000
	p := filepath.Join(t.TempDir(), "wide.parquet")
	writeFile(t, p, parquetBytes(t, wideRows(n), 300))
	src := newSource(t, Config{Location: p})
	r, err := src.Open(t.Context(), pipeline.Object{Key: p})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pos := r.(pipeline.Positioner)
	if got := pos.Position(); got != 0 {
		t.Fatalf("Position before reading = %v", got)
	}
	for i := 1; i <= n; i++ {
		if _, err := r.Next(); err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		if got, want := pos.Position(), float64(i)/n; got != want {
			t.Fatalf("Position after %d rows = %v, want %v", i, got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last row: %v", err)
	}
	if got := pos.Position(); got != 1 {
		t.Fatalf("Position at the end = %v", got)
	}
}
