package mapping

import (
	"errors"
	"unicode"
	"unicode/utf8"
)

// maxNumberLen bounds the text of a number, so that a runaway cell is an
// error and not work.
const maxNumberLen = 64

var (
	errNotNumber   = errors.New("not a number")
	errNumberLong  = errors.New("too long for a number")
	errGrouping    = errors.New("thousands separators must group three digits (check the decimal separator)")
	errExponent    = errors.New("exponent out of range (at most 40)")
	errNotWhole    = errors.New("not a whole number")
	errTwoSigns    = errors.New("more than one sign")
	errTwoCurrency = errors.New("more than one currency")
)

// numberFormat is a compiled Number.
type numberFormat struct {
	dec, thou byte
	// decimals is the number of decimals written; -1 keeps the digits
	// given, without trailing zeros.
	decimals int
}

// canonical parses a formatted number ("$1,234.50", "(12,00 €)", "1e3")
// and writes it as a plain decimal: an optional "-", digits, and a "."
// with decimals when there are any. It returns s itself when s is
// already in that form.
func (f numberFormat) canonical(s string) (string, error) {
	if f.isCanonical(s) {
		return s, nil
	}
	var buf [maxNumberLen + 8]byte
	neg, digits, point, err := f.parse(s, buf[:0])
	if err != nil {
		return "", err
	}
	var obuf [maxNumberLen + 16]byte
	out := render(neg, digits, point, f.decimals, obuf[:0])
	return string(out), nil
}

// isCanonical reports whether s is already what canonical would write:
// "0" or digits without a leading zero, an optional "-" (not on zero), and
// the decimals the format writes.
func (f numberFormat) isCanonical(s string) bool {
	if len(s) > maxNumberLen {
		return false
	}
	i, neg := 0, false
	if len(s) > 0 && s[0] == '-' {
		i, neg = 1, true
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n := i - start
	if n == 0 || n > 1 && s[start] == '0' {
		return false
	}
	zero := n == 1 && s[start] == '0'
	frac := 0
	if i < len(s) {
		if s[i] != '.' || f.dec != '.' {
			return false
		}
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			if s[i] != '0' {
				zero = false
			}
			i++
		}
		frac = i - fs
		if i != len(s) || frac == 0 {
			return false
		}
		if f.decimals < 0 && s[len(s)-1] == '0' {
			return false
		}
	}
	if neg && zero {
		return false
	}
	return f.decimals < 0 || frac == f.decimals
}

// parse reads s into its sign and digits; point is the number of digits
// before the decimal point (it may be negative or exceed len(digits)
// after an exponent).
func (f numberFormat) parse(s string, digits []byte) (neg bool, _ []byte, point int, err error) {
	s = trimSpace(s)
	if len(s) > maxNumberLen {
		return false, nil, 0, errNumberLong
	}
	var a affixes
	if len(s) >= 2 && s[0] == '(' && s[len(s)-1] == ')' {
		a.neg = true
		s = trimSpace(s[1 : len(s)-1])
	}
	if s, err = a.trimLeading(s); err != nil {
		return false, nil, 0, err
	}
	if s, err = a.trimTrailing(s); err != nil {
		return false, nil, 0, err
	}
	if digits, point, err = f.parseDigits(s, digits); err != nil {
		return false, nil, 0, err
	}
	return a.neg, digits, point, nil
}

// affixes is what was found around a number's digits: its sign, of which
// there may be one, the parentheses of a negative number, and at most one
// currency.
type affixes struct {
	neg  bool // the number is negative
	sign bool // a sign was found
	cur  bool // a currency was found
}

// trimLeading strips the leading sign, currency and spaces of s, in any
// order.
func (a *affixes) trimLeading(s string) (string, error) {
	for len(s) > 0 {
		switch {
		case s[0] == '-' || s[0] == '+':
			if a.sign {
				return "", errTwoSigns
			}
			a.sign = true
			a.neg = a.neg != (s[0] == '-')
			s = s[1:]
		case isSpace(s, 0):
			s = s[spaceLen(s, 0):]
		default:
			n := currencyPrefix(s)
			if n == 0 {
				return s, nil
			}
			if a.cur {
				return "", errTwoCurrency
			}
			a.cur = true
			s = s[n:]
		}
	}
	return s, nil
}

