package mapping

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// redacted replaces a plain e-mail address in anything convpipe shows.
const redacted = "<e-mail redacted>"

// maxShown bounds the bytes of a value shown in a message.
const maxShown = 120

// findEmail returns the bounds of the first e-mail address in s at or
// after from: a local part, "@", and a domain with a dot and a top-level
// label of two or more letters.
func findEmail(s string, from int) (start, end int, ok bool) {
	for {
		at := strings.IndexByte(s[from:], '@')
		if at < 0 {
			return 0, 0, false
		}
		at += from
		start = at
		for start > from && isLocalChar(s[start-1]) {
			start--
		}
		end = at + 1
		lastDot, labelStart := -1, end
		for end < len(s) && isDomainChar(s[end]) {
			if s[end] == '.' {
				if end == labelStart {
					break // empty label
				}
				lastDot = end
				labelStart = end + 1
			}
			end++
		}
		for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		lastDot = strings.LastIndexByte(s[at+1:end], '.')
		if lastDot >= 0 {
			lastDot += at + 1
		}
		if start < at && lastDot > at+1 && lastDot < end-2 && tldOK(s[lastDot+1:end]) {
			return start, end, true
		}
		from = at + 1
	}
}

func tldOK(tld string) bool {
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if !isLetter(tld[i]) {
			return false
		}
	}
	return true
}

func isLocalChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+/=?^_`{|}~.-", c) >= 0
}

func isDomainChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}

// hasEmail reports whether s contains a plain e-mail address.
func hasEmail(s string) bool {
	if strings.IndexByte(s, '@') < 0 {
		return false
	}
	_, _, ok := findEmail(s, 0)
	return ok
}

// redact replaces every e-mail address in s.
func redact(s string) string {
	if strings.IndexByte(s, '@') < 0 {
		return s
	}
	var b strings.Builder
	from, last := 0, 0
	for {
		start, end, ok := findEmail(s, from)
		if !ok {
			break
		}
		b.WriteString(s[last:start])
		b.WriteString(redacted)
		last, from = end, end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// display makes a value fit for a message: e-mail addresses redacted,
// invalid UTF-8 replaced, and long values cut with their length noted.
func display(s string) string {
	s = redact(s)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > maxShown {
		n := len(s)
		cut := maxShown
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = redact(s[:cut]) + "…(" + strconv.Itoa(n) + " bytes)"
	}
	return s
}
