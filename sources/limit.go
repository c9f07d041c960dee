package sources

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
)

// encoding/csv holds a whole record (and, while reading it, its longest
// line twice over) in memory before returning it, however long it is. A
// recordLimit stands between the stream and the parser and hands the
// parser at most the limit's bytes of any record: it frames the stream
// into records as encoding/csv does (quoted fields span line breaks, a
// parse error ends the record at the end of its line) and cuts a record
// that grows over the limit. The parser then receives an error in place
// of the rest, and the limiter drops the bytes up to the end of the
// record, without holding them, so that reading goes on with the next
// record.

// frameState is where the framing of a CSV stream stands.
type frameState uint8

const (
	stField    frameState = iota // at the start of a field (of a record when size is 0)
	stUnquoted                   // in a field that does not start with a quote
	stQuoted                     // in a quoted field
	stQuote                      // after a quote in a quoted field: its end or the first of ""
	stQuoteCR                    // after a quote and a carriage return
	stBad                        // after a parse error: the rest of the line belongs to the record
)

// errRecordTooLong is what the parser receives in place of the rest of a
// record over the limit; Next reports the record with it.
type errRecordTooLong struct{ max int64 }

func (e *errRecordTooLong) Error() string {
	return fmt.Sprintf("record of more than %s (source.csv.max_record_bytes)", byteSize(e.max))
}

// byteSize renders n as "1 MiB", "64 KiB" or "1000 bytes".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// recordCut is a record that was cut: where its bytes handed to the parser
// end, and the line on which it starts.
type recordCut struct {
	at   int64
	line int64
	err  error
}

// recordLimit passes a CSV stream to encoding/csv with every record cut
// at max bytes. It is an io.Reader for the parser's bufio.Reader.
type recordLimit struct {
	src   *bufio.Reader
	max   int64
	lazy  bool
	delim []byte

	st   frameState
	dm   int   // bytes of a multi-byte delimiter matched so far
	size int64 // bytes of the current record so far, its last line break not counted
	line int64 // line of the next byte, from 1
	// start is the line on which the current record starts.
	start int64

	// skip is set while the rest of a cut record is being dropped; nl
	// counts the line breaks dropped.
	skip bool
	nl   int64
	// shift is how many lines the parser has not seen, as it counts them,
	// before the records it reads now.
	shift int64
	// given and dropped count the bytes handed to the parser and those
	// dropped.
	given, dropped int64
	// cut is the last record cut, until Next has reported it.
	cut *recordCut
	// openQuote is set when the stream ended inside a quoted field that
	// was not cut: the last record is cut short.
	openQuote bool
	err       error // of the stream, io.EOF at its end
	// special marks the bytes that span stops at outside quotes: a quote,
	// a line break, a multi-byte delimiter's first byte.
	special [256]bool
}

// newRecordLimit returns the limit of set over src, whose delimiter is
// comma.
func newRecordLimit(src *bufio.Reader, set *settings, comma rune) *recordLimit {
	l := &recordLimit{src: src, max: int64(set.maxRecord), lazy: set.cfg.CSV.LazyQuotes,
		delim: []byte(string(comma)), line: 1, start: 1}
	l.special['\n'], l.special['"'] = true, true
	if len(l.delim) > 1 {
		l.special[l.delim[0]] = true
	}
	return l
}

// Read hands p as many bytes as the stream has buffered, up to the end of
// the buffer or a cut; at a cut it returns errRecordTooLong with the bytes
// before it.
func (l *recordLimit) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if l.err != nil {
			break
		}
		if l.src.Buffered() == 0 {
			if n > 0 {
				break // hand over what there is rather than wait
			}
			if _, err := l.src.Peek(1); err != nil {
				l.end(err)
				break
			}
		}
		buf, _ := l.src.Peek(l.src.Buffered())
		if l.skip {
			k := l.scan(buf)
			l.src.Discard(k)
			l.dropped += int64(k)
			continue
		}
		k := l.scan(buf[:min(len(buf), len(p)-n)])
		copy(p[n:], buf[:k])
		l.src.Discard(k)
		n += k
		l.given += int64(k)
		if l.skip { // cut
			l.cut = &recordCut{at: l.given, line: l.start, err: &errRecordTooLong{max: l.max}}
			return n, l.cut.err
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, l.err
}

