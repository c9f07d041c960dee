package sources

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// allTypes has a column of every common Parquet type.
type allTypes struct {
	Str    *string  `parquet:"name=str, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	Dict   string   `parquet:"name=dict, type=BYTE_ARRAY, convertedtype=UTF8, encoding=PLAIN_DICTIONARY"`
	JSON   string   `parquet:"name=json, type=BYTE_ARRAY, convertedtype=JSON"`
	Bin    string   `parquet:"name=bin, type=BYTE_ARRAY"`
	I32    *int32   `parquet:"name=i32, type=INT32, repetitiontype=OPTIONAL"`
	I64    int64    `parquet:"name=i64, type=INT64"`
	U32    int32    `parquet:"name=u32, type=INT32, convertedtype=UINT_32"`
	U64    int64    `parquet:"name=u64, type=INT64, convertedtype=UINT_64"`
	I8     int32    `parquet:"name=i8, type=INT32, convertedtype=INT_8"`
	Dec32  int32    `parquet:"name=dec32, type=INT32, convertedtype=DECIMAL, scale=2, precision=9"`
	Dec64  *int64   `parquet:"name=dec64, type=INT64, convertedtype=DECIMAL, scale=4, precision=18, repetitiontype=OPTIONAL"`
	DecFix string   `parquet:"name=decfix, type=FIXED_LEN_BYTE_ARRAY, length=12, convertedtype=DECIMAL, scale=3, precision=27"`
	DecBin string   `parquet:"name=decbin, type=BYTE_ARRAY, convertedtype=DECIMAL, scale=2, precision=30"`
	F32    float32  `parquet:"name=f32, type=FLOAT"`
	F64    *float64 `parquet:"name=f64, type=DOUBLE, repetitiontype=OPTIONAL"`
	Bool   *bool    `parquet:"name=bool, type=BOOLEAN, repetitiontype=OPTIONAL"`
	Date   int32    `parquet:"name=date, type=INT32, convertedtype=DATE"`
	TimeMs int32    `parquet:"name=time_ms, type=INT32, convertedtype=TIME_MILLIS"`
	TimeUs int64    `parquet:"name=time_us, type=INT64, convertedtype=TIME_MICROS"`
	// The writer marks ts_ms not adjusted to UTC (its default): a wall time.
	TsMs    int64  `parquet:"name=ts_ms, type=INT64, convertedtype=TIMESTAMP_MILLIS"`
	TsUs    *int64 `parquet:"name=ts_us, type=INT64, convertedtype=TIMESTAMP_MICROS, isadjustedtoutc=true, repetitiontype=OPTIONAL"`
	TsNs    int64  `parquet:"name=ts_ns, type=INT64, logicaltype=TIMESTAMP, logicaltype.isadjustedtoutc=true, logicaltype.unit=NANOS"`
	TsLocal int64  `parquet:"name=ts_local, type=INT64, logicaltype=TIMESTAMP, logicaltype.isadjustedtoutc=false, logicaltype.unit=MICROS"`
	I96     string `parquet:"name=i96, type=INT96"`
	UUID    string `parquet:"name=uuid, type=FIXED_LEN_BYTE_ARRAY, length=16, logicaltype=UUID"`
	Addr    struct {
		City *string `parquet:"name=city, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	} `parquet:"name=addr"`
}

func ptr[T any](v T) *T { return &v }

// int96 encodes t as a legacy INT96 timestamp.
func int96(t time.Time) string {
	t = t.UTC()
	day := t.Truncate(24 * time.Hour)
	b := make([]byte, 12)
	binary.LittleEndian.PutUint64(b, uint64(t.Sub(day)))
	binary.LittleEndian.PutUint32(b[8:], uint32(day.Unix()/86400+julianUnixEpoch))
	return string(b)
}

var allTypesHeader = []string{"str", "dict", "json", "bin", "i32", "i64", "u32", "u64", "i8", "dec32", "dec64",
	"decfix", "decbin", "f32", "f64", "bool", "date", "time_ms", "time_us", "ts_ms", "ts_us", "ts_ns", "ts_local",
	"i96", "uuid", "addr.city"}

func allTypesRows() ([]allTypes, []string) {
	ts := time.Date(2026, 11, 22, 10, 15, 30, 123456789, time.UTC)
	full := allTypes{
		Str: ptr("Zoë"), Dict: "red", JSON: `{"a":1}`, Bin: "plain text", I32: ptr(int32(-42)), I64: 1 << 40,
		U32: -1, U64: -1, I8: -8, Dec32: -1250, Dec64: ptr(int64(5)), DecFix: "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\xe2\x40",
		DecBin: "\xff\x85", F32: 1.5, F64: ptr(0.1), Bool: ptr(true),
		Date: int32(ts.Unix() / 86400), TimeMs: int32((10*3600 + 15*60 + 30) * 1000), TimeUs: (10*3600+15*60+30)*1e6 + 250,
		TsMs: ts.UnixMilli(), TsUs: ptr(ts.UnixMicro()), TsNs: ts.UnixNano(), TsLocal: ts.Truncate(time.Second).UnixMicro(),
		I96: int96(ts), UUID: "\x12\x34\x56\x78\x9a\xbc\xde\xf0\x12\x34\x56\x78\x9a\xbc\xde\xf0",
	}
	full.Addr.City = ptr("Köln")
	nulls := allTypes{
		Dict: "blue", JSON: "[]", Bin: "\xff\x00", I64: -1, DecFix: "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
		DecBin: "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00", Date: -1, TsMs: 0, TsNs: 0, I96: int96(time.Unix(0, 0)),
		UUID: strings.Repeat("\x00", 16),
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
	ID    int64   `parquet:"name=id, type=INT64"`
	Order string  `parquet:"name=order_id, type=BYTE_ARRAY, convertedtype=UTF8, encoding=PLAIN_DICTIONARY"`
	Note  *string `parquet:"name=note, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=OPTIONAL"`
	Price int64   `parquet:"name=price, type=INT64, convertedtype=DECIMAL, scale=2, precision=12"`
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
			if pr := r.(*parquetReader); groupRows > 0 && len(pr.footer.RowGroups) != (n+groupRows-1)/groupRows {
				t.Fatalf("%d row groups, want %d", len(pr.footer.RowGroups), (n+groupRows-1)/groupRows)
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

func TestParquetRefusesRepeatedColumns(t *testing.T) {
	type withList struct {
		ID   int64    `parquet:"name=id, type=INT64"`
		Tags []string `parquet:"name=tags, type=BYTE_ARRAY, convertedtype=UTF8, repetitiontype=REPEATED"`
	}
	p := filepath.Join(t.TempDir(), "list.parquet")
	writeFile(t, p, parquetBytes(t, []withList{{ID: 1, Tags: []string{"a", "b"}}}, 0))
	src := newSource(t, Config{Location: p})
	_, err := src.Open(t.Context(), pipeline.Object{Key: p})
	if err == nil || !strings.Contains(err.Error(), `column "tags" is repeated`) {
		t.Fatalf("Open = %v, want a repeated-column error", err)
	}
}
