package sources

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"convpipe/pipeline"
)

var update = flag.Bool("update", false, "rewrite the golden files and the generated inputs under testdata")

// parquetBytes writes rows as a Parquet file with parquet-go's writer
// (Snappy, pages of about 4 KiB), starting a new row group every
// groupRows rows (0: one row group).
func parquetBytes[T any](tb testing.TB, rows []T, groupRows int) []byte {
	tb.Helper()
	return parquetBytesPaged(tb, rows, groupRows, 4<<10)
}

// parquetBytesPaged is parquetBytes with pages of about pageSize bytes.
func parquetBytesPaged[T any](tb testing.TB, rows []T, groupRows int, pageSize int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, parquet.Compression(&parquet.Snappy), parquet.PageBufferSize(pageSize))
	step := len(rows)
	if groupRows > 0 {
		step = groupRows
	}
	for start := 0; start < len(rows); start += step {
		if _, err := w.Write(rows[start:min(start+step, len(rows))]); err != nil {
			tb.Fatalf("parquet write: %v", err)
		}
		if err := w.Flush(); err != nil {
			tb.Fatalf("parquet flush: %v", err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatalf("parquet close: %v", err)
	}
	return buf.Bytes()
}

func gzipBytes(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(tb testing.TB, p string, b []byte) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// newSource builds a Source, failing the test on error.
func newSource(tb testing.TB, cfg Config) *Source {
	tb.Helper()
	s, err := New(tb.Context(), cfg)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return s
}

// result is everything a reader produced.
type result struct {
	header []string
	rows   []pipeline.Row
	errs   []*pipeline.RowError
	fatal  error
}

// readAll reads r to its end (at most limit calls of Next) and closes it.
func readAll(tb testing.TB, r pipeline.RowReader) result {
	tb.Helper()
	defer r.Close()
	res := result{header: r.Header().Names()}
	for range 10_000_000 {
		row, err := r.Next()
		var re *pipeline.RowError
		switch {
		case err == nil:
			if len(row.Values) != r.Header().Len() {
				tb.Fatalf("%s: %d values for %d columns", row.Ref(), len(row.Values), r.Header().Len())
			}
			res.rows = append(res.rows, row)
		case errors.Is(err, io.EOF):
			return res
		case errors.As(err, &re):
			res.errs = append(res.errs, re)
		default:
			res.fatal = err
			return res
		}
	}
	tb.Fatal("reader does not end")
	return res
}

// transcript renders what a reader produced, one line per event, for
// golden files: "header: [...]", "<line> [values]" (with "nulls: [...]"
// for nulls), "<line> error: ...", "file error: ...".
func transcript(r pipeline.RowReader, openErr error) string {
	var sb strings.Builder
	if openErr != nil {
		fmt.Fprintf(&sb, "file error: %v\n", openErr)
		return sb.String()
	}
	defer r.Close()
	h, _ := json.Marshal(append([]string{}, r.Header().Names()...))
	fmt.Fprintf(&sb, "header: %s\n", h)
	for range 1_000_000 {
		row, err := r.Next()
		var re *pipeline.RowError
		switch {
		case err == nil:
			v, _ := json.Marshal(row.Values)
			fmt.Fprintf(&sb, "%d %s", row.Line, v)
			var nulls []int
			for i, n := range row.Nulls {
				if n {
					nulls = append(nulls, i)
				}
			}
			if len(nulls) > 0 {
				fmt.Fprintf(&sb, " nulls: %v", nulls)
			}
			sb.WriteByte('\n')
		case errors.Is(err, io.EOF):
			sb.WriteString("EOF\n")
			return sb.String()
		case errors.As(err, &re):
			fmt.Fprintf(&sb, "%d error: %v\n", re.Line, re)
		default:
			fmt.Fprintf(&sb, "file error: %v\n", err)
			return sb.String()
		}
	}
	return sb.String() + "(no end)\n"
}
