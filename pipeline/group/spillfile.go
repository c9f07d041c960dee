package group

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Temporary files.

func (g *Grouper) createSpill(name string, bufSize int) (*spillFile, error) {
	if g.dir == "" {
		dir, err := os.MkdirTemp(g.cfg.TempDir, spillPrefix+strconv.Itoa(os.Getpid())+"-")
		if err != nil {
			return nil, fmt.Errorf("group: create temporary directory in %s: %w", g.cfg.TempDir, err)
		}
		g.dir = dir
	}
	path := filepath.Join(g.dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fileErr("create", path, err)
	}
	sf := &spillFile{name: name, path: path, f: f, w: bufio.NewWriterSize(f, bufSize)}
	g.files = append(g.files, sf)
	return sf, nil
}

func (g *Grouper) createPartitions(prefix string, n int) ([]*spillFile, error) {
	parts := make([]*spillFile, n)
	for i := range parts {
		p, err := g.createSpill(prefix+strconv.Itoa(i), writeBuffer)
		if err != nil {
			return nil, err
		}
		parts[i] = p
		g.stats.Partitions++
	}
	return parts, nil
}

// spillFile is one temporary file of records.
type spillFile struct {
	name, path string
	f          *os.File // open for writing until finish
	w          *bufio.Writer
	rows       int64
	mem        int64 // estimated memory of its rows when read back
	firstKey   string
	mixed      bool // holds more than one key
}

func (s *spillFile) write(rec []byte, key string, mem int64) error {
	if _, err := s.w.Write(rec); err != nil {
		return fileErr("write", s.path, err)
	}
	if s.rows == 0 {
		s.firstKey = strings.Clone(key)
	} else if !s.mixed && key != s.firstKey {
		s.mixed = true
	}
	s.rows++
	s.mem += mem
	return nil
}

// finish flushes and closes the file for writing.
func (s *spillFile) finish() error {
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	if err := s.w.Flush(); err != nil {
		f.Close()
		return fileErr("write", s.path, err)
	}
	s.w = nil
	if err := f.Close(); err != nil {
		return fileErr("close", s.path, err)
	}
	return nil
}

func (s *spillFile) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

func (s *spillFile) remove() error {
	s.close()
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileErr("remove", s.path, err)
	}
	return nil
}

func (s *spillFile) reader() (*recordReader, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fileErr("open", s.path, err)
	}
	return &recordReader{path: s.path, f: f, br: bufio.NewReaderSize(f, runBuffer)}, nil
}

// fileErr names the file once: an *fs.PathError names it already.
func fileErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("group: temporary file: %w", err)
	}
	return fmt.Errorf("group: %s %s: %w", op, path, err)
}

type recordReader struct {
	path    string
	f       *os.File
	br      *bufio.Reader
	buf     []byte
	pending int   // bytes peeked for the last record, to discard
	off     int64 // offset of the record being read
	end     int64 // offset of the next record
}

// maxRecord bounds the size of one record read back.
const maxRecord = 1 << 30

// next returns the body of the next record, valid until the next call,
// or io.EOF at the end.
func (rr *recordReader) next() ([]byte, error) {
	if rr.pending > 0 {
		if _, err := rr.br.Discard(rr.pending); err != nil {
			return nil, rr.fail(err)
		}
		rr.pending = 0
	}
	rr.off = rr.end
	n, err := binary.ReadUvarint(rr.br)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, rr.fail(err)
	}
	if n > maxRecord {
		return nil, rr.corrupt(fmt.Errorf("record of %d bytes", n))
	}
	rr.end = rr.off + int64(uvarintLen(n)) + int64(n)
	if n <= uint64(rr.br.Size()) {
		// Use the reader's buffer: no copy.
		body, err := rr.br.Peek(int(n))
		if err != nil {
			return nil, rr.fail(err)
		}
		rr.pending = int(n)
		return body, nil
	}
	if uint64(cap(rr.buf)) < n {
		rr.buf = make([]byte, n)
	}
	body := rr.buf[:n]
	if _, err := io.ReadFull(rr.br, body); err != nil {
		return nil, rr.fail(err)
	}
	return body, nil
}

// fail reports a failed read: the file system's error, or a record cut
// short or malformed.
func (rr *recordReader) fail(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fileErr("read", rr.path, err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return rr.corrupt(err)
}

func (rr *recordReader) corrupt(err error) error {
	return fmt.Errorf("group: read %s: corrupt record at offset %d: %w", rr.path, rr.off, err)
}

func (rr *recordReader) close() error {
	if rr.f == nil {
		return nil
	}
	f := rr.f
	rr.f = nil
	if err := f.Close(); err != nil {
		return fileErr("close", rr.path, err)
	}
	return nil
}
