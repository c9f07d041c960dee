package sources

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/xitongsys/parquet-go/parquet"
)

// levelRun appends an RLE/bit-packed hybrid run header h to b.
func levelRun(b []byte, h uint64) []byte { return binary.AppendUvarint(b, h) }

// bitPacked is a bit-packed run of groups groups of 8 width-bit values,
// holding vals and zeros after them (the padding).
func bitPacked(width, groups int, vals ...uint64) []byte {
	b := levelRun(nil, uint64(groups)<<1|1)
	packed := make([]byte, groups*width)
	for i, v := range vals {
		for k := range width {
			if v>>k&1 == 1 {
				bit := i*width + k
				packed[bit/8] |= 1 << (bit % 8)
			}
		}
	}
	return append(b, packed...)
}

// rle is an RLE run of count copies of the one-byte value v.
func rle(count uint64, v byte) []byte { return append(levelRun(nil, count<<1), v) }

func ones(n int) []uint64 {
	v := make([]uint64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// TestCountLevel checks the walk of RLE/bit-packed hybrid levels: padding
// in the last bit-packed run is legal however long (DuckDB pads to 256
// values), the slots of all runs are limited by one budget per page
// (maxPageValues, whatever the headers ask for), a bit-packed run's bytes
// must be there, and the values counted are the first n only.
func TestCountLevel(t *testing.T) {
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name   string
		b      []byte
		width  int
		n      int
		target uint64
		want   int
		err    string
	}{
		{name: "exact", b: bitPacked(1, 1, 1, 0, 1, 1, 0, 1, 1, 1), width: 1, n: 8, target: 1, want: 6},
		{name: "padded to 8", b: bitPacked(1, 1, 1, 1, 1), width: 1, n: 3, target: 1, want: 3},
		// DuckDB 1.5: the last run of a page of 46 values is a run of 256.
		{name: "padded to 256", b: bitPacked(1, 32, ones(46)...), width: 1, n: 46, target: 1, want: 46},
		{name: "padding not counted", b: bitPacked(1, 32, ones(256)...), width: 1, n: 46, target: 1, want: 46},
		{name: "rle then padded", b: cat(rle(4000, 1), bitPacked(2, 32, ones(96)...)), width: 2, n: 4096, target: 1, want: 4096},
		{name: "dictionary indices padded", b: bitPacked(5, 32, 3, 3, 7), width: 5, n: 3, target: 3, want: 2},
		{name: "width 0 padded", b: cat(levelRun(nil, 32<<1|1)), width: 0, n: 3, target: 0, want: 3},
		{name: "rle run", b: rle(10, 1), width: 1, n: 10, target: 1, want: 10},
		{name: "too few", b: rle(9, 1), width: 1, n: 10, err: "9 values where 10 are expected"},
		{name: "bit-packed bytes missing", b: bitPacked(1, 32)[:20], width: 1, n: 46, err: "page data ends early"},
		// A header asking for gigabytes of values: over the page's budget.
		{name: "rle asks for 2^40", b: rle(1<<40, 1), width: 1, n: 10, err: "over the page's budget"},
		{name: "width 0 asks for 2^40", b: levelRun(nil, 1<<38|1), width: 0, n: 3, err: "over the page's budget"},
		{name: "budget is cumulative", b: cat(rle(maxPageValues/2, 0), rle(maxPageValues/2, 0), rle(8, 0)), width: 1, n: 10, err: "over the page's budget"},
		{name: "within the budget", b: cat(rle(maxPageValues/2, 0), rle(maxPageValues/2, 0)), width: 1, n: 10, target: 0, want: 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := countLevel(tc.b, tc.width, tc.n, tc.target)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("countLevel = %d, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("countLevel = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

// TestCheckChunkPageValues checks the values a page header may claim: no
// more than the chunk has left (else the file is corrupt), and no more
// than maxPageValues, which a real writer can pass (DuckDB writes one page
// per row group's column) and which is then said as a limit, not as
// corruption.
func TestCheckChunkPageValues(t *testing.T) {
	header := func(n int32) []byte {
		h := parquet.NewPageHeader()
		h.Type = parquet.PageType_DATA_PAGE
		h.DataPageHeader = &parquet.DataPageHeader{NumValues: n, Encoding: parquet.Encoding_PLAIN}
		var buf thrift.TMemoryBuffer
		buf.Buffer = new(bytes.Buffer)
		if err := h.Write(t.Context(), thrift.NewTCompactProtocolConf(&buf, &thrift.TConfiguration{})); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	info := pageInfo{physical: parquet.Type_INT64}
	for _, tc := range []struct {
		name        string
		n, chunkLen int32
		err         string
	}{
		{"more than the chunk", 10, 5, "corrupt page header at byte 0: 10 values, 5 expected"},
		{"over the limit", maxPageValues + 1, maxPageValues + 1, "page at byte 0: 8388609 values is over the limit of 8388608 values a page"},
	} {
		meta := &parquet.ColumnMetaData{NumValues: int64(tc.chunkLen), Codec: parquet.CompressionCodec_UNCOMPRESSED}
		_, err := checkChunk(header(tc.n), meta, info)
		if err == nil || !strings.HasPrefix(err.Error(), tc.err) {
			t.Errorf("%s: checkChunk = %v, want %q", tc.name, err, tc.err)
		}
	}
}
