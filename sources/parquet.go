package sources

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/golang/snappy"
	"github.com/xitongsys/parquet-go/common"
	"github.com/xitongsys/parquet-go/layout"
	"github.com/xitongsys/parquet-go/parquet"
	"github.com/xitongsys/parquet-go/reader"
	"github.com/xitongsys/parquet-go/schema"
	"github.com/xitongsys/parquet-go/source"

	"convpipe/pipeline"
)

// Reading Parquet: parquet-go parses the footer and the schema (through
// parquetFile, its source.ParquetFile, over our own storage) and decodes
// the pages (layout.ReadPage, the call its column reader makes). Rows are
// assembled column-wise, one row group at a time: the row group's column
// chunks are fetched in one read and their page headers checked before
// parquet-go decodes them, so that corrupt sizes become errors instead of
// huge allocations. Memory is bounded by one row group's compressed size
// plus one decoded page per column.

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
	// bit-packed booleans), and the slots of its RLE/bit-packed runs,
	// padding included (see countLevel).
	maxPageValues = 1 << 23
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
	footer  *parquet.FileMetaData
	sh      *schema.SchemaHandler
	header  *pipeline.Header
	cols    []*pqColumn
	byPath  map[string]int

	group    int   // current row group, -1 before the first
	groupLen int64 // its rows
	inGroup  int64 // rows of it returned
	index    int64 // rows of the object returned
	vals     []string
	nulls    []bool
	err      error
}

// pqColumn is one leaf column and its reading state in the current row
// group.
type pqColumn struct {
	name string
	typ  valueType
	info pageInfo
	meta *parquet.ColumnMetaData
	tr   *thrift.TBufferedTransport
	dict *layout.Page
	// values are the current page's decoded values, nil for nulls.
	values []any
	pos    int
	read   int64 // values of the chunk decoded so far
	// stored marks the chunk's pages, in order, that are stored without
	// compression in a compressed chunk (a data page v2 may be), and page
	// counts the pages read.
	stored []bool
	page   int
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
	if _, err := checkThrift(footer); err != nil {
		return fmt.Errorf("corrupt Parquet footer: %w", err)
	}
	// parquet-go reads the footer again through the ParquetFile; serve it
	// from memory.
	pf := &parquetFile{ra: &tailReaderAt{ra: r.ra, off: r.size - int64(len(tail)), tail: tail}, size: r.size}
	pr, err := reader.NewParquetColumnReader(pf, 1)
	if err != nil {
		return fmt.Errorf("corrupt Parquet footer: %w", err)
	}
	r.footer, r.sh = pr.Footer, pr.SchemaHandler
	rleBooleans(r.sh)
	if err := r.readSchema(); err != nil {
		return err
	}
	var total int64
	for i, rg := range r.footer.GetRowGroups() {
		if rg.GetNumRows() < 0 {
			return fmt.Errorf("corrupt Parquet: row group %d has %d rows", i, rg.GetNumRows())
		}
		total += rg.GetNumRows()
	}
	if total != r.footer.GetNumRows() {
		return fmt.Errorf("corrupt Parquet: row groups hold %d rows, the footer says %d", total, r.footer.GetNumRows())
	}
	return nil
}

