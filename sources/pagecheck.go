package sources

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"

	"github.com/xitongsys/parquet-go/compress"
	"github.com/xitongsys/parquet-go/encoding"
	"github.com/xitongsys/parquet-go/parquet"
)

// parquet-go's page decoders trust the counts and lengths they find in the
// data: a corrupt run length or value length makes them allocate and fill
// gigabytes. checkPageData walks a decompressed page the way they will and
// checks every count and length against the bytes and values there are,
// so that a corrupt page is an error before parquet-go decodes it.

// maxDeltaBlock bounds a DELTA_BINARY_PACKED block (writers use 128).
const maxDeltaBlock = 1 << 16

var errPageTruncated = errors.New("page data ends early")

// pageInfo is what checkPageData needs to know of a column.
type pageInfo struct {
	physical parquet.Type
	typeLen  int32
	maxDL    int32
}

// checkPage decompresses one page's data (data is the page body as
// stored) and checks it. It returns nil for pages it does not decode.
func checkPage(h *parquet.PageHeader, data []byte, codec parquet.CompressionCodec, col pageInfo) error {
	var levels []byte
	var numValues int
	var enc parquet.Encoding
	switch h.GetType() {
	case parquet.PageType_DICTIONARY_PAGE:
		numValues, enc = int(h.GetDictionaryPageHeader().GetNumValues()), parquet.Encoding_PLAIN
	case parquet.PageType_DATA_PAGE:
		numValues, enc = int(h.GetDataPageHeader().GetNumValues()), h.GetDataPageHeader().GetEncoding()
	case parquet.PageType_DATA_PAGE_V2:
		v2 := h.GetDataPageHeaderV2()
		numValues, enc = int(v2.GetNumValues()), v2.GetEncoding()
		n := int(v2.GetRepetitionLevelsByteLength() + v2.GetDefinitionLevelsByteLength())
		levels, data = data[:n], data[n:]
	default:
		return nil
	}
	plain := data
	if len(data) > 0 && codec != parquet.CompressionCodec_UNCOMPRESSED {
		var err error
		if plain, err = compress.Uncompress(data, codec); err != nil {
			return fmt.Errorf("decompress: %w", err)
		}
	}
	if int64(len(plain)+len(levels)) != int64(h.GetUncompressedPageSize()) {
		return fmt.Errorf("%d bytes uncompressed, the header says %d", len(plain)+len(levels), h.GetUncompressedPageSize())
	}
	if h.GetType() == parquet.PageType_DICTIONARY_PAGE {
		return checkValues(plain, parquet.Encoding_PLAIN, numValues, col)
	}

	nonNull := numValues
	if col.maxDL > 0 {
		var dl []byte
		if h.GetType() == parquet.PageType_DATA_PAGE {
			if len(plain) < 4 {
				return errPageTruncated
			}
			n := binary.LittleEndian.Uint32(plain)
			if uint64(n) > uint64(len(plain)-4) {
				return fmt.Errorf("definition levels of %d bytes in %d", n, len(plain)-4)
			}
			dl, plain = plain[4:4+n], plain[4+n:]
		} else {
			dl = levels[h.GetDataPageHeaderV2().GetRepetitionLevelsByteLength():]
		}
		var err error
		if nonNull, err = countLevel(dl, bits.Len32(uint32(col.maxDL)), numValues, uint64(col.maxDL)); err != nil {
			return fmt.Errorf("definition levels: %w", err)
		}
	}
	if err := checkValues(plain, enc, nonNull, col); err != nil {
		return fmt.Errorf("%s values: %w", enc, err)
	}
	return nil
}

