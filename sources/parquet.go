package sources

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"convpipe/pipeline"
)

// Reading Parquet: github.com/parquet-go/parquet-go parses the footer and
// decodes the pages; this file walks the schema, reads one row group at a
// time and assembles rows column-wise. A row group's column chunks are
// fetched in one read (one ranged GET on S3) and their page headers checked
// before parquet-go decodes them (checkChunk), so that a corrupt size is an
// error, not a huge allocation. Memory is bounded by one row group's
// compressed size plus one decoded page per column.
//
// A column is a leaf of the schema (nested names joined with "."), or a
// list (LIST<STRUCT<…>> or LIST<scalar>, as DuckDB, Spark, BigQuery and
// arrow write nested items): one value per row, the list as a JSON array
// (see parquetList).

const (
	// parquetTail is how much of the end of an object is read at first,
	// to find the footer in one request.
	parquetTail = 64 << 10
	// maxFooterBytes bounds the footer (the schema and row-group index).
	maxFooterBytes = 64 << 20
	// maxRowGroupBytes bounds one row group's compressed column chunks.
	maxRowGroupBytes = 1 << 30
	// maxPageBytes bounds one page, compressed or not.
	maxPageBytes = 256 << 20
	// maxPageValues bounds the values of one page (8M: a 1 MiB page of
	// bit-packed booleans).
	maxPageValues = 1 << 23
	// valueBatch is how many values of a column are decoded at a time.
	valueBatch = 256
)

var parquetMagic = []byte("PAR1")

// parquetReader reads the rows of one Parquet object.
type parquetReader struct {
	obj    *pipeline.Object
	ra     io.ReaderAt
	closer io.Closer
	size   int64
	// dataEnd is where the footer starts: column chunks lie before it.
	dataEnd int64
	file    *parquet.File
	meta    *format.FileMetaData
	header  *pipeline.Header
	leaves  []*pqLeaf   // the schema's leaves, in file order
	cols    []*pqColumn // the header's columns
	lists   int         // list columns among cols

	group    int   // current row group, -1 before the first
	groupLen int64 // its rows
	inGroup  int64 // rows of it returned
	index    int64 // rows of the object returned
	col      int   // the column being read, -1 between rows
	vals     []string
	nulls    []bool
	err      error
}

// pqColumn is one column of the header: a leaf, or a list of leaves.
type pqColumn struct {
	name string
	leaf *pqLeaf      // a plain column
	list *parquetList // a list column
}

// newParquetReader opens the Parquet object read through ra (size bytes)
// and reads its schema. It takes ra over when it succeeds.
func newParquetReader(obj *pipeline.Object, ra readerAtCloser, size int64) (_ *parquetReader, err error) {
	r := &parquetReader{obj: obj, ra: ra, closer: ra, size: size, group: -1}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: corrupt Parquet (decoder panicked: %v)", obj.Key, p)
		}
	}()
	if err := r.open(); err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Key, noEOF(err))
	}
	return r, nil
}

func (r *parquetReader) open() error {
	if r.size < int64(2*len(parquetMagic)+4) {
		return fmt.Errorf("not Parquet: %d bytes is too small", r.size)
	}
	head := make([]byte, 4)
	if _, err := r.ra.ReadAt(head, 0); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	tailLen := min(r.size, parquetTail)
	tail := make([]byte, tailLen)
	if err := readFull(r.ra, tail, r.size-tailLen); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if !bytes.Equal(head, parquetMagic) || !bytes.Equal(tail[tailLen-4:], parquetMagic) {
		return errors.New("not Parquet or truncated: no PAR1 magic at both ends")
	}
	footerLen := int64(binary.LittleEndian.Uint32(tail[tailLen-8:]))
	if footerLen > maxFooterBytes || footerLen+12 > r.size {
		return fmt.Errorf("corrupt Parquet: footer of %d bytes in a %d-byte object", footerLen, r.size)
	}
	r.dataEnd = r.size - 8 - footerLen
	if footerLen+8 > tailLen {
		tail = make([]byte, footerLen+8)
		if err := readFull(r.ra, tail, r.dataEnd); err != nil {
			return fmt.Errorf("read footer: %w", err)
		}
	}
	footer := tail[int64(len(tail))-8-footerLen : int64(len(tail))-8]
	// parquet-go's Thrift decoder allocates a list as long as its header
	// claims: checkThrift bounds every container by the bytes left first.
	if _, err := checkThrift(footer); err != nil {
		return fmt.Errorf("corrupt Parquet footer: %w", err)
	}
	// parquet-go reads the footer again through the reader: serve it from
	// memory. Page indexes and bloom filters are not needed.
	tra := &tailReaderAt{ra: r.ra, off: r.size - int64(len(tail)), tail: tail}
	f, err := parquet.OpenFile(tra, r.size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true),
		parquet.ReadBufferSize(64<<10))
	if err != nil {
		return fmt.Errorf("corrupt Parquet footer: %w", err)
	}
	r.file, r.meta = f, f.Metadata()
	if err := r.readSchema(); err != nil {
		return err
	}
	return r.checkRowGroups()
}

