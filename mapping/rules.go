package mapping

import (
	"strconv"

	"convpipe/pipeline"
	"convpipe/pipeline/rules"
)

// checkRules adds a problem for each rule of the whole conversion
// (convpipe/pipeline/rules, the table the simulator answers by) that conv
// breaks, unless a problem of a field that would satisfy the rule is
// already listed: a value that failed its transforms or its check is
// reported once, not also as missing. refs are the order's rows.
func (m *Mapping) checkRules(conv *pipeline.Conversion, refs []pipeline.Ref, probs *problems) {
	var buf [8]rules.Violation
	for _, v := range rules.CheckConversion(conv, buf[:0]) {
		if probs.reported(satisfying(v)...) {
			continue
		}
		vrefs := refs
		if v.Item > 0 {
			vrefs = []pipeline.Ref{conv.Items[v.Item-1].Ref}
		}
		field, value, text := m.ruleText(v, conv)
		probs.add(field, value, text, vrefs)
	}
}

// satisfying returns the wire names of the fields that a value would
// satisfy v with.
func satisfying(v rules.Violation) []string {
	switch v.Rule {
	case rules.NoEventType:
		return []string{"EventTypeId", "EventTypeCode"}
	case rules.NoAttribution:
		return rules.AttributionKeys()
	case rules.PriceAndTotal, rules.NoPriceOrTotal:
		return []string{pipeline.ItemFieldName("ItemPrice", v.Item), pipeline.ItemFieldName("ItemSubTotal", v.Item)}
	case rules.ItemGap:
		return nil
	}
	return []string{v.Field}
}

// ruleText returns the field, the value and the text of the problem of
// v, which conv breaks.
func (m *Mapping) ruleText(v rules.Violation, conv *pipeline.Conversion) (field, value, text string) {
	switch v.Rule {
	case rules.NoEventType:
		return v.Field, "", "missing: the order has neither EventTypeId nor EventTypeCode (" + m.eventTypeFrom() + " gave no value)"
	case rules.NoAttribution:
		return "", "", "no attribution key: the order needs one of " + attributionKeys()
	case rules.SubTotalInItems:
		value, _ = conv.Get(v.Field)
		return v.Field, value, "must not be sent with items (it is the order's amount when there are none)"
	case rules.ItemGap:
		n := strconv.Itoa(v.Item)
		return "Item" + n, "", "item " + n + " has no values, which would leave a gap in the item indices"
	case rules.PriceAndTotal:
		value, _ = conv.Items[v.Item-1].Get("ItemSubTotal")
		return v.Field, value, "ItemPrice and ItemSubTotal must not both be sent for one item"
	case rules.NoPriceOrTotal:
		return v.Field, "", "missing: an item needs ItemPrice or ItemSubTotal"
	}
	name := v.Field
	key := "fields."
	if v.Item > 0 {
		name, key = v.Base, "items."
	}
	if p := m.byName[name]; p != nil {
		return v.Field, "", "missing: " + p.from + " gave no value"
	}
	return v.Field, "", "missing: not mapped (map mapping." + key + name + ": a column, or a const when the export has none)"
}

// reported reports whether a problem of one of the named fields is
// listed.
func (p *problems) reported(names ...string) bool {
	for _, m := range p.list {
		for _, n := range names {
			if m.Field == n {
				return true
			}
		}
	}
	return false
}

// requiredItemText is the configuration error of items that do not map
// the required item field n.
func requiredItemText(n string) string {
	if n == "ItemCategory" {
		return "required when items are mapped (the API requires it with item data): map a column, or {const: ...} when the export has none"
	}
	return "required when items are mapped"
}
