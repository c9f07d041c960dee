package sources

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"convpipe/pipeline"
)

const (
	// csvBufferSize is the read buffer of a CSV stream.
	csvBufferSize = 64 << 10
	// sniffSize is how much of a CSV object is checked for binary data.
	sniffSize = 8000
	// slabRows is how many rows' worth of value slices a CSV reader
	// allocates at once.
	slabRows = 64
)

// csvReader reads the rows of one CSV object with encoding/csv.
type csvReader struct {
	obj      *pipeline.Object
	src      io.Closer
	gz       *gzip.Reader
	r        *csv.Reader
	header   *pipeline.Header
	names    []string
	maxField int
	// setComma is the configured delimiter, 0 when it is detected.
	setComma rune
	slab     []string
	// lim stands between the stream and the parser and bounds each
	// record's bytes.
	lim *recordLimit
	// scan checks the stream's UTF-8 ahead of the CSV parser, so that
	// records before the first invalid byte need no check of their own.
	scan *utf8Scan
	// bom is the length of the byte order mark dropped before the parser.
	bom int64
	// in counts the object's bytes read from storage (compressed, for gzip).
	in *countReader
	// transcoded is set when the text is decoded from another encoding.
	transcoded bool
	// err, once set, is returned by every later Next: io.EOF or a file
	// error.
	err error
}

// newCSVReader reads the header of the CSV stream src. It takes src over:
// Close closes it. Gzip data is recognised by its magic number, a UTF-8
// byte order mark is dropped, the stream is decoded as source.csv.encoding
// or a byte order mark says, the delimiter is the configured one or the
// one the header line shows, and data that looks binary (a NUL byte in
// the first 8,000 decoded bytes) is a file error. Repeated column names are a file
// error, except empty ones (from trailing delimiters), which no mapping
// can name anyway. The parser is handed at most source.csv.max_record_bytes
// of any record (a recordLimit stands in front of it), and gzip data may
// inflate to source.csv.max_inflate_ratio times its size (an
// inflateLimit), so that the memory a reader takes is bounded whatever the
// input.
func newCSVReader(obj *pipeline.Object, src io.ReadCloser, set *settings) (*csvReader, error) {
	c := &csvReader{obj: obj, src: src, maxField: set.maxField, setComma: set.comma}
	compressed := &countReader{r: src}
	c.in = compressed
	raw := bufio.NewReaderSize(compressed, csvBufferSize)
	if magic, _ := raw.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", obj.Key, err)
		}
		c.gz = gz
		inflated := &inflateLimit{r: gz, in: compressed, size: obj.Size, ratio: set.inflateRatio, floor: set.inflateFloor}
		raw = bufio.NewReaderSize(inflated, csvBufferSize)
	}
	text := decoded(raw, set.encoding)
	c.transcoded = text != io.Reader(raw)
	c.scan = &utf8Scan{r: text, bad: -1}
	br := bufio.NewReaderSize(c.scan, csvBufferSize)
	// A read error here comes back, after the rows before it, from Next.
	head, _ := br.Peek(sniffSize)
	if bytes.HasPrefix(head, bomUTF8) {
		br.Discard(len(bomUTF8))
		c.bom = int64(len(bomUTF8))
		head = head[len(bomUTF8):]
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		c.closeStreams()
		return nil, binaryError(obj.Key, head, i)
	}
	comma := set.comma
	if comma == 0 {
		comma = sniffDelimiter(head)
	}

	c.lim = newRecordLimit(br, set, comma)
	r := csv.NewReader(bufio.NewReaderSize(c.lim, csvBufferSize))
	r.Comma = comma
	r.LazyQuotes = set.cfg.CSV.LazyQuotes
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	c.r = r
	if err := c.readHeader(); err != nil {
		c.closeStreams()
		return nil, err
	}
	return c, nil
}

// Position reports how much of the object the parser has taken, as a
// fraction of its listed size: the parser's offset in plain UTF-8 CSV;
// the bytes read from storage (a little ahead of the parser) in gzip
// data or text in another encoding, whose offsets are not the file's.
func (c *csvReader) Position() float64 {
	if c.obj.Size <= 0 {
		return 0
	}
	n := c.in.n
	if c.gz == nil && !c.transcoded && c.r != nil {
		n = c.r.InputOffset() + c.bom
	}
	return min(float64(n)/float64(c.obj.Size), 1)
}

