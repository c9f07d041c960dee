package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"convpipe/pipeline"
)

// Report is what Run did and found.
type Report struct {
	// Results holds one result per conversion, in order.
	Results []Result
	// Requests counts the requests made: ListRequests listings (pages)
	// and Lookups submission lookups.
	Requests, ListRequests, Lookups int
	// Skipped describes the windows whose listing was refused or cut
	// short; the conversions of a refused one are looked up one by one
	// instead.
	Skipped []string
	// Narrowed counts the windows split in two because the API found
	// their result too large for its pages.
	Narrowed int
	// RedatedRequests counts the listings (pages) by acceptance time, for
	// actions impact re-dated (part of ListRequests).
	RedatedRequests int
}

// Count returns how many results have the verdict.
func (r Report) Count(v Verdict) int {
	n := 0
	for _, res := range r.Results {
		if res.Verdict == v {
			n++
		}
	}
	return n
}

// Run reconciles cs at now through rd: the listings PlanListing chooses,
// page by page, then those PlanRedated chooses for what they did not
// find, then the lookups PlanLookups chooses with what is left of
// o.Budget, then Decide. A listing whose result the API finds too large
// (pipeline.ErrNarrow: others' actions count too) is split in two and
// listed again; one the API refuses otherwise is reported in Skipped and
// its conversions looked up instead. An error that ends
// every request (bad credentials, the quota until ctx's deadline, ctx
// ended) stops Run: the report decides with what was learned by then,
// and the error is returned with it.
func Run(ctx context.Context, rd pipeline.OutcomeReader, cs []Conversion, now time.Time, o Options) (Report, error) {
	o = o.withDefaults()
	var rep Report
	left := func() int {
		if o.Budget <= 0 {
			return int(^uint(0) >> 1)
		}
		return o.Budget - rep.Requests
	}
	var l Listing
	stop := listAll(ctx, rd, PlanListing(cs, now, o), &l, &rep, left, true)
	if stop == nil {
		// Re-dated actions: listed into a copy, so that their windows,
		// which are not event-date windows, cover nothing.
		re, before := Listing{Actions: l.Actions}, rep.ListRequests
		stop = listAll(ctx, rd, PlanRedated(cs, l, now, o), &re, &rep, left, false)
		l.Actions = re.Actions
		rep.RedatedRequests = rep.ListRequests - before
	}
	subs := map[string]pipeline.Submission{}
	if stop == nil {
		stop = lookUp(ctx, rd, PlanLookups(cs, l, now, left(), o), subs, &rep)
	}
	rep.Results = Decide(cs, l, subs, now, o)
	return rep, stop
}

// listAll lists the windows into l, splitting those whose result the API
// finds too large; refused ones are noted in rep and, when byEvent (they
// are event-date windows), in l.Refused. An error stops Run.
func listAll(ctx context.Context, rd pipeline.OutcomeReader, queue []Window, l *Listing, rep *Report, left func() int, byEvent bool) error {
	for len(queue) > 0 {
		w := queue[0]
		queue = queue[1:]
		err := listWindow(ctx, rd, w, l, rep, left)
		if halves, ok := w.Halves(); ok && errors.Is(err, pipeline.ErrNarrow) {
			queue = append(halves[:], queue...)
			rep.Narrowed++
			continue
		}
		if err != nil && stops(ctx, err) {
			return err
		}
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: %v", describe(w), err))
			if byEvent {
				l.Refused = append(l.Refused, w)
			}
		}
	}
	return nil
}

// listWindow lists every page of w into l while the budget lasts, and
// adds w to l's windows once its last page is in. It returns the error
// of a page.
func listWindow(ctx context.Context, rd pipeline.OutcomeReader, w Window, l *Listing, rep *Report, left func() int) error {
	for page, pages := 1, 1; page <= pages; page++ {
		if left() <= 0 {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("%s: page %d of %d not listed: request budget spent", describe(w), page, pages))
			return nil
		}
		p, err := rd.ListActions(ctx, w.ActionQuery, page)
		if made(err) {
			rep.Requests++
			rep.ListRequests++
		}
		if err != nil {
			return err
		}
		l.Actions = append(l.Actions, p.Actions...)
		pages = p.Pages
	}
	l.Windows = append(l.Windows, w)
	return nil
}

// lookUp looks up the submissions; an error stops Run.
func lookUp(ctx context.Context, rd pipeline.OutcomeReader, todo []Lookup, subs map[string]pipeline.Submission, rep *Report) error {
	for _, lk := range todo {
		sub, err := rd.LookupSubmission(ctx, lk.Ref)
		if made(err) {
			rep.Requests++
			rep.Lookups++
		}
		if err != nil {
			if stops(ctx, err) {
				return err
			}
			continue // unknown this time; the next reconcile asks again
		}
		subs[lk.Key.String()] = sub
	}
	return nil
}

// made reports whether a call that returned err made a request: one that
// the quota allowed none before the deadline (ErrOutOfTime) made none.
func made(err error) bool {
	return !errors.Is(err, pipeline.ErrOutOfTime)
}

// stops reports whether err ends every further request.
func stops(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, pipeline.ErrFatal) || errors.Is(err, pipeline.ErrOutOfTime)
}

func describe(w Window) string {
	return fmt.Sprintf("actions of campaign %s from %s to %s", w.CampaignID, w.Start.UTC().Format(time.RFC3339), w.End.UTC().Format(time.RFC3339))
}
