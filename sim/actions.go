package sim

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"convpipe/pipeline/rules"
)

// The rules of GET /Actions (impact, since 2024-08-05).
const (
	// MaxActionRange is the longest date range of one query.
	MaxActionRange = 45 * 24 * time.Hour
	// MaxActionPages is how many pages a query's result may need.
	MaxActionPages = 10
	// DefaultActionPageSize and MinActionPageSize bound PageSize; a
	// PageSize above the default is refused too (unsure: impact documents
	// only the default and the minimum).
	DefaultActionPageSize = 20000
	MinActionPageSize     = 2000
	// maxStartAge is how far back a range may start.
	maxStartAge = 3 * 365 * 24 * time.Hour
	// defaultRange is what a query without dates covers (last updated).
	defaultRange = 7 * 24 * time.Hour
)

// dateRange is one of the query's date filters.
type dateRange struct {
	startName, endName string
	start, end         time.Time
	set                bool
}

// actionQuery is a parsed GET /Actions query.
type actionQuery struct {
	campaign       string
	state          string
	updated, event dateRange
	locking        dateRange
	page, pageSize int
}

// actionsList handles GET /Advertisers/{SID}/Actions.
func (s *Server) actionsList(ex *exchange, _ plan) {
	now := s.Now()
	q, msg := parseActionQuery(ex.r.URL.Query(), now)
	if msg != "" {
		s.fail(ex, http.StatusBadRequest, msg, nil)
		return
	}
	s.mu.Lock()
	var match []*action
	for _, a := range s.actions {
		if q.matches(a, now) {
			match = append(match, a)
		}
	}
	s.mu.Unlock()
	if len(match) > MaxActionPages*q.pageSize {
		s.fail(ex, http.StatusBadRequest, fmt.Sprintf(
			"The result would need more than %d pages of %d actions (%d): narrow the date range or increase PageSize", MaxActionPages, q.pageSize, len(match)), nil)
		return
	}
	// Newest first, by creation.
	slices.SortStableFunc(match, func(a, b *action) int { return b.created.Compare(a.created) })
	s.writeJSON(ex, http.StatusOK, s.actionPage(ex.r.URL, q, match, now))
}

// campaignField is CampaignId's rule: an integer id.
var campaignField, _ = rules.Order("CampaignId")

// parseActionQuery checks a query as impact does and returns the
// message of the 400 answer when it breaks a rule.
func parseActionQuery(v url.Values, now time.Time) (actionQuery, string) {
	q := actionQuery{campaign: v.Get("CampaignId"), state: v.Get("State"), page: 1, pageSize: DefaultActionPageSize}
	if q.campaign == "" {
		return q, "CampaignId is required"
	}
	if rules.Check(campaignField, q.campaign) != rules.None {
		return q, fmt.Sprintf("Invalid CampaignId (%s)", q.campaign)
	}
	if q.state != "" && !slices.Contains([]string{"PENDING", "APPROVED", "REVERSED"}, q.state) {
		return q, fmt.Sprintf("Invalid State (%s): PENDING, APPROVED or REVERSED", q.state)
	}
	q.updated = dateRange{startName: "StartDate", endName: "EndDate"}
	q.event = dateRange{startName: "ActionDateStart", endName: "ActionDateEnd"}
	q.locking = dateRange{startName: "LockingDateStart", endName: "LockingDateEnd"}
	for _, r := range []*dateRange{&q.updated, &q.event, &q.locking} {
		if msg := r.parse(v, now); msg != "" {
			return q, msg
		}
	}
	if !q.updated.set && !q.event.set && !q.locking.set {
		q.updated = dateRange{start: now.Add(-defaultRange), end: now, set: true}
	}
	var msg string
	if q.page, msg = intParam(v, "Page", 1, 1, 1<<30); msg != "" {
		return q, msg
	}
	if q.pageSize, msg = intParam(v, "PageSize", DefaultActionPageSize, MinActionPageSize, DefaultActionPageSize); msg != "" {
		return q, msg
	}
	return q, ""
}