// readHeader reads the first record as the header.
func (c *csvReader) readHeader() error {
	key := c.obj.Key
	rec, err := c.r.Read()
	if cut := c.lim.takeCut(c.r.InputOffset()); cut != nil {
		return fmt.Errorf("%s:%d: header: %w", key, cut.line, cut.err)
	}
	switch {
	case errors.Is(err, io.EOF):
		c.header = pipeline.NewHeader(nil)
		c.err = io.EOF
		return nil
	case err != nil:
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fmt.Errorf("%s:%d: header: %w", key, pe.StartLine, parseProblem(pe))
		}
		return fmt.Errorf("%s: read header: %w", key, err)
	}
	for i, n := range rec {
		if !utf8.ValidString(n) {
			return fmt.Errorf("%s:1: header: column %d: %s", key, i+1, notUTF8(n, ""))
		}
	}
	if len(rec) == 1 && c.setComma != 0 {
		if err := oneColumnHint(rec[0], c.setComma); err != nil {
			return fmt.Errorf("%s:1: header: %w", key, err)
		}
	}
	c.header = pipeline.NewHeader(rec) // copies rec
	if d := slices.DeleteFunc(c.header.Duplicates(), func(n string) bool { return n == "" }); len(d) > 0 {
		return fmt.Errorf("%s:1: header: duplicate column names %s", key, quoteList(d))
	}
	c.names = c.header.Names()
	return nil
}

// Header returns the object's columns; an empty file has none.
func (c *csvReader) Header() *pipeline.Header { return c.header }

// Next returns the next record. A record whose field count differs from
// the header's, that has a quote error, invalid UTF-8, a value over the
// size limit or more bytes than the record limit is a *pipeline.RowError;
// so is a last record cut short inside a quoted value, even with
// LazyQuotes (a last record without a line break that has all its fields
// is a row). A read error (a truncated gzip stream, a failed download, a
// gzip stream that inflates too much) ends the object.
func (c *csvReader) Next() (pipeline.Row, error) {
	if c.err != nil {
		return pipeline.Row{}, c.err
	}
	rec, err := c.r.Read()
	if cut := c.lim.takeCut(c.r.InputOffset()); cut != nil {
		return pipeline.Row{}, &pipeline.RowError{Ref: c.ref(cut.line), Err: cut.err}
	}
	if err != nil {
		return pipeline.Row{}, c.readError(err)
	}
	pos, _ := c.r.FieldPos(0)
	line := int64(pos) + c.lim.shift
	if c.lim.openQuote && c.r.InputOffset() == c.lim.given {
		return pipeline.Row{}, c.cutShort(rec, line)
	}
	if len(rec) != len(c.names) {
		return pipeline.Row{}, &pipeline.RowError{Ref: c.ref(line),
			Err: fmt.Errorf("%d fields, the header has %d", len(rec), len(c.names))}
	}
	// The stream's offset of the record's end: what the parser consumed,
	// with the bytes dropped before it.
	end := c.r.InputOffset() + c.bom + c.lim.dropped
	checkUTF8 := c.scan.bad >= 0 && end > c.scan.bad
	for i, v := range rec {
		if len(v) > c.maxField {
			return pipeline.Row{}, &pipeline.RowError{Ref: c.ref(line), Field: c.names[i],
				Err: fmt.Errorf("value of %d bytes is over the limit of %d (source.csv.max_field_bytes)", len(v), c.maxField)}
		}
		if checkUTF8 && !utf8.ValidString(v) {
			return pipeline.Row{}, &pipeline.RowError{Ref: c.ref(line), Field: c.names[i],
				Err: errors.New(notUTF8(v, " of the value"))}
		}
	}
	n := len(rec)
	if len(c.slab) < n {
		c.slab = make([]string, n*slabRows)
	}
	vals := c.slab[:n:n]
	c.slab = c.slab[n:]
	copy(vals, rec)
	return pipeline.Row{Object: c.obj, Line: line, Header: c.header, Values: vals}, nil
}

