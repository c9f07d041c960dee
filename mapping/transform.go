package mapping

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones even where the system has none
	"unicode/utf8"
)

// step is one compiled transform. apply never panics; an error says what
// is wrong with the value without repeating it (the caller names the
// field, the value and the rows).
type step interface {
	apply(s string) (string, error)
}

type trimStep struct{}

func (trimStep) apply(s string) (string, error) { return strings.TrimSpace(s), nil }

type lowerStep struct{}

func (lowerStep) apply(s string) (string, error) { return strings.ToLower(s), nil }

type upperStep struct{}

func (upperStep) apply(s string) (string, error) { return strings.ToUpper(s), nil }

type defaultStep struct{ value string }

func (d defaultStep) apply(s string) (string, error) {
	if s == "" {
		return d.value, nil
	}
	return s, nil
}

type lookupStep struct {
	table   map[string]string
	miss    string
	hasMiss bool
	keep    bool
}

var errNoEntry = errors.New("not in the lookup table")

func (l lookupStep) apply(s string) (string, error) {
	if v, ok := l.table[s]; ok {
		return v, nil
	}
	switch {
	case s == "" || l.keep:
		return s, nil
	case l.hasMiss:
		return l.miss, nil
	}
	return "", errNoEntry
}

type replaceStep struct {
	re   *regexp.Regexp
	with string
}

func (r replaceStep) apply(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return r.re.ReplaceAllString(s, r.with), nil
}

// extractStep keeps the text of the pattern's one capture group at its
// first match, or nothing when the pattern does not match.
type extractStep struct{ re *regexp.Regexp }

func (e extractStep) apply(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	loc := e.re.FindStringSubmatchIndex(s)
	if loc == nil || loc[2] < 0 {
		return "", nil
	}
	return s[loc[2]:loc[3]], nil
}

// compileExtract compiles an extract transform: a pattern with exactly
// one capture group.
func compileExtract(key, pattern string) (step, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, errAt(key, "%w", err)
	}
	if n := re.NumSubexp(); n != 1 {
		return nil, errAt(key, "the pattern must have exactly one capture group (the value to keep), it has %d: write ( ) around the part to keep and (?: ) around other groups", n)
	}
	return extractStep{re: re}, nil
}

type numberStep struct{ f numberFormat }

func (n numberStep) apply(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return n.f.canonical(s)
}

type integerStep struct{ f numberFormat }

func (n integerStep) apply(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	return n.f.whole(s)
}

type hashStep struct{ sha256 bool }

func (h hashStep) apply(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	// Lower-case into a stack buffer when the value is short ASCII.
	var buf [128]byte
	var norm []byte
	if len(s) <= len(buf) && isASCII(s) {
		norm = buf[:len(s)]
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			norm[i] = c
		}
	} else {
		norm = []byte(strings.ToLower(s))
	}
	var hexbuf [2 * sha256.Size]byte
	if h.sha256 {
		sum := sha256.Sum256(norm)
		hex.Encode(hexbuf[:], sum[:])
		return string(hexbuf[:]), nil
	}
	sum := sha1.Sum(norm)
	hex.Encode(hexbuf[:], sum[:])
	return string(hexbuf[:2*sha1.Size]), nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// timeLayout is one compiled input layout.
type timeLayout struct {
	layout string // Go layout; "" for the unix forms
	unix   int64  // 1 for seconds, 1000 for milliseconds; 0 otherwise
	// fixed, when set, reads the layout without time.Parse: it is made
	// of fixed-width numbers (2006 01 02 15 04 05) and separators.
	fixed *fixedLayout
	// offset is set when the layout carries a UTC offset (-07:00, Z07:00,
	// MST): the value keeps the offset it gives.
	offset bool
}

// fixedLayout holds the offsets of each element in a fixed layout; -1
// when absent.
type fixedLayout struct {
	n                                int
	year, month, day, hour, min, sec int
	lits                             []int // offsets of separators
}

