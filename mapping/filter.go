package mapping

import (
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"convpipe/pipeline"
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
}

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
	subjects := 0
	if c.Column != "" {
		subjects++
		out.subj, out.slot, out.name = subjColumn, m.use(c.Column, key+".when.column"), c.Column
	}
	if c.Field != "" {
		subjects++
		p := m.planFor(c.Field)
		if p == nil {
			if _, ok := orderFields.lookup(c.Field); !ok {
				if _, ok := itemFields.lookup(c.Field); !ok {
					return nil, errAt(key+".when.field", "%q: unknown field", c.Field)
				}
			}
			return nil, errAt(key+".when.field", "%q is not mapped under fields or items", c.Field)
		}
		out.subj, out.field, out.name = subjField, p, c.Field
	}
	if c.Amount {
		subjects++
		out.subj, out.name = subjAmount, "amount"
		if out.scope != skipOrder {
			return nil, errAt(key+".when.amount", "only for skip: order")
		}
	}
	if subjects != 1 {
		return nil, errAt(key+".when", "name exactly one of column, field or amount")
	}

	tests := 0
	norm := func(s string) string { return strings.TrimSpace(s) }
	eq := func(a, b string) bool { return a == b }
	if c.IgnoreCase {
		eq = strings.EqualFold
	}
	var desc string
	if c.Equals != nil {
		tests++
		want := *c.Equals
		out.test = func(v string) bool { return eq(norm(v), want) }
		desc = fmt.Sprintf("%s equals %q", out.name, want)
	}
	if c.In != nil {
		tests++
		set := c.In
		out.test = func(v string) bool { return inList(norm(v), set, eq) }
		desc = fmt.Sprintf("%s is one of %s", out.name, quoteList(set))
	}
	if c.NotIn != nil {
		tests++
		set := c.NotIn
		out.test = func(v string) bool { return !inList(norm(v), set, eq) }
		desc = fmt.Sprintf("%s is none of %s", out.name, quoteList(set))
	}
	if c.Empty != nil {
		tests++
		want := *c.Empty
		out.test = func(v string) bool { return (norm(v) == "") == want }
		desc = out.name + " is empty"
		if !want {
			desc = out.name + " is not empty"
		}
	}
	if c.Zero != nil {
		tests++
		want := *c.Zero
		out.test = func(v string) bool { return isZero(v) == want }
		desc = out.name + " is zero"
		if !want {
			desc = out.name + " is not zero"
		}
	}
	if c.Matches != "" {
		tests++
		re, err := regexp.Compile(c.Matches)
		if err != nil {
			return nil, errAt(key+".when.matches", "%w", err)
		}
		out.test = re.MatchString
		desc = fmt.Sprintf("%s matches %q", out.name, c.Matches)
	}
	if tests != 1 {
		return nil, errAt(key+".when", "name exactly one test: equals, in, not_in, empty, zero or matches")
	}
	if out.subj == subjAmount && c.Zero == nil {
		return nil, errAt(key+".when", "amount takes only the zero test")
	}
	if c.IgnoreCase && c.Equals == nil && c.In == nil && c.NotIn == nil {
		return nil, errAt(key+".when.ignore_case", "only with equals, in or not_in")
	}
	out.reason = f.Reason
	if out.reason == "" {
		out.reason = desc
	}
	return out, nil
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
		return v, isPlainDecimal(v, -1)
	}
	sum := new(big.Rat)
	for _, it := range c.Items {
		if v, ok := it.Get("ItemSubTotal"); ok && v != "" {
			r, ok := new(big.Rat).SetString(v)
			if !ok || !isPlainDecimal(v, -1) {
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
		if !ok1 || !ok2 || !isPlainDecimal(p, -1) || !isPlainDecimal(q, -1) {
			return "", false
		}
		sum.Add(sum, pr.Mul(pr, qr))
	}
	return sum.FloatString(2), true
}