// trimTrailing strips the trailing currency, spaces and minus of s
// ("12,50 €", "12.50-").
func (a *affixes) trimTrailing(s string) (string, error) {
	for len(s) > 0 {
		last := s[len(s)-1]
		switch {
		case last == '-':
			if a.sign {
				return "", errTwoSigns
			}
			a.sign = true
			a.neg = !a.neg
			s = s[:len(s)-1]
		case last == ' ':
			s = s[:len(s)-1]
		default:
			if r, size := utf8.DecodeLastRuneInString(s); r == '\u00a0' || r == '\u202f' || r == '\u2009' {
				s = s[:len(s)-size]
				continue
			}
			n := currencySuffix(s)
			if n == 0 {
				return s, nil
			}
			if a.cur {
				return "", errTwoCurrency
			}
			a.cur = true
			s = s[:len(s)-n]
		}
	}
	return s, nil
}

// parseDigits appends the digits of s, the number without its sign and
// currency, to digits; point is as parse returns it. Thousands separators
// must group three digits; an exponent may follow digits without
// separators when the decimal separator is ".".
func (f numberFormat) parseDigits(s string, digits []byte) (_ []byte, point int, err error) {
	point = -1
	group := -1 // digits since the last thousands separator; -1 before the first
	lead := 0   // digits before the first separator
	exp := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits = append(digits, c)
			if point < 0 {
				if group >= 0 {
					group++
				} else {
					lead++
				}
			}
			i++
		case c == f.dec && point < 0:
			if group >= 0 && group != 3 {
				return nil, 0, errGrouping
			}
			point = len(digits)
			i++
		case point < 0 && (c == f.thou || c == ' ' || c == '\'' || isSpace(s, i)):
			if lead == 0 || lead > 3 || (group >= 0 && group != 3) {
				return nil, 0, errGrouping
			}
			group = 0
			if c >= utf8.RuneSelf {
				i += spaceLen(s, i)
			} else {
				i++
			}
		case (c == 'e' || c == 'E') && len(digits) > 0 && group < 0 && f.dec == '.':
			e, err := parseExponent(s[i+1:])
			if err != nil {
				return nil, 0, err
			}
			exp = e
			i = len(s)
		default:
			return nil, 0, errNotNumber
		}
	}
	if len(digits) == 0 {
		return nil, 0, errNotNumber
	}
	if group >= 0 && point < 0 && group != 3 {
		return nil, 0, errGrouping
	}
	if point < 0 {
		point = len(digits)
	}
	return digits, point + exp, nil
}

// parseExponent reads "+5", "-3" or "12"; exponents beyond ±40 are
// refused.
func parseExponent(s string) (int, error) {
	neg := false
	if len(s) > 0 && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) == 0 {
		return 0, errNotNumber
	}
	e := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errNotNumber
		}
		if e = e*10 + int(s[i]-'0'); e > 40 {
			return 0, errExponent
		}
	}
	if neg {
		e = -e
	}
	return e, nil
}

// render writes the number as a plain decimal into out, rounding half away
// from zero or padding to decimals (or, when decimals < 0, keeping the
// digits without trailing zeros).
func render(neg bool, digits []byte, point, decimals int, out []byte) []byte {
	intg, frac := splitAtPoint(digits, point)
	if decimals >= 0 && len(frac) > decimals {
		intg, frac = roundAt(intg, frac, decimals)
	}
	if decimals < 0 {
		for len(frac) > 0 && frac[len(frac)-1] == '0' {
			frac = frac[:len(frac)-1]
		}
	}
	for len(intg) > 1 && intg[0] == '0' {
		intg = intg[1:]
	}
	if neg && !(allZeros(intg) && allZeros(frac)) {
		out = append(out, '-')
	}
	out = append(out, intg...)
	if len(frac) > 0 || decimals > 0 {
		out = append(out, '.')
		out = append(out, frac...)
		for i := len(frac); i < decimals; i++ {
			out = append(out, '0')
		}
	}
	return out
}

// splitAtPoint returns the integer part of the number, digits[:point]
// with zeros added when point is past the end, and its fraction: zeros
// when point is negative, then the rest.
func splitAtPoint(digits []byte, point int) (intg, frac []byte) {
	switch {
	case point > 0 && point <= len(digits):
		// The common case: no exponent moved the point out of the digits.
		return digits[:point], digits[point:]
	case point <= 0:
		tmp := make([]byte, 0, 1-point+len(digits))
		tmp = append(tmp, '0')
		for range -point {
			tmp = append(tmp, '0')
		}
		tmp = append(tmp, digits...)
		return tmp[:1], tmp[1:]
	default:
		tmp := make([]byte, 0, point)
		tmp = append(tmp, digits...)
		for range point - len(digits) {
			tmp = append(tmp, '0')
		}
		return tmp, nil
	}
}