// compileFixed returns the fixed form of a layout, or nil when it has
// anything else.
func compileFixed(layout string) *fixedLayout {
	f := &fixedLayout{n: len(layout), year: -1, month: -1, day: -1, hour: -1, min: -1, sec: -1}
	for i := 0; i < len(layout); {
		rest := layout[i:]
		var slot *int
		width := 2
		switch {
		case strings.HasPrefix(rest, "2006"):
			slot, width = &f.year, 4
		case strings.HasPrefix(rest, "01"):
			slot = &f.month
		case strings.HasPrefix(rest, "02"):
			slot = &f.day
		case strings.HasPrefix(rest, "15"):
			slot = &f.hour
		case strings.HasPrefix(rest, "04"):
			slot = &f.min
		case strings.HasPrefix(rest, "05"):
			slot = &f.sec
		case strings.IndexByte(" -/:.T,", rest[0]) >= 0:
			if rest[0] == 'T' && i > 0 && layout[i-1] >= 'A' && layout[i-1] <= 'Z' {
				return nil
			}
			f.lits = append(f.lits, i)
			i++
			continue
		default:
			return nil
		}
		if *slot >= 0 {
			return nil
		}
		*slot = i
		i += width
	}
	if f.year < 0 || f.month < 0 || f.day < 0 || (f.sec >= 0 && f.min < 0) || (f.min >= 0 && f.hour < 0) {
		return nil
	}
	return f
}

// parse reads s; ok is false when s does not fit (time.Parse then
// decides).
func (f *fixedLayout) parse(s, layout string, loc *time.Location) (time.Time, bool) {
	if len(s) != f.n {
		return time.Time{}, false
	}
	for _, i := range f.lits {
		if s[i] != layout[i] {
			return time.Time{}, false
		}
	}
	num := func(at, width int) (int, bool) {
		if at < 0 {
			return 0, true
		}
		v := 0
		for i := at; i < at+width; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v = v*10 + int(c-'0')
		}
		return v, true
	}
	y, ok1 := num(f.year, 4)
	mo, ok2 := num(f.month, 2)
	d, ok3 := num(f.day, 2)
	h, ok4 := num(f.hour, 2)
	mi, ok5 := num(f.min, 2)
	sec, ok6 := num(f.sec, 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	if d > 28 && time.Date(y, time.Month(mo), d, 12, 0, 0, 0, time.UTC).Day() != d {
		return time.Time{}, false // no such day in that month
	}
	return localTime(y, time.Month(mo), d, h, mi, sec, 0, loc), true
}

// parse reads s with time.Parse: in loc when the layout has no offset (a
// local time in a gap moves forward by the gap, as localTime does), with
// its own offset otherwise.
func (l timeLayout) parse(s string, loc *time.Location) (time.Time, bool) {
	if l.offset {
		// The value keeps its numeric offset; a zone abbreviation is read
		// in loc (CST in America/Chicago is -06:00).
		v, err := time.ParseInLocation(l.layout, s, loc)
		return v, err == nil
	}
	w, err := time.Parse(l.layout, s) // the wall clock, in UTC
	if err != nil {
		return time.Time{}, false
	}
	return localTime(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), w.Second(), w.Nanosecond(), loc), true
}

// hasOffset reports whether a Go layout carries a UTC offset or a zone
// abbreviation.
func hasOffset(layout string) bool {
	return strings.Contains(layout, "Z07") || strings.Contains(layout, "-07") || strings.Contains(layout, "MST")
}

// localTime is time.Date in loc, except that a wall-clock time that does
// not exist in loc (the hour skipped when the clocks go forward) is
// moved forward by the gap: 02:30 on the day Chicago skips from 02:00 to
// 03:00 is 03:30 CDT, where time.Date may give 01:30 CST.
func localTime(y int, mo time.Month, d, h, mi, sec, ns int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, sec, ns, loc)
	if loc == time.UTC {
		return t
	}
	// t keeps the wall clock asked for unless it fell into a gap.
	wall := time.Date(y, mo, d, h, mi, sec, ns, time.UTC)
	_, before := t.Zone()
	if t.Unix()+int64(before) == wall.Unix() {
		return t
	}
	// In a gap: read the wall clock with the offset in force just before
	// the transition.
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		ty, tmo, td := t.Date()
		th, tmi, ts := t.Clock()
		if time.Date(ty, tmo, td, th, tmi, ts, ns, time.UTC).After(wall) {
			// t is in the zone after the transition: take the one before.
			_, before = start.Add(-time.Second).Zone()
		}
	}
	return wall.Add(-time.Duration(before) * time.Second).In(loc)
}

type timeStep struct {
	layouts []timeLayout
	loc     *time.Location
	date    bool // write the date only
}

var (
	errTimeParse = errors.New("does not match the time layout")
	errTimeRange = errors.New("outside the years 0001 to 9999")
)

