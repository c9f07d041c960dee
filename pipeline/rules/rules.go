// Package rules is the one table of the Conversions API's rules: the
// fields a conversion may carry, what each value must look like, and what
// a conversion as a whole needs. The mapping checks every order against
// it before anything is sent, and the simulator, which plays the API,
// answers by it, so that an order that passes `convpipe validate` is not
// then refused by the simulator, and the reverse; a table test runs every
// rule through both. Rules that are convpipe's own, stricter than the
// API's (no plain e-mail address in any field, no NOW as EventDate), are
// in the table too, marked Policy: the mapping applies them, the
// simulator does not.
package rules

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"convpipe/pipeline"
)

// Rule is one rule a conversion can break.
type Rule uint8

// The rules, in the order of All. None is no rule: a value that passes.
const (
	None Rule = iota

	// Rules of one value.
	NotUTF8         // the value is not valid UTF-8
	TooLong         // longer than the field's limit
	NotID           // not an integer id of up to 10 digits
	NotNumber       // not a plain decimal number
	NotWhole        // a quantity that is not a whole number
	NotPositive     // a quantity of 0 or less
	MoneyDecimals   // money with more than 2 decimals
	NotDate         // not an ISO 8601 date or date-time
	NoOffset        // a date-time without a UTC offset
	NotDigest       // CustomerEmail is not a SHA-1 or SHA-256 hex digest
	NotCurrency     // not an ISO 4217 code
	NotBool         // not true or false
	NotIP           // not an IP address
	PersonalID      // CustomerId is an e-mail address
	EmailInValue    // Policy: a plain e-mail address in any other field
	ControlInID     // Policy: a control character in OrderId
	NowRefused      // Policy: EventDate NOW without allow_now
	FutureDate      // Policy: EventDate ahead of now beyond the tolerance
	NoEventType     // neither EventTypeId nor EventTypeCode
	NoAttribution   // no attribution key
	NoEventDate     // no EventDate
	NoCampaign      // no CampaignId
	NoOrderID       // no OrderId
	SubTotalInItems // OrderSubTotalPostDiscount sent with items
	ItemGap         // an item with no fields: the indexes have a gap
	ItemRequired    // an item lacks ItemSku, ItemCategory or ItemQuantity
	PriceAndTotal   // an item has both ItemPrice and ItemSubTotal
	NoPriceOrTotal  // an item has neither ItemPrice nor ItemSubTotal
	TooManyItems    // Policy: more items than mapping.max_items
	SentTwice       // Wire: a field sent more than once
	UnknownField    // Wire: a field the API does not know
	BadItemIndex    // Wire: an item index that is not 1, 2, …
	ruleCount
)

// Class says who applies a rule.
type Class uint8

const (
	// API rules are the API's: the mapping and the simulator both apply
	// them.
	API Class = iota
	// Policy rules are convpipe's own: the mapping applies them, the
	// simulator does not.
	Policy
	// Wire rules are the API's, about the request itself: only a request
	// made by hand can break them (the mapping refuses an unknown field
	// when it compiles and sends every field once, indexed from 1), so
	// only the simulator checks them at run time.
	Wire
)

// Violation is a broken rule.
type Violation struct {
	Rule Rule
	// Field is the wire name of the field at fault ("ItemCategory2"),
	// for a rule of a value or of one field; the first field that would
	// satisfy it otherwise (EventTypeId, ClickId).
	Field string
	// Item is the item's index, from 1; 0 at the order level.
	Item int
	// Base is an item field's name without the index ("ItemCategory").
	Base string
	// Value is the value at fault, for a rule of a value.
	Value string
	// Len and Max are the length in characters and the limit of TooLong.
	Len, Max int
}

// Doc describes a rule.
type Doc struct {
	Rule  Rule
	Name  string
	Class Class
	// Says is what the API reference, or convpipe, says.
	Says string
	// Answer is the message of the API's answer, as the simulator gives
	// it; it echoes only values that identify no one.
	Answer func(v Violation) string
}

