package mapping

import (
	"strconv"
	"strings"
)

// kind is what a field's value must look like on the wire.
type kind uint8

const (
	kindString   kind = iota // any text up to the field's length limit
	kindID                   // an integer id of up to 10 digits (CampaignId, EventTypeId)
	kindQuantity             // a whole number > 0 (ItemQuantity)
	kindDecimal              // a plain decimal number: -12.5
	kindMoney                // a decimal number with at most 2 decimals
	kindDate                 // ISO 8601: a date or a date-time with offset
	kindDigest               // a SHA-1 or SHA-256 hex digest (CustomerEmail)
	kindCurrency             // ISO 4217: three upper-case letters
	kindBool                 // true or false
	kindIP                   // an IPv4 or IPv6 address
)

var kindNames = [...]string{
	kindString:   "text",
	kindID:       "integer id",
	kindQuantity: "whole number > 0",
	kindDecimal:  "decimal",
	kindMoney:    "money (2 decimals)",
	kindDate:     "ISO 8601 date",
	kindDigest:   "SHA-1/SHA-256 hex digest",
	kindCurrency: "ISO 4217 currency code",
	kindBool:     "true/false",
	kindIP:       "IP address",
}

func (k kind) String() string { return kindNames[k] }

// fieldDef describes one field of the Conversions API.
type fieldDef struct {
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

// Length limits. The documented ones come from the API reference; the
// others are convpipe's own caps, so that a runaway value (a 10 MB cell) is
// caught before it is sent.
const (
	capText = 255  // undocumented text fields
	capLong = 2048 // URLs, user agents, install referrers
	capNum  = 32   // any number
)

func def(name string, k kind, max int) fieldDef { return fieldDef{name: name, kind: k, max: max} }

func attr(name string, max int) fieldDef {
	return fieldDef{name: name, kind: kindString, max: max, attribution: true}
}

// orderFields is the catalogue of order-level fields, in the stable wire
// order: the API reference's order, arranged so that the reference's
// example request keeps its relative order.
var orderFields = build(false, []fieldDef{
	def("EventTypeId", kindID, 0),
	def("EventTypeCode", kindString, 64),
	attr("ClickId", 64),
	attr("CustomerId", 255),
	attr("CustomProfileId", 70),
	attr("OrderPromoCode", capText),
	attr("UniqueUrl", capLong),
	attr("GoogAId", capText),
	attr("AppleIfa", capText),
	attr("AppleIfv", capText),
	attr("MediaId", capText),
	attr("PhoneNumber", capText),
	attr("CallerId", capText),
	def("EventDate", kindDate, 0),
	def("CampaignId", kindID, 0),
	def("OrderId", kindString, 64),
	def("PaymentType", kindString, 32),
	def("OrderSubTotalPostDiscount", kindMoney, capNum),
	def("OrderDiscount", kindMoney, capNum),
	def("OrderDiscountRate", kindDecimal, capNum),
	def("OrderShipping", kindMoney, capNum),
	def("OrderTax", kindMoney, capNum),
	def("OrderMargin", kindMoney, capNum),
	def("GiftPurchase", kindBool, 0),
	def("LocationId", kindString, capText),
	def("LocationName", kindString, capText),
	def("LocationType", kindString, capText),
	def("PropertyId", kindString, capText),
	def("TrackingConsent", kindString, capText),
	def("CustomerStatus", kindString, capText),
	def("CustomerCity", kindString, capText),
	def("CustomerPostCode", kindString, capText),
	def("CustomerCountry", kindString, capText),
	def("CustomerRegion", kindString, capText),
	def("CurrencyCode", kindCurrency, 3),
	def("IpAddress", kindIP, 64),
	def("CustomerEmail", kindDigest, 64),
	def("UserAgent", kindString, capLong),
	def("DispositionCode", kindString, capText),
	def("DeviceMfr", kindString, capText),
	def("DeviceModel", kindString, capText),
	def("AppPackage", kindString, capText),
	def("AppInstallRef", kindString, capLong),
	def("AppVer", kindString, capText),
	def("Note", kindString, 255),
}, numbered("Text", "", 50, kindString, 64),
	numbered("Numeric", "", 10, kindDecimal, capNum),
	numbered("Money", "", 3, kindMoney, capNum),
	numbered("Date", "", 10, kindDate, 0))

// itemFields is the catalogue of item-level fields, in the stable wire
// order of each item.
var itemFields = build(true, []fieldDef{
	def("ItemSku", kindString, 255),
	def("ItemName", kindString, 255),
	def("ItemCategory", kindString, 255),
	def("ItemSubCategory", kindString, 255),
	def("ItemBrand", kindString, capText),
	def("ItemMpn", kindString, 64),
	def("ItemQuantity", kindQuantity, capNum),
	def("ItemPrice", kindMoney, capNum),
	def("ItemSubTotal", kindMoney, capNum),
	def("ItemPromoCode", kindString, capText),
	def("ItemDiscount", kindMoney, capNum),
	def("ItemTotalDiscount", kindMoney, capNum),
	def("ItemDiscountRate", kindDecimal, capNum),
	def("ItemDeliveryType", kindString, capText),
}, numbered("ItemText", "_", 50, kindString, 64),
	numbered("ItemNumeric", "_", 10, kindDecimal, capNum),
	numbered("ItemDate", "_", 10, kindDate, 0),
	numbered("ItemMoney", "_", 3, kindMoney, capNum))

// catalogue indexes both levels by name.
type catalogue struct {
	list  []fieldDef
	index map[string]int
}

func numbered(base, sep string, n int, k kind, max int) []fieldDef {
	out := make([]fieldDef, n)
	for i := range out {
		out[i] = def(base+sep+strconv.Itoa(i+1), k, max)
	}
	return out
}

func build(item bool, groups ...[]fieldDef) catalogue {
	c := catalogue{index: make(map[string]int)}
	for _, g := range groups {
		for _, d := range g {
			d.item = item
			d.pos = len(c.list)
			c.index[d.name] = d.pos
			c.list = append(c.list, d)
		}
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

// synonyms are names the API or its documentation uses for a field that
// the form takes under another name.
var synonyms = map[string]string{
	"ActionTrackerId": "EventTypeId",
	"ProgramId":       "CampaignId",
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
	if s, ok := synonyms[name]; ok && !item {
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

// closest returns the catalogue name nearest to name by edit distance
// (case-insensitive), where a name that name abbreviates ("ItemQty" of
// "ItemQuantity") counts as one edit away, or "" when none is near
// enough.
func closest(name string, c *catalogue) string {
	lname := strings.ToLower(name)
	best, bestD := "", 1<<30
	for _, d := range c.list {
		lk := strings.ToLower(d.name)
		dist := editDistance(lname, lk)
		if abbreviates(lname, lk) {
			dist = min(dist, 1)
		}
		if dist < bestD {
			best, bestD = d.name, dist
		}
	}
	limit := len(name)/3 + 1
	if limit < 2 {
		limit = 2
	}
	if bestD > limit {
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
func attributionKeys() string {
	var names []string
	for _, d := range orderFields.list {
		if d.attribution {
			names = append(names, d.name)
		}
	}
	return strings.Join(names, ", ")
}
