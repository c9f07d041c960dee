package mapping

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// normalizeOrderID returns s as order keys and OrderIds are compared and
// sent: without zero-width characters (U+200B, U+200C, U+200D, U+2060,
// U+FEFF), trimmed of surrounding white space, in Unicode NFC. A value
// that is not valid UTF-8 is kept exactly as it is, for validation to
// refuse: removing a character between stray bytes could join them into
// a new one, so normalising twice would not agree. A plain ASCII value
// without surrounding white space, the common case, is s itself, found in
// one pass without allocating.
func normalizeOrderID(s string) string {
	if isTrimmedASCII(s) {
		return s
	}
	return normalizeSlow(s)
}

// normalizeSlow is normalizeOrderID for a value that may need a change;
// apart so that the fast path inlines.
func normalizeSlow(s string) string {
	if !utf8.ValidString(s) {
		return s
	}
	return norm.NFC.String(strings.TrimSpace(stripZeroWidth(s)))
}

// isTrimmedASCII reports whether s is ASCII and neither begins nor ends
// with white space or another control character: such a value is
// already normalised. (A control character that is no white space takes
// the slow path to come out unchanged.)
func isTrimmedASCII(s string) bool {
	if s == "" {
		return true
	}
	if s[0] <= ' ' || s[len(s)-1] <= ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// stripZeroWidth returns s without its zero-width characters, copying
// only when there are some. It works on bytes, so that invalid UTF-8 is
// kept as it is.
func stripZeroWidth(s string) string {
	var b []byte
	last := 0
	for i := 0; i+2 < len(s); i++ {
		if !isZeroWidthAt(s, i) {
			continue
		}
		if b == nil {
			b = make([]byte, 0, len(s)-3)
		}
		b = append(b, s[last:i]...)
		i += 2
		last = i + 1
	}
	if b == nil {
		return s
	}
	return string(append(b, s[last:]...))
}

// isZeroWidthAt reports whether the UTF-8 encoding of a zero-width
// character (U+200B, U+200C, U+200D, U+2060 or U+FEFF) begins at s[i];
// s[i+2] must exist. Their lead bytes are never continuation bytes, so a
// match is a whole character.
func isZeroWidthAt(s string, i int) bool {
	switch s[i] {
	case 0xe2:
		return s[i+1] == 0x80 && s[i+2] >= 0x8b && s[i+2] <= 0x8d || s[i+1] == 0x81 && s[i+2] == 0xa0
	case 0xef:
		return s[i+1] == 0xbb && s[i+2] == 0xbf
	}
	return false
}

// firstControl returns the first control character (Unicode category Cc:
// U+0000 to U+001F and U+007F to U+009F, tab and line breaks included) of
// the valid UTF-8 string s, and whether there is one.
func firstControl(s string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) {
			return r, true
		}
	}
	return 0, false
}