// roundAt cuts frac, which is longer, to decimals digits and rounds the
// magnitude intg.frac half up, changing the digits in place.
func roundAt(intg, frac []byte, decimals int) ([]byte, []byte) {
	up := frac[decimals] >= '5'
	frac = frac[:decimals]
	if up {
		// Increment intg.frac as one digit string.
		if increment(frac) && increment(intg) {
			intg = append([]byte{'1'}, intg...)
		}
	}
	return intg, frac
}

// increment adds one to the digit string d in place and reports whether
// it carries out of the first digit.
func increment(d []byte) bool {
	for i := len(d) - 1; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return false
		}
		d[i] = '0'
	}
	return true
}

// allZeros reports whether every digit of d is 0.
func allZeros(d []byte) bool {
	for _, c := range d {
		if c != '0' {
			return false
		}
	}
	return true
}

// whole parses a formatted number that must be whole ("2", "2.00", "1,000")
// and writes it as an integer.
func (f numberFormat) whole(s string) (string, error) {
	f.decimals = -1
	v, err := f.canonical(s)
	if err != nil {
		return "", err
	}
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			return "", errNotWhole
		}
	}
	return v, nil
}

// isZero reports whether s is a number equal to zero, read with the
// default format.
func isZero(s string) bool {
	var buf [maxNumberLen + 8]byte
	_, digits, _, err := numberFormat{dec: '.', thou: ','}.parse(s, buf[:0])
	if err != nil {
		return false
	}
	for _, c := range digits {
		if c != '0' {
			return false
		}
	}
	return true
}

// currencyPrefix returns the length of a currency symbol or ISO 4217 code
// at the start of s, or 0.
func currencyPrefix(s string) int {
	if len(s) >= 3 && isUpper(s[0]) && isUpper(s[1]) && isUpper(s[2]) && (len(s) == 3 || !isLetter(s[3])) {
		return 3
	}
	r, size := utf8.DecodeRuneInString(s)
	if r >= utf8.RuneSelf && unicode.Is(unicode.Sc, r) || r == '$' {
		return size
	}
	return 0
}

// currencySuffix returns the length of a currency symbol or ISO 4217 code
// at the end of s, or 0.
func currencySuffix(s string) int {
	n := len(s)
	if n >= 3 && isUpper(s[n-1]) && isUpper(s[n-2]) && isUpper(s[n-3]) && (n == 3 || !isLetter(s[n-4])) {
		return 3
	}
	r, size := utf8.DecodeLastRuneInString(s)
	if r >= utf8.RuneSelf && unicode.Is(unicode.Sc, r) || r == '$' {
		return size
	}
	return 0
}

func isUpper(c byte) bool  { return c >= 'A' && c <= 'Z' }
func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

// isSpace reports whether s has a space at i: ASCII white space or a
// no-break or thin space, as thousands separators are written.
func isSpace(s string, i int) bool { return spaceLen(s, i) > 0 }

func spaceLen(s string, i int) int {
	switch c := s[i]; {
	case c == ' ' || c == '\t':
		return 1
	case c < utf8.RuneSelf:
		return 0
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	if r == '\u00a0' || r == '\u202f' || r == '\u2009' {
		return size
	}
	return 0
}

// trimSpace trims ASCII white space and no-break spaces.
func trimSpace(s string) string {
	for len(s) > 0 {
		if n := spaceLen(s, 0); n > 0 {
			s = s[n:]
			continue
		}
		if s[0] == '\n' || s[0] == '\r' || s[0] == '\v' || s[0] == '\f' {
			s = s[1:]
			continue
		}
		break
	}
	for len(s) > 0 {
		c := s[len(s)-1]
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' {
			s = s[:len(s)-1]
			continue
		}
		if r, size := utf8.DecodeLastRuneInString(s); r == '\u00a0' || r == '\u202f' || r == '\u2009' {
			s = s[:len(s)-size]
			continue
		}
		break
	}
	return s
}

// Checks of wire values.
