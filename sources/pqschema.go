package sources

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/klauspost/compress/snappy"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"

	"convpipe/pipeline"
)

// schemaNode is one element of a Parquet schema, with the repetition and
// definition levels of the values below it.
type schemaNode struct {
	se       *format.SchemaElement
	children []*schemaNode
	path     []string // names from the root (excluded)
	rep, def int
}

func (n *schemaNode) leaf() bool { return len(n.children) == 0 && n.se.Type.Valid }
func (n *schemaNode) repeated() bool {
	return n.se.RepetitionType.V == format.Repeated && n.se.RepetitionType.Valid
}

// isList reports whether n is annotated LIST (logical or converted type).
func (n *schemaNode) isList() bool {
	_, ok := n.se.LogicalType.Value.(*format.ListType)
	return ok || n.se.ConvertedType.Valid && n.se.ConvertedType.V == deprecated.List
}

// isMap reports whether n is annotated MAP.
func (n *schemaNode) isMap() bool {
	_, ok := n.se.LogicalType.Value.(*format.MapType)
	return ok || n.se.ConvertedType.Valid && (n.se.ConvertedType.V == deprecated.Map || n.se.ConvertedType.V == deprecated.MapKeyValue)
}

// buildSchemaTree checks that the flattened schema's child counts form one
// tree that uses every element, and builds it.
func buildSchemaTree(elems []format.SchemaElement) (*schemaNode, error) {
	if len(elems) == 0 {
		return nil, errors.New("empty schema")
	}
	pos := 0
	var walk func(parent *schemaNode, depth int) (*schemaNode, error)
	walk = func(parent *schemaNode, depth int) (*schemaNode, error) {
		if pos >= len(elems) {
			return nil, errors.New("child counts exceed the elements")
		}
		if depth > 100 {
			return nil, errors.New("nested too deeply")
		}
		n := &schemaNode{se: &elems[pos]}
		if parent != nil {
			n.path = append(slices.Clip(parent.path), n.se.Name)
			n.rep, n.def = parent.rep, parent.def
			switch {
			case !n.se.RepetitionType.Valid || n.se.RepetitionType.V == format.Required:
			case n.se.RepetitionType.V == format.Repeated:
				n.rep, n.def = n.rep+1, n.def+1
			default:
				n.def++
			}
		}
		count := n.se.NumChildren.V
		pos++
		if count < 0 || int(count) > len(elems)-pos {
			return nil, fmt.Errorf("element %d claims %d children", pos-1, count)
		}
		for range count {
			c, err := walk(n, depth+1)
			if err != nil {
				return nil, err
			}
			n.children = append(n.children, c)
		}
		if count == 0 && parent != nil && !n.se.Type.Valid {
			return nil, fmt.Errorf("element %q has neither children nor a type", joinPath(n.path))
		}
		return n, nil
	}
	root, err := walk(nil, 0)
	if err != nil {
		return nil, err
	}
	if pos != len(elems) {
		return nil, fmt.Errorf("%d elements outside the tree", len(elems)-pos)
	}
	return root, nil
}

func joinPath(p []string) string { return strings.Join(p, ".") }

func equalPath(a, b []string) bool { return slices.Equal(a, b) }

// readSchema builds the header from the file's schema: one column per
// leaf, nested names joined with ".", and one per list.
func (r *parquetReader) readSchema() error {
	root, err := buildSchemaTree(r.meta.Schema)
	if err != nil {
		return fmt.Errorf("corrupt Parquet schema: %w", err)
	}
	for _, c := range root.children {
		if err := r.addNode(c); err != nil {
			return err
		}
	}
	if len(r.leaves) == 0 {
		return errors.New("no columns in the Parquet schema")
	}
	names := make([]string, len(r.cols))
	for i, c := range r.cols {
		names[i] = c.name
	}
	r.header = pipeline.NewHeader(names)
	if d := r.header.Duplicates(); len(d) > 0 {
		return fmt.Errorf("duplicate column names %s", quoteList(d))
	}
	return nil
}