// checkRowGroups checks the row counts and that each row group has one
// chunk per leaf, in the schema's order.
func (r *parquetReader) checkRowGroups() error {
	var total int64
	for i, rg := range r.meta.RowGroups {
		if rg.NumRows < 0 {
			return fmt.Errorf("corrupt Parquet: row group %d has %d rows", i, rg.NumRows)
		}
		if len(rg.Columns) != len(r.leaves) {
			return fmt.Errorf("corrupt Parquet: row group %d has %d column chunks for %d columns", i, len(rg.Columns), len(r.leaves))
		}
		for j, ch := range rg.Columns {
			if ch.FilePath != "" {
				return fmt.Errorf("row group %d: column chunk in another file (%s): not supported", i, ch.FilePath)
			}
			if !equalPath(ch.MetaData.PathInSchema, r.leaves[j].path) {
				return fmt.Errorf("corrupt Parquet: row group %d: chunk %d is for %q, not %q", i, j,
					joinPath(ch.MetaData.PathInSchema), r.leaves[j].name)
			}
		}
		total += rg.NumRows
	}
	if total != r.meta.NumRows {
		return fmt.Errorf("corrupt Parquet: row groups hold %d rows, the footer says %d", total, r.meta.NumRows)
	}
	if n := len(r.file.RowGroups()); n != len(r.meta.RowGroups) {
		return fmt.Errorf("corrupt Parquet: %d row groups, parquet-go sees %d", len(r.meta.RowGroups), n)
	}
	return nil
}

// Header returns the columns of the file's schema.
func (r *parquetReader) Header() *pipeline.Header { return r.header }

// Next returns the next row. A value that cannot be rendered (invalid
// UTF-8 in a string, a date beyond year 9999) is a *pipeline.RowError
// naming its column; a corrupt page or a failed read ends the object.
func (r *parquetReader) Next() (row pipeline.Row, err error) {
	if r.err != nil {
		return pipeline.Row{}, r.err
	}
	defer func() {
		if p := recover(); p != nil {
			col := ""
			if r.col >= 0 && r.col < len(r.cols) {
				col = fmt.Sprintf("column %q: ", r.cols[r.col].name)
			}
			r.err = fmt.Errorf("%s: row group %d: %srow %d: corrupt Parquet (decoder panicked: %v)", r.obj.Key, r.group, col, r.index+1, p)
			row, err = pipeline.Row{}, r.err
		}
	}()
	r.col = -1
	for r.inGroup >= r.groupLen {
		if r.group+1 >= len(r.meta.RowGroups) {
			if err := r.finishGroup(); err != nil {
				return pipeline.Row{}, r.fail(err)
			}
			r.err = io.EOF
			return pipeline.Row{}, io.EOF
		}
		if err := r.loadGroup(r.group + 1); err != nil {
			return pipeline.Row{}, r.fail(err)
		}
	}
	n := len(r.cols)
	if len(r.vals) < n {
		r.vals = make([]string, n*slabRows)
		r.nulls = make([]bool, n*slabRows)
	}
	vals, nulls := r.vals[:n:n], r.nulls[:n:n]
	r.vals, r.nulls = r.vals[n:], r.nulls[n:]
	var rowErr *pipeline.RowError
	line := r.index + 1
	for i, c := range r.cols {
		r.col = i
		var s string
		var null bool
		var err error
		if c.list != nil {
			s, null, err = c.list.next()
		} else {
			s, null, err = c.leaf.nextFlat()
		}
		if err != nil {
			var ve *valueError
			if !errors.As(err, &ve) {
				return pipeline.Row{}, r.fail(fmt.Errorf("column %q: %w", c.name, err))
			}
			if rowErr == nil {
				rowErr = &pipeline.RowError{Ref: pipeline.Ref{Object: r.obj.Key, Line: line}, Field: c.name, Err: ve.err}
			}
		}
		vals[i], nulls[i] = s, null
	}
	r.col = -1
	r.inGroup++
	r.index++
	if rowErr != nil {
		return pipeline.Row{}, rowErr
	}
	return pipeline.Row{Object: r.obj, Line: line, Header: r.header, Values: vals, Nulls: nulls}, nil
}

// valueError is a problem with one value (invalid UTF-8, a date out of
// range, a list too long): an error of its row, not of the object.
type valueError struct{ err error }

func (e *valueError) Error() string { return e.err.Error() }

