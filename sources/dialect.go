package sources

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// A CSV object's dialect is its character encoding and its delimiter.
// Both are settled per object before the parser sees a byte: a byte order
// mark decides the encoding, whatever source.csv.encoding says (it cannot
// be mistaken: no export starts with "ï»¿" or "ÿþ" in earnest), and with
// source.csv.delimiter auto (the default) the header line decides the
// delimiter, so that one run reads a folder of files of different
// dialects.

// The encodings source.csv.encoding names, as settings keeps them.
const (
	encUTF8    = "utf-8"
	enc1252    = "windows-1252"
	encLatin1  = "latin-1"
	encUTF16   = "utf-16" // endianness from the BOM, else from the NUL bytes
	encUTF16LE = "utf-16le"
	encUTF16BE = "utf-16be"
)

// parseEncoding parses source.csv.encoding: its canonical name, "" (the
// default, UTF-8) for utf-8.
func parseEncoding(e string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(e)) {
	case "", "utf-8", "utf8":
		return "", nil
	case "windows-1252", "cp1252", "windows1252":
		return enc1252, nil
	case "latin-1", "latin1", "iso-8859-1", "iso8859-1":
		return encLatin1, nil
	case "utf-16", "utf16":
		return encUTF16, nil
	case "utf-16le":
		return encUTF16LE, nil
	case "utf-16be":
		return encUTF16BE, nil
	}
	return "", fmt.Errorf("source.csv.encoding: %q: must be utf-8, windows-1252, latin-1 or utf-16", e)
}

// The byte order marks.
var (
	bomUTF8    = []byte{0xEF, 0xBB, 0xBF}
	bomUTF16LE = []byte{0xFF, 0xFE}
	bomUTF16BE = []byte{0xFE, 0xFF}
)

// decoded returns the stream raw decoded to UTF-8 as enc says. UTF-8 (the
// default) passes raw through as it is, unless it starts with a UTF-16
// byte order mark; any other encoding gives way to a byte order mark. The
// decoders' output is valid UTF-8 (a UTF-16 stream's unpaired surrogates
// become U+FFFD), so only UTF-8 input is checked for invalid bytes later.
func decoded(raw *bufio.Reader, enc string) io.Reader {
	head, _ := raw.Peek(2)
	var dec *encoding.Decoder
	switch enc {
	case "":
		if !bytes.HasPrefix(head, bomUTF16LE) && !bytes.HasPrefix(head, bomUTF16BE) {
			return raw
		}
		dec = unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder()
	case enc1252:
		dec = charmap.Windows1252.NewDecoder()
	case encLatin1:
		dec = charmap.ISO8859_1.NewDecoder()
	case encUTF16, encUTF16LE, encUTF16BE:
		endian := unicode.LittleEndian
		if enc == encUTF16BE || enc == encUTF16 && len(head) == 2 && head[0] == 0 && head[1] != 0 {
			endian = unicode.BigEndian
		}
		dec = unicode.UTF16(endian, unicode.UseBOM).NewDecoder()
	}
	return transform.NewReader(raw, unicode.BOMOverride(dec))
}

// notUTF8 describes the invalid UTF-8 in s, which names a column or a
// value (where), with the encoding its bytes suggest.
func notUTF8(s, where string) string {
	msg := fmt.Sprintf("not UTF-8 at byte %d%s: ", invalidAt(s), where)
	if looks1252(s) {
		msg += "is it windows-1252? "
	}
	return msg + "set source.csv.encoding"
}

// looks1252 reports whether every byte of s that is not UTF-8 is a
// character of Windows-1252, which holds the Western European letters of
// Latin-1 and, at 0x80 to 0x9F, the euro sign and typographic quotes and
// dashes: the encoding of most such exports that are not UTF-8.
func looks1252(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			switch s[i] {
			case 0x81, 0x8D, 0x8F, 0x90, 0x9D: // undefined in Windows-1252
				return false
			}
		}
		i += size
	}
	return true
}

// binaryError is the error of a stream with a NUL byte at i in its first
// bytes head: UTF-16 text without a byte order mark when the NUL bytes
// fall at every other offset, binary data otherwise.
func binaryError(key string, head []byte, i int) error {
	if looksUTF16(head) {
		return fmt.Errorf("%s: NUL bytes at every other offset: is it UTF-16 without a byte order mark? set source.csv.encoding: utf-16", key)
	}
	return fmt.Errorf("%s: binary data (NUL byte at offset %d), not CSV", key, i)
}

// looksUTF16 reports whether head looks like ASCII text in UTF-16: a NUL
// byte at every even (big-endian) or every odd (little-endian) offset of
// its first 64 bytes, and none at the others.
func looksUTF16(head []byte) bool {
	n := min(len(head), 64) &^ 1
	if n < 4 {
		return false
	}
	var zeros [2]int
	for i, b := range head[:n] {
		if b == 0 {
			zeros[i&1]++
		}
	}
	half := n / 2
	return zeros[0] == half && zeros[1] == 0 || zeros[1] == half && zeros[0] == 0
}

// delimiters are those that auto detects, in the order that breaks ties.
const delimiters = ",;\t|"

// sniffDelimiter returns the delimiter of the header line at the start of
// head: the one of delimiters it holds most often outside quotes, a comma
// when it holds none.
func sniffDelimiter(head []byte) rune {
	var counts [len(delimiters)]int
	quoted := false
	for _, c := range head {
		if c == '"' {
			quoted = !quoted
			continue
		}
		if quoted {
			continue
		}
		if c == '\n' || c == '\r' {
			break
		}
		if i := strings.IndexByte(delimiters, c); i >= 0 {
			counts[i]++
		}
	}
	best := 0
	for i, n := range counts {
		if n > counts[best] {
			best = i
		}
	}
	return rune(delimiters[best])
}

// oneColumnHint is the error of a header of one column, name, that holds
// another of the delimiters auto detects than comma, the configured
// delimiter: most likely the file's; nil when name holds none.
func oneColumnHint(name string, comma rune) error {
	best, most := byte(0), 0
	for i := 0; i < len(delimiters); i++ {
		d := delimiters[i]
		if rune(d) == comma {
			continue
		}
		if n := strings.Count(name, string(d)); n > most {
			best, most = d, n
		}
	}
	if most == 0 {
		return nil
	}
	shown := name
	if parts := strings.Split(name, string(best)); len(parts) > 3 {
		shown = parts[0] + string(best) + parts[1] + string(best) + "…"
	}
	if utf8.RuneCountInString(shown) > 60 {
		shown = string([]rune(shown)[:60]) + "…"
	}
	return fmt.Errorf("the header has 1 column %q: is the delimiter %s? (source.csv.delimiter is %s; auto detects it)",
		shown, delimiterName(rune(best)), delimiterName(comma))
}

// delimiterName shows a delimiter in a message.
func delimiterName(d rune) string {
	if d == '\t' {
		return "tab"
	}
	return "'" + string(d) + "'"
}
