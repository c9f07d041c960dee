package sim

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is one field message of a 400 answer.
type FieldError struct {
	Field   string
	Message string
}

// The attribution keys, any one of which is enough.
var attributionKeys = []string{
	"ClickId", "CustomerId", "CustomProfileId", "OrderPromoCode", "UniqueUrl",
	"GoogAId", "AppleIfa", "AppleIfv", "MediaId", "CallerId", "PhoneNumber",
}

// Maximum lengths in characters of order-level fields.
var maxLengths = map[string]int{
	"OrderId":         64,
	"ClickId":         64,
	"CustomProfileId": 70,
	"CustomerId":      255,
	"EventTypeCode":   64,
	"PaymentType":     32,
	"Note":            255,
}

// orderNames are the order-level fields of the Conversions API reference,
// besides the attribution keys and the numbered custom fields (Text1,
// Money2, ...); any other order-level name is refused.
var orderNames = map[string]bool{
	"EventTypeId": true, "ActionTrackerId": true, "EventTypeCode": true, "EventDate": true,
	"CampaignId": true, "ProgramId": true, "OrderId": true, "IpAddress": true, "PaymentType": true,
	"OrderSubTotalPostDiscount": true, "OrderDiscount": true, "OrderDiscountRate": true,
	"OrderShipping": true, "OrderTax": true, "OrderMargin": true, "GiftPurchase": true,
	"LocationId": true, "LocationName": true, "LocationType": true, "PropertyId": true,
	"TrackingConsent": true, "CustomerStatus": true, "CustomerCity": true, "CustomerPostCode": true,
	"CustomerCountry": true, "CustomerRegion": true, "CustomerEmail": true, "CurrencyCode": true,
	"UserAgent": true, "DispositionCode": true, "DeviceMfr": true, "DeviceModel": true,
	"AppPackage": true, "AppInstallRef": true, "AppVer": true, "Note": true,
}

// Order-level money fields: numbers with at most 2 decimals.
var orderMoney = []string{
	"OrderSubTotalPostDiscount", "OrderDiscount", "OrderShipping", "OrderTax", "OrderMargin",
}

// Order-level numeric fields.
var orderNumeric = []string{"OrderDiscountRate"}

// The item fields without a sub-index and their maximum lengths (0: no
// length rule; the format rules are applied separately).
var itemPlain = map[string]int{
	"Sku": 255, "Category": 255, "SubCategory": 255, "Name": 255, "Brand": 255, "Mpn": 64,
	"Quantity": 0, "Price": 0, "SubTotal": 0, "Discount": 0, "TotalDiscount": 0,
	"DiscountRate": 0, "PromoCode": 255, "DeliveryType": 64, "Margin": 0,
}

// The indexed families and how many of each there are.
var families = map[string]int{"Text": 50, "Numeric": 10, "Money": 3, "Date": 10}

var (
	itemName   = regexp.MustCompile(`^Item([A-Za-z]+)([0-9]+)(?:_([0-9]+))?$`)
	familyName = regexp.MustCompile(`^(Text|Numeric|Money|Date)([0-9]+)$`)
	moneyRe    = regexp.MustCompile(`^-?[0-9]+(\.[0-9]{1,2})?$`)
	numericRe  = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?$`)
	intRe      = regexp.MustCompile(`^[0-9]{1,10}$`)
	wholeRe    = regexp.MustCompile(`^[0-9]+$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	digestRe   = regexp.MustCompile(`^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)
	emailRe    = regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`)
)

// The ISO 8601 forms accepted for dates.
var dateLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04",
	"2006-01-02",
}

func isISO8601(s string) bool {
	for _, l := range dateLayouts {
		if _, err := time.Parse(l, s); err == nil {
			return true
		}
	}
	return false
}

// adder records one field error; its format and args are fmt.Sprintf's.
type adder func(field, format string, args ...any)

// validate checks a conversion's fields against the documented rules and
// returns every problem, sorted by field. It never echoes values of fields
// that may identify a person.
func validate(v url.Values) []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	names := slices.Sorted(maps.Keys(v))
	checkEncoding(v, names, add)
	checkRequired(v, add)
	checkOrderFields(v, names, add)
	items := checkIndexedFields(v, names, add)
	checkItems(v, items, add)
	slices.SortStableFunc(errs, func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs
}

