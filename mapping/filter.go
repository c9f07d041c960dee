package mapping

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// filterScope says what a filter leaves out.
type filterScope uint8

const (
	skipRow filterScope = iota
	skipOrder
)

// subject says what a condition tests.
type subject uint8

const (
	subjColumn subject = iota
	subjField
	subjAmount
)

// filter is a compiled Filter.
type filter struct {
	scope  filterScope
	subj   subject
	slot   int   // subjColumn: the column's slot
	field  *plan // subjField: the field's plan
	reason string
	test   func(string) bool
	// name is the column or field tested, for the skip message.
	name string
	// disposition, for an order filter marked as a reversal, is the
	// DispositionCode that reverses an accepted order it now leaves out.
	disposition string
}

// compileFilter compiles the filter f at key, resolving its column or
// field with m.
func compileFilter(key string, f Filter, m *Mapping) (*filter, error) {
	out := &filter{}
	switch f.Skip {
	case "row":
		out.scope = skipRow
	case "order":
		out.scope = skipOrder
	case "":
		return nil, errAt(key+".skip", "required: row or order")
	default:
		return nil, errAt(key+".skip", "%q is not row or order", f.Skip)
	}
	c := f.When
	if err := m.compileSubject(out, key, c); err != nil {
		return nil, err
	}
	t, err := compileTest(key, c, out.name)
	if err != nil {
		return nil, err
	}
	out.test = t.test
	if out.subj == subjAmount && c.Zero == nil {
		return nil, errAt(key+".when", "amount takes only the zero test")
	}
	if c.IgnoreCase && c.Equals == nil && c.In == nil && c.NotIn == nil {
		return nil, errAt(key+".when.ignore_case", "only with equals, in or not_in")
	}
	out.reason = f.Reason
	if out.reason == "" {
		out.reason = t.desc
	}
	d, err := reversalOf(key, f)
	out.disposition = d
	return out, err
}

// compileSubject sets what the condition c of out tests: exactly one of
// a column, a mapped field, or the order's amount (only for skip: order).
func (m *Mapping) compileSubject(out *filter, key string, c Condition) error {
	subjects := 0
	if c.Column != "" {
		subjects++
		out.subj, out.slot, out.name = subjColumn, m.use(c.Column, key+".when.column"), c.Column
	}
	if c.Field != "" {
		subjects++
		p, err := m.subjectField(key, c.Field)
		if err != nil {
			return err
		}
		out.subj, out.field, out.name = subjField, p, c.Field
	}
	if c.Amount {
		subjects++
		out.subj, out.name = subjAmount, "amount"
		if out.scope != skipOrder {
			return errAt(key+".when.amount", "only for skip: order")
		}
	}
	if subjects != 1 {
		return errAt(key+".when", "name exactly one of column, field or amount")
	}
	return nil
}

// subjectField returns the plan of the field a condition tests, which
// must be mapped.
func (m *Mapping) subjectField(key, field string) (*plan, error) {
	p := m.planFor(field)
	if p != nil {
		return p, nil
	}
	if _, ok := orderFields.lookup(field); !ok {
		if _, ok := itemFields.lookup(field); !ok {
			return nil, errAt(key+".when.field", "%q: unknown field", field)
		}
	}
	return nil, errAt(key+".when.field", "%q is not mapped under fields or items", field)
}

// condTest is one test of a Condition, with its description for the
// default skip reason.
type condTest struct {
	test func(string) bool
	desc string
}

// compileTest returns the one test that c names, described for the
// subject name.
func compileTest(key string, c Condition, name string) (condTest, error) {
	tests := compareTests(c, name)
	if c.Empty != nil {
		want := *c.Empty
		t := condTest{test: func(v string) bool { return (strings.TrimSpace(v) == "") == want }, desc: name + " is empty"}
		if !want {
			t.desc = name + " is not empty"
		}
		tests = append(tests, t)
	}
	if c.Zero != nil {
		want := *c.Zero
		t := condTest{test: func(v string) bool { return isZero(v) == want }, desc: name + " is zero"}
		if !want {
			t.desc = name + " is not zero"
		}
		tests = append(tests, t)
	}
	if c.Matches != "" {
		re, err := regexp.Compile(c.Matches)
		if err != nil {
			return condTest{}, errAt(key+".when.matches", "%w", err)
		}
		tests = append(tests, condTest{test: re.MatchString, desc: fmt.Sprintf("%s matches %q", name, c.Matches)})
	}
	if len(tests) != 1 {
		return condTest{}, errAt(key+".when", "name exactly one test: equals, in, not_in, empty, zero or matches")
	}
	return tests[0], nil
}

// compareTests returns the tests of c that compare the trimmed value with
// strings, as ignore_case says: equals, in and not_in.
func compareTests(c Condition, name string) []condTest {
	norm := func(s string) string { return strings.TrimSpace(s) }
	eq := func(a, b string) bool { return a == b }
	if c.IgnoreCase {
		eq = strings.EqualFold
	}
	var tests []condTest
	if c.Equals != nil {
		want := *c.Equals
		tests = append(tests, condTest{
			test: func(v string) bool { return eq(norm(v), want) },
			desc: fmt.Sprintf("%s equals %q", name, want),
		})
	}
	if c.In != nil {
		set := c.In
		tests = append(tests, condTest{
			test: func(v string) bool { return inList(norm(v), set, eq) },
			desc: fmt.Sprintf("%s is one of %s", name, quoteList(set)),
		})
	}
	if c.NotIn != nil {
		set := c.NotIn
		tests = append(tests, condTest{
			test: func(v string) bool { return !inList(norm(v), set, eq) },
			desc: fmt.Sprintf("%s is none of %s", name, quoteList(set)),
		})
	}
	return tests
}

func inList(v string, set []string, eq func(a, b string) bool) bool {
	for _, s := range set {
		if eq(v, s) {
			return true
		}
	}
	return false
}

func quoteList(set []string) string {
	q := make([]string, len(set))
	for i, s := range set {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// orderAmount computes an order's amount: OrderSubTotalPostDiscount when
// set, otherwise the sum of the items' ItemSubTotal, or ItemPrice ×
// ItemQuantity. ok is false when a value is not a plain number.
func orderAmount(c *pipeline.Conversion) (string, bool) {
	if v, ok := c.Get("OrderSubTotalPostDiscount"); ok && v != "" {
		return v, rules.IsDecimal(v, -1)
	}
	sum := new(big.Rat)
	for _, it := range c.Items {
		if v, ok := it.Get("ItemSubTotal"); ok && v != "" {
			r, ok := new(big.Rat).SetString(v)
			if !ok || !rules.IsDecimal(v, -1) {
				return "", false
			}
			sum.Add(sum, r)
			continue
		}
		p, _ := it.Get("ItemPrice")
		q, _ := it.Get("ItemQuantity")
		if p == "" {
			continue
		}
		if q == "" {
			q = "1"
		}
		pr, ok1 := new(big.Rat).SetString(p)
		qr, ok2 := new(big.Rat).SetString(q)
		if !ok1 || !ok2 || !rules.IsDecimal(p, -1) || !rules.IsDecimal(q, -1) {
			return "", false
		}
		sum.Add(sum, pr.Mul(pr, qr))
	}
	return sum.FloatString(2), true
}
