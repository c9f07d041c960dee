package group

import (
	"encoding/binary"
	"errors"
	"math"

	"convpipe/pipeline"
)

// The record format of temporary files. A record is a uvarint length and
// a body:
//
//	flags    byte: 1 Values not nil, 2 Nulls not nil
//	line     varint
//	keyLen   uvarint
//	nValues  uvarint
//	nNulls   uvarint, then ceil(nNulls/8) bytes of bits (only with flag 2)
//	lengths  nValues uvarints
//	data     the key's bytes, then the values' bytes
//
// The object and header are the same for every row of an object and are
// attached again when reading back.
const (
	flagValues = 1
	flagNulls  = 2
)

// appendRecord appends the record of row r with key to dst.
func appendRecord(dst []byte, key string, r *pipeline.Row) []byte {
	size := 1 + varintLen(r.Line) + uvarintLen(uint64(len(key))) + uvarintLen(uint64(len(r.Values))) + len(key)
	for _, v := range r.Values {
		size += uvarintLen(uint64(len(v))) + len(v)
	}
	flags := byte(0)
	if r.Values != nil {
		flags |= flagValues
	}
	if r.Nulls != nil {
		flags |= flagNulls
		size += uvarintLen(uint64(len(r.Nulls))) + (len(r.Nulls)+7)/8
	}
	dst = binary.AppendUvarint(dst, uint64(size))
	dst = append(dst, flags)
	dst = binary.AppendVarint(dst, r.Line)
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = binary.AppendUvarint(dst, uint64(len(r.Values)))
	if r.Nulls != nil {
		dst = binary.AppendUvarint(dst, uint64(len(r.Nulls)))
		var b byte
		for i, null := range r.Nulls {
			if null {
				b |= 1 << (i & 7)
			}
			if i&7 == 7 {
				dst, b = append(dst, b), 0
			}
		}
		if len(r.Nulls)&7 != 0 {
			dst = append(dst, b)
		}
	}
	for _, v := range r.Values {
		dst = binary.AppendUvarint(dst, uint64(len(v)))
	}
	dst = append(dst, key...)
	for _, v := range r.Values {
		dst = append(dst, v...)
	}
	return dst
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

func varintLen(x int64) int {
	ux := uint64(x) << 1
	if x < 0 {
		ux = ^ux
	}
	return uvarintLen(ux)
}

// recordHead is the parsed fixed part of a record body.
type recordHead struct {
	flags      byte
	line       int64
	keyLen     int
	nValues    int
	nNulls     int
	bits       []byte
	lensStart  int
	dataStart  int
	valueBytes int
}

var errRecord = errors.New("malformed")

func parseHead(b []byte) (recordHead, error) {
	var h recordHead
	if len(b) == 0 {
		return h, errRecord
	}
	h.flags = b[0]
	if h.flags&^(flagValues|flagNulls) != 0 {
		return h, errRecord
	}
	off := 1
	line, n := binary.Varint(b[off:])
	if n <= 0 {
		return h, errRecord
	}
	h.line, off = line, off+n
	var ok bool
	if h.keyLen, off, ok = uvarintInt(b, off); !ok {
		return h, errRecord
	}
	if h.nValues, off, ok = uvarintInt(b, off); !ok || h.nValues > len(b) {
		return h, errRecord
	}
	if h.flags&flagValues == 0 && h.nValues != 0 {
		return h, errRecord
	}
	if h.flags&flagNulls != 0 {
		if h.nNulls, off, ok = uvarintInt(b, off); !ok {
			return h, errRecord
		}
		nb := (h.nNulls + 7) / 8
		if nb > len(b)-off {
			return h, errRecord
		}
		h.bits, off = b[off:off+nb], off+nb
	}
	h.lensStart = off
	for range h.nValues {
		var l int
		if l, off, ok = uvarintInt(b, off); !ok || l > len(b) {
			return h, errRecord
		}
		h.valueBytes += l
	}
	h.dataStart = off
	if h.keyLen > len(b) || h.valueBytes > len(b) || off+h.keyLen+h.valueBytes != len(b) {
		return h, errRecord
	}
	return h, nil
}

// uvarintInt reads a uvarint at b[off:] that fits an int.
func uvarintInt(b []byte, off int) (int, int, bool) {
	if off > len(b) {
		return 0, off, false
	}
	v, n := binary.Uvarint(b[off:])
	if n <= 0 || v > math.MaxInt32 {
		return 0, off, false
	}
	return int(v), off + n, true
}

// mem estimates the memory of the record's row when read back, as
// recordMem does for the row written.
func (h *recordHead) mem() int64 {
	return rowStructBytes + rowAllocBytes + int64(16*h.nValues+h.nNulls+h.valueBytes+h.keyLen)
}

// recordMem estimates the memory of a row read back with its key.
func recordMem(r *pipeline.Row, keyLen int) int64 {
	return rowStructBytes + rowDataBytes(r) + int64(keyLen)
}

// rowDecoder decodes records into rows of one object. It takes the
// rows' Values from shared blocks, to allocate less.
type rowDecoder struct {
	obj  *pipeline.Object
	hdr  *pipeline.Header
	slab []string
}

// values returns a slice of n strings.
func (d *rowDecoder) values(n int) []string {
	const block = 1024
	if n == 0 {
		return []string{}
	}
	if n > block/8 {
		return make([]string, n)
	}
	if len(d.slab)+n > cap(d.slab) {
		d.slab = make([]string, 0, block)
	}
	i := len(d.slab)
	d.slab = d.slab[:i+n]
	return d.slab[i : i+n : i+n]
}

// decode decodes a record body into its key and row. The key and values
// share one string.
func (d *rowDecoder) decode(b []byte) (string, pipeline.Row, error) {
	h, err := parseHead(b)
	if err != nil {
		return "", pipeline.Row{}, err
	}
	data := string(b[h.dataStart:])
	key := data[:h.keyLen]
	r := pipeline.Row{Object: d.obj, Line: h.line, Header: d.hdr}
	if h.flags&flagValues != 0 {
		r.Values = d.values(h.nValues)
		p, off := h.keyLen, h.lensStart
		for i := range r.Values {
			l, n := binary.Uvarint(b[off:])
			off += n
			r.Values[i] = data[p : p+int(l)]
			p += int(l)
		}
	}
	if h.flags&flagNulls != 0 {
		r.Nulls = make([]bool, h.nNulls)
		for i := range r.Nulls {
			r.Nulls[i] = h.bits[i>>3]&(1<<(i&7)) != 0
		}
	}
	return key, r, nil
}
