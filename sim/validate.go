package sim

import (
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// FieldError is one field message of a 400 answer.
type FieldError struct {
	Field   string
	Message string
}

// itemName is the wire name of an item field: Item, the base name, the
// item index and, for the indexed families (ItemText1_2), a sub-index.
var itemName = regexp.MustCompile(`^Item([A-Za-z]+)([0-9]+)(?:_([0-9]+))?$`)

// validate checks a conversion's fields by the API's rules, the table of
// convpipe/pipeline/rules that convpipe's mapping checks every order by
// before sending it (the rules marked Policy are convpipe's own and not
// applied here), and returns every problem, sorted by field. It never
// echoes values of fields that may identify a person.
func validate(v url.Values) []FieldError {
	var errs []FieldError
	add := func(viol rules.Violation) {
		errs = append(errs, FieldError{Field: viol.Field, Message: rules.All[viol.Rule].Answer(viol)})
	}
	conv := &pipeline.Conversion{}
	items := map[int][]pipeline.Field{}
	for _, n := range slices.Sorted(maps.Keys(v)) {
		if len(v[n]) > 1 {
			add(rules.Violation{Rule: rules.SentTwice, Field: n})
		}
		val := v.Get(n)
		f, item, base, ok := wireField(n, add)
		if !ok {
			continue
		}
		if r := rules.Check(f, val); r != rules.None {
			add(rules.Violation{Rule: r, Field: n, Item: item, Base: base, Value: shown(r, val), Len: utf8.RuneCountInString(val), Max: f.Max})
		}
		if item > 0 {
			items[item] = append(items[item], pipeline.Field{Name: base, Value: val})
		} else {
			conv.Fields = append(conv.Fields, pipeline.Field{Name: n, Value: val})
		}
	}
	// Items are indexed from 1 without gaps: of n items, those indexed
	// 1 to n are checked, and a missing one is an empty item.
	conv.Items = make([]pipeline.Item, len(items))
	for i, fs := range items {
		if i <= len(items) {
			conv.Items[i-1].Fields = fs
		}
	}
	for _, viol := range rules.CheckConversion(conv, nil) {
		add(viol)
	}
	slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// wireField returns the field of the catalogue that the wire name n
// stands for, with the item's index (0 at the order level) and the item
// field's name without it; ok is false, and the problem added, when n is
// no field of the API.
func wireField(n string, add func(rules.Violation)) (f rules.Field, item int, base string, ok bool) {
	if m := itemName.FindStringSubmatch(n); m != nil {
		idx, sub := m[2], m[3]
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 || strings.HasPrefix(idx, "0") {
			add(rules.Violation{Rule: rules.BadItemIndex, Field: n, Value: idx})
			return f, 0, "", false
		}
		base = "Item" + m[1]
		if sub != "" {
			base += "_" + sub
		}
		if f, ok = rules.Item(base); !ok {
			add(rules.Violation{Rule: rules.UnknownField, Field: n, Item: i})
			return f, 0, "", false
		}
		return f, i, base, true
	}
	name := n
	if c, syn := rules.Synonyms[n]; syn {
		name = c
	}
	if f, ok = rules.Order(name); !ok {
		add(rules.Violation{Rule: rules.UnknownField, Field: n})
	}
	return f, 0, "", ok
}

// shown is the value a message of the rule r may echo: that of a
// number, a date, a code or a flag, never text that may identify a
// person.
func shown(r rules.Rule, v string) string {
	switch r {
	case rules.NotID, rules.NotNumber, rules.NotWhole, rules.NotPositive, rules.MoneyDecimals,
		rules.NotDate, rules.NoOffset, rules.NotCurrency, rules.NotBool:
		return v
	}
	return ""
}

// first returns the first of the named fields that has a value.
func first(v url.Values, names ...string) (string, string) {
	for _, n := range names {
		if s := v.Get(n); s != "" {
			return n, s
		}
	}
	return "", ""
}

// eventKey returns the deduplication key of a valid conversion: its event
// type (id or code) and OrderId.
func eventKey(v url.Values) (eventType, orderID string) {
	if _, id := first(v, "EventTypeId", "ActionTrackerId"); id != "" {
		return id, v.Get("OrderId")
	}
	return v.Get("EventTypeCode"), v.Get("OrderId")
}
