package rules

import "strconv"

// Kind is what a field's value must look like on the wire.
type Kind uint8

// The kinds of value.
const (
	Text     Kind = iota // any text up to the field's length limit
	ID                   // an integer id of up to 10 digits (CampaignId, EventTypeId)
	Quantity             // a whole number > 0 (ItemQuantity)
	Decimal              // a plain decimal number: -12.5
	Money                // a decimal number with at most 2 decimals
	Date                 // ISO 8601: a date or a date-time with offset
	Digest               // a SHA-1 or SHA-256 hex digest (CustomerEmail)
	Currency             // ISO 4217: three upper-case letters
	Bool                 // true or false
	IP                   // an IPv4 or IPv6 address
)

var kindNames = [...]string{
	Text:     "text",
	ID:       "integer id",
	Quantity: "whole number > 0",
	Decimal:  "decimal",
	Money:    "money (2 decimals)",
	Date:     "ISO 8601 date",
	Digest:   "SHA-1/SHA-256 hex digest",
	Currency: "ISO 4217 currency code",
	Bool:     "true/false",
	IP:       "IP address",
}

// String names the kind in messages.
func (k Kind) String() string { return kindNames[k] }

// Field describes one field of the Conversions API.
type Field struct {
	// Name is the field's name; an item field's without the item index
	// ("ItemSku", "ItemText_2").
	Name string
	Kind Kind
	// Max is the length limit in characters; 0 means none beyond the
	// kind's own shape.
	Max int
	// Item is set for item-level fields.
	Item bool
	// Attribution marks the attribution keys, one of which a conversion
	// needs.
	Attribution bool
}

// Length limits. The documented ones come from the API reference; the
// others are convpipe's own caps, so that a runaway value (a 10 MB cell) is
// caught before it is sent.
const (
	capText = 255  // undocumented text fields
	capLong = 2048 // URLs, user agents, install referrers
	capNum  = 32   // any number
)

func def(name string, k Kind, max int) Field { return Field{Name: name, Kind: k, Max: max} }

func attr(name string, max int) Field {
	return Field{Name: name, Kind: Text, Max: max, Attribution: true}
}

// OrderFields is the catalogue of order-level fields, in the stable wire
// order: the API reference's order, arranged so that the reference's
// example request keeps its relative order.
var OrderFields = concat(false, []Field{
	def("EventTypeId", ID, 0),
	def("EventTypeCode", Text, 64),
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
	def("EventDate", Date, 0),
	def("CampaignId", ID, 0),
	def("OrderId", Text, 64),
	def("PaymentType", Text, 32),
	def("OrderSubTotalPostDiscount", Money, capNum),
	def("OrderDiscount", Money, capNum),
	def("OrderDiscountRate", Decimal, capNum),
	def("OrderShipping", Money, capNum),
	def("OrderTax", Money, capNum),
	def("OrderMargin", Money, capNum),
	def("GiftPurchase", Bool, 0),
	def("LocationId", Text, capText),
	def("LocationName", Text, capText),
	def("LocationType", Text, capText),
	def("PropertyId", Text, capText),
	def("TrackingConsent", Text, capText),
	def("CustomerStatus", Text, capText),
	def("CustomerCity", Text, capText),
	def("CustomerPostCode", Text, capText),
	def("CustomerCountry", Text, capText),
	def("CustomerRegion", Text, capText),
	def("CurrencyCode", Currency, 3),
	def("IpAddress", IP, 64),
	def("CustomerEmail", Digest, 64),
	def("UserAgent", Text, capLong),
	def("DispositionCode", Text, capText),
	def("DeviceMfr", Text, capText),
	def("DeviceModel", Text, capText),
	def("AppPackage", Text, capText),
	def("AppInstallRef", Text, capLong),
	def("AppVer", Text, capText),
	def("Note", Text, 255),
}, numbered("Text", "", 50, Text, 64),
	numbered("Numeric", "", 10, Decimal, capNum),
	numbered("Money", "", 3, Money, capNum),
	numbered("Date", "", 10, Date, 0))

// ItemFields is the catalogue of item-level fields, in the stable wire
// order of each item.
var ItemFields = concat(true, []Field{
	def("ItemSku", Text, 255),
	def("ItemName", Text, 255),
	def("ItemCategory", Text, 255),
	def("ItemSubCategory", Text, 255),
	def("ItemBrand", Text, capText),
	def("ItemMpn", Text, 64),
	def("ItemQuantity", Quantity, capNum),
	def("ItemPrice", Money, capNum),
	def("ItemSubTotal", Money, capNum),
	def("ItemPromoCode", Text, capText),
	def("ItemDiscount", Money, capNum),
	def("ItemTotalDiscount", Money, capNum),
	def("ItemDiscountRate", Decimal, capNum),
	def("ItemDeliveryType", Text, capText),
}, numbered("ItemText", "_", 50, Text, 64),
	numbered("ItemNumeric", "_", 10, Decimal, capNum),
	numbered("ItemDate", "_", 10, Date, 0),
	numbered("ItemMoney", "_", 3, Money, capNum))

// Synonyms are names the API or its documentation uses for a field that
// the form takes under another name: the form may carry either.
var Synonyms = map[string]string{
	"ActionTrackerId": "EventTypeId",
	"ProgramId":       "CampaignId",
}

var (
	orderIndex = index(OrderFields)
	itemIndex  = index(ItemFields)
)

// Order returns the order-level field of that name (not a synonym).
func Order(name string) (Field, bool) {
	i, ok := orderIndex[name]
	if !ok {
		return Field{}, false
	}
	return OrderFields[i], true
}

// Item returns the item-level field of that name, given without the
// item index ("ItemSku", "ItemText_2").
func Item(name string) (Field, bool) {
	i, ok := itemIndex[name]
	if !ok {
		return Field{}, false
	}
	return ItemFields[i], true
}

func numbered(base, sep string, n int, k Kind, max int) []Field {
	out := make([]Field, n)
	for i := range out {
		out[i] = def(base+sep+strconv.Itoa(i+1), k, max)
	}
	return out
}

func concat(item bool, groups ...[]Field) []Field {
	var out []Field
	for _, g := range groups {
		for _, f := range g {
			f.Item = item
			out = append(out, f)
		}
	}
	return out
}

func index(fs []Field) map[string]int {
	m := make(map[string]int, len(fs))
	for i, f := range fs {
		m[f.Name] = i
	}
	return m
}
