package reconcile

import (
	"cmp"
	"slices"
	"time"

	"convpipe/pipeline"
)

// Conversion is one accepted conversion to reconcile, as the ledger
// knows it.
type Conversion struct {
	Key pipeline.Key
	// CampaignID is the conversion's CampaignId: impact lists actions
	// per campaign.
	CampaignID string
	// EventDate is the EventDate sent.
	EventDate time.Time
	// AcceptedAt is when impact answered QUEUED.
	AcceptedAt time.Time
	// SubmissionID and QueuedURI name the submission of the accepted
	// send (the last one when it was sent more than once); either may be
	// empty when the acceptance was a duplicate answer.
	SubmissionID, QueuedURI string
	// MaybeSent is set when convpipe itself may have sent the conversion
	// more than once (an ambiguous send retried): a CONV_DUPLICATE of it
	// is then its own first send.
	MaybeSent bool
}

// ref is the submission's name for a lookup: the QueuedUri, else the id.
func (c Conversion) ref() string { return cmp.Or(c.QueuedURI, c.SubmissionID) }

// Options are the limits of a reconcile. Zero values take the defaults.
type Options struct {
	// Settle is how long after its acceptance a conversion is expected
	// to be processed (default 1h): earlier it is not looked at.
	Settle time.Duration
	// Keep is how long impact keeps submission records (default 90 days).
	Keep time.Duration
	// MaxRange is the longest event-date window of one listing (default
	// 45 days).
	MaxRange time.Duration
	// PageSize is the listing's page size (default 20,000); MaxPages the
	// pages one listing may need (default 10).
	PageSize, MaxPages int
	// MaxStartAge is how far back a listing may start (default 3 years).
	MaxStartAge time.Duration
	// Budget bounds the requests of a reconcile; 0 is no bound.
	Budget int
}

// Defaults of Options.
const (
	DefaultSettle      = time.Hour
	DefaultKeep        = 90 * 24 * time.Hour
	DefaultMaxRange    = 45 * 24 * time.Hour
	DefaultPageSize    = 20000
	DefaultMaxPages    = 10
	DefaultMaxStartAge = 3 * 365 * 24 * time.Hour
)

func (o Options) withDefaults() Options {
	o.Settle = cmp.Or(o.Settle, DefaultSettle)
	o.Keep = cmp.Or(o.Keep, DefaultKeep)
	o.MaxRange = cmp.Or(o.MaxRange, DefaultMaxRange)
	o.PageSize = cmp.Or(o.PageSize, DefaultPageSize)
	o.MaxPages = cmp.Or(o.MaxPages, DefaultMaxPages)
	o.MaxStartAge = cmp.Or(o.MaxStartAge, DefaultMaxStartAge)
	return o
}

// Window is one listing to make: the actions of a campaign with event
// dates from Start to End, both included, every page of it.
type Window struct {
	pipeline.ActionQuery
	// Conversions counts the conversions the window is listed for; Pages
	// is the pages expected (at least one: others' actions may add more).
	Conversions, Pages int
}

// Halves returns the window split in two at its middle second, the
// halves sharing that second (so that no fraction of it falls between),
// each expected to need half the pages; ok is false for a window of less
// than two seconds.
func (w Window) Halves() (halves [2]Window, ok bool) {
	span := w.End.Sub(w.Start)
	if span < 2*time.Second {
		return halves, false
	}
	mid := w.Start.Add(span / 2).Truncate(time.Second)
	for i, r := range [2][2]time.Time{{w.Start, mid}, {mid, w.End}} {
		halves[i] = Window{
			ActionQuery: pipeline.ActionQuery{CampaignID: w.CampaignID, Start: r[0], End: r[1]},
			Conversions: (w.Conversions + 1) / 2, Pages: max((w.Pages+1)/2, 1),
		}
	}
	return halves, true
}

// covers reports whether the window lists the actions of c.
func (w Window) covers(c Conversion) bool {
	return w.CampaignID == c.CampaignID && !c.EventDate.Before(w.Start) && !c.EventDate.After(w.End)
}

// settled reports whether c was accepted at least the settle time before
// now.
func settled(c Conversion, now time.Time, o Options) bool { return now.Sub(c.AcceptedAt) >= o.Settle }

// listable reports whether c's action can be listed: it has a campaign
// and an event date within impact's three years.
func listable(c Conversion, now time.Time, o Options) bool {
	return c.CampaignID != "" && !c.EventDate.IsZero() && now.Sub(c.EventDate) <= o.MaxStartAge
}

// PlanListing returns the listings that confirm the settled conversions
// in bulk: per campaign, the fewest windows of at most MaxRange that
// cover their event dates, each window closed early when it would hold
// more of them than MaxPages pages can; oldest first, as far as Budget
// allows (a window costs its expected pages).
func PlanListing(cs []Conversion, now time.Time, o Options) []Window {
	o = o.withDefaults()
	byCampaign := map[string][]time.Time{}
	for _, c := range cs {
		if settled(c, now, o) && listable(c, now, o) {
			byCampaign[c.CampaignID] = append(byCampaign[c.CampaignID], c.EventDate)
		}
	}
	var ws []Window
	for camp, dates := range byCampaign {
		ws = append(ws, windows(camp, dates, o)...)
	}
	slices.SortFunc(ws, func(a, b Window) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.CampaignID, b.CampaignID))
	})
	if o.Budget <= 0 {
		return ws
	}
	spent := 0
	for i, w := range ws {
		if spent+w.Pages > o.Budget {
			return ws[:i]
		}
		spent += w.Pages
	}
	return ws
}