// cutShort is the error of rec, the last record, when the file ends inside
// its last value, a quoted one: encoding/csv returns that value as it is
// with LazyQuotes (without, it reports a quote error), but the file was
// cut short, most likely, and the value with it.
func (c *csvReader) cutShort(rec []string, line int64) error {
	field := ""
	if n := len(rec); n > 0 && n <= len(c.names) {
		field = c.names[n-1]
	}
	return &pipeline.RowError{Ref: c.ref(line), Field: field, Err: errors.New("the file ends inside this quoted value (is it cut short?)")}
}

// readError turns an error of the parser into Next's: a *pipeline.RowError
// for a quote error, else io.EOF or a file error, which it keeps.
func (c *csvReader) readError(err error) error {
	var pe *csv.ParseError
	switch {
	case errors.Is(err, io.EOF):
		c.err = io.EOF
	case errors.As(err, &pe):
		// Lines as the file numbers them, with those dropped from cut
		// records.
		at := *pe
		at.StartLine += int(c.lim.shift)
		at.Line += int(c.lim.shift)
		return &pipeline.RowError{Ref: c.ref(int64(at.StartLine)), Err: parseProblem(&at)}
	default:
		c.err = fmt.Errorf("%s: read: %w", c.obj.Key, err)
	}
	return c.err
}

// Close releases the streams; it may be called more than once.
func (c *csvReader) Close() error {
	if c.err == nil {
		c.err = errors.New("reader is closed")
	}
	return c.closeStreams()
}

func (c *csvReader) closeStreams() error {
	if c.src == nil {
		return nil
	}
	if c.gz != nil {
		c.gz.Close()
	}
	err := c.src.Close()
	c.src = nil
	return err
}

func (c *csvReader) ref(line int64) pipeline.Ref {
	return pipeline.Ref{Object: c.obj.Key, Line: line}
}

// parseProblem describes a quote error, with its position when that is
// not where the record starts.
func parseProblem(pe *csv.ParseError) error {
	if pe.Line != pe.StartLine {
		return fmt.Errorf("%w (at line %d, column %d; an unbalanced quote runs to the next quote or the end of the file)", pe.Err, pe.Line, pe.Column)
	}
	return fmt.Errorf("%w (column %d)", pe.Err, pe.Column)
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// invalidAt returns the offset of the first invalid UTF-8 byte in s. Error
// messages give it instead of the value, which may be personal data.
func invalidAt(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return len(s)
}

// utf8Scan passes a stream through and records the offset of its first
// byte that is not valid UTF-8 (-1 while there is none). Its first error
// is returned by every later Read.
type utf8Scan struct {
	r   io.Reader
	err error
	off int64 // bytes passed through
	bad int64
	// carry holds the start of a rune cut by the end of the last read.
	carry []byte
}

func (s *utf8Scan) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.r.Read(p)
	if s.bad < 0 {
		s.check(p[:n], err != nil)
	}
	s.off += int64(n)
	s.err = err
	return n, err
}

// check validates b, which follows the bytes passed so far; end says no
// more bytes follow.
func (s *utf8Scan) check(b []byte, end bool) {
	start := s.off // offset of b[0]
	if len(s.carry) > 0 {
		k := min(len(b), utf8.UTFMax-len(s.carry))
		tmp := append(s.carry[:len(s.carry):len(s.carry)], b[:k]...)
		if !utf8.FullRune(tmp) {
			if end {
				s.bad = start - int64(len(s.carry))
			}
			s.carry = tmp
			return
		}
		r, size := utf8.DecodeRune(tmp)
		if r == utf8.RuneError && size <= 1 {
			s.bad = start - int64(len(s.carry))
			return
		}
		used := size - len(s.carry)
		s.carry = s.carry[:0]
		b, start = b[used:], start+int64(used)
	}
	// Leave out a rune cut at the end; it is checked with the next read.
	cut := len(b)
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				cut = i
			}
			break
		}
	}
	if !utf8.Valid(b[:cut]) {
		s.bad = start + int64(invalidAt(string(b[:cut])))
		return
	}
	if cut < len(b) {
		if end {
			s.bad = start + int64(cut)
			return
		}
		s.carry = append(s.carry[:0], b[cut:]...)
	}
}
