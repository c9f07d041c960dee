package sim

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MaxModifications is how many modifications impact takes for one action.
const MaxModifications = 1000

// DispositionCodes are the codes impact takes for a reversal (DELETE
// /Actions) and as the Reason of a modification.
var DispositionCodes = []string{
	"REJECTED", "CONS_INFO_INVALID", "CONS_ERROR", "CONS_FRAUD", "ITEM_RETURNED",
	"ITEM_OUT_OF_STOCK", "ORDER_ERROR", "PUB_ACT_DISPUTE", "NOT_COMPLIANCE_TERMS",
	"MP_RETURNED", "OTHER", "CREDITED_DIFFERENT_MP", "ADV_ACT_DISPUTE", "TEST_ACTION",
}

// The reasons of a modification besides the disposition codes.
const (
	reasonUpdate = "ORDER_UPDATE"
	reasonReset  = "RESET"
)

// actionItem is one line of an action: its SKU, its quantity now and at
// creation, and its line amount at creation, in cents.
type actionItem struct {
	sku               string
	qty, qty0         int64
	lineCents         int64
	originalLineCents int64
}

// Modification is one change impact took for an action (PUT or DELETE).
type Modification struct {
	// Time is when it was taken, on the simulated clock.
	Time time.Time
	// Method is PUT or DELETE; ActionID the action changed.
	Method   string
	ActionID string
	OrderID  string
	// Values are the request's fields.
	Values url.Values
	// Amount is the action's amount after the change.
	Amount string
}

// newItems reads the items of a tracked conversion, for its action.
func newItems(v url.Values) (items []actionItem, orderCents int64) {
	orderCents = cents(v.Get("OrderSubTotalPostDiscount"))
	for i := 1; ; i++ {
		n := strconv.Itoa(i)
		sku := v.Get("ItemSku" + n)
		if sku == "" {
			break
		}
		qty, _ := strconv.ParseInt(v.Get("ItemQuantity"+n), 10, 64)
		line := cents(v.Get("ItemSubTotal" + n))
		if v.Get("ItemSubTotal"+n) == "" {
			line = int64(math.Round(float64(cents(v.Get("ItemPrice"+n))) * float64(qty)))
		}
		line -= cents(v.Get("ItemDiscount" + n))
		items = append(items, actionItem{sku: sku, qty: qty, qty0: qty, lineCents: line, originalLineCents: line})
	}
	return items, orderCents - cents(v.Get("OrderDiscount"))
}

// cents reads a decimal amount as cents (0 when empty or not a number).
func cents(s string) int64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0
	}
	return int64(math.Round(f * 100))
}

func formatCents(c int64) string {
	sign := ""
	if c < 0 {
		sign, c = "-", -c
	}
	return fmt.Sprintf("%s%d.%02d", sign, c/100, c%100)
}

// Modifications returns the modifications and reversals taken, in order.
func (s *Server) Modifications() []Modification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mods)
}

// actionsResource routes /Advertisers/{SID}/Actions by method.
func (s *Server) actionsResource(ex *exchange, p plan) {
	switch ex.r.Method {
	case http.MethodGet:
		s.actionsList(ex, p)
	case http.MethodPut, http.MethodDelete:
		s.modify(ex, p)
	default:
		ex.w.Header().Set("Allow", "GET, PUT, DELETE")
		s.fail(ex, http.StatusMethodNotAllowed, "Method not allowed", nil)
	}
}

// modify handles PUT (a modification) and DELETE (a reversal) of
// /Advertisers/{SID}/Actions, with a form (or JSON) body.
func (s *Server) modify(ex *exchange, p plan) {
	if ex.bodyErr != nil {
		s.status(ex, StatusClientGone)
		return
	}
	values, err := parseBody(ex.r.Header.Get("Content-Type"), ex.body)
	if err != nil {
		status := http.StatusBadRequest
		if err == errMediaType {
			status = http.StatusUnsupportedMediaType
		}
		s.fail(ex, status, err.Error(), nil)
		return
	}
	now := s.Now()
	s.mu.Lock()
	a, status, msg := s.findAction(values, now)
	var change func()
	if msg == "" {
		if ex.r.Method == http.MethodDelete {
			change, msg = reversal(a, values)
		} else {
			change, msg = modification(a, values)
		}
		status = http.StatusBadRequest
	}
	if msg != "" {
		s.mu.Unlock()
		s.fail(ex, status, msg, nil)
		return
	}
	change()
	a.mods++
	a.updated = now
	s.mods = append(s.mods, Modification{Time: now, Method: ex.r.Method, ActionID: a.id, OrderID: a.orderID, Values: values, Amount: a.amount})
	s.nsub++
	sub := &submission{id: fmt.Sprintf("SIM%08d", s.nsub), created: now, completeAt: now, campaign: a.campaign, eventType: a.trackerID, orderID: a.orderID}
	s.subs[sub.id] = sub
	s.requests[ex.idx].OrderID = a.orderID
	s.requests[ex.idx].Recorded = true
	s.mu.Unlock()
	s.queued(ex, p, sub)
}