// parse reads the range's two parameters: both or neither, ISO 8601, the
// end not before the start, at most MaxActionRange apart, the start at
// most three years back.
func (r *dateRange) parse(v url.Values, now time.Time) string {
	a, b := v.Get(r.startName), v.Get(r.endName)
	if a == "" && b == "" {
		return ""
	}
	if a == "" || b == "" {
		return fmt.Sprintf("%s and %s must be given together", r.startName, r.endName)
	}
	var ok bool
	if r.start, ok = parseDate(a); !ok {
		return fmt.Sprintf("Invalid date format for %s (%s): ISO 8601 expected", r.startName, a)
	}
	if r.end, ok = parseDate(b); !ok {
		return fmt.Sprintf("Invalid date format for %s (%s): ISO 8601 expected", r.endName, b)
	}
	switch {
	case r.end.Before(r.start):
		return fmt.Sprintf("%s must not be before %s", r.endName, r.startName)
	case r.end.Sub(r.start) > MaxActionRange:
		return fmt.Sprintf("The date range from %s to %s cannot exceed 45 days", r.startName, r.endName)
	case now.Sub(r.start) > maxStartAge:
		return fmt.Sprintf("%s cannot be more than 3 years in the past", r.startName)
	}
	r.set = true
	return ""
}

func parseDate(s string) (time.Time, bool) {
	if t, r := rules.ParseDate(s); r == rules.None {
		return t, true
	}
	return time.Time{}, false
}

// intParam reads an integer parameter within [lo, hi].
func intParam(v url.Values, name string, def, lo, hi int) (int, string) {
	s := v.Get(name)
	if s == "" {
		return def, ""
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Sprintf("Invalid %s (%s): a whole number from %d to %d", name, s, lo, hi)
	}
	return n, ""
}

func (r dateRange) contains(t time.Time) bool {
	return !r.set || (!t.Before(r.start) && !t.After(r.end))
}

// matches reports whether the action is listed by the query at now: it
// exists (its submission is complete) and passes every filter.
func (q actionQuery) matches(a *action, now time.Time) bool {
	return a.campaign == q.campaign && !now.Before(a.created) &&
		(q.state == "" || a.state(now) == q.state) &&
		q.updated.contains(a.lastUpdate()) && q.event.contains(a.eventDate) && q.locking.contains(a.locking)
}

// actionPage is the answer of one page, in impact's list envelope.
func (s *Server) actionPage(u *url.URL, q actionQuery, match []*action, now time.Time) map[string]any {
	total := len(match)
	pages := max((total+q.pageSize-1)/q.pageSize, 1)
	from := min((q.page-1)*q.pageSize, total)
	to := min(from+q.pageSize, total)
	pageURI := func(p int) string {
		if p < 1 || p > pages {
			return ""
		}
		v := u.Query()
		v.Set("Page", strconv.Itoa(p))
		v.Set("PageSize", strconv.Itoa(q.pageSize))
		return u.Path + "?" + v.Encode()
	}
	list := make([]map[string]string, 0, to-from)
	for _, a := range match[from:to] {
		list = append(list, s.actionJSON(a, now))
	}
	return map[string]any{
		"@page": strconv.Itoa(q.page), "@numpages": strconv.Itoa(pages), "@pagesize": strconv.Itoa(q.pageSize),
		"@total": strconv.Itoa(total), "@start": strconv.Itoa(from), "@end": strconv.Itoa(max(to-1, 0)),
		"@uri": u.RequestURI(), "@firstpageuri": pageURI(1), "@previouspageuri": pageURI(q.page - 1),
		"@nextpageuri": pageURI(q.page + 1), "@lastpageuri": pageURI(pages),
		"Actions": list,
	}
}

// actionJSON is one action as impact lists it: every value a string.
func (s *Server) actionJSON(a *action, now time.Time) map[string]string {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	return map[string]string{
		"Id": a.id, "CampaignId": a.campaign, "ActionTrackerId": a.trackerID, "EventCode": a.code,
		"State": a.state(now), "Amount": a.amount, "IntendedAmount": a.amount, "Currency": a.currency,
		"EventDate": f(a.eventDate), "CreationDate": f(a.created), "LockingDate": f(a.locking),
		"Oid": a.orderID, "Uri": "/Advertisers/" + s.cfg.AccountSID + "/Actions/" + a.id,
		"DispositionCode": a.disposition, "Modifications": strconv.Itoa(a.mods),
	}
}

// lastUpdate is when the action was created or last changed (a state
// change by its locking date is no update).
func (a *action) lastUpdate() time.Time {
	if a.updated.After(a.created) {
		return a.updated
	}
	return a.created
}
