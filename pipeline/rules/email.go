package rules

import "strings"

// FindEmail returns the bounds of the first e-mail address in s at or
// after from: a local part, "@", and a domain with a dot and a top-level
// label of two or more letters.
func FindEmail(s string, from int) (start, end int, ok bool) {
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
		labelStart := end
		for end < len(s) && isDomainChar(s[end]) {
			if s[end] == '.' {
				if end == labelStart {
					break // empty label
				}
				labelStart = end + 1
			}
			end++
		}
		for end > at+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		lastDot := strings.LastIndexByte(s[at+1:end], '.')
		if lastDot >= 0 {
			lastDot += at + 1
		}
		if start < at && lastDot > at+1 && lastDot < end-2 && tldOK(s[lastDot+1:end]) {
			return start, end, true
		}
		from = at + 1
	}
}

// HasEmail reports whether s contains an e-mail address.
func HasEmail(s string) bool {
	if strings.IndexByte(s, '@') < 0 {
		return false
	}
	_, _, ok := FindEmail(s, 0)
	return ok
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

func isLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }

func isLocalChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+/=?^_`{|}~.-", c) >= 0
}

func isDomainChar(c byte) bool {
	return isLetter(c) || c >= '0' && c <= '9' || c == '-' || c == '.'
}