// findAction finds the action a modification names: by ActionId, or by
// ActionTrackerId (or EventTypeId) and OrderId; it must exist (its
// submission complete), not be reversed nor locked, and have taken fewer
// than MaxModifications. s.mu is held.
func (s *Server) findAction(v url.Values, now time.Time) (*action, int, string) {
	id := v.Get("ActionId")
	_, tracker := first(v, "ActionTrackerId", "EventTypeId")
	oid := v.Get("OrderId")
	if id == "" && (tracker == "" || oid == "") {
		return nil, http.StatusBadRequest, "ActionId, or ActionTrackerId and OrderId, are required to identify the action"
	}
	var a *action
	for _, x := range s.actions {
		if now.Before(x.created) {
			continue
		}
		if (id != "" && x.id == id) || (id == "" && x.trackerID == tracker && x.orderID == oid) {
			a = x
			break
		}
	}
	switch {
	case a == nil && id != "":
		return nil, http.StatusNotFound, fmt.Sprintf("Action not found (ActionId %s)", id)
	case a == nil:
		return nil, http.StatusNotFound, fmt.Sprintf("Action not found (ActionTrackerId %s, OrderId %s)", tracker, oid)
	case a.reversed:
		return nil, http.StatusBadRequest, fmt.Sprintf("Action %s is reversed (%s): a reversed action cannot be changed", a.id, a.disposition)
	case !now.Before(a.locking):
		return nil, http.StatusBadRequest, fmt.Sprintf("Action %s is locked since its locking date %s and can no longer be changed", a.id, a.locking.UTC().Format(time.RFC3339))
	case a.mods >= MaxModifications:
		return nil, http.StatusBadRequest, fmt.Sprintf("Action %s has reached the limit of %d modifications", a.id, MaxModifications)
	}
	return a, 0, ""
}

// reversal checks a DELETE's fields and returns the change it makes.
func reversal(a *action, v url.Values) (func(), string) {
	code := v.Get("DispositionCode")
	switch {
	case code == "":
		return nil, "DispositionCode is required"
	case !slices.Contains(DispositionCodes, code):
		return nil, fmt.Sprintf("Invalid DispositionCode (%s): one of %s", code, strings.Join(DispositionCodes, ", "))
	}
	return func() { a.reversed, a.disposition = true, code }, ""
}