// All is the table of rules, indexed by Rule.
var All = [ruleCount]Doc{
	None:            {None, "none", API, "", nil},
	NotUTF8:         {NotUTF8, "utf-8", API, "values are UTF-8 text", fixed("Invalid characters: not UTF-8")},
	TooLong:         {TooLong, "length", API, "lengths: OrderId 64, ClickId 64, Sku 255, Text1..50 64, …", tooLong},
	NotID:           {NotID, "integer-id", API, "CampaignId and EventTypeId are integers of up to 10 digits", quoted("Invalid numeric format (%s)")},
	NotNumber:       {NotNumber, "number", API, "numeric fields are plain decimal numbers", notNumber},
	NotWhole:        {NotWhole, "quantity-whole", API, "ItemQuantity is a whole number", quoted("Invalid quantity (%s): a whole number greater than 0")},
	NotPositive:     {NotPositive, "quantity-positive", API, "ItemQuantity is greater than 0", quoted("Invalid quantity (%s): a whole number greater than 0")},
	MoneyDecimals:   {MoneyDecimals, "money-decimals", API, "money: 2 decimals", quoted("Invalid money format (%s): a number with at most 2 decimals")},
	NotDate:         {NotDate, "date", API, "dates are ISO 8601", badDate},
	NoOffset:        {NoOffset, "date-offset", API, "a date-time carries its UTC offset", badDate},
	NotDigest:       {NotDigest, "email-digest", API, "CustomerEmail is a SHA-1 or SHA-256 hex digest", fixed("CustomerEmail must be a SHA-1 or SHA-256 hex digest")},
	NotCurrency:     {NotCurrency, "currency", API, "CurrencyCode: ISO 4217, 3 letters", quoted("Invalid currency code (%s): ISO 4217, 3 letters")},
	NotBool:         {NotBool, "boolean", API, "GiftPurchase is true or false", quoted("Invalid boolean (%s)")},
	NotIP:           {NotIP, "ip-address", API, "IpAddress is an IPv4 or IPv6 address", fixed("Invalid IP address")},
	PersonalID:      {PersonalID, "customer-id-personal", API, "CustomerId must not identify a person (no plain e-mail)", fixed("CustomerId must not identify a person: plain e-mail addresses are not permitted")},
	EmailInValue:    {EmailInValue, "no-plain-email", Policy, "convpipe never sends a plain e-mail address", nil},
	ControlInID:     {ControlInID, "order-id-printable", Policy, "an OrderId is printable text", nil},
	NowRefused:      {NowRefused, "event-date-now", Policy, "NOW records the submit time: a batch sends the real date (allow_now permits it)", nil},
	FutureDate:      {FutureDate, "event-date-future", Policy, "an EventDate is not in the future (future_tolerance)", nil},
	NoEventType:     {NoEventType, "event-type-required", API, "EventTypeId required, unless code is provided", fixed("EventTypeId or EventTypeCode is required")},
	NoAttribution:   {NoAttribution, "attribution-required", API, "a minimum of 1 attribution parameter is required", noAttribution},
	NoEventDate:     {NoEventDate, "event-date-required", API, "EventDate required", fixed("EventDate is required")},
	NoCampaign:      {NoCampaign, "campaign-required", API, "CampaignId required", fixed("CampaignId is required")},
	NoOrderID:       {NoOrderID, "order-id-required", API, "OrderId required", fixed("OrderId is required")},
	SubTotalInItems: {SubTotalInItems, "no-subtotal-with-items", API, "with item data, OrderSubTotalPostDiscount must not be sent", fixed("OrderSubTotalPostDiscount must not be sent with item data")},
	ItemGap:         {ItemGap, "items-contiguous", API, "items are indexed from 1, contiguous", itemGap},
	ItemRequired:    {ItemRequired, "item-fields-required", API, "ItemSku[i], ItemCategory[i], ItemQuantity[i] required if passing item-level details", itemRequired},
	PriceAndTotal:   {PriceAndTotal, "item-price-or-subtotal", API, "ItemPrice (unit price) or ItemSubTotal (line total), never both", priceAndTotal},
	NoPriceOrTotal:  {NoPriceOrTotal, "item-price-required", API, "ItemSubTotal required if passing item-level details; ItemPrice if ItemSubTotal can't be reported", noPriceOrTotal},
	TooManyItems:    {TooManyItems, "max-items", Policy, "at most mapping.max_items items per conversion", nil},
	SentTwice:       {SentTwice, "field-once", Wire, "each field is sent once", fixed("Field sent more than once")},
	UnknownField:    {UnknownField, "known-fields", Wire, "only the API's fields", unknownField},
	BadItemIndex:    {BadItemIndex, "item-index", Wire, "items are indexed from 1", badItemIndex},
}

// RequiredItemFields are the fields every item needs, besides ItemPrice
// or ItemSubTotal.
var RequiredItemFields = []string{"ItemSku", "ItemCategory", "ItemQuantity"}

func fixed(msg string) func(Violation) string { return func(Violation) string { return msg } }

func quoted(format string) func(Violation) string {
	return func(v Violation) string { return fmt.Sprintf(format, v.Value) }
}

func tooLong(v Violation) string {
	return fmt.Sprintf("Value too long: %d characters, at most %d", v.Len, v.Max)
}

func notNumber(v Violation) string {
	if f, ok := field(v); ok {
		switch f.Kind {
		case Money:
			return fmt.Sprintf("Invalid money format (%s): a number with at most 2 decimals", v.Value)
		case Quantity:
			return fmt.Sprintf("Invalid quantity (%s): a whole number greater than 0", v.Value)
		}
	}
	return fmt.Sprintf("Invalid numeric format (%s)", v.Value)
}