// end records the stream's end or error.
func (l *recordLimit) end(err error) {
	l.err = err
	if err == io.EOF && l.st == stQuoted && !l.skip {
		l.openQuote = true
	}
}

// takeCut returns the cut record that the parser, having consumed offset
// bytes, has just read, and forgets it; nil when that record was not cut.
func (l *recordLimit) takeCut(offset int64) *recordCut {
	c := l.cut
	if c == nil || offset < c.at {
		return nil
	}
	l.cut = nil
	return c
}

// scan frames b and returns how many of its bytes it took: all of them,
// or fewer when it stops before a byte that would take the record over
// the limit (it then sets skip) or, while skipping, after the line break
// that ends the record (it then clears skip).
func (l *recordLimit) scan(b []byte) int {
	i := 0
	for i < len(b) {
		if i += l.span(b[i:]); i == len(b) {
			break
		}
		c := b[i]
		if l.size == 0 {
			l.start = l.line
		}
		st, dm := l.st, l.dm
		if l.step(c) {
			i++
			l.line++
			l.size = 0
			if l.skip {
				l.skip = false
				l.shift += l.nl // the line breaks dropped, less the one the parser counted
				l.nl = 0
				return i
			}
			continue
		}
		if !l.skip && l.size >= l.max {
			l.st, l.dm = st, dm
			l.skip = true
			return i
		}
		i++
		l.size++
		if c == '\n' {
			l.line++
			if l.skip {
				l.nl++
			}
		}
	}
	return i
}

// span takes the bytes at the start of b that step would take without
// ending the record or changing the state but between the start of a
// field and the rest of it (in a quoted field, those before the next
// quote; after a parse error, those before the next line break;
// elsewhere, those that are neither a quote, a line break nor a
// multi-byte delimiter's first byte), up to the limit, and returns how
// many it took.
func (l *recordLimit) span(b []byte) int {
	var k int
	switch {
	case l.st == stQuoted:
		if k = bytes.IndexByte(b, '"'); k < 0 {
			k = len(b)
		}
	case l.st == stBad:
		if k = bytes.IndexByte(b, '\n'); k < 0 {
			k = len(b)
		}
	case (l.st == stField || l.st == stUnquoted) && len(l.delim) == 1:
		k = plainRun(b)
	case (l.st == stField || l.st == stUnquoted) && l.dm == 0:
		for k < len(b) && !l.special[b[k]] {
			k++
		}
	default:
		return 0
	}
	if !l.skip {
		k = int(min(int64(k), l.max-l.size))
	}
	if k <= 0 {
		return 0
	}
	if l.size == 0 {
		l.start = l.line
	}
	if l.st == stField || l.st == stUnquoted {
		l.st = stUnquoted
		if len(l.delim) == 1 && b[k-1] == l.delim[0] {
			l.st = stField
		}
	}
	l.size += int64(k)
	if l.st == stQuoted {
		nl := int64(bytes.Count(b[:k], []byte{'\n'}))
		l.line += nl
		if l.skip {
			l.nl += nl
		}
	}
	return k
}

// plainWindow is how far plainRun looks at once: a line of quoted fields
// stops it at every field, and each look must not scan the whole buffer
// for the line's end.
const plainWindow = 512

// plainRun returns how many bytes at the start of b are neither a quote
// nor a line break (the bytes that a stream with a one-byte delimiter has
// special outside quotes), looking at most plainWindow bytes ahead: two
// vectorised byte searches rather than a loop over each byte.
func plainRun(b []byte) int {
	w := b[:min(len(b), plainWindow)]
	k := bytes.IndexByte(w, '\n')
	if k < 0 {
		k = len(w)
	}
	if q := bytes.IndexByte(w[:k], '"'); q >= 0 {
		k = q
	}
	return k
}