// modification checks a PUT's fields and returns the change it makes:
// items' quantities (Sku and Quantity, or ItemSku{i} and ItemQuantity{i}),
// an Amount, an ItemSubTotalDelta, or Reason RESET; exactly one kind.
func modification(a *action, v url.Values) (func(), string) {
	reason := v.Get("Reason")
	if reason == "" {
		reason = v.Get("DispositionCode")
	}
	if reason == "" {
		return nil, "Reason (or DispositionCode) is required"
	}
	if reason != reasonUpdate && reason != reasonReset && !slices.Contains(DispositionCodes, reason) {
		return nil, fmt.Sprintf("Invalid Reason (%s): ORDER_UPDATE, RESET or a disposition code", reason)
	}
	qty, msg := itemChanges(a, v)
	if msg != "" {
		return nil, msg
	}
	kinds := 0
	for _, k := range []bool{len(qty) > 0, v.Get("Amount") != "", v.Get("ItemSubTotalDelta") != "", reason == reasonReset} {
		if k {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		return nil, "Nothing to modify: give Sku and Quantity, Amount or ItemSubTotalDelta (or Reason RESET)"
	case kinds > 1:
		return nil, "Give only one of: Sku and Quantity, Amount, ItemSubTotalDelta, Reason RESET"
	case reason == reasonReset:
		return a.reset, ""
	case len(qty) > 0:
		return a.setQuantities(qty)
	case v.Get("Amount") != "":
		c, ok := money(v.Get("Amount"))
		if !ok || c < 0 {
			return nil, fmt.Sprintf("Invalid Amount (%s): a decimal of at most 2 places, not negative", v.Get("Amount"))
		}
		return func() { a.amount = formatCents(c) }, ""
	}
	d, ok := money(v.Get("ItemSubTotalDelta"))
	if !ok {
		return nil, fmt.Sprintf("Invalid ItemSubTotalDelta (%s): a decimal of at most 2 places", v.Get("ItemSubTotalDelta"))
	}
	if n := cents(a.amount) + d; n < 0 {
		return nil, fmt.Sprintf("ItemSubTotalDelta %s would make the amount %s negative", v.Get("ItemSubTotalDelta"), a.amount)
	}
	return func() { a.amount = formatCents(cents(a.amount) + d) }, ""
}

// itemChanges reads the item quantities of a PUT: Sku and Quantity, or
// ItemSku{i} and ItemQuantity{i} from 1 (unsure which impact takes for
// several items: both are read). Each SKU must be one of the action's, each
// quantity a whole number from 0.
func itemChanges(a *action, v url.Values) (map[string]int64, string) {
	pairs := [][2]string{}
	if v.Has("Sku") || v.Has("Quantity") {
		pairs = append(pairs, [2]string{"Sku", "Quantity"})
	}
	for i := 1; v.Has("ItemSku"+strconv.Itoa(i)) || v.Has("ItemQuantity"+strconv.Itoa(i)); i++ {
		n := strconv.Itoa(i)
		pairs = append(pairs, [2]string{"ItemSku" + n, "ItemQuantity" + n})
	}
	out := map[string]int64{}
	for _, p := range pairs {
		sku, q := v.Get(p[0]), v.Get(p[1])
		n, err := strconv.ParseInt(q, 10, 64)
		switch {
		case sku == "":
			return nil, fmt.Sprintf("%s is required with %s", p[0], p[1])
		case q == "" || err != nil || n < 0:
			return nil, fmt.Sprintf("Invalid %s (%s): a whole number from 0", p[1], q)
		case !slices.ContainsFunc(a.items, func(it actionItem) bool { return it.sku == sku }):
			return nil, fmt.Sprintf("Invalid %s (%s): not an item of action %s", p[0], sku, a.id)
		}
		out[sku] = n
	}
	return out, ""
}

// money reads a signed decimal of at most two places as cents.
func money(s string) (int64, bool) {
	t := strings.TrimPrefix(s, "-")
	if i := strings.IndexByte(t, '.'); i >= 0 && len(t)-i-1 > 2 {
		return 0, false
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil || strings.ContainsAny(s, "eE+") {
		return 0, false
	}
	return cents(s), true
}

// setQuantities returns the change to the items' quantities: each line's
// amount scales with its quantity, and the action's amount is their sum.
func (a *action) setQuantities(qty map[string]int64) (func(), string) {
	return func() {
		var total int64
		for i := range a.items {
			it := &a.items[i]
			if q, ok := qty[it.sku]; ok {
				it.qty = q
				if it.qty0 > 0 {
					it.lineCents = int64(math.Round(float64(it.originalLineCents) * float64(q) / float64(it.qty0)))
				}
			}
			total += it.lineCents
		}
		a.amount = formatCents(max(total+a.orderCents, 0))
	}, ""
}

// reset returns the action to its amount at creation.
func (a *action) reset() {
	for i := range a.items {
		a.items[i].qty, a.items[i].lineCents = a.items[i].qty0, a.items[i].originalLineCents
	}
	a.amount = a.amount0
}

// Seed gives the simulator the action of a conversion impact tracked
// before it started (the account's history, such as what an earlier
// simulated run sent): v holds the conversion's fields (CampaignId,
// EventTypeId, OrderId, EventDate, CurrencyCode, the items' ItemSku,
// ItemQuantity, ItemPrice or ItemSubTotal, ItemDiscount). The action is
// listed at once; its OrderId is taken.
func (s *Server) Seed(v url.Values) error {
	_, tracker := first(v, "EventTypeId", "ActionTrackerId")
	_, camp := first(v, "CampaignId", "ProgramId")
	if tracker == "" || camp == "" || v.Get("OrderId") == "" {
		return fmt.Errorf("sim: seed: CampaignId, EventTypeId and OrderId are required")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.Now()
	s.nsub++
	sub := &submission{id: fmt.Sprintf("SIM%08d", s.nsub), created: now, completeAt: now, campaign: camp, eventType: tracker, orderID: v.Get("OrderId")}
	s.subs[sub.id] = sub
	s.seen[tracker+"\x00"+sub.orderID] = now
	s.newAction(sub, v)
	return nil
}