func badDate(v Violation) string {
	if v.Field == "EventDate" {
		return fmt.Sprintf("Invalid date format (%s): ISO 8601 or NOW expected", v.Value)
	}
	return fmt.Sprintf("Invalid date format (%s): ISO 8601 expected", v.Value)
}

func noAttribution(Violation) string {
	return "An attribution key is required: one of " + strings.Join(AttributionKeys(), ", ")
}

func itemGap(v Violation) string {
	return fmt.Sprintf("Items must be indexed from 1 without gaps: item %d is missing", v.Item)
}

func itemRequired(v Violation) string { return v.Field + " is required with item data" }

func priceAndTotal(v Violation) string {
	return fmt.Sprintf("Send ItemPrice%d or ItemSubTotal%d, not both", v.Item, v.Item)
}

func noPriceOrTotal(v Violation) string {
	return fmt.Sprintf("ItemPrice%d or ItemSubTotal%d is required with item data", v.Item, v.Item)
}

func unknownField(v Violation) string {
	if v.Item > 0 {
		return "Unknown item field"
	}
	return "Unknown field"
}

func badItemIndex(v Violation) string {
	return fmt.Sprintf("Invalid item index (%s): items are indexed from 1", v.Value)
}

// field returns the catalogue entry of v's field.
func field(v Violation) (Field, bool) {
	if v.Item > 0 {
		return Item(v.Base)
	}
	if c, ok := Synonyms[v.Field]; ok {
		return Order(c)
	}
	return Order(v.Field)
}

// AttributionKeys lists the attribution keys in wire order.
func AttributionKeys() []string {
	var names []string
	for _, f := range OrderFields {
		if f.Attribution {
			names = append(names, f.Name)
		}
	}
	return names
}

// Check checks the value v of the field f by the API's rules and returns
// the rule it breaks, or None; an empty value breaks none (a field that
// is required is checked by CheckConversion). EventDate may be NOW.
func Check(f Field, v string) Rule {
	r, _ := check(&f, v)
	return r
}

// CheckValue is Check and then, for a value that passes it, CheckPolicy:
// every rule a single value can break, in that order, from one pass over
// the value. It is what a validator calls for each value.
func CheckValue(f *Field, v string) Rule {
	r, plain := check(f, v)
	if r != None || v == "" {
		return r
	}
	return policy(f, v, plain)
}

// check is Check; plain reports that v is ASCII without "@".
func check(f *Field, v string) (r Rule, plain bool) {
	if v == "" {
		return None, true
	}
	plain = isPlain(v)
	if !plain && !utf8.ValidString(v) {
		return NotUTF8, false
	}
	if f.Max > 0 && len(v) > f.Max && utf8.RuneCountInString(v) > f.Max {
		return TooLong, plain
	}
	return checkKind(f, v, plain), plain
}

// checkKind checks a non-empty, valid UTF-8 value against its field's
// kind. plain says that v is ASCII without "@".
func checkKind(f *Field, v string, plain bool) Rule {
	switch f.Kind {
	case Text:
		if f.Name == "CustomerId" && !plain && HasEmail(v) {
			return PersonalID
		}
	case ID:
		if !isDigits(v, 10) {
			return NotID
		}
	case Quantity:
		return checkQuantity(v)
	case Decimal:
		if !IsDecimal(v, -1) {
			return NotNumber
		}
	case Money:
		if !IsDecimal(v, -1) {
			return NotNumber
		}
		if !IsDecimal(v, 2) {
			return MoneyDecimals
		}
	case Date:
		if f.Name == "EventDate" && v == "NOW" {
			return None
		}
		_, r := ParseDate(v)
		return r
	case Digest:
		if !isHex(v) || len(v) != 40 && len(v) != 64 {
			return NotDigest
		}
	case Currency:
		if len(v) != 3 || !isUpper(v[0]) || !isUpper(v[1]) || !isUpper(v[2]) {
			return NotCurrency
		}
	case Bool:
		if v != "true" && v != "false" {
			return NotBool
		}
	case IP:
		if _, err := netip.ParseAddr(v); err != nil {
			return NotIP
		}
	}
	return None
}

// CheckPolicy checks the value v of the field f by convpipe's own rules
// of a value (EmailInValue, ControlInID) and returns the one it breaks,
// or None. The API's rules come first: call it for a value that passes
// Check.
func CheckPolicy(f Field, v string) Rule {
	return policy(&f, v, isPlain(v))
}

// isPlain reports whether v is ASCII without "@" (the common case): it
// then holds no e-mail address and is valid UTF-8.
func isPlain(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= utf8.RuneSelf || c == '@' {
			return false
		}
	}
	return true
}