// readSchema builds the header from the file's schema: one column per
// leaf, nested names joined with ".". Repeated fields (lists, maps) have
// no single value per row and are refused.
func (r *parquetReader) readSchema() error {
	elems := r.footer.GetSchema()
	if err := checkSchemaTree(elems); err != nil {
		return fmt.Errorf("corrupt Parquet schema: %w", err)
	}
	leaves := 0
	for _, se := range elems[1:] {
		if se.GetNumChildren() == 0 {
			leaves++
		}
	}
	if leaves == 0 {
		return errors.New("no columns in the Parquet schema")
	}
	if len(r.sh.ValueColumns) != leaves {
		return errors.New("column names in the Parquet schema that parquet-go cannot tell apart")
	}
	names := make([]string, 0, leaves)
	r.byPath = make(map[string]int, leaves)
	for _, p := range r.sh.ValueColumns {
		idx, ok := r.sh.MapIndex[p]
		if !ok {
			return fmt.Errorf("corrupt Parquet schema: no element for column %q", p)
		}
		ex := common.StrToPath(r.sh.InPathToExPath[p])
		name := strings.Join(ex[1:], ".")
		if rl, err := r.sh.MaxRepetitionLevel(common.StrToPath(p)); err != nil || rl > 0 {
			return fmt.Errorf("column %q is repeated (a list or map): not supported", name)
		}
		se := r.sh.SchemaElements[idx]
		typ, err := resolveType(se)
		if err != nil {
			return fmt.Errorf("column %q: %w", name, err)
		}
		maxDL, err := r.sh.MaxDefinitionLevel(common.StrToPath(p))
		if err != nil {
			return fmt.Errorf("column %q: %w", name, err)
		}
		info := pageInfo{physical: se.GetType(), typeLen: se.GetTypeLength(), maxDL: maxDL}
		r.byPath[p] = len(r.cols)
		r.cols = append(r.cols, &pqColumn{name: name, typ: typ, info: info})
		names = append(names, name)
	}
	r.header = pipeline.NewHeader(names)
	if d := r.header.Duplicates(); len(d) > 0 {
		return fmt.Errorf("duplicate column names %s", quoteList(d))
	}
	return nil
}