func (r *parquetReader) fail(err error) error {
	r.err = fmt.Errorf("%s: row group %d: %w", r.obj.Key, r.group, noEOF(err))
	return r.err
}

// noEOF keeps a decoder's io.EOF from passing for the end of the object:
// it flattens errors that wrap io.EOF into plain text.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%v (unexpected end of data)", err)
	}
	return err
}

// finishGroup checks that the current row group's columns hold no values
// beyond its rows, and releases its pages.
func (r *parquetReader) finishGroup() error {
	if r.group < 0 {
		return nil
	}
	for _, l := range r.leaves {
		if _, err := l.peek(); err != io.EOF {
			if err == nil {
				err = fmt.Errorf("holds more values than the row group's %d rows", r.groupLen)
			}
			return fmt.Errorf("column %q: %w", l.name, err)
		}
		if l.read != l.chunkValues {
			return fmt.Errorf("column %q: %d values, the chunk's metadata says %d", l.name, l.read, l.chunkValues)
		}
		l.release()
	}
	return nil
}

// loadGroup reads row group g's column chunks, checks their pages and
// opens them for reading.
func (r *parquetReader) loadGroup(g int) error {
	if err := r.finishGroup(); err != nil {
		return err
	}
	r.group, r.inGroup = g, 0
	rg := &r.meta.RowGroups[g]
	r.groupLen = rg.NumRows
	type span struct{ start, end int64 }
	spans := make([]span, len(r.leaves))
	lo, hi := r.dataEnd, int64(0)
	for i, l := range r.leaves {
		meta := &rg.Columns[i].MetaData
		start := meta.DataPageOffset
		if d := meta.DictionaryPageOffset; d >= int64(len(parquetMagic)) && d < start {
			start = d
		}
		end := start + meta.TotalCompressedSize
		if start < int64(len(parquetMagic)) || meta.TotalCompressedSize <= 0 || end > r.dataEnd {
			return fmt.Errorf("column %q: chunk at %d..%d is outside the data (4..%d)", l.name, start, end, r.dataEnd)
		}
		if meta.NumValues < 0 || l.maxRep == 0 && meta.NumValues != r.groupLen {
			return fmt.Errorf("column %q: chunk holds %d values for %d rows", l.name, meta.NumValues, r.groupLen)
		}
		spans[i] = span{start, end}
		lo, hi = min(lo, start), max(hi, end)
	}
	if hi-lo > maxRowGroupBytes {
		return fmt.Errorf("row group of %d bytes is over the limit of %d", hi-lo, maxRowGroupBytes)
	}
	buf := make([]byte, hi-lo)
	if err := readFull(r.ra, buf, lo); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	mem := &memReaderAt{off: lo, b: buf}
	chunks := r.file.RowGroups()[g].ColumnChunks()
	for i, l := range r.leaves {
		meta := &rg.Columns[i].MetaData
		if err := checkChunk(buf[spans[i].start-lo:spans[i].end-lo], meta); err != nil {
			return fmt.Errorf("column %q: %w", l.name, err)
		}
		fc, ok := chunks[i].(*parquet.FileColumnChunk)
		if !ok {
			return fmt.Errorf("column %q: no file chunk", l.name)
		}
		l.open(fc.PagesFrom(mem), meta.NumValues)
	}
	return nil
}

// Position reports the share of the file's rows returned so far.
func (r *parquetReader) Position() float64 {
	if n := r.meta.NumRows; n > 0 {
		return min(float64(r.index)/float64(n), 1)
	}
	return 0
}

// Close releases the object; it may be called more than once.
func (r *parquetReader) Close() error {
	if r.err == nil {
		r.err = errors.New("reader is closed")
	}
	for _, l := range r.leaves {
		l.release()
	}
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// readFull reads len(p) bytes at off.
func readFull(ra io.ReaderAt, p []byte, off int64) error {
	n, err := ra.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// tailReaderAt serves reads of an object's end from memory.
type tailReaderAt struct {
	ra   io.ReaderAt
	off  int64
	tail []byte
}

func (t *tailReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= t.off {
		if off-t.off >= int64(len(t.tail)) {
			return 0, io.EOF
		}
		n := copy(p, t.tail[off-t.off:])
		if n < len(p) {
			return n, io.EOF
		}
		return n, nil
	}
	return t.ra.ReadAt(p, off)
}

// memReaderAt serves the bytes of one row group, read at off, from
// memory; a read outside them is an error.
type memReaderAt struct {
	off int64
	b   []byte
}

func (m *memReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off < m.off || off > m.off+int64(len(m.b)) {
		return 0, fmt.Errorf("corrupt Parquet: read at %d outside the row group (%d..%d)", off, m.off, m.off+int64(len(m.b)))
	}
	n := copy(p, m.b[off-m.off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