// policy is CheckPolicy; plain says that v is ASCII without "@" (it then
// holds no e-mail address).
func policy(f *Field, v string, plain bool) Rule {
	if f.Name == "OrderId" {
		for _, r := range v {
			if unicode.IsControl(r) {
				return ControlInID
			}
		}
	}
	if f.Kind == Text && f.Name != "CustomerId" && !plain && HasEmail(v) {
		return EmailInValue
	}
	return None
}

// checkQuantity checks a non-empty quantity: a whole number greater
// than 0.
func checkQuantity(v string) Rule {
	if !IsDecimal(v, -1) {
		return NotNumber
	}
	if !isDigits(strings.TrimPrefix(v, "-"), 64) {
		return NotWhole
	}
	if v[0] == '-' || strings.Trim(v, "0") == "" {
		return NotPositive
	}
	return None
}

// ParseDate parses an ISO 8601 value as the API takes it: a date
// (2006-01-02) or a date-time with an offset (RFC 3339). It returns
// NotDate or NoOffset when v is neither.
func ParseDate(v string) (time.Time, Rule) {
	if len(v) == 10 {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, NotDate
		}
		return t, None
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		if _, err2 := time.Parse("2006-01-02T15:04:05.999999999", v); err2 == nil {
			return time.Time{}, NoOffset
		}
		return time.Time{}, NotDate
	}
	return t, None
}

// CheckConversion appends to out the rules of the whole conversion that
// c breaks (NoEventType … NoPriceOrTotal), the order level's first, then
// each item's, and returns out. A field counts when it has a value; c's
// order-level fields may be named by their synonyms.
func CheckConversion(c *pipeline.Conversion, out []Violation) []Violation {
	var eventType, attributed, date, campaign, orderID, subTotal bool
	for _, f := range c.Fields {
		if f.Value == "" {
			continue
		}
		switch f.Name {
		case "EventTypeId", "EventTypeCode", "ActionTrackerId":
			eventType = true
		case "EventDate":
			date = true
		case "CampaignId", "ProgramId":
			campaign = true
		case "OrderId":
			orderID = true
		case "OrderSubTotalPostDiscount":
			subTotal = true
		default:
			if !attributed {
				d, ok := Order(f.Name)
				attributed = ok && d.Attribution
			}
		}
	}
	for _, m := range [...]struct {
		ok    bool
		rule  Rule
		field string
	}{
		{eventType, NoEventType, "EventTypeId"}, {attributed, NoAttribution, "ClickId"},
		{date, NoEventDate, "EventDate"}, {campaign, NoCampaign, "CampaignId"}, {orderID, NoOrderID, "OrderId"},
		{!subTotal || len(c.Items) == 0, SubTotalInItems, "OrderSubTotalPostDiscount"},
	} {
		if !m.ok {
			out = append(out, Violation{Rule: m.rule, Field: m.field})
		}
	}
	for i := range c.Items {
		out = checkItem(&c.Items[i], i+1, out)
	}
	return out
}

// checkItem appends the rules item n breaks to out.
func checkItem(it *pipeline.Item, n int, out []Violation) []Violation {
	var sku, category, quantity, price, total, some bool
	for _, f := range it.Fields {
		if f.Value == "" {
			continue
		}
		some = true
		switch f.Name {
		case "ItemSku":
			sku = true
		case "ItemCategory":
			category = true
		case "ItemQuantity":
			quantity = true
		case "ItemPrice":
			price = true
		case "ItemSubTotal":
			total = true
		}
	}
	at := func(r Rule, base string) Violation {
		return Violation{Rule: r, Field: pipeline.ItemFieldName(base, n), Item: n, Base: base}
	}
	if !some {
		return append(out, at(ItemGap, "ItemSku"))
	}
	for i, have := range [...]bool{sku, category, quantity} {
		if !have {
			out = append(out, at(ItemRequired, RequiredItemFields[i]))
		}
	}
	switch {
	case price && total:
		out = append(out, at(PriceAndTotal, "ItemSubTotal"))
	case !price && !total:
		out = append(out, at(NoPriceOrTotal, "ItemPrice"))
	}
	return out
}

// IsDecimal reports whether s is "-?digits(.digits)?" with at most
// maxFrac fractional digits (any number when maxFrac < 0).
func IsDecimal(s string, maxFrac int) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return false
	}
	if i == len(s) {
		return true
	}
	if s[i] != '.' {
		return false
	}
	i++
	fstart := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i != len(s) || i == fstart {
		return false
	}
	return maxFrac < 0 || i-fstart <= maxFrac
}

// isDigits reports whether s is 1 to max ASCII digits.
func isDigits(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// String returns the rule's name in the table.
func (r Rule) String() string {
	if int(r) < len(All) {
		return All[r].Name
	}
	return "rule(" + strconv.Itoa(int(r)) + ")"
}