// addNode adds the columns of the schema node n: a leaf, a list, or the
// columns of a group's children.
func (r *parquetReader) addNode(n *schemaNode) error {
	name := joinPath(n.path)
	switch {
	case n.isMap():
		return fmt.Errorf("column %q is a map: not supported", name)
	case n.isList() && len(n.children) == 1 && n.children[0].repeated():
		return r.addList(n, n.children[0])
	case n.repeated():
		return r.addList(n, n)
	case n.leaf():
		l, err := newLeaf(n)
		if err != nil {
			return err
		}
		r.leaves = append(r.leaves, l)
		r.cols = append(r.cols, &pqColumn{name: name, leaf: l})
		return nil
	}
	for _, c := range n.children {
		if err := r.addNode(c); err != nil {
			return err
		}
	}
	return nil
}

func newLeaf(n *schemaNode) (*pqLeaf, error) {
	name := joinPath(n.path)
	typ, err := resolveType(n.se)
	if err != nil {
		return nil, fmt.Errorf("column %q: %w", name, err)
	}
	return &pqLeaf{name: name, path: n.path, typ: typ, maxRep: n.rep, maxDef: n.def}, nil
}

// addList adds the list column list, whose repeated node is rep: its
// element is found by the Parquet format's rules for lists, old writers'
// forms included.
func (r *parquetReader) addList(list, rep *schemaNode) error {
	name := joinPath(list.path)
	if rep.rep != 1 {
		return fmt.Errorf("column %q is a list inside a list: not supported", name)
	}
	elem := rep
	if list != rep && len(rep.children) == 1 && rep.se.Name != "array" && rep.se.Name != list.se.Name+"_tuple" {
		elem = rep.children[0]
	}
	l := &parquetList{repDef: rep.def, scalar: elem.leaf()}
	var walk func(n *schemaNode) error
	walk = func(n *schemaNode) error {
		if n != rep && (n.repeated() || n.isMap()) {
			return fmt.Errorf("column %q is a list inside a list: not supported", name)
		}
		if n.leaf() {
			leaf, err := newLeaf(n)
			if err != nil {
				return err
			}
			r.leaves = append(r.leaves, leaf)
			l.leaves = append(l.leaves, leaf)
			l.keys = append(l.keys, joinPath(n.path[len(elem.path):]))
			return nil
		}
		for _, c := range n.children {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(rep); err != nil {
		return err
	}
	if len(l.leaves) == 0 {
		return fmt.Errorf("column %q: a list without values", name)
	}
	l.vals = make([][]string, len(l.leaves))
	l.nulls = make([][]bool, len(l.leaves))
	r.cols = append(r.cols, &pqColumn{name: name, list: l})
	r.lists++
	return nil
}

// pqLeaf is one leaf column and its reading state in the current row
// group.
type pqLeaf struct {
	name           string
	path           []string
	typ            valueType
	maxRep, maxDef int

	pages *parquet.FilePages
	page  parquet.Page
	vr    parquet.ValueReader
	buf   []parquet.Value
	pos   int
	n     int
	// read counts the values taken of the chunk's chunkValues.
	read, chunkValues int64
	done              bool
	pageNo            int // pages of the chunk read, the dictionary's included

	// The render caches (see render).
	last     string
	lastNum  int64
	lastKind parquet.Kind
	lastOK   bool
	lastRaw  string // the bytes last rendered, for byte arrays
	interned map[string]string
	noIntern bool
}

// open starts reading a row group's chunk of chunkValues values.
func (l *pqLeaf) open(pages *parquet.FilePages, chunkValues int64) {
	l.release()
	l.pages, l.chunkValues, l.read, l.done, l.pageNo = pages, chunkValues, 0, false, 0
	if l.buf == nil {
		l.buf = make([]parquet.Value, valueBatch)
	}
}

// release returns the chunk's pages to parquet-go.
func (l *pqLeaf) release() {
	if l.page != nil {
		parquet.Release(l.page)
		l.page = nil
	}
	if l.pages != nil {
		l.pages.Close()
		l.pages = nil
	}
	l.vr, l.pos, l.n = nil, 0, 0
}

// peek returns the next value without taking it; io.EOF at the end of
// the chunk.
func (l *pqLeaf) peek() (*parquet.Value, error) {
	for l.pos >= l.n {
		if l.done || l.pages == nil {
			return nil, io.EOF
		}
		if l.vr != nil {
			n, err := l.vr.ReadValues(l.buf)
			l.pos, l.n = 0, n
			switch {
			case errors.Is(err, io.EOF):
				l.vr = nil
			case err != nil:
				return nil, fmt.Errorf("corrupt page %d: %w", l.pageNo, noEOF(err))
			}
			continue
		}
		if l.page != nil {
			parquet.Release(l.page)
			l.page = nil
		}
		page, err := l.pages.ReadPage()
		if err == io.EOF {
			l.done = true
			return nil, io.EOF
		}
		l.pageNo++
		if err != nil {
			return nil, fmt.Errorf("corrupt page %d: %w", l.pageNo, noEOF(err))
		}
		l.page, l.vr = page, page.Values()
	}
	return &l.buf[l.pos], nil
}

// take takes the value peek returned.
func (l *pqLeaf) take() {
	l.pos++
	l.read++
}

// render renders v; a value error is a *valueError. Exports repeat
// values (an order's lines share its id, time and store; a column has a
// few statuses): the last number rendered is kept, and byte arrays are
// interned up to maxInterned per column, so that a repeated value costs
// no allocation.
func (l *pqLeaf) render(v *parquet.Value) (string, error) {
	switch v.Kind() {
	case parquet.Int64, parquet.Int32:
		n := v.Int64()
		if v.Kind() == parquet.Int32 {
			n = int64(v.Int32())
		}
		if l.lastOK && l.lastKind == v.Kind() && l.lastNum == n {
			return l.last, nil
		}
		s, err := l.renderNew(v)
		if err == nil {
			l.last, l.lastNum, l.lastKind, l.lastOK = s, n, v.Kind(), true
		}
		return s, err
	case parquet.ByteArray, parquet.FixedLenByteArray:
		b := v.ByteArray()
		if l.lastOK && l.lastKind == v.Kind() && string(b) == l.lastRaw {
			return l.last, nil
		}
		s, ok := "", false
		if !l.noIntern {
			s, ok = l.interned[string(b)]
		}
		if !ok {
			var err error
			if s, err = l.renderNew(v); err != nil {
				return s, err
			}
			l.intern(b, s)
		}
		raw := s
		if l.typ.kind != kindString {
			raw = string(b)
		}
		l.last, l.lastRaw, l.lastKind, l.lastOK = s, raw, v.Kind(), true
		return s, nil
	}
	return l.renderNew(v)
}

// maxInterned bounds the byte-array values a column keeps rendered.
const maxInterned = 4096

// intern keeps s, rendered from b, for the next time; a column of many
// distinct values (ids, e-mails) stops interning when its map is full.
func (l *pqLeaf) intern(b []byte, s string) {
	if l.noIntern || len(b) > 64 {
		return
	}
	if len(l.interned) >= maxInterned {
		l.noIntern, l.interned = true, nil
		return
	}
	if l.interned == nil {
		l.interned = make(map[string]string)
	}
	l.interned[string(b)] = s
}

func (l *pqLeaf) renderNew(v *parquet.Value) (string, error) {
	s, err := l.typ.render(*v)
	if err != nil && !errors.Is(err, errWrongType) {
		return "", &valueError{err}
	}
	return s, err
}

// nextFlat returns the next row's value of a column that is not repeated.
func (l *pqLeaf) nextFlat() (string, bool, error) {
	v, err := l.peek()
	if err == io.EOF {
		return "", false, fmt.Errorf("fewer values than the row group's rows (%d)", l.read)
	}
	if err != nil {
		return "", false, err
	}
	if v.RepetitionLevel() != 0 {
		return "", false, fmt.Errorf("corrupt page: repetition level %d in a column that is not repeated", v.RepetitionLevel())
	}
	l.take()
	if v.IsNull() {
		return "", true, nil
	}
	s, err := l.render(v)
	return s, false, err
}

// maxListItems bounds the elements of one list value.
const maxListItems = 100_000

// parquetList is a list column: one value per row, a JSON array of the
// row's elements, each an object of the element's fields by name (nested
// names joined with ".") or, for a list of scalars, the value itself. A
// value is a JSON string rendered as a plain column's is, or null; a
// null list is a null value, an empty one "[]".
type parquetList struct {
	leaves []*pqLeaf
	keys   []string // each leaf's name in the element ("" for a scalar)
	repDef int      // the definition level of the repeated node
	scalar bool
	vals   [][]string // the current row's values, by leaf
	nulls  [][]bool
	out    []byte
}

// next returns the next row's value of the list.
func (c *parquetList) next() (string, bool, error) {
	state, count := -1, -1
	var rowErr error
	for k, l := range c.leaves {
		st, n, err := c.collect(k, l)
		var ve *valueError
		if errors.As(err, &ve) {
			if rowErr == nil {
				rowErr = ve
			}
		} else if err != nil {
			return "", false, fmt.Errorf("%s: %w", l.name, err)
		}
		if k > 0 && (st != state || n != count) {
			return "", false, fmt.Errorf("corrupt list: %q has %d elements, %q %d", c.leaves[0].name, count, l.name, n)
		}
		state, count = st, n
	}
	if rowErr != nil {
		return "", false, rowErr
	}
	if count > maxListItems {
		return "", false, &valueError{fmt.Errorf("list of %d elements is over the limit of %d", count, maxListItems)}
	}
	if state == 0 {
		return "", true, nil
	}
	return c.render(count), false, nil
}

// collect takes leaf k's values of the next row into c.vals[k]: state 0
// is a null list, 1 an empty one, 2 one with n elements.
func (c *parquetList) collect(k int, l *pqLeaf) (state, n int, err error) {
	vs, ns := c.vals[k][:0], c.nulls[k][:0]
	defer func() { c.vals[k], c.nulls[k] = vs, ns }()
	v, err := l.peek()
	if err == io.EOF {
		return 0, 0, errors.New("fewer values than the row group's rows")
	}
	if err != nil {
		return 0, 0, err
	}
	if v.RepetitionLevel() != 0 {
		return 0, 0, fmt.Errorf("corrupt page: a row starts at repetition level %d", v.RepetitionLevel())
	}
	if d := v.DefinitionLevel(); d < c.repDef {
		l.take()
		if d < c.repDef-1 {
			return 0, 0, nil
		}
		return 1, 0, nil
	}
	var rowErr error
	for first := true; ; first = false {
		v, err := l.peek()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, err
		}
		if !first && v.RepetitionLevel() == 0 {
			break
		}
		if v.DefinitionLevel() < c.repDef {
			return 0, 0, errors.New("corrupt page: an element that is not there")
		}
		s, null := "", v.IsNull()
		if !null {
			s, err = l.render(v)
			if err != nil && rowErr == nil {
				rowErr = err
			}
			if errors.Is(err, errWrongType) {
				return 0, 0, err
			}
		}
		l.take()
		if n++; n <= maxListItems {
			vs, ns = append(vs, s), append(ns, null)
		}
	}
	return 2, n, rowErr
}

// render writes the current row's n elements as a JSON array.
func (c *parquetList) render(n int) string {
	b := append(c.out[:0], '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if c.scalar {
			b = appendJSONValue(b, c.vals[0][i], c.nulls[0][i])
			continue
		}
		b = append(b, '{')
		for k := range c.leaves {
			if k > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, c.keys[k])
			b = append(b, ':')
			b = appendJSONValue(b, c.vals[k][i], c.nulls[k][i])
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	c.out = b
	return string(b)
}

func appendJSONValue(b []byte, s string, null bool) []byte {
	if null {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONString appends s as a JSON string (s is valid UTF-8 or
// binary as hex, as render makes it).
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '"' || ch == '\\':
			b = append(b, '\\', ch)
		case ch < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[ch>>4], hexDigits[ch&0xf])
		default:
			b = append(b, ch)
		}
	}
	return append(b, '"')
}

