package mapping

import (
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// checkValue checks a non-empty wire value by the API's rules and
// convpipe's own (convpipe/pipeline/rules), and returns what is wrong, or
// "".
func checkValue(d *fieldDef, v string) string {
	r := rules.CheckValue(&d.api, v)
	if r == rules.None {
		return ""
	}
	return valueText(r, d, v)
}

// valueText says what is wrong with the value v of the field d, which
// breaks the rule r, and how to mend it.
func valueText(r rules.Rule, d *fieldDef, v string) string {
	switch r {
	case rules.NotUTF8:
		return "not valid UTF-8"
	case rules.TooLong:
		return "too long: " + strconv.Itoa(utf8.RuneCountInString(v)) + " characters, at most " + strconv.Itoa(d.max)
	case rules.ControlInID:
		c, _ := firstControl(v)
		return fmt.Sprintf("contains the control character %U (an OrderId must be printable text)", c)
	case rules.PersonalID:
		return "must not be an e-mail address (the API forbids identifying values; map the e-mail to CustomerEmail with hash)"
	case rules.EmailInValue:
		return "contains a plain e-mail address, which convpipe never sends (hash it into CustomerEmail, or leave it out)"
	case rules.NotID:
		return "not an integer id (up to 10 digits)"
	case rules.NotNumber:
		if d.kind == kindQuantity {
			return "not a number"
		}
		return "not a plain decimal number (use the number transform)"
	case rules.NotWhole:
		return "not a whole number"
	case rules.NotPositive:
		return "must be a whole number greater than 0"
	case rules.MoneyDecimals:
		return "more than 2 decimals (use the number transform)"
	case rules.NotDate, rules.NoOffset:
		return dateText(r, v)
	case rules.NotDigest:
		if hasEmail(v) {
			return "a plain e-mail address; CustomerEmail must be a SHA-1 or SHA-256 hex digest (add the hash transform)"
		}
		return "not a SHA-1 or SHA-256 hex digest"
	case rules.NotCurrency:
		return "not an ISO 4217 code of three upper-case letters"
	case rules.NotBool:
		return "not true or false"
	case rules.NotIP:
		return "not an IP address"
	}
	return r.String()
}

// dateText says what is wrong with the date v, which breaks r.
func dateText(r rules.Rule, v string) string {
	switch {
	case r == rules.NoOffset:
		return "date-time without a UTC offset (use the time transform with a zone)"
	case len(v) == 10:
		return "not an ISO 8601 date (2006-01-02)"
	}
	return "not an ISO 8601 date or date-time with offset (use the time transform)"
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
	t, r := rules.ParseDate(v)
	if r != rules.None {
		return t, dateText(r, v)
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
