package mapping

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"convpipe/pipeline/rules"
)

// redacted replaces a plain e-mail address in anything convpipe shows.
const redacted = "<e-mail redacted>"

// maxShown bounds the bytes of a value shown in a message.
const maxShown = 120

// findEmail returns the bounds of the first e-mail address in s at or
// after from, as the API's rules find it.
func findEmail(s string, from int) (start, end int, ok bool) { return rules.FindEmail(s, from) }

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