// checkEncoding checks that every field is sent once and in UTF-8.
func checkEncoding(v url.Values, names []string, add adder) {
	for _, n := range names {
		if len(v[n]) > 1 {
			add(n, "Field sent more than once")
		}
		if !utf8.ValidString(v.Get(n)) {
			add(n, "Invalid characters: not UTF-8")
		}
	}
}

// checkRequired checks the required fields: the event type, an
// attribution key, the event date, the campaign and the OrderId.
func checkRequired(v url.Values, add adder) {
	idField, id := first(v, "EventTypeId", "ActionTrackerId")
	code := v.Get("EventTypeCode")
	switch {
	case id == "" && code == "":
		add("EventTypeId", "EventTypeId or EventTypeCode is required")
	case id != "" && !intRe.MatchString(id):
		add(idField, "Invalid numeric format (%s)", id)
	}

	if k, _ := first(v, attributionKeys...); k == "" {
		add("ClickId", "An attribution key is required: one of %s", strings.Join(attributionKeys, ", "))
	}

	switch ed := v.Get("EventDate"); {
	case ed == "":
		add("EventDate", "EventDate is required")
	case ed != "NOW" && !isISO8601(ed):
		add("EventDate", "Invalid date format (%s): ISO 8601 or NOW expected", ed)
	}

	campField, camp := first(v, "CampaignId", "ProgramId")
	switch {
	case camp == "":
		add("CampaignId", "CampaignId is required")
	case !intRe.MatchString(camp):
		add(campField, "Invalid numeric format (%s)", camp)
	}

	if v.Get("OrderId") == "" {
		add("OrderId", "OrderId is required")
	}
}

// checkOrderFields checks the formats of the order-level fields: lengths,
// customer identifiers, currency, flags, money and numbers.
func checkOrderFields(v url.Values, names []string, add adder) {
	for _, n := range names {
		if !orderNames[n] && !slices.Contains(attributionKeys, n) && !familyName.MatchString(n) && !itemName.MatchString(n) {
			add(n, "Unknown field: not a field of the Conversions API")
		}
		if max, ok := maxLengths[n]; ok {
			if l := utf8.RuneCountInString(v.Get(n)); l > max {
				add(n, "Value too long: %d characters, at most %d", l, max)
			}
		}
	}

	if c := v.Get("CustomerId"); emailRe.MatchString(c) {
		add("CustomerId", "CustomerId must not identify a person: plain e-mail addresses are not permitted")
	}
	if e := v.Get("CustomerEmail"); e != "" && !digestRe.MatchString(e) {
		add("CustomerEmail", "CustomerEmail must be a SHA-1 or SHA-256 hex digest")
	}
	if c, ok := v["CurrencyCode"]; ok && !currencyRe.MatchString(c[0]) {
		add("CurrencyCode", "Invalid currency code (%s): ISO 4217, 3 letters", c[0])
	}
	if g, ok := v["GiftPurchase"]; ok && g[0] != "true" && g[0] != "false" {
		add("GiftPurchase", "Invalid boolean (%s)", g[0])
	}
	for _, n := range orderMoney {
		checkMoney(v, n, add)
	}
	for _, n := range orderNumeric {
		checkNumeric(v, n, add)
	}
}

// checkIndexedFields checks the custom fields (Text1, Money2, ...) and the
// item fields, and returns, by item index, the fields each item has.
func checkIndexedFields(v url.Values, names []string, add adder) map[int]map[string]bool {
	items := map[int]map[string]bool{}
	for _, n := range names {
		if m := familyName.FindStringSubmatch(n); m != nil {
			checkCustomField(n, m[1], m[2], v.Get(n), add)
			continue
		}
		i, base, ok := checkItemField(v, n, add)
		if !ok {
			continue
		}
		if items[i] == nil {
			items[i] = map[string]bool{}
		}
		items[i][base] = true
	}
	return items
}

// checkCustomField checks the order-level custom field n of the given
// family and index.
func checkCustomField(n, family, idx, val string, add adder) {
	i, _ := strconv.Atoi(idx)
	if i < 1 || i > families[family] {
		add(n, "Unknown field: %s1 to %s%d are accepted", family, family, families[family])
		return
	}
	checkFamily(n, family, val, add)
}