// checkValues checks that b holds n values of the column in encoding enc.
func checkValues(b []byte, enc parquet.Encoding, n int, col pageInfo) error {
	need := func(size int) error {
		if size > len(b) {
			return errPageTruncated
		}
		return nil
	}
	switch enc {
	case parquet.Encoding_PLAIN:
		switch col.physical {
		case parquet.Type_BOOLEAN:
			return need((n + 7) / 8)
		case parquet.Type_INT32, parquet.Type_FLOAT:
			return need(4 * n)
		case parquet.Type_INT64, parquet.Type_DOUBLE:
			return need(8 * n)
		case parquet.Type_INT96:
			return need(12 * n)
		case parquet.Type_FIXED_LEN_BYTE_ARRAY:
			if col.typeLen <= 0 {
				return fmt.Errorf("fixed length %d", col.typeLen)
			}
			return need(int(col.typeLen) * n)
		case parquet.Type_BYTE_ARRAY:
			pos := 0
			for range n {
				if len(b)-pos < 4 {
					return errPageTruncated
				}
				l := binary.LittleEndian.Uint32(b[pos:])
				if uint64(l) > uint64(len(b)-pos-4) {
					return fmt.Errorf("value of %d bytes in %d", l, len(b)-pos-4)
				}
				pos += 4 + int(l)
			}
			return nil
		}
	case parquet.Encoding_PLAIN_DICTIONARY, parquet.Encoding_RLE_DICTIONARY:
		if n == 0 {
			return nil
		}
		if len(b) < 1 || b[0] > 32 {
			return errors.New("bad index width")
		}
		_, err := countLevel(b[1:], int(b[0]), n, 1<<63)
		return err
	case parquet.Encoding_RLE:
		if len(b) < 4 {
			return errPageTruncated
		}
		l := binary.LittleEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return errPageTruncated
		}
		_, err := countLevel(b[4:4+l], rleWidth(col), n, 1<<63)
		return err
	case parquet.Encoding_BYTE_STREAM_SPLIT:
		switch col.physical {
		case parquet.Type_FLOAT:
			return need(4 * n)
		case parquet.Type_DOUBLE:
			return need(8 * n)
		}
	case parquet.Encoding_DELTA_BINARY_PACKED:
		_, err := deltaBlock(bytes.NewReader(b), n, col.physical == parquet.Type_INT32)
		return err
	case parquet.Encoding_DELTA_LENGTH_BYTE_ARRAY:
		return deltaLengths(bytes.NewReader(b), n)
	case parquet.Encoding_DELTA_BYTE_ARRAY:
		r := bytes.NewReader(b)
		if _, err := deltaBlock(r, n, false); err != nil {
			return fmt.Errorf("prefix lengths: %w", err)
		}
		return deltaLengths(r, n)
	}
	return fmt.Errorf("encoding %s not supported for %s", enc, col.physical)
}

// rleWidth is the bit width of RLE-encoded values of col: 1 for
// booleans (the one type whose values the format lets be RLE-encoded),
// the type length for others, as parquet-go reads them.
func rleWidth(col pageInfo) int {
	if col.physical == parquet.Type_BOOLEAN {
		return 1
	}
	return int(col.typeLen)
}

// deltaBlock checks a DELTA_BINARY_PACKED header that must hold n values,
// then decodes the block with parquet-go (whose allocations the header now
// bounds), leaving r after it.
func deltaBlock(r *bytes.Reader, n int, int32s bool) ([]any, error) {
	start := r.Size() - int64(r.Len())
	var h [3]uint64
	for i := range h {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, errPageTruncated
		}
		h[i] = v
	}
	block, mini, count := h[0], h[1], h[2]
	if block == 0 || block > maxDeltaBlock || block%128 != 0 || mini == 0 || block%mini != 0 || (block/mini)%32 != 0 {
		return nil, fmt.Errorf("bad delta block header (%d values in %d miniblocks)", block, mini)
	}
	if count != uint64(n) {
		return nil, fmt.Errorf("delta block of %d values, %d expected", count, n)
	}
	r.Seek(start, io.SeekStart)
	if int32s {
		return encoding.ReadDeltaBinaryPackedINT32(r)
	}
	return encoding.ReadDeltaBinaryPackedINT64(r)
}