// checkChunk walks the page headers of one column chunk and checks what
// parquet-go will trust: page sizes within the chunk, value counts that
// add up to the chunk's, and sizes it can allocate (a page header, or a
// Snappy block, can claim gigabytes).
func checkChunk(chunk []byte, meta *format.ColumnMetaData) error {
	var proto thrift.CompactProtocol
	rd := proto.NewReaderFromBytes(nil)
	dec := thrift.NewDecoder(rd)
	var values int64
	pos := 0
	for values < meta.NumValues {
		if pos >= len(chunk) {
			return fmt.Errorf("corrupt chunk: pages hold %d values, the metadata says %d", values, meta.NumValues)
		}
		hlen, err := checkThrift(chunk[pos:])
		if err != nil {
			return fmt.Errorf("corrupt page header at byte %d: %w", pos, err)
		}
		var h format.PageHeader
		rd.ResetBytes(chunk[pos : pos+hlen])
		if err := dec.Decode(&h); err != nil {
			return fmt.Errorf("corrupt page header at byte %d: %w", pos, noEOF(err))
		}
		at := pos
		pos += hlen
		n, data, err := checkPageHeader(&h, chunk[pos:], meta.Codec)
		if err != nil {
			return fmt.Errorf("corrupt page header at byte %d: %w", at, err)
		}
		if n < 0 || int64(n) > meta.NumValues-values {
			return fmt.Errorf("corrupt page header at byte %d: %d values, %d expected", at, n, meta.NumValues-values)
		}
		if n > maxPageValues { // DuckDB writes a page per row group's column
			return fmt.Errorf("page at byte %d: %d values is over the limit of %d values a page (write row groups of fewer rows)", at, n, maxPageValues)
		}
		if data != nil {
			if dl, err := snappy.DecodedLen(data); err != nil || dl > maxPageBytes {
				return fmt.Errorf("corrupt page at byte %d: bad snappy data", at)
			}
		}
		values += int64(n)
		pos += int(h.CompressedPageSize)
	}
	return nil
}

