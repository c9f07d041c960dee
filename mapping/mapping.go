package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"convpipe/pipeline"
)

// resolved holds the positions of the mapping's columns in one header.
type resolved struct {
	h       *pipeline.Header
	idx     []int // by slot; -1 when the header lacks the column
	missing []string
}

// resolve returns the column positions for h, cached for the last header
// seen.
func (m *Mapping) resolve(h *pipeline.Header) *resolved {
	if r := m.header.Load(); r != nil && r.h == h {
		return r
	}
	r := &resolved{h: h, idx: make([]int, len(m.columns))}
	for s, c := range m.columns {
		i, ok := -1, false
		if h != nil {
			i, ok = h.Index(c)
		}
		if !ok {
			i = -1
			r.missing = append(r.missing, c)
		}
		r.idx[s] = i
	}
	m.header.Store(r)
	return r
}

// cell returns the value of the column at slot in r; a null or missing
// value is "".
func cell(r *pipeline.Row, idx []int, slot int) string {
	i := idx[slot]
	if i < 0 || i >= len(r.Values) {
		return ""
	}
	if r.Nulls != nil && i < len(r.Nulls) && r.Nulls[i] {
		return ""
	}
	return r.Values[i]
}

// cell returns the value of the column at slot, normalised when the
// plan normalises.
func (p *plan) cell(r *pipeline.Row, idx []int, slot int) string {
	v := cell(r, idx, slot)
	if p.norm && !isTrimmedASCII(v) { // normalizeOrderID, one call less
		return normalizeSlow(v)
	}
	return v
}

// raw returns the plan's value before its transforms. A template whose
// columns are all empty is empty.
func (p *plan) raw(r *pipeline.Row, idx []int) string {
	switch p.src {
	case srcConst:
		return p.konst
	case srcColumn:
		return p.cell(r, idx, p.slot)
	}
	n, empty := 0, true
	for _, pt := range p.tmpl {
		if pt.slot >= 0 {
			v := p.cell(r, idx, pt.slot)
			n += len(v)
			empty = empty && v == ""
		} else {
			n += len(pt.lit)
		}
	}
	if empty {
		return ""
	}
	var b strings.Builder
	b.Grow(n)
	for _, pt := range p.tmpl {
		if pt.slot >= 0 {
			b.WriteString(p.cell(r, idx, pt.slot))
		} else {
			b.WriteString(pt.lit)
		}
	}
	return b.String()
}

// value returns the plan's value for row r. On failure it returns the
// input of the failing step and the step's index.
func (p *plan) value(r *pipeline.Row, idx []int) (v, in string, step int, err error) {
	switch p.src {
	case srcConst:
		return p.konst, "", 0, nil
	case srcExpr:
		return p.exprValue(r, idx)
	}
	return p.apply(p.raw(r, idx))
}

// exprValue evaluates the plan's expression on r (empty when every
// column it reads is empty on r) and runs the transforms on its result;
// the expression is step 0 of the plan's names.
func (p *plan) exprValue(r *pipeline.Row, idx []int) (v, in string, step int, err error) {
	s := ""
	// An expression whose columns are all empty is empty, as a template
	// is: the line leaves the field to another line.
	if len(p.slots) == 0 || !emptyCells(r, idx, p.slots) {
		s, in, err = p.expr.eval(r, idx, p.def)
		if err != nil {
			return "", in, 0, err
		}
	}
	v, in, step, err = p.apply(s)
	return v, in, step + 1, err
}

// apply runs the plan's transforms on v and, when the plan normalises,
// normalises the result. On failure it returns the input of the failing
// step and the step's index.
func (p *plan) apply(v string) (out, in string, step int, err error) {
	for i, s := range p.steps {
		o, err := s.apply(v)
		if err != nil {
			return "", v, i, err
		}
		v = o
	}
	if p.norm {
		v = normalizeOrderID(v)
	}
	return v, "", 0, nil
}

