package sources

import (
	"errors"
	"fmt"
)

// Parquet's metadata is Thrift compact protocol. The Thrift library that
// parquet-go uses allocates a list as long as its header claims before it
// reads an element, so a corrupt footer can ask for gigabytes. checkThrift
// walks the encoding first and fails when a container claims more elements
// than the bytes left could hold, or nests too deeply.

const thriftMaxDepth = 64

// Compact protocol type ids.
const (
	ctStop      = 0
	ctBoolTrue  = 1
	ctBoolFalse = 2
	ctByte      = 3
	ctI16       = 4
	ctI32       = 5
	ctI64       = 6
	ctDouble    = 7
	ctBinary    = 8
	ctList      = 9
	ctSet       = 10
	ctMap       = 11
	ctStruct    = 12
	ctUUID      = 13
)

var errThriftTruncated = errors.New("truncated")

// checkThrift checks that b starts with one well-formed compact-protocol
// struct and returns its length.
func checkThrift(b []byte) (int, error) {
	c := thriftCheck{b: b}
	if err := c.skip(ctStruct, 0); err != nil {
		return 0, fmt.Errorf("metadata at byte %d: %w", c.pos, err)
	}
	return c.pos, nil
}

type thriftCheck struct {
	b   []byte
	pos int
}

func (c *thriftCheck) left() int { return len(c.b) - c.pos }

func (c *thriftCheck) byte() (byte, error) {
	if c.pos >= len(c.b) {
		return 0, errThriftTruncated
	}
	c.pos++
	return c.b[c.pos-1], nil
}

func (c *thriftCheck) varint() (uint64, error) {
	var v uint64
	for shift := uint(0); shift < 70; shift += 7 {
		b, err := c.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(b&0x7f) << shift
		if b < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint too long")
}

func (c *thriftCheck) advance(n uint64) error {
	if n > uint64(c.left()) {
		return errThriftTruncated
	}
	c.pos += int(n)
	return nil
}

// skip passes over one value of type t found inside a container (a list,
// set or map element, where a bool takes a byte of its own) or, for a
// struct field, after its header (where a bool takes none: see skipStruct).
// Every nested value goes through skip again, one level deeper, so the
// depth check here bounds the whole walk.
func (c *thriftCheck) skip(t byte, depth int) error {
	if depth > thriftMaxDepth {
		return errors.New("nested too deeply")
	}
	switch t {
	case ctBoolTrue, ctBoolFalse, ctByte:
		return c.advance(1)
	case ctI16, ctI32, ctI64:
		_, err := c.varint()
		return err
	case ctDouble:
		return c.advance(8)
	case ctUUID:
		return c.advance(16)
	case ctBinary:
		return c.skipBinary()
	case ctList, ctSet:
		return c.skipList(depth)
	case ctMap:
		return c.skipMap(depth)
	case ctStruct:
		return c.skipStruct(depth)
	}
	return fmt.Errorf("unknown type %d", t)
}

// skipBinary passes over a binary (or string) value: a varint length,
// then that many bytes.
func (c *thriftCheck) skipBinary() error {
	n, err := c.varint()
	if err != nil {
		return err
	}
	return c.advance(n)
}

// skipList passes over a list or set at depth: a header byte holding the
// size (15: a varint follows) and the element type, then the elements. A
// size the bytes left could not hold is an error before any is read.
func (c *thriftCheck) skipList(depth int) error {
	h, err := c.byte()
	if err != nil {
		return err
	}
	n, elem := uint64(h>>4), h&0x0f
	if n == 15 {
		if n, err = c.varint(); err != nil {
			return err
		}
	}
	if n > uint64(c.left()) {
		return fmt.Errorf("list of %d elements in %d bytes", n, c.left())
	}
	for range n {
		if err := c.skip(elem, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// skipMap passes over a map at depth: a varint size and, unless it is 0, a
// byte with the key and value types, then the entries. A size the bytes
// left could not hold is an error before any is read.
func (c *thriftCheck) skipMap(depth int) error {
	n, err := c.varint()
	if err != nil || n == 0 {
		return err
	}
	kv, err := c.byte()
	if err != nil {
		return err
	}
	if n > uint64(c.left())/2 {
		return fmt.Errorf("map of %d entries in %d bytes", n, c.left())
	}
	for range n {
		if err := c.skip(kv>>4, depth+1); err != nil {
			return err
		}
		if err := c.skip(kv&0x0f, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// skipStruct passes over a struct at depth: fields, each a header byte
// (with the field id after it in the long form) and a value, up to a stop
// byte. A bool field's value is in its header.
func (c *thriftCheck) skipStruct(depth int) error {
	for {
		h, err := c.byte()
		if err != nil {
			return err
		}
		if h == ctStop {
			return nil
		}
		if h>>4 == 0 { // long form: the field id follows
			if _, err := c.varint(); err != nil {
				return err
			}
		}
		ft := h & 0x0f
		if ft == ctBoolTrue || ft == ctBoolFalse {
			continue // the value is in the header
		}
		if err := c.skip(ft, depth+1); err != nil {
			return err
		}
	}
}