func (t timeStep) apply(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	var tm time.Time
	ok, outOfRange := false, false
	for _, l := range t.layouts {
		if l.unix != 0 {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				continue
			}
			// Years 0001 to 9999 only.
			const lo, hi = -62135596800, 253402300799
			if n/l.unix < lo || n/l.unix > hi {
				outOfRange = true
				continue
			}
			tm = time.Unix(n/l.unix, (n%l.unix)*int64(time.Second)/l.unix).In(t.loc)
			ok = true
			break
		}
		if l.fixed != nil {
			if v, fine := l.fixed.parse(s, l.layout, t.loc); fine {
				tm, ok = v, true
				break
			}
		}
		if v, fine := l.parse(s, t.loc); fine {
			tm, ok = v, true
			break
		}
	}
	if !ok {
		if outOfRange {
			return "", errTimeRange
		}
		return "", errTimeParse
	}
	if y := tm.Year(); y < 1 || y > 9999 {
		return "", errTimeRange
	}
	var buf [40]byte
	return string(appendISO(buf[:0], tm, t.date)), nil
}

// appendISO writes t as time.DateOnly (date) or as time.RFC3339Nano
// does, without interpreting a layout.
func appendISO(b []byte, t time.Time, date bool) []byte {
	// One zone lookup; the fields are then read in UTC, which needs none.
	_, off := t.Zone()
	t = t.UTC().Add(time.Duration(off) * time.Second)
	y, mo, d := t.Date()
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	if date {
		return b
	}
	h, mi, s := t.Clock()
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	if ns := t.Nanosecond(); ns != 0 {
		b = append(b, '.')
		start := len(b)
		b = appendDigits(b, ns, 9)
		for len(b) > start && b[len(b)-1] == '0' {
			b = b[:len(b)-1]
		}
	}
	if off == 0 {
		return append(b, 'Z')
	}
	zone := off / 60
	if zone < 0 {
		b = append(b, '-')
		zone = -zone
	} else {
		b = append(b, '+')
	}
	b = appendDigits(b, zone/60, 2)
	b = append(b, ':')
	return appendDigits(b, zone%60, 2)
}

// appendDigits writes v (>= 0) with at least width digits.
func appendDigits(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v >= 10 || width > 1 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	tmp[i] = byte('0' + v)
	return append(b, tmp[i:]...)
}