// deltaLengths checks DELTA_LENGTH_BYTE_ARRAY data of n values: the
// lengths, then that many bytes.
func deltaLengths(r *bytes.Reader, n int) error {
	lengths, err := deltaBlock(r, n, false)
	if err != nil {
		return fmt.Errorf("lengths: %w", err)
	}
	var total uint64
	for _, v := range lengths {
		l, ok := v.(int64)
		if !ok || l < 0 {
			return errors.New("negative value length")
		}
		total += uint64(l)
	}
	if total > uint64(r.Len()) {
		return fmt.Errorf("values of %d bytes in %d", total, r.Len())
	}
	r.Seek(int64(total), io.SeekCurrent)
	return nil
}

// countLevel walks all the RLE/bit-packed hybrid runs of width-bit values
// in b, which must hold at least n values, and returns how many of the
// first n equal target.
//
// A run may hold more slots than there are values left: writers pad the
// last bit-packed run (the format asks for a multiple of 8 values; DuckDB
// writes runs of 256), and readers ignore the slots after the n-th. What
// a run may not do is make the decoder allocate without bound: parquet-go
// decodes every slot of every run into a value of its own. So a
// bit-packed run's bytes must be in the page, and all the runs together
// hold at most maxPageValues slots, the most a page of legal values costs
// (see maxPageValues): a budget, whatever the headers ask for.
func countLevel(b []byte, width, n int, target uint64) (int, error) {
	if width < 0 || width > 64 {
		return 0, fmt.Errorf("bit width %d", width)
	}
	r := bytes.NewReader(b)
	budget := uint64(max(n, maxPageValues))
	var seen uint64 // slots walked
	match := 0
	bytesPer := (width + 7) / 8
	for r.Len() > 0 {
		h, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, errPageTruncated
		}
		count, packed := h>>1, h&1 == 1
		if packed {
			if count > budget/8 {
				return 0, fmt.Errorf("bit-packed run of %d groups of 8: over the page's budget of %d values", count, budget)
			}
			count *= 8
		}
		if count > budget-seen {
			return 0, fmt.Errorf("run of %d values after %d: over the page's budget of %d values", count, seen, budget)
		}
		left := uint64(max(n, 0)) - min(seen, uint64(max(n, 0))) // values of the n still to count
		if !packed {
			var v [8]byte
			if bytesPer > r.Len() {
				return 0, errPageTruncated
			}
			r.Read(v[:bytesPer])
			if binary.LittleEndian.Uint64(v[:]) == target {
				match += int(min(count, left))
			}
			seen += count
			continue
		}
		m, err := countPacked(r, width, int(count), int(min(count, left)), target)
		if err != nil {
			return 0, err
		}
		match += m
		seen += count
	}
	if seen < uint64(max(n, 0)) {
		return 0, fmt.Errorf("%d values where %d are expected", seen, n)
	}
	return match, nil
}

// countPacked reads a bit-packed run of slots width-bit values from r and
// returns how many of its first count equal target. The run's bytes must
// all be in r.
func countPacked(r *bytes.Reader, width, slots, count int, target uint64) (int, error) {
	size := slots / 8 * width // slots/8 groups of 8 width-bit values
	if size > r.Len() {
		return 0, errPageTruncated
	}
	if width == 0 { // every value is 0, and takes no bytes
		if target == 0 {
			return count, nil
		}
		return 0, nil
	}
	packed := make([]byte, size)
	r.Read(packed)
	if width < 64 && target >= 1<<width { // no value can match
		return 0, nil
	}
	match := 0
	for i := range count {
		if unpack(packed, i, width) == target {
			match++
		}
	}
	return match, nil
}

// unpack returns the i-th width-bit value of little-endian bit-packed p.
func unpack(p []byte, i, width int) uint64 {
	var v uint64
	bit := i * width
	for k := 0; k < width; k++ {
		if p[(bit+k)/8]>>((bit+k)%8)&1 == 1 {
			v |= 1 << k
		}
	}
	return v
}