// step takes the byte c into the framing and reports whether it ends the
// record. It follows encoding/csv's reader: a line break ends the record
// outside quotes; a quote opens a quoted field only at its start; in a
// quoted field a quote followed by a quote is one quote, one followed by
// the delimiter or a line break (CRLF included) ends the field; any
// other quote is a parse error (or with LazyQuotes, a quote in the value),
// and a parse error ends the record at the end of its line.
func (l *recordLimit) step(c byte) bool {
	switch l.st {
	case stField, stUnquoted:
		if l.dm > 0 {
			if l.delimiter(c) {
				return false
			}
			l.st = stUnquoted // the delimiter's first bytes were data
		}
		switch {
		case c == '\n':
			l.st = stField
			return true
		case c == '"' && l.st == stField:
			l.st = stQuoted
		case c == '"' && !l.lazy:
			l.st = stBad
		case c == l.delim[0]:
			l.startDelimiter()
		default:
			l.st = stUnquoted
		}
	case stQuoted:
		if c == '"' {
			l.st = stQuote
		}
	case stQuote:
		return l.afterQuote(c)
	case stQuoteCR:
		if c == '\n' {
			l.st = stField
			return true
		}
		return l.strayQuote(c)
	case stBad:
		if c == '\n' {
			l.st = stField
			return true
		}
	}
	return false
}

// afterQuote takes c after a quote in a quoted field.
func (l *recordLimit) afterQuote(c byte) bool {
	if l.dm > 0 {
		if l.delimiter(c) {
			return false
		}
		return l.strayQuote(c)
	}
	switch c {
	case '"':
		l.st = stQuoted
	case '\n':
		l.st = stField
		return true
	case '\r':
		l.st = stQuoteCR
	case l.delim[0]:
		l.startDelimiter()
	default:
		return l.strayQuote(c)
	}
	return false
}

// strayQuote takes c after a quote in a quoted field that is followed by
// neither a quote, the delimiter nor a line break: a parse error, or with
// LazyQuotes a quote in the value.
func (l *recordLimit) strayQuote(c byte) bool {
	if l.lazy {
		l.st = stQuoted
		if c == '"' {
			l.st = stQuote
		}
		return false
	}
	l.st = stBad
	if c == '\n' {
		l.st = stField
		return true
	}
	return false
}

// startDelimiter takes the first byte of the delimiter.
func (l *recordLimit) startDelimiter() {
	if len(l.delim) == 1 {
		l.st = stField
		return
	}
	l.dm = 1
}

// delimiter takes c as the next byte of a multi-byte delimiter and reports
// whether it is; after its last byte a new field starts.
func (l *recordLimit) delimiter(c byte) bool {
	if c != l.delim[l.dm] {
		l.dm = 0
		return false
	}
	l.dm++
	if l.dm == len(l.delim) {
		l.dm = 0
		l.st = stField
	}
	return true
}

// countReader counts the bytes read through it.
type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// inflateLimit passes decompressed data through until there is more of it
// than ratio times the compressed size (the object's listed size, or the
// compressed bytes read so far if that is more), with floor bytes allowed
// whatever the ratio; then it fails. Its first error is returned by every
// later Read.
type inflateLimit struct {
	r      io.Reader
	in     *countReader // the compressed stream
	size   int64        // the object's listed size, 0 when unknown
	ratio  int64
	floor  int64
	passed int64
	err    error
}

func (z *inflateLimit) Read(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	allowed := z.allowed()
	if z.passed < allowed {
		n, err := z.r.Read(p[:min(int64(len(p)), allowed-z.passed)])
		z.passed += int64(n)
		z.err = err
		return n, err
	}
	// At the limit: one more byte is too many, unless the compressed
	// bytes read for it raise the limit.
	var one [1]byte
	n, err := io.ReadFull(z.r, one[:])
	if n == 0 {
		z.err = err
		return 0, err
	}
	if z.passed < z.allowed() {
		z.passed++
		p[0] = one[0]
		return 1, nil
	}
	compressed := max(z.size, z.in.n)
	z.err = fmt.Errorf("gzip: over %d times the object's %d bytes (source.csv.max_inflate_ratio): more than %d bytes decompressed",
		z.ratio, compressed, z.passed)
	return 0, z.err
}

// allowed returns how many decompressed bytes may pass.
func (z *inflateLimit) allowed() int64 {
	compressed := max(z.size, z.in.n)
	if compressed > 0 && z.ratio > math.MaxInt64/compressed {
		return math.MaxInt64
	}
	return max(z.floor, z.ratio*compressed)
}