// compileChain compiles a field's transforms; key is the field's config
// key for errors, k the target field's kind.
func compileChain(key string, ts []Transform, k kind) ([]step, error) {
	steps := make([]step, 0, len(ts))
	for i, t := range ts {
		s, err := compileStep(fmt.Sprintf("%s.transforms[%d]", key, i), t, k)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	return steps, nil
}

func compileStep(key string, t Transform, k kind) (step, error) {
	set := transformsSet(t)
	switch len(set) {
	case 0:
		return nil, errAt(key, "empty transform")
	case 1:
	default:
		return nil, errAt(key, "one transform per list entry, found %s", strings.Join(set, " and "))
	}
	if t.Keep && t.Lookup == nil {
		return nil, errAt(key+".keep", "only with lookup")
	}
	switch set[0] {
	case "trim":
		return trimStep{}, nil
	case "lower":
		return lowerStep{}, nil
	case "upper":
		return upperStep{}, nil
	case "default":
		return defaultStep{value: *t.Default}, nil
	case "lookup":
		return compileLookup(key, t)
	case "replace":
		return compileReplace(key, *t.Replace)
	case "extract":
		return compileExtract(key+".extract", t.Extract)
	case "number":
		f, err := compileNumber(key+".number", *t.Number, k)
		return numberStep{f: f}, err
	case "integer":
		f, err := compileNumber(key+".integer", *t.Integer, k)
		if t.Integer.Decimals != nil {
			return nil, errAt(key+".integer.decimals", "an integer has no decimals")
		}
		return integerStep{f: f}, err
	case "time":
		return compileTime(key+".time", *t.Time)
	default: // hash
		switch t.Hash {
		case "sha1":
			return hashStep{}, nil
		case "sha256":
			return hashStep{sha256: true}, nil
		}
		return nil, errAt(key+".hash", "%q is not sha1 or sha256", t.Hash)
	}
}

// transformsSet returns the names of the transforms that t sets, in the
// order of Transform's fields; a default with a lookup is the lookup's.
func transformsSet(t Transform) []string {
	var set []string
	add := func(on bool, name string) {
		if on {
			set = append(set, name)
		}
	}
	add(t.Trim, "trim")
	add(t.Lower, "lower")
	add(t.Upper, "upper")
	add(t.Lookup != nil, "lookup")
	add(t.Default != nil && t.Lookup == nil, "default")
	add(t.Replace != nil, "replace")
	add(t.Extract != "", "extract")
	add(t.Number != nil, "number")
	add(t.Integer != nil, "integer")
	add(t.Time != nil, "time")
	add(t.Hash != "", "hash")
	return set
}

// compileLookup compiles the lookup of t, with its keep or default.
func compileLookup(key string, t Transform) (step, error) {
	if len(t.Lookup) == 0 {
		return nil, errAt(key+".lookup", "empty table")
	}
	if t.Keep && t.Default != nil {
		return nil, errAt(key+".keep", "keep and default exclude each other")
	}
	l := lookupStep{table: t.Lookup, keep: t.Keep}
	if t.Default != nil {
		l.miss, l.hasMiss = *t.Default, true
	}
	return l, nil
}

// compileReplace compiles a replace transform.
func compileReplace(key string, r Replace) (step, error) {
	re, err := regexp.Compile(r.Pattern)
	if err != nil {
		return nil, errAt(key+".replace.pattern", "%w", err)
	}
	if r.Pattern == "" {
		return nil, errAt(key+".replace.pattern", "empty")
	}
	return replaceStep{re: re, with: r.With}, nil
}

func compileNumber(key string, n Number, k kind) (numberFormat, error) {
	f := numberFormat{dec: '.', thou: ',', decimals: -1}
	switch n.Decimal {
	case "", ".":
	case ",":
		f.dec, f.thou = ',', '.'
	default:
		return f, errAt(key+".decimal", "%q is not \".\" or \",\"", n.Decimal)
	}
	switch n.Thousands {
	case "":
	case ",", ".", " ", "'", "_":
		f.thou = n.Thousands[0]
	default:
		return f, errAt(key+".thousands", "%q is not one of , . ' _ or a space", n.Thousands)
	}
	if f.thou == f.dec {
		return f, errAt(key+".thousands", "same as the decimal separator")
	}
	switch {
	case n.Decimals != nil:
		if *n.Decimals < 0 || *n.Decimals > 10 {
			return f, errAt(key+".decimals", "must be 0 to 10")
		}
		f.decimals = *n.Decimals
	case k == kindMoney:
		f.decimals = 2
	}
	return f, nil
}

// Time layouts by name.
var namedLayouts = map[string]timeLayout{
	"rfc3339": {layout: time.RFC3339Nano, offset: true},
	"unix":    {unix: 1},
	"unix_ms": {unix: 1000},
	"date":    {layout: time.DateOnly, fixed: compileFixed(time.DateOnly)},
}

func compileTime(key string, t Time) (step, error) {
	names := t.Layouts
	if t.Layout != "" {
		names = append([]string{t.Layout}, names...)
	}
	if len(names) == 0 {
		return nil, errAt(key+".layout", "required (a Go layout such as \"2006-01-02 15:04:05\", or rfc3339, unix, unix_ms, date)")
	}
	st := timeStep{}
	allOffset, allDate := true, true
	for i, n := range names {
		l, ok := namedLayouts[n]
		if !ok {
			if !strings.ContainsAny(n, "0126") {
				return nil, errAt(layoutKey(key, t, i), "%q is not a Go time layout (write the reference time 2006-01-02 15:04:05 in your format)", n)
			}
			l = timeLayout{layout: n, fixed: compileFixed(n)}
		}
		l.offset = l.unix == 0 && hasOffset(l.layout)
		if l.unix == 0 && !l.offset {
			allOffset = false
		}
		if !dateOnly(l) {
			allDate = false
		}
		st.layouts = append(st.layouts, l)
	}
	switch t.Output {
	case "":
		st.date = allDate
	case "datetime":
	case "date":
		st.date = true
	default:
		return nil, errAt(key+".output", "%q is not datetime or date", t.Output)
	}
	switch {
	case t.Zone != "":
		loc, err := time.LoadLocation(t.Zone)
		if err != nil || t.Zone == "Local" {
			return nil, errAt(key+".zone", "unknown time zone %q (an IANA name such as Europe/Berlin, or UTC)", t.Zone)
		}
		st.loc = loc
	case allOffset || st.date:
		st.loc = time.UTC
	default:
		return nil, errAt(key+".zone", "required: the layout has no UTC offset, so name the IANA zone the values were taken in (Europe/Berlin, UTC)")
	}
	return st, nil
}

// dateOnly reports whether a layout has no time of day: it writes two
// times of the same day alike.
func dateOnly(l timeLayout) bool {
	if l.unix != 0 {
		return false
	}
	a := time.Date(2006, 1, 2, 0, 0, 0, 0, time.UTC)
	b := time.Date(2006, 1, 2, 15, 4, 5, 123456789, time.UTC)
	return a.Format(l.layout) == b.Format(l.layout)
}

func layoutKey(key string, t Time, i int) string {
	if t.Layout != "" {
		if i == 0 {
			return key + ".layout"
		}
		i--
	}
	return fmt.Sprintf("%s.layouts[%d]", key, i)
}
