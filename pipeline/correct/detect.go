package correct

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"convpipe/pipeline"
)

// Reasons sent with a modification.
const (
	// ReasonUpdate is the Reason of a PUT that sets quantities or the
	// amount to the shop's.
	ReasonUpdate = "ORDER_UPDATE"
)

// identify returns the fields that name the action of key: its
// ActionTrackerId (the event type id) and OrderId. An event type given by
// its code names no action there.
func identify(key pipeline.Key) (url.Values, error) {
	if key.EventType == "" || strings.Trim(key.EventType, "0123456789") != "" {
		return nil, fmt.Errorf("the event type %q is a code: impact's Actions API names an action by ActionTrackerId (the event type's number) and OrderId; correct it by hand or map EventTypeId", key.EventType)
	}
	return url.Values{"ActionTrackerId": {key.EventType}, "OrderId": {key.OrderID}}, nil
}

// skuLine is the items of one SKU in a Lines: quantity and amount summed.
type skuLine struct {
	qty, cents int64
	price      string
	lines      int
}

// bySku sums the items of l by SKU, in order of first appearance.
func bySku(l pipeline.Lines) ([]string, map[string]*skuLine, error) {
	var order []string
	m := map[string]*skuLine{}
	for _, it := range l.Items {
		q, err := quantity(it.Quantity)
		if err != nil {
			return nil, nil, fmt.Errorf("item %s: %w", it.Sku, err)
		}
		c, err := lineCents(it)
		if err != nil {
			return nil, nil, fmt.Errorf("item %s: %w", it.Sku, err)
		}
		s := m[it.Sku]
		if s == nil {
			s = &skuLine{price: it.Price}
			m[it.Sku] = s
			order = append(order, it.Sku)
		}
		s.qty += q
		s.cents += c
		s.lines++
	}
	return order, m, nil
}

// Detect returns the correction that brings impact's action for key from
// accepted (the lines impact took) to now (the order's lines today): item
// quantities when only quantities changed (a partial return, a removed
// item) and the amount impact will compute from them is the shop's;
// otherwise the order's amount. A change impact cannot make through the
// Actions API (the currency; only fields that are not amounts) or must
// not (a negative amount) is a refused or manual correction saying why.
func Detect(key pipeline.Key, accepted, now pipeline.Lines) pipeline.Correction {
	c := pipeline.Correction{Key: key, FromHash: accepted.PayloadHash, ToHash: now.PayloadHash, Currency: now.Currency,
		CampaignID: accepted.CampaignID, EventDate: accepted.EventDate, Reason: ReasonUpdate, Method: "PUT"}
	before, err1 := total(accepted)
	after, err2 := total(now)
	if err := cmpErr(err1, err2); err != nil {
		return manual(c, "the amounts cannot be read: "+err.Error())
	}
	c.Before, c.After = formatCents(before), formatCents(after)
	ch, itemsOnly, err := changes(accepted, now)
	if err != nil {
		return manual(c, "the items cannot be compared: "+err.Error())
	}
	c.Changes = ch
	switch {
	case accepted.Currency != "" && now.Currency != "" && accepted.Currency != now.Currency:
		c.Kind, c.State = pipeline.CorrectAmount, pipeline.CorrectionRefused
		c.Messages = msg(fmt.Sprintf("the currency changed (%s → %s): impact does not change an action's currency; check the mapping, or correct the action by hand", accepted.Currency, now.Currency))
		return c
	case after < 0:
		c.Kind, c.State = pipeline.CorrectAmount, pipeline.CorrectionRefused
		c.Messages = msg(fmt.Sprintf("refused: the order's amount would be %s, negative (was %s): check the export's prices, quantities and discounts", c.After, c.Before))
		return c
	case len(ch) == 0:
		c.Kind = pipeline.CorrectAmount
		return manual(c, "only fields that are not amounts changed: impact's Actions API corrects amounts and quantities only")
	}
	id, err := identify(key)
	if err != nil {
		c.Kind = pipeline.CorrectAmount
		return manual(c, err.Error())
	}
	id.Set("Reason", ReasonUpdate)
	c.State = pipeline.CorrectionPlanned
	if itemsOnly {
		c.Kind = pipeline.CorrectItems
		itemForm(id, ch)
	} else {
		c.Kind = pipeline.CorrectAmount
		id.Set("Amount", c.After)
	}
	c.Form = id.Encode()
	return c
}

func cmpErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// changes lists what differs between accepted and now, and whether item
// quantities alone bring impact's amount to now's: every SKU of now was
// accepted, on one line each, at the same unit amount, and the order's
// own amount and discount are the same.
func changes(accepted, now pipeline.Lines) ([]pipeline.Change, bool, error) {
	aOrder, a, err := bySku(accepted)
	if err != nil {
		return nil, false, err
	}
	nOrder, n, err := bySku(now)
	if err != nil {
		return nil, false, err
	}
	var out []pipeline.Change
	itemsOnly := len(accepted.Items) > 0
	for _, sku := range aOrder {
		x, y := a[sku], n[sku]
		switch {
		case y == nil:
			out = append(out, pipeline.Change{Sku: sku, What: "quantity", From: strconv.FormatInt(x.qty, 10), To: "0"})
		case x.qty != y.qty:
			out = append(out, pipeline.Change{Sku: sku, What: "quantity", From: strconv.FormatInt(x.qty, 10), To: strconv.FormatInt(y.qty, 10)})
		}
		if y == nil {
			itemsOnly = itemsOnly && x.lines == 1
			continue
		}
		if x.lines != 1 || y.lines != 1 || x.qty == 0 || y.cents*x.qty != x.cents*y.qty {
			itemsOnly = false
		}
		if y.cents*x.qty != x.cents*y.qty {
			out = append(out, pipeline.Change{Sku: sku, What: "price", From: unit(x), To: unit(y)})
		}
	}
	for _, sku := range nOrder {
		if a[sku] == nil {
			itemsOnly = false
			out = append(out, pipeline.Change{Sku: sku, What: "quantity", From: "0", To: strconv.FormatInt(n[sku].qty, 10)})
		}
	}
	for _, f := range [][3]string{{"order amount", accepted.Amount, now.Amount}, {"order discount", accepted.OrderDiscount, now.OrderDiscount}} {
		x, _ := cents(f[1])
		y, _ := cents(f[2])
		if x != y {
			itemsOnly = false
			out = append(out, pipeline.Change{What: f[0], From: formatCents(x), To: formatCents(y)})
		}
	}
	return out, itemsOnly, nil
}

// unit is the amount of one unit of a SKU's line, as a person reads it.
func unit(s *skuLine) string {
	if s.qty == 0 {
		return formatCents(s.cents)
	}
	if s.price != "" {
		return s.price
	}
	return formatCents(s.cents / s.qty)
}

// itemForm adds the item quantities of ch to v: Sku and Quantity for one
// item, ItemSku{i} and ItemQuantity{i} for several (impact documents Sku
// and Quantity, and several items in one call; the simulator takes both).
func itemForm(v url.Values, ch []pipeline.Change) {
	var qs []pipeline.Change
	for _, c := range ch {
		if c.What == "quantity" {
			qs = append(qs, c)
		}
	}
	if len(qs) == 1 {
		v.Set("Sku", qs[0].Sku)
		v.Set("Quantity", qs[0].To)
		return
	}
	for i, c := range qs {
		n := strconv.Itoa(i + 1)
		v.Set("ItemSku"+n, c.Sku)
		v.Set("ItemQuantity"+n, c.To)
	}
}

// Reverse returns the reversal of key's action, whose accepted lines are
// accepted, with the DispositionCode disposition.
func Reverse(key pipeline.Key, accepted pipeline.Lines, disposition string) pipeline.Correction {
	c := pipeline.Correction{Key: key, Kind: pipeline.CorrectReversal, FromHash: accepted.PayloadHash, Currency: accepted.Currency,
		CampaignID: accepted.CampaignID, EventDate: accepted.EventDate, Reason: disposition, Method: "DELETE", After: "0.00"}
	before, err := total(accepted)
	if err != nil {
		return manual(c, "the accepted amount cannot be read: "+err.Error())
	}
	c.Before = formatCents(before)
	c.Changes = []pipeline.Change{{What: "state", From: "accepted", To: "reversed: " + disposition}}
	id, err := identify(key)
	if err != nil {
		return manual(c, err.Error())
	}
	id.Set("DispositionCode", disposition)
	c.State, c.Form = pipeline.CorrectionPlanned, id.Encode()
	return c
}

// Unknown returns the correction of an order the ledger has no accepted
// lines of (accepted before convpipe kept them): it needs a person, who
// gets what is known, the order's lines now (nil for a reversal).
func Unknown(key pipeline.Key, e pipeline.Entry, kind pipeline.CorrectionKind, now *pipeline.Lines, disposition string) pipeline.Correction {
	c := pipeline.Correction{Key: key, Kind: kind, FromHash: acceptedHash(e), Reason: disposition}
	text := fmt.Sprintf("needs a manual correction: the ledger does not know what impact accepted for %s (accepted %s, submission %s, before convpipe kept amounts)",
		key, e.Created.UTC().Format("2006-01-02"), cmpOr(e.SubmissionID, "unknown"))
	if now != nil {
		c.ToHash, c.Currency, c.CampaignID, c.EventDate = now.PayloadHash, now.Currency, now.CampaignID, now.EventDate
		if t, err := total(*now); err == nil {
			c.After = formatCents(t)
			text += "; the order's amount is now " + c.After + " " + now.Currency
		}
		for _, it := range now.Items {
			c.Changes = append(c.Changes, pipeline.Change{Sku: it.Sku, What: "quantity now", To: cmpOr(it.Quantity, "1")})
		}
	} else {
		c.After = "0.00"
		text += "; reverse it with DispositionCode " + disposition
	}
	return manual(c, text)
}

func manual(c pipeline.Correction, text string) pipeline.Correction {
	c.State = pipeline.CorrectionManual
	c.Messages = msg(text)
	c.Method, c.Form = "", ""
	return c
}

func msg(text string) []pipeline.Message { return []pipeline.Message{{Text: text}} }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// acceptedHash is the payload impact has for e: the one accepted (or
// corrected to) before a later change.
func acceptedHash(e pipeline.Entry) string {
	if e.State == pipeline.StateChanged && e.SentHash != "" {
		return e.SentHash
	}
	return e.PayloadHash
}

// PaidInError is the amount a too-late correction leaves paid in error:
// Before − After, as a person settles it.
func PaidInError(c pipeline.Correction) string {
	b, err1 := cents(c.Before)
	a, err2 := cents(c.After)
	if err1 != nil || err2 != nil || b <= a {
		return ""
	}
	return formatCents(b - a)
}