// checkPageHeader checks one page header against the rest bytes of the
// chunk after it. It returns the values of the page and, when the page is
// Snappy-compressed, its compressed data.
func checkPageHeader(h *format.PageHeader, rest []byte, codec format.CompressionCodec) (int32, []byte, error) {
	size := int(h.CompressedPageSize)
	if size < 0 || size > len(rest) || h.UncompressedPageSize < 0 || h.UncompressedPageSize > maxPageBytes {
		return 0, nil, fmt.Errorf("page of %d bytes (%d uncompressed), %d bytes left", size, h.UncompressedPageSize, len(rest))
	}
	data := rest[:size]
	var n int32
	switch h.Type {
	case format.DataPage:
		if !h.DataPageHeader.Valid {
			return 0, nil, errors.New("data page without its header")
		}
		n = h.DataPageHeader.V.NumValues
	case format.DataPageV2:
		if !h.DataPageHeaderV2.Valid {
			return 0, nil, errors.New("data page v2 without its header")
		}
		v2 := &h.DataPageHeaderV2.V
		n = v2.NumValues
		levels := int64(v2.DefinitionLevelsByteLength) + int64(v2.RepetitionLevelsByteLength)
		if v2.DefinitionLevelsByteLength < 0 || v2.RepetitionLevelsByteLength < 0 || levels > int64(size) {
			return 0, nil, fmt.Errorf("levels of %d bytes in a %d-byte page", levels, size)
		}
		if v2.NumNulls < 0 || v2.NumNulls > n || v2.NumRows < 0 || v2.NumRows > n {
			return 0, nil, fmt.Errorf("%d values, %d nulls, %d rows", n, v2.NumNulls, v2.NumRows)
		}
		data = data[levels:]
		if v2.IsCompressed.Valid && !v2.IsCompressed.V {
			data = nil
		}
	case format.DictionaryPage:
		if !h.DictionaryPageHeader.Valid {
			return 0, nil, errors.New("dictionary page without its header")
		}
		if d := h.DictionaryPageHeader.V.NumValues; d < 0 || d > maxPageValues {
			return 0, nil, fmt.Errorf("dictionary of %d values", d)
		}
	default:
		return 0, nil, fmt.Errorf("page type %s: not supported", h.Type)
	}
	if codec != format.Snappy || len(data) == 0 {
		data = nil
	}
	return n, data, nil
}