// failure describes a failed transform.
func (p *plan) failure(step int, err error) string {
	return p.names[step] + ": " + err.Error() + " (" + p.from + ")"
}

// columns resolves the rows of one order, which usually share a header.
type columns struct {
	m    *Mapping
	last *resolved
	miss []string // missing columns seen, reported once
}

func (c *columns) at(r *pipeline.Row) []int {
	if c.last == nil || c.last.h != r.Header {
		c.last = c.m.resolve(r.Header)
		for _, name := range c.last.missing {
			if !containsString(c.miss, name) {
				c.miss = append(c.miss, name)
			}
		}
	}
	return c.last.idx
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// OrderKey returns the values of the order-key columns, each normalised
// as OrderId's columns are (so that the lines of one order group together
// however its OrderId is spelt) unless normalize_order_key is false,
// joined by the unit separator (U+001F) when there are several. It is
// "" when every order-key column is empty.
func (m *Mapping) OrderKey(r pipeline.Row) string {
	idx := m.resolve(r.Header).idx
	if len(m.keySlots) == 1 {
		return m.keyCell(&r, idx, m.keySlots[0])
	}
	n := len(m.keySlots) // a hint: normalising may change the lengths
	for _, s := range m.keySlots {
		n += len(cell(&r, idx, s))
	}
	return string(m.appendKey(make([]byte, 0, n), &r, idx))
}

// appendKey appends the order key of r, of several columns, to b; it
// appends nothing when every key column is empty.
func (m *Mapping) appendKey(b []byte, r *pipeline.Row, idx []int) []byte {
	start := len(b)
	for i, s := range m.keySlots {
		if i > 0 {
			b = append(b, '\x1f')
		}
		b = append(b, m.keyCell(r, idx, s)...)
	}
	if len(b)-start == len(m.keySlots)-1 {
		return b[:start] // only the separators: every key column is empty
	}
	return b
}

// OrderKeyer returns OrderKey as a function for the rows one goroutine
// reads, in order: when a row's key is that of the row before (the later
// lines of an order), it returns the string it returned then instead of
// building the key again, so that grouping costs no allocation per line.
func (m *Mapping) OrderKeyer() func(pipeline.Row) string {
	if len(m.keySlots) == 1 {
		return m.OrderKey // the key is the cell itself: nothing to build
	}
	var buf []byte
	var last string
	return func(r pipeline.Row) string {
		buf = m.appendKey(buf[:0], &r, m.resolve(r.Header).idx)
		if string(buf) != last {
			last = string(buf)
		}
		return last
	}
}

// keyEmpty reports whether every order-key column of r is empty (after
// normalisation): OrderKey returns "" for it.
func (m *Mapping) keyEmpty(r *pipeline.Row, idx []int) bool {
	for _, s := range m.keySlots {
		if m.keyCell(r, idx, s) != "" {
			return false
		}
	}
	return true
}

// emptyKey returns out as the refusal of lines whose order key is empty:
// they belong to no order the mapping can name.
func (m *Mapping) emptyKey(out pipeline.Mapped, lines []pipeline.Row) pipeline.Mapped {
	conv := out.Conversion
	conv.Refs = refsOf(lines)
	names := make([]string, len(m.keySlots))
	for i, s := range m.keySlots {
		names[i] = strconv.Quote(m.columns[s])
	}
	what := "column " + names[0]
	if len(names) > 1 {
		what = "columns " + strings.Join(names, ", ")
	}
	text := "the order key (" + what + ") is empty, so the line belongs to no order; " +
		"when the file lists an order's later lines with the key left empty under its first line, set group.fill_down: true"
	var probs problems
	probs.add("", "", text, conv.Refs[:min(len(conv.Refs), maxRefs)])
	out.Problems = probs.result()
	return out
}

// keyCell returns the value of the order-key column at slot, normalised
// when the mapping normalises.
func (m *Mapping) keyCell(r *pipeline.Row, idx []int, slot int) string {
	v := cell(r, idx, slot)
	if m.normalize && !isTrimmedASCII(v) { // normalizeOrderID, one call less
		return normalizeSlow(v)
	}
	return v
}

// Columns returns the source columns the mapping reads, each once: the
// order key's, then those of the order-level and item fields in wire
// order, then the filters'.
func (m *Mapping) Columns() []string { return append([]string(nil), m.columns...) }

// SetClock sets the clock that the EventDate checks (max_event_age, the
// future tolerance) measure against, time.Now unless set: a test whose
// export has fixed dates checks them as of a fixed day. Call it before
// the first Map.
func (m *Mapping) SetClock(now func() time.Time) { m.now = now }

// HeaderError reports that an object's header does not fit the mapping.
type HeaderError struct {
	// Object is the object's key.
	Object string
	// Missing lists the mapped columns the header lacks, each with the
	// configuration keys that read it.
	Missing []MissingColumn
	// Duplicated lists the mapped columns the header has more than once.
	Duplicated []string
	// Columns are the header's columns.
	Columns []string
}

// MissingColumn is a mapped column that a header lacks.
type MissingColumn struct {
	Column string
	// UsedBy lists the configuration keys that read it
	// ("fields.CustomerEmail").
	UsedBy []string
}

// Error lists what is wrong and the file's columns.
func (e *HeaderError) Error() string {
	var b strings.Builder
	b.WriteString(e.Object)
	b.WriteString(": header does not fit the mapping:")
	for _, mc := range e.Missing {
		fmt.Fprintf(&b, " column %q (%s) is missing;", mc.Column, strings.Join(mc.UsedBy, ", "))
	}
	for _, d := range e.Duplicated {
		fmt.Fprintf(&b, " column %q occurs more than once;", d)
	}
	b.WriteString(" the file's columns are: ")
	const maxListed = 100
	for i, c := range e.Columns {
		if i == maxListed {
			fmt.Fprintf(&b, " and %d more", len(e.Columns)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(display(c)))
	}
	return b.String()
}

// CheckHeader returns a *HeaderError, listing the header's columns, when
// the header lacks a column the mapping reads or has one of them more than
// once.
func (m *Mapping) CheckHeader(obj pipeline.Object, h *pipeline.Header) error {
	e := &HeaderError{Object: obj.Key}
	if h != nil {
		e.Columns = h.Names()
	}
	for s, c := range m.columns {
		ok := false
		if h != nil {
			_, ok = h.Index(c)
		}
		if !ok {
			e.Missing = append(e.Missing, MissingColumn{Column: c, UsedBy: append([]string(nil), m.uses[s]...)})
		}
	}
	if h != nil {
		for _, d := range h.Duplicates() {
			if _, ok := m.slots[d]; ok {
				e.Duplicated = append(e.Duplicated, d)
			}
		}
	}
	if len(e.Missing) == 0 && len(e.Duplicated) == 0 {
		return nil
	}
	return e
}

// disagreement records that an order-level value differs between lines.
type disagreement struct {
	plan  int
	value string
	refs  []pipeline.Ref
	count int
}

// Map turns the lines of one order into a conversion. It never panics:
// whatever is wrong with the lines is a Problem naming the field, the
// value (e-mail addresses redacted) and the source rows.
func (m *Mapping) Map(lines []pipeline.Row) pipeline.Mapped {
	conv := &pipeline.Conversion{}
	out := pipeline.Mapped{Conversion: conv}
	var probs problems
	if len(lines) == 0 {
		probs.add("", "", "the order has no lines", nil)
		out.Problems = probs.result()
		return out
	}
	cols := columns{m: m}
	if m.keyEmpty(&lines[0], cols.at(&lines[0])) {
		return m.emptyKey(out, lines)
	}

	// Order filters on columns come first: a test order is left out
	// whole, whatever its lines hold.
	if f := m.columnOrderSkip(lines, &cols); f != nil {
		out = m.skipOrder(out, lines, &cols, f.reason)
		out.Reversal = f.disposition
		return out
	}
	kept := m.applyRowFilters(lines, &cols, &out)
	if len(kept) == 0 {
		skipped := out.SkippedRows
		out = m.skipOrder(out, lines, &cols, "every line was left out by a row filter")
		out.SkippedRows = skipped
		return out
	}

	// Refs: every kept line; order-level messages name the first few.
	conv.Refs = refsOf(kept)
	orderRefs := conv.Refs[:min(len(conv.Refs), maxRefs):min(len(conv.Refs), maxRefs)]

	// Order-level values, from the first kept line.
	var vbuf [48]string
	var bbuf [48]bool
	vals, bad := vbuf[:0], bbuf[:0]
	if len(m.order) > len(vbuf) {
		vals, bad = make([]string, 0, len(m.order)), make([]bool, 0, len(m.order))
	}
	vals, bad = m.orderValues(&kept[0], &cols, vals, bad, orderRefs, &probs)
	m.agree(lines, kept, &cols, vals, bad, &probs)
	st := m.checkOrder(vals, bad, orderRefs, &probs)

	// One allocation holds the order-level fields and every item's.
	all := make([]pipeline.Field, 0, st.n+len(kept)*len(m.items))
	conv.Fields = m.appendOrderFields(all[:0:st.n], vals, bad)
	conv.Key = m.key(vals)

	// Items: one per kept line.
	if len(m.items) > 0 {
		m.buildItems(conv, all[st.n:st.n], kept, &cols, &probs)
	}

	// Order filters on mapped values.
	if f := m.valueOrderSkip(conv, vals); f != nil {
		out.SkippedRows = nil
		out = m.skipOrder(out, lines, &cols, f.reason)
		out.Reversal = f.disposition
		return out
	}

	m.checkStructure(conv, cols.miss, orderRefs, &probs)
	out.Problems = probs.result()
	return out
}

// columnOrderSkip returns the first order filter on a column that holds
// on one of the lines, or nil.
func (m *Mapping) columnOrderSkip(lines []pipeline.Row, cols *columns) *filter {
	for _, f := range m.orderFilters {
		if f.subj != subjColumn {
			continue
		}
		for i := range lines {
			r := &lines[i]
			if v := cell(r, cols.at(r), f.slot); f.test(v) {
				return f
			}
		}
	}
	return nil
}

// applyRowFilters returns the lines that no row filter leaves out, and
// records each line left out in out.SkippedRows. It returns lines itself
// when none is left out.
func (m *Mapping) applyRowFilters(lines []pipeline.Row, cols *columns, out *pipeline.Mapped) []pipeline.Row {
	if len(m.rowFilters) == 0 {
		return lines
	}
	var keep []pipeline.Row
	for i := range lines {
		r := &lines[i]
		if f, v := m.rowSkip(r, cols.at(r)); f != nil {
			if keep == nil {
				keep = make([]pipeline.Row, 0, len(lines))
				keep = append(keep, lines[:i]...)
			}
			out.SkippedRows = append(out.SkippedRows, pipeline.Message{
				Field: f.name, Value: display(v), Text: f.reason, Refs: []pipeline.Ref{r.Ref()},
			})
			continue
		}
		if keep != nil {
			keep = append(keep, *r)
		}
	}
	if keep != nil {
		return keep
	}
	return lines
}

// refsOf returns the refs of rows.
func refsOf(rows []pipeline.Row) []pipeline.Ref {
	refs := make([]pipeline.Ref, len(rows))
	for i := range rows {
		refs[i] = rows[i].Ref()
	}
	return refs
}

// orderValues appends the value of every order-level field on the line
// base to vals, and to bad whether its transforms failed; a failure is a
// problem naming refs.
func (m *Mapping) orderValues(base *pipeline.Row, cols *columns, vals []string, bad []bool, refs []pipeline.Ref, probs *problems) ([]string, []bool) {
	bix := cols.at(base)
	for _, p := range m.order {
		v, in, step, err := p.value(base, bix)
		if err != nil {
			probs.add(p.def.name, in, p.failure(step, err), refs)
		}
		vals, bad = append(vals, v), append(bad, err != nil)
	}
	return vals, bad
}

// orderStatus is what the checks of the order-level values found.
type orderStatus struct {
	// n counts the order-level fields to send.
	n int
}

// checkOrder checks the order-level values; fields in catalogue order. A
// value that fails its check is redacted in vals when it holds an e-mail
// address.
func (m *Mapping) checkOrder(vals []string, bad []bool, refs []pipeline.Ref, probs *problems) orderStatus {
	var st orderStatus
	for i, p := range m.order {
		v := vals[i]
		if bad[i] {
			continue
		}
		if v == "" && !p.keep {
			continue
		}
		st.n++
		if v == "" {
			continue
		}
		var msg string
		if p.role == roleEventDate {
			msg = m.checkEventDate(v)
		} else {
			msg = p.check(v)
		}
		if msg != "" {
			probs.add(p.def.name, v, msg, refs)
			if hasEmail(v) {
				vals[i] = redact(v)
			}
		}
	}
	return st
}

// appendOrderFields appends the order-level fields to send to fields, in
// wire order.
func (m *Mapping) appendOrderFields(fields []pipeline.Field, vals []string, bad []bool) []pipeline.Field {
	for i, p := range m.order {
		if bad[i] || vals[i] == "" && !p.keep {
			continue
		}
		fields = append(fields, pipeline.Field{Name: p.def.name, Value: vals[i]})
	}
	return fields
}

// valueOrderSkip returns the first order filter on a mapped field or the
// amount that holds for conv, or nil.
func (m *Mapping) valueOrderSkip(conv *pipeline.Conversion, vals []string) *filter {
	for _, f := range m.orderFilters {
		if f.subj != subjColumn && m.orderFilterHolds(f, conv, vals) {
			return f
		}
	}
	return nil
}

// checkStructure applies the rules of the whole conversion (an event
// type, CampaignId, OrderId, EventDate and an attribution key, no
// OrderSubTotalPostDiscount with items, each item's required fields) and
// reports each mapped column missing from the file (miss).
func (m *Mapping) checkStructure(conv *pipeline.Conversion, miss []string, refs []pipeline.Ref, probs *problems) {
	m.checkRules(conv, refs, probs)
	for _, name := range miss {
		probs.add("", "", fmt.Sprintf("the file lacks the mapped column %q", name), refs)
	}
}

// eventTypeFrom says where the event type comes from, for messages.
func (m *Mapping) eventTypeFrom() string {
	var from []string
	for _, n := range [...]string{"EventTypeId", "EventTypeCode"} {
		if p := m.byName[n]; p != nil {
			from = append(from, p.from)
		}
	}
	return strings.Join(from, " and ")
}

// key returns the conversion's identity from the order-level values.
func (m *Mapping) key(vals []string) pipeline.Key {
	var k pipeline.Key
	code := ""
	for i, p := range m.order {
		switch p.role {
		case roleEventTypeID:
			k.EventType = vals[i]
		case roleEventTypeCode:
			code = vals[i]
		case roleOrderID:
			k.OrderID = vals[i]
		}
	}
	if k.EventType == "" {
		k.EventType = code
	}
	return k
}

// lineKey returns the key that the key fields' values on r make, as key
// does from an order's values.
func (m *Mapping) lineKey(r *pipeline.Row, idx []int) pipeline.Key {
	var k pipeline.Key
	code := ""
	for _, p := range m.order {
		switch p.role {
		case roleEventTypeID:
			k.EventType, _, _, _ = p.value(r, idx)
		case roleEventTypeCode:
			code, _, _, _ = p.value(r, idx)
		case roleOrderID:
			k.OrderID, _, _, _ = p.value(r, idx)
		}
	}
	if k.EventType == "" {
		k.EventType = code
	}
	return k
}

// skipOrder returns out as the skip of the whole order, with its key and
// every line's ref.
func (m *Mapping) skipOrder(out pipeline.Mapped, lines []pipeline.Row, cols *columns, reason string) pipeline.Mapped {
	conv := out.Conversion
	conv.Fields, conv.Items = nil, nil
	conv.Refs = refsOf(lines)
	conv.Key = m.lineKey(&lines[0], cols.at(&lines[0]))
	out.Skip = reason
	out.Problems = nil
	return out
}

// rowSkip returns the first row filter that leaves r out, with the value
// it tested.
func (m *Mapping) rowSkip(r *pipeline.Row, idx []int) (*filter, string) {
	for _, f := range m.rowFilters {
		var v string
		switch f.subj {
		case subjColumn:
			v = cell(r, idx, f.slot)
		case subjField:
			var err error
			v, _, _, err = f.field.value(r, idx)
			if err != nil {
				continue // reported when the line is mapped
			}
		}
		if f.test(v) {
			return f, v
		}
	}
	return nil, ""
}

// orderFilterHolds tests an order filter on a mapped field or the amount.
func (m *Mapping) orderFilterHolds(f *filter, conv *pipeline.Conversion, vals []string) bool {
	switch {
	case f.subj == subjAmount:
		a, ok := orderAmount(conv)
		return ok && f.test(a)
	case f.field.def.item:
		for _, it := range conv.Items {
			v, _ := it.Get(f.field.def.name)
			if f.test(v) {
				return true
			}
		}
		return false
	default:
		for i, p := range m.order {
			if p == f.field {
				return f.test(vals[i])
			}
		}
	}
	return false
}

// agree checks that the lines of the order give the same order-level
// values as the first kept line. Lines whose cells agree on every column
// the order-level fields read are not evaluated again, so the cost is
// linear in the lines and small when they agree.
//
// Unless the mapping is strict, a line whose cells of a field are all
// empty gives no value for it, and when the first kept line gives none,
// the first line that does gives the order's value; lines left out by
// row filters are looked at too, as the order-level cells of an export
// that writes them on the first line only are on that line whatever its
// item is.
func (m *Mapping) agree(lines, kept []pipeline.Row, cols *columns, vals []string, bad []bool, probs *problems) {
	if len(lines) < 2 || len(m.orderSlots) == 0 {
		return
	}
	a := agreement{base: &kept[0]}
	a.bix = cols.at(a.base)
	for j := 1; j < len(kept); j++ {
		m.agreeLine(&a, &kept[j], cols, vals, bad, probs)
	}
	if !m.strict && len(kept) < len(lines) {
		k := 0 // kept is lines without the lines the row filters left out
		for j := range lines {
			if k < len(kept) && lines[j].Line == kept[k].Line && lines[j].Object == kept[k].Object {
				k++
				continue
			}
			m.agreeLine(&a, &lines[j], cols, vals, bad, probs)
		}
	}
	m.reportDisagreements(a.dis, a.base, a.src, vals, bad, probs)
}

// agreement is the state of agree.
type agreement struct {
	base *pipeline.Row
	bix  []int
	dis  []disagreement
	// src, when set, holds per field the line its value came from when it
	// is not base (lenient mode only).
	src []*pipeline.Row
}

// agreeLine compares the order-level values of line r with the order's.
func (m *Mapping) agreeLine(a *agreement, r *pipeline.Row, cols *columns, vals []string, bad []bool, probs *problems) {
	ix := cols.at(r)
	if sameCells(r, ix, a.base, a.bix, m.orderSlots) {
		return
	}
	for i, p := range m.order {
		if p.src == srcConst || bad[i] {
			continue
		}
		s, six := a.base, a.bix
		if a.src != nil && a.src[i] != nil {
			s = a.src[i]
			six = cols.at(s)
			ix = cols.at(r)
		}
		if sameCells(r, ix, s, six, p.slots) {
			continue
		}
		if !m.strict {
			if emptyCells(r, ix, p.slots) {
				continue // the line leaves the field to another line
			}
			if emptyCells(s, six, p.slots) {
				m.adopt(a, i, p, r, ix, vals, bad, probs)
				continue
			}
		}
		v, in, _, err := p.value(r, ix)
		if err == nil && v == vals[i] {
			continue
		}
		if err != nil {
			v = in
		}
		a.dis = noteDisagreement(a.dis, i, v, r)
	}
}

// adopt makes line r's value of the field m.order[i], whose cells the
// order had left empty so far, the order's value.
func (m *Mapping) adopt(a *agreement, i int, p *plan, r *pipeline.Row, ix []int, vals []string, bad []bool, probs *problems) {
	if a.src == nil {
		a.src = make([]*pipeline.Row, len(m.order))
	}
	a.src[i] = r
	v, in, step, err := p.value(r, ix)
	if err != nil {
		probs.add(p.def.name, in, p.failure(step, err), []pipeline.Ref{r.Ref()})
		bad[i] = true
		return
	}
	vals[i] = v
}

// emptyCells reports whether every cell of r at slots is empty.
func emptyCells(r *pipeline.Row, ix []int, slots []int) bool {
	for _, s := range slots {
		if cell(r, ix, s) != "" {
			return false
		}
	}
	return true
}

// sameCells reports whether the rows r and base hold the same cells at
// slots.
func sameCells(r *pipeline.Row, ix []int, base *pipeline.Row, bix []int, slots []int) bool {
	for _, s := range slots {
		if cell(r, ix, s) != cell(base, bix, s) {
			return false
		}
	}
	return true
}

// noteDisagreement records in dis that line r gives v for the
// order-level field of m.order[plan].
func noteDisagreement(dis []disagreement, plan int, v string, r *pipeline.Row) []disagreement {
	k := -1
	for x := range dis {
		if dis[x].plan == plan {
			k = x
		}
	}
	if k < 0 {
		dis = append(dis, disagreement{plan: plan, value: v})
		k = len(dis) - 1
	}
	d := &dis[k]
	d.count++
	if len(d.refs) < maxRefs-1 {
		d.refs = append(d.refs, r.Ref())
	}
	return dis
}

// reportDisagreements adds a problem for each of dis, naming the line
// the order's value came from (base, or the field's line in src), and
// marks the field's value bad.
func (m *Mapping) reportDisagreements(dis []disagreement, base *pipeline.Row, src []*pipeline.Row, vals []string, bad []bool, probs *problems) {
	for _, d := range dis {
		p := m.order[d.plan]
		from := base.Ref()
		if src != nil && src[d.plan] != nil {
			from = src[d.plan].Ref()
		}
		refs := append([]pipeline.Ref{from}, d.refs...)
		text := fmt.Sprintf("differs between the lines of the order: %q on %s, %q on %s",
			display(vals[d.plan]), from, display(d.value), d.refs[0])
		if d.count > 1 {
			text += fmt.Sprintf(" (%d lines differ from %s)", d.count, from)
		}
		probs.add(p.def.name, vals[d.plan], text, refs)
		bad[d.plan] = true
	}
}

// buildItems adds one item per kept line, or one per packed part of a
// line when item fields split their cells, checking each value and that
// there are at most max_items (checkRules checks the items as a whole).
// backing has room for one item per line and is not shared.
func (m *Mapping) buildItems(conv *pipeline.Conversion, backing []pipeline.Field, kept []pipeline.Row, cols *columns, probs *problems) {
	if m.from != nil {
		m.buildItemsFrom(conv, backing, kept, cols, probs)
		return
	}
	if len(m.splits) == 0 && len(kept) > m.maxItems {
		probs.add("Items", "", fmt.Sprintf("%d lines: at most %d items per conversion (mapping.max_items)", len(kept), m.maxItems),
			[]pipeline.Ref{kept[0].Ref(), kept[len(kept)-1].Ref()})
	}
	conv.Items = make([]pipeline.Item, 0, len(kept))
	var parts [][]string
	for j := range kept {
		r := &kept[j]
		idx := cols.at(r)
		if len(m.splits) == 0 {
			backing = m.buildItem(conv, backing, r, idx, nil, 0, probs)
			continue
		}
		var n int
		if parts, n = m.splitLine(r, idx, parts, probs); n < 0 {
			continue
		}
		for k := range n {
			backing = m.buildItem(conv, backing, r, idx, parts, k, probs)
		}
	}
	if len(m.splits) > 0 && len(conv.Items) > m.maxItems {
		probs.add("Items", "", fmt.Sprintf("%d items from %d lines: at most %d items per conversion (mapping.max_items)", len(conv.Items), len(kept), m.maxItems),
			[]pipeline.Ref{kept[0].Ref(), kept[len(kept)-1].Ref()})
	}
}

// splitLine splits the cells of the item fields that split (m.splits)
// into their parts, reusing parts, and returns how many items the line
// packs. An empty cell gives an empty value to every item; a line whose
// cells are all empty packs one item. When the fields have different
// numbers of parts it adds a problem naming them and the line and
// returns -1.
func (m *Mapping) splitLine(r *pipeline.Row, idx []int, parts [][]string, probs *problems) ([][]string, int) {
	parts = append(parts[:0], make([][]string, len(m.splits))...)
	n, first := 0, -1
	aligned := true
	for i, p := range m.splits {
		raw := p.cell(r, idx, p.slot)
		if raw == "" {
			continue
		}
		ps := strings.Split(raw, p.split)
		for k := range ps {
			ps[k] = strings.TrimSpace(ps[k])
		}
		parts[i] = ps
		if first < 0 {
			n, first = len(ps), i
		} else if len(ps) != n {
			aligned = false
		}
	}
	if first < 0 {
		return parts, 1
	}
	if aligned {
		return parts, n
	}
	var desc []string
	for i, p := range m.splits {
		if parts[i] != nil {
			desc = append(desc, fmt.Sprintf("%s %q has %d parts", p.def.name, display(p.cell(r, idx, p.slot)), len(parts[i])))
		}
	}
	probs.add("Items", "", "the packed item cells do not line up: "+strings.Join(desc, ", "), []pipeline.Ref{r.Ref()})
	return parts, -1
}

// buildItem adds the item of line r (its k-th packed part when parts is
// set), checking its values.
func (m *Mapping) buildItem(conv *pipeline.Conversion, backing []pipeline.Field, r *pipeline.Row, idx []int, parts [][]string, k int, probs *problems) []pipeline.Field {
	n := len(conv.Items) + 1
	ref := r.Ref()
	start := len(backing)
	for _, p := range m.items {
		var v, in string
		var step int
		var err error
		if p.splitIdx >= 0 && parts != nil {
			piece := ""
			if ps := parts[p.splitIdx]; ps != nil {
				piece = ps[k]
			}
			v, in, step, err = p.apply(piece)
		} else {
			v, in, step, err = p.value(r, idx)
		}
		if err != nil {
			probs.add(pipeline.ItemFieldName(p.def.name, n), in, p.failure(step, err), []pipeline.Ref{ref})
			continue
		}
		if v == "" && !p.keep {
			continue
		}
		if msg := p.check(v); msg != "" {
			probs.add(pipeline.ItemFieldName(p.def.name, n), v, msg, []pipeline.Ref{ref})
			if hasEmail(v) {
				v = redact(v)
			}
		}
		backing = append(backing, pipeline.Field{Name: p.def.name, Value: v})
	}
	conv.Items = append(conv.Items, pipeline.Item{Fields: backing[start:len(backing):len(backing)], Ref: ref})
	return backing
}
