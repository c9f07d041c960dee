package sources

import (
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// TestCheckChunk checks what checkChunk refuses before parquet-go reads
// a page: more values than the chunk has left (the file is corrupt), more
// than maxPageValues (a real writer can do it: DuckDB writes one page per
// row group's column, and it is said as a limit, not as corruption),
// sizes beyond the chunk or the page limit, and a Snappy block that
// claims gigabytes.
func TestCheckChunk(t *testing.T) {
	page := func(h format.PageHeader, body []byte) []byte {
		b, err := thrift.Marshal(new(thrift.CompactProtocol), &h)
		if err != nil {
			t.Fatal(err)
		}
		return append(b, body...)
	}
	data := func(n int32, size int32) format.PageHeader {
		h := format.PageHeader{Type: format.DataPage, CompressedPageSize: size, UncompressedPageSize: size}
		h.DataPageHeader.Valid = true
		h.DataPageHeader.V = format.DataPageHeader{NumValues: n, Encoding: format.Plain}
		return h
	}
	huge := data(1, 8)
	huge.UncompressedPageSize = 1 << 30
	for _, tc := range []struct {
		name   string
		chunk  []byte
		values int64
		codec  format.CompressionCodec
		err    string
	}{
		{"valid", page(data(2, 4), []byte{1, 2, 3, 4}), 2, format.Uncompressed, ""},
		{"more than the chunk", page(data(10, 0), nil), 5, format.Uncompressed, "corrupt page header at byte 0: 10 values, 5 expected"},
		{"over the limit", page(data(maxPageValues+1, 0), nil), maxPageValues + 1, format.Uncompressed,
			"page at byte 0: 8388609 values is over the limit of 8388608 values a page"},
		{"page beyond the chunk", page(data(1, 100), []byte{1}), 1, format.Uncompressed, "page of 100 bytes (100 uncompressed), 1 bytes left"},
		{"page over the size limit", page(huge, make([]byte, 8)), 1, format.Uncompressed, "(1073741824 uncompressed)"},
		// A Snappy block starts with its length: 0xffffffff, 4 GiB.
		{"snappy claims 4 GiB", page(data(1, 5), []byte{0xff, 0xff, 0xff, 0xff, 0x0f}), 1, format.Snappy, "bad snappy data"},
		{"pages missing", page(data(1, 0), nil), 3, format.Uncompressed, "pages hold 1 values, the metadata says 3"},
		{"not a header", []byte{0xff, 0xff, 0xff}, 1, format.Uncompressed, "corrupt page header at byte 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkChunk(tc.chunk, &format.ColumnMetaData{NumValues: tc.values, Codec: tc.codec})
			if tc.err == "" {
				if err != nil {
					t.Fatalf("checkChunk = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("checkChunk = %v, want %q", err, tc.err)
			}
		})
	}
}
