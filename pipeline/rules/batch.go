package rules

import "time"

// BatchColumns are the columns every batch file of conversions starts
// with, in impact's order. Optional columns follow them, under the API's
// field names (order-level: "OrderDiscount", "Text1"; item-level: the
// item field's name without its index, "ItemName", "ItemText_2"
// (unsure: impact documents the optional columns as "the API's
// parameters" without naming the item-level ones)).
var BatchColumns = []string{
	"CampaignId", "ActionTrackerId", "EventDate", "OrderId", "ClickId", "CustomerId",
	"CurrencyCode", "Amount", "Category", "Sku", "Quantity",
}

// BatchColumnField maps the batch columns that have another name in the
// API to the API's field: the item-level ones to the item field's name,
// Amount to ItemSubTotal (a line's total) on an item line and to
// OrderSubTotalPostDiscount on a line without item data.
var BatchColumnField = map[string]string{
	"ActionTrackerId": "EventTypeId",
	"Category":        "ItemCategory",
	"Sku":             "ItemSku",
	"Quantity":        "ItemQuantity",
}

// How old an event date a batch file may carry: impact does not process
// a line dated further back (398 days when the line is attributed by
// MediaId).
const (
	BatchMaxAge        = 88 * 24 * time.Hour
	BatchMaxAgeMediaID = 398 * 24 * time.Hour
)

// BatchTooOld reports whether a batch line dated t is too old for impact
// to process at now: older than BatchMaxAge, or BatchMaxAgeMediaID with a
// MediaId.
func BatchTooOld(t, now time.Time, mediaID bool) bool {
	limit := BatchMaxAge
	if mediaID {
		limit = BatchMaxAgeMediaID
	}
	return now.Sub(t) > limit
}
