package pipeline

import (
	"fmt"
	"strconv"
	"time"
)

// Object is one object of an export: a local file or an S3 object.
type Object struct {
	// Key is the object's path (local) or URL (s3://bucket/key). It is what
	// errors, the ledger and the results file name.
	Key string
	// ETag identifies the object's content: the S3 ETag, or for a local
	// file a value derived from its size and modification time.
	ETag string
	// Size is the object's size in bytes.
	Size int64
	// ModTime is the object's last modification time.
	ModTime time.Time
}

// String returns the object's key.
func (o Object) String() string { return o.Key }

// Header is the ordered list of an object's column names, with an index
// for looking columns up by name. A Header is shared by every row of an
// object and must not be modified after NewHeader.
type Header struct {
	names []string
	index map[string]int
}

// NewHeader returns the header of the given column names. When a name
// occurs more than once, Index finds its first occurrence; Duplicates
// reports the others.
func NewHeader(names []string) *Header {
	h := &Header{names: append([]string(nil), names...), index: make(map[string]int, len(names))}
	for i, n := range h.names {
		if _, ok := h.index[n]; !ok {
			h.index[n] = i
		}
	}
	return h
}

// Names returns the column names in file order. The caller must not modify
// the returned slice.
func (h *Header) Names() []string { return h.names }

// Len returns the number of columns.
func (h *Header) Len() int { return len(h.names) }

// Index returns the position of the named column.
func (h *Header) Index(name string) (int, bool) {
	i, ok := h.index[name]
	return i, ok
}

// Duplicates returns the column names that occur more than once.
func (h *Header) Duplicates() []string {
	var d []string
	seen := make(map[string]int, len(h.names))
	for _, n := range h.names {
		seen[n]++
		if seen[n] == 2 {
			d = append(d, n)
		}
	}
	return d
}

// Row is one record of an object: its values, aligned with its Header.
//
// Every format delivers values as strings so that one mapping serves them
// all. Parquet values are rendered as: integers and decimals in plain
// decimal notation ("-12.50"), floats with strconv 'g' formatting,
// booleans as "true"/"false", dates as "2006-01-02", timestamps adjusted
// to UTC as RFC 3339 in UTC with as many fractional digits as needed
// ("2026-11-22T22:04:00Z"), timestamps not adjusted to UTC (wall times)
// the same without an offset ("2026-11-22T22:04:00"), and nulls as ""
// with Null reporting true (docs/mapping.md, Parquet values).
type Row struct {
	// Object is the object the row was read from.
	Object *Object
	// Line is the row's position in its object, counted from 1: for CSV
	// the physical line on which the record starts (the header is line 1),
	// for Parquet the row's index plus one.
	Line int64
	// Header names the columns of Values.
	Header *Header
	// Values holds one value per column. A reader returns a fresh slice
	// for every row, so a Row may be kept.
	Values []string
	// Nulls, when not nil, marks the values that were null in the source
	// (Parquet). A CSV reader leaves it nil.
	Nulls []bool
}

// Value returns the value of the named column and whether the row has it.
func (r Row) Value(column string) (string, bool) {
	if r.Header == nil {
		return "", false
	}
	i, ok := r.Header.Index(column)
	if !ok || i >= len(r.Values) {
		return "", false
	}
	return r.Values[i], true
}

// IsNull reports whether the named column is null in this row.
func (r Row) IsNull(column string) bool {
	if r.Nulls == nil || r.Header == nil {
		return false
	}
	i, ok := r.Header.Index(column)
	return ok && i < len(r.Nulls) && r.Nulls[i]
}

// Ref returns where the row came from.
func (r Row) Ref() Ref {
	ref := Ref{Line: r.Line}
	if r.Object != nil {
		ref.Object = r.Object.Key
	}
	return ref
}

// Ref points at one row of one object: "orders.csv:12".
type Ref struct {
	Object string `json:"object"`
	Line   int64  `json:"line"`
}

// String returns "object:line", or the object alone when the ref names
// the whole object (Line 0).
func (r Ref) String() string {
	if r.Line == 0 {
		return r.Object
	}
	return r.Object + ":" + strconv.FormatInt(r.Line, 10)
}

// RowError is a problem with one row of an object that does not stop the
// reading of the rest: a wrong column count, an unbalanced quote, invalid
// UTF-8. Readers return it from RowReader.Next; the caller records it and
// goes on.
type RowError struct {
	Ref
	// Field names the column concerned, when one is.
	Field string
	// Err says what is wrong.
	Err error
}

// Error returns "object:line: field: message".
func (e *RowError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %v", e.Ref, e.Field, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Ref, e.Err)
}

// Unwrap returns the underlying error.
func (e *RowError) Unwrap() error { return e.Err }
