package mapping

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// normalizeOrderID returns s as order keys and OrderIds are compared and
// sent: without zero-width characters (U+200B, U+200C, U+200D, U+2060,
// U+FEFF), trimmed of surrounding white space, in Unicode NFC. Invalid
// UTF-8 is kept as it is, for validation to refuse. A plain ASCII value
// without surrounding white space, the common case, is s itself, found in
// one pass without allocating.
func normalizeOrderID(s string) string {
	if isTrimmedASCII(s) {
		return s
	}
	s = strings.TrimSpace(stripZeroWidth(s))
	return norm.NFC.String(s)
}

// isTrimmedASCII reports whether s is ASCII and neither begins nor ends
// with white space: such a value is already normalised.
func isTrimmedASCII(s string) bool {
	if s == "" {
		return true
	}
	if isASCIISpace(s[0]) || isASCIISpace(s[len(s)-1]) {
		return false
	}
	return isASCII(s)
}

func isASCIISpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
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