// checkSchemaTree checks that the flattened schema's child counts form one
// tree that uses every element.
func checkSchemaTree(elems []*parquet.SchemaElement) error {
	if len(elems) == 0 {
		return errors.New("empty schema")
	}
	pos := 0
	var walk func(depth int) error
	walk = func(depth int) error {
		if pos >= len(elems) {
			return errors.New("child counts exceed the elements")
		}
		if depth > 100 {
			return errors.New("nested too deeply")
		}
		n := elems[pos].GetNumChildren()
		pos++
		if n < 0 || int(n) > len(elems)-pos {
			return fmt.Errorf("element %d claims %d children", pos-1, n)
		}
		for range n {
			if err := walk(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(0); err != nil {
		return err
	}
	if pos != len(elems) {
		return fmt.Errorf("%d elements outside the tree", len(elems)-pos)
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
			r.err = fmt.Errorf("%s: row %d: corrupt Parquet (decoder panicked: %v)", r.obj.Key, r.index+1, p)
			row, err = pipeline.Row{}, r.err
		}
	}()
	for r.inGroup >= r.groupLen {
		if r.group+1 >= len(r.footer.GetRowGroups()) {
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
		for c.pos >= len(c.values) {
			if err := r.nextPage(c); err != nil {
				return pipeline.Row{}, r.fail(fmt.Errorf("column %q: %w", c.name, err))
			}
		}
		v := c.values[c.pos]
		c.pos++
		if v == nil {
			nulls[i] = true
			continue
		}
		s, err := c.typ.render(v)
		switch {
		case errors.Is(err, errWrongType):
			return pipeline.Row{}, r.fail(fmt.Errorf("column %q: %w", c.name, err))
		case err != nil:
			if rowErr == nil {
				rowErr = &pipeline.RowError{Ref: pipeline.Ref{Object: r.obj.Key, Line: line}, Field: c.name, Err: err}
			}
		}
		vals[i] = s
	}
	r.inGroup++
	r.index++
	if rowErr != nil {
		return pipeline.Row{}, rowErr
	}
	return pipeline.Row{Object: r.obj, Line: line, Header: r.header, Values: vals, Nulls: nulls}, nil
}

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
// beyond its rows.
func (r *parquetReader) finishGroup() error {
	if r.group < 0 {
		return nil
	}
	for _, c := range r.cols {
		if c.pos < len(c.values) || c.read < c.meta.GetNumValues() {
			return fmt.Errorf("column %q holds more values than the row group's %d rows", c.name, r.groupLen)
		}
	}
	return nil
}

// loadGroup reads row group g's column chunks and checks their pages.
func (r *parquetReader) loadGroup(g int) error {
	if err := r.finishGroup(); err != nil {
		return err
	}
	r.group, r.inGroup = g, 0
	rg := r.footer.GetRowGroups()[g]
	r.groupLen = rg.GetNumRows()
	for _, c := range r.cols {
		c.meta, c.tr, c.dict, c.values, c.pos, c.read, c.stored, c.page = nil, nil, nil, nil, 0, 0, nil, 0
	}
	type span struct{ start, end int64 }
	spans := make([]span, len(r.cols))
	lo, hi := r.dataEnd, int64(0)
	root := r.sh.GetRootInName()
	for _, ch := range rg.GetColumns() {
		meta := ch.GetMetaData()
		if meta == nil {
			return errors.New("column chunk without metadata")
		}
		if ch.FilePath != nil {
			return fmt.Errorf("column chunk in another file (%s): not supported", ch.GetFilePath())
		}
		p := common.PathToStr(append([]string{root}, meta.GetPathInSchema()...))
		i, ok := r.byPath[p]
		if !ok {
			return fmt.Errorf("column chunk for unknown column %q", strings.ReplaceAll(p, common.PAR_GO_PATH_DELIMITER, "."))
		}
		c := r.cols[i]
		if c.meta != nil {
			return fmt.Errorf("column %q has two chunks", c.name)
		}
		start := meta.GetDataPageOffset()
		if d := meta.DictionaryPageOffset; d != nil && *d >= int64(len(parquetMagic)) && *d < start {
			start = *d
		}
		end := start + meta.GetTotalCompressedSize()
		if start < int64(len(parquetMagic)) || meta.GetTotalCompressedSize() <= 0 || end > r.dataEnd {
			return fmt.Errorf("column %q: chunk at %d..%d is outside the data (4..%d)", c.name, start, end, r.dataEnd)
		}
		if meta.GetNumValues() != r.groupLen {
			return fmt.Errorf("column %q: chunk holds %d values for %d rows", c.name, meta.GetNumValues(), r.groupLen)
		}
		c.meta = meta
		spans[i] = span{start, end}
		lo, hi = min(lo, start), max(hi, end)
	}
	for _, c := range r.cols {
		if c.meta == nil {
			return fmt.Errorf("column %q has no chunk", c.name)
		}
	}
	if hi-lo > maxRowGroupBytes {
		return fmt.Errorf("row group of %d bytes is over the limit of %d", hi-lo, maxRowGroupBytes)
	}
	buf := make([]byte, hi-lo)
	if err := readFull(r.ra, buf, lo); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	for i, c := range r.cols {
		chunk := buf[spans[i].start-lo : spans[i].end-lo]
		stored, err := checkChunk(chunk, c.meta, c.info)
		if err != nil {
			return fmt.Errorf("column %q: %w", c.name, err)
		}
		c.stored = stored
		c.tr = thrift.NewTBufferedTransport(&thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(chunk)}, 4096)
	}
	return nil
}

// checkChunk walks the page headers of one column chunk and checks what
// parquet-go will trust: page sizes within the chunk, value counts that
// add up to the chunk's, and sizes parquet-go can allocate. It returns
// which of the pages are stored uncompressed (see pqColumn.stored).
func checkChunk(chunk []byte, meta *parquet.ColumnMetaData, info pageInfo) ([]bool, error) {
	var stored []bool
	var values int64
	pos := 0
	for values < meta.GetNumValues() {
		if pos >= len(chunk) {
			return nil, fmt.Errorf("corrupt chunk: pages hold %d values, the metadata says %d", values, meta.GetNumValues())
		}
		hlen, err := checkThrift(chunk[pos:])
		if err != nil {
			return nil, fmt.Errorf("corrupt page header at byte %d: %w", pos, err)
		}
		mb := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(chunk[pos : pos+hlen])}
		h := parquet.NewPageHeader()
		if err := h.Read(context.Background(), thrift.NewTCompactProtocolConf(mb, &thrift.TConfiguration{})); err != nil {
			return nil, fmt.Errorf("corrupt page header at byte %d: %w", pos, err)
		}
		pos += hlen
		size := int(h.GetCompressedPageSize())
		if size < 0 || size > len(chunk)-pos || h.GetUncompressedPageSize() < 0 || h.GetUncompressedPageSize() > maxPageBytes {
			return nil, fmt.Errorf("corrupt page header at byte %d: page of %d bytes (%d uncompressed), %d bytes left",
				pos-hlen, size, h.GetUncompressedPageSize(), len(chunk)-pos)
		}
		data := chunk[pos : pos+size]
		var n int32
		switch h.GetType() {
		case parquet.PageType_DATA_PAGE:
			n = h.GetDataPageHeader().GetNumValues()
		case parquet.PageType_DATA_PAGE_V2:
			v2 := h.GetDataPageHeaderV2()
			n = v2.GetNumValues()
			levels := int64(v2.GetDefinitionLevelsByteLength()) + int64(v2.GetRepetitionLevelsByteLength())
			if v2.GetDefinitionLevelsByteLength() < 0 || v2.GetRepetitionLevelsByteLength() < 0 || levels > int64(size) {
				return nil, fmt.Errorf("corrupt page header at byte %d: levels of %d bytes in a %d-byte page", pos-hlen, levels, size)
			}
			data = data[levels:]
		case parquet.PageType_DICTIONARY_PAGE:
			if d := h.GetDictionaryPageHeader().GetNumValues(); d < 0 || d > maxPageValues {
				return nil, fmt.Errorf("corrupt dictionary page at byte %d: %d values", pos-hlen, d)
			}
		default:
			return nil, fmt.Errorf("page type %s at byte %d: not supported", h.GetType(), pos-hlen)
		}
		if n < 0 || int64(n) > meta.GetNumValues()-values {
			return nil, fmt.Errorf("corrupt page header at byte %d: %d values, %d expected", pos-hlen, n, meta.GetNumValues()-values)
		}
		if n > maxPageValues { // DuckDB writes a page per row group's column
			return nil, fmt.Errorf("page at byte %d: %d values is over the limit of %d values a page (write row groups of fewer rows)", pos-hlen, n, maxPageValues)
		}
		plain := pageStored(h)
		stored = append(stored, plain)
		codec := meta.GetCodec()
		if plain {
			codec = parquet.CompressionCodec_UNCOMPRESSED
		}
		if codec == parquet.CompressionCodec_SNAPPY && len(data) > 0 {
			if dl, err := snappy.DecodedLen(data); err != nil || dl > maxPageBytes {
				return nil, fmt.Errorf("corrupt page at byte %d: bad snappy data", pos-hlen)
			}
		}
		if err := checkPage(h, chunk[pos:pos+size], codec, info); err != nil {
			return nil, fmt.Errorf("corrupt page at byte %d: %w", pos-hlen, err)
		}
		values += int64(n)
		pos += size
	}
	return stored, nil
}

// pageStored reports whether the page h is stored uncompressed in a
// compressed chunk: a data page v2 may be (arrow-rs writes a page so when
// compression does not make it smaller).
func pageStored(h *parquet.PageHeader) bool {
	v2 := h.GetDataPageHeaderV2()
	return h.GetType() == parquet.PageType_DATA_PAGE_V2 && v2.IsSetIsCompressed() && !v2.GetIsCompressed()
}

// nextPage decodes c's next data page.
func (r *parquetReader) nextPage(c *pqColumn) error {
	for {
		if c.read >= c.meta.GetNumValues() {
			return fmt.Errorf("fewer values than the row group's %d rows", r.groupLen)
		}
		// parquet-go decompresses every page by the chunk's codec: a page
		// stored uncompressed is read with a copy of the metadata saying so.
		meta := c.meta
		if c.page < len(c.stored) && c.stored[c.page] {
			m := *c.meta
			m.Codec = parquet.CompressionCodec_UNCOMPRESSED
			meta = &m
		}
		c.page++
		page, n, _, err := layout.ReadPage(c.tr, r.sh, meta)
		if err != nil {
			return fmt.Errorf("corrupt page: %w", err)
		}
		if page.Header.GetType() == parquet.PageType_DICTIONARY_PAGE {
			c.dict = page
			continue
		}
		var enc parquet.Encoding
		if page.Header.GetType() == parquet.PageType_DATA_PAGE_V2 {
			enc = page.Header.GetDataPageHeaderV2().GetEncoding()
		} else {
			enc = page.Header.GetDataPageHeader().GetEncoding()
		}
		if enc == parquet.Encoding_PLAIN_DICTIONARY || enc == parquet.Encoding_RLE_DICTIONARY {
			if c.dict == nil {
				return errors.New("corrupt page: dictionary-encoded without a dictionary")
			}
			dictLen := int64(len(c.dict.DataTable.Values))
			for _, v := range page.DataTable.Values {
				if i, ok := v.(int64); v != nil && (!ok || i < 0 || i >= dictLen) {
					return errors.New("corrupt page: dictionary index out of range")
				}
			}
			page.Decode(c.dict)
		}
		if c.info.physical == parquet.Type_BOOLEAN && enc == parquet.Encoding_RLE {
			if err := boolsFromRLE(page.DataTable.Values); err != nil {
				return err
			}
		}
		if len(page.DataTable.Values) != int(n) {
			return fmt.Errorf("corrupt page: %d values decoded, %d in its header", len(page.DataTable.Values), n)
		}
		c.read += n
		c.values, c.pos = page.DataTable.Values, 0
		if n > 0 {
			return nil
		}
	}
}

// rleBooleans lets parquet-go read RLE-encoded booleans (arrow-rs and
// parquet-mr write them in data pages v2): it decodes RLE values with the
// column's type length as their bit width, which a BOOLEAN column does
// not set, so it is set to 1 here. Plain booleans do not use it.
func rleBooleans(sh *schema.SchemaHandler) {
	for _, se := range sh.SchemaElements {
		if se.Type != nil && *se.Type == parquet.Type_BOOLEAN && se.GetTypeLength() == 0 {
			se.TypeLength = new(int32(1))
		}
	}
}

// boolsFromRLE turns the 0s and 1s parquet-go decodes from RLE-encoded
// booleans into bools.
func boolsFromRLE(vals []any) error {
	for i, v := range vals {
		if v == nil {
			continue
		}
		switch v {
		case int64(0):
			vals[i] = false
		case int64(1):
			vals[i] = true
		default:
			return fmt.Errorf("corrupt page: RLE boolean %v", v)
		}
	}
	return nil
}

// Close releases the object; it may be called more than once.
// Position reports the share of the file's rows returned so far.
func (r *parquetReader) Position() float64 {
	if n := r.footer.GetNumRows(); n > 0 {
		return min(float64(r.index)/float64(n), 1)
	}
	return 0
}

func (r *parquetReader) Close() error {
	if r.err == nil {
		r.err = errors.New("reader is closed")
	}
	for _, c := range r.cols {
		c.tr, c.dict, c.values = nil, nil, nil
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

// parquetFile is parquet-go's source.ParquetFile over an io.ReaderAt of
// known size: a read-only cursor. Open returns a new cursor on the same
// bytes (parquet-go opens one per column); Write and Create fail.
type parquetFile struct {
	ra   io.ReaderAt
	size int64
	pos  int64
}

var _ source.ParquetFile = (*parquetFile)(nil)

// Read reads from the cursor's position.
func (f *parquetFile) Read(p []byte) (int, error) {
	if f.pos >= f.size {
		return 0, io.EOF
	}
	if rem := f.size - f.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := f.ra.ReadAt(p, f.pos)
	f.pos += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// Seek moves the cursor.
func (f *parquetFile) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.pos
	case io.SeekEnd:
		offset += f.size
	default:
		return f.pos, fmt.Errorf("parquet: seek: bad whence %d", whence)
	}
	if offset < 0 {
		return f.pos, fmt.Errorf("parquet: seek to %d, before the start", offset)
	}
	f.pos = offset
	return offset, nil
}

// Write fails: the file is read-only.
func (f *parquetFile) Write([]byte) (int, error) {
	return 0, errors.New("parquet: read-only file")
}

// Close does nothing: the reader closes the storage.
func (f *parquetFile) Close() error { return nil }

// Open returns a new cursor on the same bytes; name must be empty (the
// object itself).
func (f *parquetFile) Open(name string) (source.ParquetFile, error) {
	if name != "" {
		return nil, fmt.Errorf("parquet: open %q: column chunks in other files are not supported", name)
	}
	return &parquetFile{ra: f.ra, size: f.size}, nil
}

// Create fails: the file is read-only.
func (f *parquetFile) Create(string) (source.ParquetFile, error) {
	return nil, errors.New("parquet: read-only file")
}