// checkItemField checks the field n if it is an item field. It returns the
// item's index and the field's base name (such as Sku), and ok false when
// n is no item field or not a known one.
func checkItemField(v url.Values, n string, add adder) (int, string, bool) {
	m := itemName.FindStringSubmatch(n)
	if m == nil {
		return 0, "", false
	}
	base, idx, sub := m[1], m[2], m[3]
	i, err := strconv.Atoi(idx)
	if err != nil || i < 1 || strings.HasPrefix(idx, "0") {
		add(n, "Invalid item index (%s): items are indexed from 1", idx)
		return 0, "", false
	}
	if max, ok := families[base]; ok {
		s, err := strconv.Atoi(sub)
		if sub == "" || err != nil || s < 1 || s > max {
			add(n, "Unknown item field: Item%s%d_1 to Item%s%d_%d are accepted", base, i, base, i, max)
			return 0, "", false
		}
		checkFamily(n, base, v.Get(n), add)
		return i, base, true
	}
	maxLen, ok := itemPlain[base]
	if !ok || sub != "" {
		add(n, "Unknown item field")
		return 0, "", false
	}
	checkItemValue(v, n, base, maxLen, add)
	return i, base, true
}

// checkItemValue checks the value of the item field n, which has no
// sub-index: its length (when maxLen is not 0) and its format.
func checkItemValue(v url.Values, n, base string, maxLen int, add adder) {
	val := v.Get(n)
	if maxLen > 0 && utf8.RuneCountInString(val) > maxLen {
		add(n, "Value too long: %d characters, at most %d", utf8.RuneCountInString(val), maxLen)
	}
	switch base {
	case "Quantity":
		if !wholeRe.MatchString(val) || strings.Trim(val, "0") == "" {
			add(n, "Invalid quantity (%s): a whole number greater than 0", val)
		}
	case "Price", "SubTotal", "Discount", "TotalDiscount", "Margin":
		checkMoney(v, n, add)
	case "DiscountRate":
		checkNumeric(v, n, add)
	}
}

// checkItems checks the items as a whole: no order subtotal with them,
// indexes from 1 without gaps, and each item's required fields.
func checkItems(v url.Values, items map[int]map[string]bool, add adder) {
	if len(items) == 0 {
		return
	}
	if _, ok := v["OrderSubTotalPostDiscount"]; ok {
		add("OrderSubTotalPostDiscount", "OrderSubTotalPostDiscount must not be sent with item data")
	}
	for i := 1; i <= len(items); i++ {
		it, ok := items[i]
		if !ok {
			add(fmt.Sprintf("ItemSku%d", i), "Items must be indexed from 1 without gaps: item %d is missing", i)
			continue
		}
		for _, req := range []string{"Sku", "Category", "Quantity"} {
			if !it[req] {
				add(fmt.Sprintf("Item%s%d", req, i), "Item%s%d is required with item data", req, i)
			}
		}
		switch {
		case it["Price"] && it["SubTotal"]:
			add(fmt.Sprintf("ItemSubTotal%d", i), "Send ItemPrice%d or ItemSubTotal%d, not both", i, i)
		case !it["Price"] && !it["SubTotal"]:
			add(fmt.Sprintf("ItemPrice%d", i), "ItemPrice%d or ItemSubTotal%d is required with item data", i, i)
		}
	}
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

func checkMoney(v url.Values, n string, add adder) {
	s, ok := v[n]
	if !ok {
		return
	}
	if !moneyRe.MatchString(s[0]) {
		add(n, "Invalid money format (%s): a number with at most 2 decimals", s[0])
	}
}

func checkNumeric(v url.Values, n string, add adder) {
	s, ok := v[n]
	if !ok {
		return
	}
	if !numericRe.MatchString(s[0]) {
		add(n, "Invalid numeric format (%s)", s[0])
	}
}

func checkFamily(n, family, val string, add adder) {
	switch family {
	case "Text":
		if l := utf8.RuneCountInString(val); l > 64 {
			add(n, "Value too long: %d characters, at most 64", l)
		}
	case "Numeric":
		if !numericRe.MatchString(val) {
			add(n, "Invalid numeric format (%s)", val)
		}
	case "Money":
		if !moneyRe.MatchString(val) {
			add(n, "Invalid money format (%s): a number with at most 2 decimals", val)
		}
	case "Date":
		if !isISO8601(val) {
			add(n, "Invalid date format (%s): ISO 8601 expected", val)
		}
	}
}

// eventKey returns the deduplication key of a valid conversion: its event
// type (id or code) and OrderId.
func eventKey(v url.Values) (eventType, orderID string) {
	if _, id := first(v, "EventTypeId", "ActionTrackerId"); id != "" {
		return id, v.Get("OrderId")
	}
	return v.Get("EventTypeCode"), v.Get("OrderId")
}
