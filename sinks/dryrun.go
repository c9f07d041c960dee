package sinks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"convpipe/pipeline"
)

// DryRun is a sink that sends nothing: it writes, for each conversion,
// one JSON line with exactly what would be sent:
//
//	{"key":"EventType/OrderID","body":"<form body>","fields":{"Name":"value",...}}
//
// with the fields in the body's order. It is safe for concurrent use;
// lines are never interleaved. Lines are buffered: call Flush when the
// run ends.
//
// Its outcomes are not final: every Outcome has State pipeline.StatePending
// (nothing was accepted or refused) and must not be written to the ledger.
type DryRun struct {
	mu   sync.Mutex
	w    *bufio.Writer
	n    int64
	pool sync.Pool // *[]byte: line buffers
}

var _ pipeline.Sink = (*DryRun)(nil)

// NewDryRun returns a dry-run sink writing to w. The caller flushes the
// sink (Flush), then closes w.
func NewDryRun(w io.Writer) *DryRun { return &DryRun{w: bufio.NewWriterSize(w, 64<<10)} }

// Send writes the conversion's line and returns a pending Outcome. An
// error (wrapping pipeline.ErrFatal) means the output could not be
// written: this line or an earlier buffered one.
func (d *DryRun) Send(ctx context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	out := pipeline.Outcome{Key: c.Key, State: pipeline.StatePending, Messages: msgs("dry run: not sent")}
	if ctx.Err() != nil {
		out.Messages = msgs("stopped before an answer")
		return out, nil
	}
	bp, _ := d.pool.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	line := appendDryRunLine((*bp)[:0], c)
	d.mu.Lock()
	_, err := d.w.Write(line)
	if err == nil {
		d.n++
	}
	d.mu.Unlock()
	*bp = line
	d.pool.Put(bp)
	if err != nil {
		return out, fmt.Errorf("dry run: write: %w: %w", err, pipeline.ErrFatal)
	}
	return out, nil
}

// Flush writes the buffered lines out. An error wraps pipeline.ErrFatal.
func (d *DryRun) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.w.Flush(); err != nil {
		return fmt.Errorf("dry run: write: %w: %w", err, pipeline.ErrFatal)
	}
	return nil
}

// Count returns the number of lines written.
func (d *DryRun) Count() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.n
}

// appendDryRunLine appends c's JSON line to b.
func appendDryRunLine(b []byte, c *pipeline.Conversion) []byte {
	b = append(b, `{"key":"`...)
	b = appendJSONText(b, c.Key.EventType)
	b = append(b, '/')
	b = appendJSONText(b, c.Key.OrderID)
	b = append(b, `","body":"`...)
	b = appendJSONText(b, c.Encode())
	b = append(b, `","fields":{`...)
	first := true
	field := func(name, index, rest, value string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = appendJSONText(b, name)
		b = append(b, index...)
		b = appendJSONText(b, rest)
		b = append(b, `":"`...)
		b = appendJSONText(b, value)
		b = append(b, '"')
	}
	for _, f := range c.Fields {
		field(f.Name, "", "", f.Value)
	}
	for i, it := range c.Items {
		index := strconv.Itoa(i + 1)
		for _, f := range it.Fields {
			// As ItemFieldName: the index goes before the first '_'.
			name, rest := f.Name, ""
			if j := strings.IndexByte(name, '_'); j >= 0 {
				name, rest = name[:j], name[j:]
			}
			field(name, index, rest, f.Value)
		}
	}
	return append(b, "}}\n"...)
}

// appendJSONText appends s as the inside of a JSON string, as
// encoding/json writes it but without its HTML escapes: quotes,
// backslashes and control characters escaped, invalid UTF-8 replaced by
// U+FFFD, U+2028 and U+2029 escaped.
func appendJSONText(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&15])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	return append(b, s[start:]...)
}

// Discard is a sink for benchmarks: it sends nothing, counts, and answers
// every conversion as accepted. It is safe for concurrent use.
type Discard struct{ n atomic.Int64 }

var _ pipeline.Sink = (*Discard)(nil)

// Send counts the conversion and returns an accepted Outcome.
func (d *Discard) Send(_ context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	n := d.n.Add(1)
	return pipeline.Outcome{Key: c.Key, State: pipeline.StateAccepted, Attempts: 1, HTTPStatus: 200,
		SubmissionID: "discard-" + strconv.FormatInt(n, 10)}, nil
}

// Count returns the number of conversions sent.
func (d *Discard) Count() int64 { return d.n.Load() }