// windows covers the event dates of one campaign greedily: a window
// starts at the earliest date not covered (to the second) and ends after
// the last date within MaxRange, or where it holds MaxPages full pages.
func windows(camp string, dates []time.Time, o Options) []Window {
	slices.SortFunc(dates, time.Time.Compare)
	limit := o.PageSize * o.MaxPages
	var out []Window
	for i := 0; i < len(dates); {
		start := dates[i].Truncate(time.Second)
		j := i
		for j < len(dates) && dates[j].Sub(start) < o.MaxRange && j-i < limit {
			j++
		}
		// The listing's dates are whole seconds: the end is the second
		// after the last date's, so that a fraction of it is covered.
		end := dates[j-1].Truncate(time.Second).Add(time.Second)
		if end.Sub(start) > o.MaxRange {
			end = start.Add(o.MaxRange)
		}
		n := j - i
		out = append(out, Window{
			ActionQuery: pipeline.ActionQuery{CampaignID: camp, Start: start, End: end},
			Conversions: n, Pages: max((n+o.PageSize-1)/o.PageSize, 1),
		})
		i = j
	}
	return out
}

// redateSlack is how long after its event a conversion must have been
// accepted for impact to have re-dated it, as far as PlanRedated looks;
// redateMargin widens the listing around the acceptance times, which come
// a little after impact's submission times.
const (
	redateSlack  = 24 * time.Hour
	redateMargin = time.Minute
)

// PlanRedated returns the listings, by acceptance time rather than event
// date, of the settled conversions accepted more than a day after their
// event that the listings made (l) did not find: impact re-dates a late
// conversion's action to its submission time, so its event-date window
// misses it. Listing them costs a page where looking them up costs one
// request each; a window is listed only for more than twice as many
// conversions as its pages, as those that failed processing are not
// found by it and are looked up anyway.
func PlanRedated(cs []Conversion, l Listing, now time.Time, o Options) []Window {
	o = o.withDefaults()
	ix := l.index()
	byCampaign := map[string][]time.Time{}
	for _, c := range cs {
		if !settled(c, now, o) || c.CampaignID == "" || c.AcceptedAt.Sub(c.EventDate) <= redateSlack || !l.covered(c) {
			continue
		}
		if _, ok := ix.find(c); !ok {
			byCampaign[c.CampaignID] = append(byCampaign[c.CampaignID], c.AcceptedAt)
		}
	}
	narrow := o
	narrow.MaxRange -= 2 * redateMargin
	var ws []Window
	for camp, dates := range byCampaign {
		for _, w := range windows(camp, dates, narrow) {
			if w.Conversions > 2*w.Pages {
				w.Start, w.End = w.Start.Add(-redateMargin), w.End.Add(redateMargin)
				ws = append(ws, w)
			}
		}
	}
	slices.SortFunc(ws, func(a, b Window) int {
		return cmp.Or(a.Start.Compare(b.Start), cmp.Compare(a.CampaignID, b.CampaignID))
	})
	return ws
}

// Listing is what the listings made found: the windows listed to their
// last page, the actions they held, and the windows the API refused to
// list (their conversions are looked up one by one).
type Listing struct {
	Windows []Window
	Actions []pipeline.Action
	Refused []Window
}

// index finds a conversion's action among those listed.
type index map[string][]pipeline.Action

func (l Listing) index() index {
	ix := index{}
	for _, a := range l.Actions {
		ix[a.OrderID] = append(ix[a.OrderID], a)
	}
	return ix
}

// find returns c's action, preferring one not reversed.
func (ix index) find(c Conversion) (pipeline.Action, bool) {
	var found pipeline.Action
	ok := false
	for _, a := range ix[c.Key.OrderID] {
		if !a.Matches(c.Key) || (a.CampaignID != "" && c.CampaignID != "" && a.CampaignID != c.CampaignID) {
			continue
		}
		if !ok || (found.State == pipeline.ActionReversed && a.State != pipeline.ActionReversed) {
			found, ok = a, true
		}
	}
	return found, ok
}

// covered reports whether a listed window covers c.
func (l Listing) covered(c Conversion) bool {
	return slices.ContainsFunc(l.Windows, func(w Window) bool { return w.covers(c) })
}

// refused reports whether a window the API refused to list covers c.
func (l Listing) refused(c Conversion) bool {
	return slices.ContainsFunc(l.Refused, func(w Window) bool { return w.covers(c) })
}

// Lookup is a submission to look up.
type Lookup struct {
	Key pipeline.Key
	// Ref is the QueuedUri, or the submission id.
	Ref string
}

// PlanLookups returns the submissions to look up one by one, at most
// budget (0: none): of the settled conversions that no listed action
// matched, those whose listing was made, refused or cannot be made (a
// conversion whose window was not listed waits for it, which is cheaper),
// with a submission to name and a record impact still keeps; the oldest
// accepted first, as their records expire first.
func PlanLookups(cs []Conversion, l Listing, now time.Time, budget int, o Options) []Lookup {
	o = o.withDefaults()
	ix := l.index()
	var todo []Conversion
	for _, c := range cs {
		if !settled(c, now, o) || c.ref() == "" || now.Sub(c.AcceptedAt) > o.Keep {
			continue
		}
		if _, ok := ix.find(c); ok {
			continue
		}
		if listable(c, now, o) && !l.covered(c) && !l.refused(c) {
			continue
		}
		todo = append(todo, c)
	}
	slices.SortStableFunc(todo, func(a, b Conversion) int { return a.AcceptedAt.Compare(b.AcceptedAt) })
	todo = todo[:min(len(todo), max(budget, 0))]
	out := make([]Lookup, len(todo))
	for i, c := range todo {
		out[i] = Lookup{Key: c.Key, Ref: c.ref()}
	}
	return out
}
