package mapping

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"convpipe/pipeline"
)

// checkValue checks a non-empty wire value against its field's kind and
// length limit, and returns what is wrong, or "".
func checkValue(d *fieldDef, v string) string {
	if v == "" {
		return ""
	}
	// One pass tells plain ASCII without "@" (the common case) apart.
	plain := true
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= utf8.RuneSelf || c == '@' {
			plain = false
			break
		}
	}
	if !plain && !utf8.ValidString(v) {
		return "not valid UTF-8"
	}
	if d.max > 0 && len(v) > d.max {
		if n := utf8.RuneCountInString(v); n > d.max {
			return "too long: " + strconv.Itoa(n) + " characters, at most " + strconv.Itoa(d.max)
		}
	}
	return checkKind(d, v, plain)
}

// checkKind checks a non-empty, valid UTF-8 wire value against its
// field's kind, and returns what is wrong, or "". plain says that v is
// ASCII without "@".
func checkKind(d *fieldDef, v string, plain bool) string {
	switch d.kind {
	case kindString:
		if d.name == "OrderId" {
			if r, ok := firstControl(v); ok {
				return fmt.Sprintf("contains the control character %U (an OrderId must be printable text)", r)
			}
		}
		if !plain && hasEmail(v) {
			if d.name == "CustomerId" {
				return "must not be an e-mail address (the API forbids identifying values; map the e-mail to CustomerEmail with hash)"
			}
			return "contains a plain e-mail address, which convpipe never sends (hash it into CustomerEmail, or leave it out)"
		}
	case kindID:
		if !isDigits(v, 10) {
			return "not an integer id (up to 10 digits)"
		}
	case kindQuantity:
		return checkQuantity(v)
	case kindDecimal:
		if !isPlainDecimal(v, -1) {
			return "not a plain decimal number (use the number transform)"
		}
	case kindMoney:
		if !isPlainDecimal(v, -1) {
			return "not a plain decimal number (use the number transform)"
		}
		if !isPlainDecimal(v, 2) {
			return "more than 2 decimals (use the number transform)"
		}
	case kindDate:
		if _, msg := parseISO(v); msg != "" {
			return msg
		}
	case kindDigest:
		if hasEmail(v) {
			return "a plain e-mail address; CustomerEmail must be a SHA-1 or SHA-256 hex digest (add the hash transform)"
		}
		if !isHex(v) || len(v) != 40 && len(v) != 64 {
			return "not a SHA-1 or SHA-256 hex digest"
		}
	case kindCurrency:
		if len(v) != 3 || !isUpper(v[0]) || !isUpper(v[1]) || !isUpper(v[2]) {
			return "not an ISO 4217 code of three upper-case letters"
		}
	case kindBool:
		if v != "true" && v != "false" {
			return "not true or false"
		}
	case kindIP:
		if _, err := netip.ParseAddr(v); err != nil {
			return "not an IP address"
		}
	}
	return ""
}

// checkQuantity checks a non-empty quantity: a whole number greater
// than 0.
func checkQuantity(v string) string {
	if isPlainDecimal(v, -1) && !isDigits(strings.TrimPrefix(v, "-"), 64) {
		return "not a whole number"
	}
	if !isPlainDecimal(v, -1) {
		return "not a number"
	}
	if v[0] == '-' || strings.Trim(v, "0") == "" {
		return "must be a whole number greater than 0"
	}
	return ""
}

// check is checkValue, skipped down to the length limit when the plan's
// last transform guarantees the kind's shape.
func (p *plan) check(v string) string {
	if p.trusted {
		if p.def.max > 0 && len(v) > p.def.max {
			return checkValue(p.def, v)
		}
		return ""
	}
	return checkValue(p.def, v)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// parseISO parses an ISO 8601 value as the API takes it: a date
// (2006-01-02) or a date-time with an offset (RFC 3339).
func parseISO(v string) (time.Time, string) {
	if len(v) == 10 {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, "not an ISO 8601 date (2006-01-02)"
		}
		return t, ""
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if _, err2 := time.Parse("2006-01-02T15:04:05.999999999", v); err2 == nil {
			return time.Time{}, "date-time without a UTC offset (use the time transform with a zone)"
		}
		return time.Time{}, "not an ISO 8601 date or date-time with offset (use the time transform)"
	}
	return t, ""
}

const nowRefused = "NOW records the time of sending, not of the order; a batch must send the real date (set allow_now to permit it)"

// maxProblems bounds the problems listed for one order; the rest are
// counted in a last message.
const maxProblems = 50

// maxRefs bounds the source rows named by one order-level message.
const maxRefs = 10

// problems collects the problems of one order.
type problems struct {
	list    []pipeline.Message
	dropped int
}

func (p *problems) add(field, value, text string, refs []pipeline.Ref) {
	if len(p.list) >= maxProblems {
		p.dropped++
		return
	}
	p.list = append(p.list, pipeline.Message{Field: field, Value: display(value), Text: text, Refs: refs})
}

func (p *problems) result() []pipeline.Message {
	if p.dropped > 0 {
		p.list = append(p.list, pipeline.Message{Text: strconv.Itoa(p.dropped) + " more problems not listed"})
	}
	return p.list
}

// checkEventDate checks the rules EventDate has beyond its kind: NOW only
// when allowed, not in the future beyond the tolerance, and not older
// than max_event_age.
func (m *Mapping) checkEventDate(v string) string {
	if v == "NOW" {
		if m.allowNow {
			return ""
		}
		return nowRefused
	}
	t, msg := parseISO(v)
	if msg != "" {
		return msg
	}
	now := m.now()
	if t.After(now.Add(m.tolerance)) {
		return "in the future (more than " + m.tolerance.String() + " ahead of now)"
	}
	return tooOld(t, now, m.maxAge)
}
