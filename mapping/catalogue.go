package mapping

import (
	"strings"

	"convpipe/pipeline/rules"
)

// kind is what a field's value must look like on the wire: the kinds of
// the API's rules (convpipe/pipeline/rules), under this package's names.
type kind = rules.Kind

const (
	kindString   = rules.Text     // any text up to the field's length limit
	kindID       = rules.ID       // an integer id of up to 10 digits (CampaignId, EventTypeId)
	kindQuantity = rules.Quantity // a whole number > 0 (ItemQuantity)
	kindDecimal  = rules.Decimal  // a plain decimal number: -12.5
	kindMoney    = rules.Money    // a decimal number with at most 2 decimals
	kindDate     = rules.Date     // ISO 8601: a date or a date-time with offset
	kindDigest   = rules.Digest   // a SHA-1 or SHA-256 hex digest (CustomerEmail)
	kindCurrency = rules.Currency // ISO 4217: three upper-case letters
	kindBool     = rules.Bool     // true or false
	kindIP       = rules.IP       // an IPv4 or IPv6 address
)

// fieldDef describes one field of the Conversions API: its entry in the
// API's rules, and its place in the wire order.
type fieldDef struct {
	// api is the field's entry in the rules.
	api  rules.Field
	name string
	kind kind
	// max is the length limit in characters; 0 means none beyond the
	// kind's own shape.
	max int
	// item is true for item-level fields (named without the index).
	item bool
	// attribution marks the attribution keys.
	attribution bool
	// pos is the field's place in the stable wire order of its level.
	pos int
}

// orderFields and itemFields are the API's catalogues of order-level and
// item-level fields, in the stable wire order.
var (
	orderFields = build(rules.OrderFields)
	itemFields  = build(rules.ItemFields)
)

// catalogue indexes both levels by name.
type catalogue struct {
	list  []fieldDef
	index map[string]int
}

func build(fields []rules.Field) catalogue {
	c := catalogue{index: make(map[string]int)}
	for _, f := range fields {
		d := fieldDef{api: f, name: f.Name, kind: f.Kind, max: f.Max, item: f.Item, attribution: f.Attribution, pos: len(c.list)}
		c.index[d.name] = d.pos
		c.list = append(c.list, d)
	}
	return c
}

func (c *catalogue) lookup(name string) (*fieldDef, bool) {
	i, ok := c.index[name]
	if !ok {
		return nil, false
	}
	return &c.list[i], true
}

// unknownField explains why name is not a field of the given level and
// suggests the closest valid name.
func unknownField(name string, item bool) string {
	own, other := &orderFields, &itemFields
	level, otherKey := "order-level", "items"
	if item {
		own, other = other, own
		level, otherKey = "item-level", "fields"
	}
	if s, ok := rules.Synonyms[name]; ok && !item {
		return "not a field of the API; it is a synonym of " + s + ", use " + s
	}
	if _, ok := other.lookup(name); ok {
		return "not an " + level + " field; it belongs under " + otherKey
	}
	if best := closest(name, own); best != "" {
		return "unknown " + level + " field; did you mean " + best + "?"
	}
	return "unknown " + level + " field"
}

// closest returns the catalogue name nearest to name, as closestName
// finds it.
func closest(name string, c *catalogue) string {
	names := make([]string, len(c.list))
	for i, d := range c.list {
		names[i] = d.name
	}
	return ClosestName(name, names)
}

// ClosestName returns the one of names nearest to name by edit distance
// (case-insensitive), where a name that name abbreviates ("ItemQty" of
// "ItemQuantity") counts as one edit away, or "" when none is near
// enough. Config errors use it to suggest a key.
func ClosestName(name string, names []string) string {
	lname := strings.ToLower(name)
	best, bestD := "", 1<<30
	for _, n := range names {
		lk := strings.ToLower(n)
		dist := editDistance(lname, lk)
		if abbreviates(lname, lk) {
			dist = min(dist, 1)
		}
		if dist < bestD {
			best, bestD = n, dist
		}
	}
	if bestD > max(2, len(name)/3+1) {
		return ""
	}
	return best
}

// abbreviates reports whether a, of three bytes or more, is a shorter
// form of b: the same first byte, and every byte of a in b in order.
func abbreviates(a, b string) bool {
	if len(a) < 3 || len(a) >= len(b) || a[0] != b[0] {
		return false
	}
	j := 0
	for i := 0; i < len(b) && j < len(a); i++ {
		if a[j] == b[i] {
			j++
		}
	}
	return j == len(a)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// attributionKeys lists the attribution keys, for messages.
func attributionKeys() string { return strings.Join(rules.AttributionKeys(), ", ") }
