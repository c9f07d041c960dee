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

	"convpipe/pipeline/rules"
)

// submission is one conversion request impact queued, and what its
// processing makes of it.
type submission struct {
	id string
	// created is when it was queued, on the simulated clock; it is
	// Complete from completeAt on.
	created, completeAt time.Time
	// errorType and errorReason are set when processing fails.
	errorType, errorReason string
	campaign, eventType    string
	orderID                string
	// action is the action its processing creates; nil when it fails.
	action *action
}

// action is an action impact created for a tracked conversion. It exists
// (is listed) from its submission's completion on.
type action struct {
	id                          string
	campaign, trackerID, code   string
	orderID, amount, currency   string
	eventDate, created, locking time.Time
	reversed                    bool
	sub                         *submission
	// The modifications' state (modify.go): the items, the order-level
	// part of the amount and the amount at creation, in cents and as
	// created; how many changes were taken, the last one's time and a
	// reversal's disposition code.
	items       []actionItem
	orderCents  int64
	amount0     string
	mods        int
	updated     time.Time
	disposition string
}

// The processing errors drawn at random, as impact names them.
var randomErrors = [][2]string{
	{"Contract Error", "CONTRACT_NOT_FOUND"},
	{"Validation", "ACTIONTRACKER_NOT_FOUND"},
	{"Contract Error", "OUTSIDE_ASSOCIATION_WINDOW"},
	{"Contract Error", "RESTRICTED_PROMOCODE"},
}

// Now returns the simulated clock: the wall clock moved on by every
// Advance. Submissions, actions and the deduplication window follow it;
// the quota window follows the wall clock, as the client's pacer does.
func (s *Server) Now() time.Time { return time.Now().Add(time.Duration(s.offset.Load())) }

// Advance moves the simulated clock on by d: submissions complete, age
// out of their 90 days and actions lock as if d had passed.
func (s *Server) Advance(d time.Duration) { s.offset.Add(int64(d)) }

// Submit records a conversion as if it had been posted and answered
// QUEUED, without a request: a fixture for tests that need many
// conversions at the simulator. It returns the QueuedUri, or the field
// errors a POST would have been refused with (a duplicate too, unless
// duplicates are queued).
func (s *Server) Submit(values url.Values) (string, error) {
	if errs := validate(values); len(errs) > 0 {
		return "", fmt.Errorf("sim: invalid conversion: %s: %s", errs[0].Field, errs[0].Message)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, dup := s.store(values, values.Encode(), nil)
	if sub == nil && dup {
		return "", fmt.Errorf("sim: duplicate OrderId %s", values.Get("OrderId"))
	}
	return s.queuedURI(sub), nil
}

// Reverse reverses the action of the conversion with the event type and
// OrderId, as a DELETE of the action would; it reports whether there was
// one.
func (s *Server) Reverse(eventType, orderID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for _, a := range s.actions {
		if a.orderID == orderID && (a.trackerID == eventType || a.code == eventType) {
			a.reversed, found = true, true
		}
	}
	return found
}

func (s *Server) queuedURI(sub *submission) string {
	return "/Advertisers/" + s.cfg.AccountSID + "/APISubmissions/" + sub.id
}

// store deduplicates a valid conversion and queues it; s.mu is held. dup
// reports a duplicate OrderId; sub is nil when the duplicate is refused
// (duplicates not queued). A duplicate queued gets a submission that
// completes as CONV_DUPLICATE; a new conversion is added to Accepted and
// processed: it fails with an error, or gets its action.
func (s *Server) store(values url.Values, body string, header http.Header) (sub *submission, dup bool) {
	eventType, orderID := eventKey(values)
	dedup := eventType + "\x00" + orderID
	if _, id := first(values, "EventTypeId", "ActionTrackerId"); id == "" {
		dedup = "code\x00" + dedup
	}
	now := s.Now()
	prev, dup := s.seen[dedup]
	if dup && s.cfg.DedupWindow > 0 && now.Sub(prev) > s.cfg.DedupWindow {
		dup = false
	}
	if dup {
		s.dups++
		if s.cfg.Duplicates != DuplicateQueued {
			return nil, true
		}
	}
	s.nsub++
	_, camp := first(values, "CampaignId", "ProgramId")
	sub = &submission{
		id: fmt.Sprintf("SIM%08d", s.nsub), created: now, completeAt: now.Add(s.cfg.CompleteAfter),
		campaign: camp, eventType: eventType, orderID: orderID,
	}
	s.subs[sub.id] = sub
	if dup {
		sub.errorType, sub.errorReason = "Validation", "CONV_DUPLICATE"
		return sub, true
	}
	s.accepted = append(s.accepted, Received{
		Time: time.Now(), EventType: eventType, OrderID: orderID, Values: values, Body: body, SubmissionID: sub.id,
		Header: header,
	})
	sub.errorType, sub.errorReason = s.process(values, now)
	if sub.errorReason == "" {
		// Only a tracked conversion makes its OrderId taken.
		s.seen[dedup] = now
		s.newAction(sub, values)
	}
	return sub, false
}

// process returns the error processing finds in a conversion queued at
// now, empty when it is tracked; s.mu is held.
func (s *Server) process(v url.Values, now time.Time) (errorType, errorReason string) {
	p := s.cfg.Processing
	_, id := first(v, "EventTypeId", "ActionTrackerId")
	_, camp := first(v, "CampaignId", "ProgramId")
	switch {
	case len(p.EventTypes) > 0 && !slices.Contains(p.EventTypes, id) && !slices.Contains(p.EventTypes, v.Get("EventTypeCode")):
		return "Validation", "ACTIONTRACKER_NOT_FOUND"
	case len(p.Campaigns) > 0 && !slices.Contains(p.Campaigns, camp):
		return "Contract Error", "CONTRACT_NOT_FOUND"
	case v.Get("OrderPromoCode") != "" && slices.Contains(p.RestrictedPromoCodes, v.Get("OrderPromoCode")):
		return "Contract Error", "RESTRICTED_PROMOCODE"
	case p.AssociationWindow > 0 && now.Sub(eventDate(v, now)) > p.AssociationWindow:
		return "Contract Error", "OUTSIDE_ASSOCIATION_WINDOW"
	case p.ErrorRate > 0 && s.rnd.Float64() < p.ErrorRate:
		e := randomErrors[s.rnd.IntN(len(randomErrors))]
		return e[0], e[1]
	}
	return "", ""
}

// newAction creates the action of a tracked conversion; s.mu is held.
func (s *Server) newAction(sub *submission, v url.Values) {
	s.nact++
	_, tracker := first(v, "EventTypeId", "ActionTrackerId")
	ed := eventDate(v, sub.created)
	if s.cfg.RedateAfter > 0 && sub.created.Sub(ed) > s.cfg.RedateAfter {
		ed = sub.created
	}
	a := &action{
		id:       fmt.Sprintf("%s.%s.%d", sub.campaign, cmpOr(tracker, "0"), 100000+s.nact),
		campaign: sub.campaign, trackerID: tracker, code: v.Get("EventTypeCode"),
		orderID: sub.orderID, amount: amountOf(v), currency: v.Get("CurrencyCode"),
		eventDate: ed, created: sub.completeAt, locking: ed.Add(s.cfg.LockAfter), sub: sub,
	}
	a.items, a.orderCents = newItems(v)
	a.amount0 = a.amount
	sub.action = a
	s.actions = append(s.actions, a)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// eventDate returns the conversion's EventDate, now for NOW; a date
// without a zone is taken as UTC.
func eventDate(v url.Values, now time.Time) time.Time {
	ed := v.Get("EventDate")
	if ed == "NOW" {
		return now
	}
	if t, r := rules.ParseDate(ed); r == rules.None {
		return t
	}
	return now
}

// amountOf is the sale amount of a valid conversion: its
// OrderSubTotalPostDiscount, or the sum of its items (ItemSubTotal, or
// ItemPrice × ItemQuantity, less ItemDiscount), less OrderDiscount.
func amountOf(v url.Values) string {
	num := func(n string) float64 {
		f, _ := strconv.ParseFloat(v.Get(n), 64)
		return f
	}
	total := num("OrderSubTotalPostDiscount")
	for i := 1; ; i++ {
		n := strconv.Itoa(i)
		if v.Get("ItemSku"+n) == "" {
			break
		}
		line := num("ItemSubTotal" + n)
		if v.Get("ItemSubTotal"+n) == "" {
			line = num("ItemPrice"+n) * num("ItemQuantity"+n)
		}
		total += line - num("ItemDiscount"+n)
	}
	total -= num("OrderDiscount")
	return strconv.FormatFloat(math.Round(total*100)/100, 'f', 2, 64)
}

// state is the action's state at now.
func (a *action) state(now time.Time) string {
	switch {
	case a.reversed:
		return "REVERSED"
	case !now.Before(a.locking):
		return "APPROVED"
	}
	return "PENDING"
}

// submissionStatus is the status of sub at now.
func (s *Server) submissionStatus(sub *submission, now time.Time) string {
	age := now.Sub(sub.created)
	switch {
	case age >= s.cfg.CompleteAfter:
		return "Complete"
	case age >= s.cfg.CompleteAfter/2:
		return "In Progress"
	}
	return "Queued"
}

// submission handles GET /Advertisers/{SID}/APISubmissions/{id}: 404 for
// an unknown id and for a record older than KeepSubmissions.
func (s *Server) submission(ex *exchange, _ plan) {
	id := strings.Trim(ex.r.URL.Path, "/")
	id = id[strings.LastIndexByte(id, '/')+1:]
	now := s.Now()
	s.mu.Lock()
	sub, ok := s.subs[id]
	if ok && now.Sub(sub.created) > s.cfg.KeepSubmissions {
		delete(s.subs, id)
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		s.fail(ex, http.StatusNotFound, "Submission not found", nil)
		return
	}
	ans := map[string]string{
		"BatchId":        sub.id,
		"Uri":            s.queuedURI(sub),
		"SubmissionDate": sub.created.UTC().Format(time.RFC3339),
		"CampaignId":     sub.campaign,
		"OrderId":        sub.orderID,
		"Type":           "Conversion",
		"Status":         s.submissionStatus(sub, now),
		"CompletionDate": "",
		"ErrorType":      "",
		"ErrorReason":    "",
	}
	if ans["Status"] == "Complete" {
		ans["CompletionDate"] = sub.completeAt.UTC().Format(time.RFC3339)
		ans["ErrorType"], ans["ErrorReason"] = sub.errorType, sub.errorReason
	}
	s.writeJSON(ex, http.StatusOK, ans)
}
