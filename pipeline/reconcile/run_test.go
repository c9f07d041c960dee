package reconcile_test

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/reconcile"
	"convpipe/sim"
	"convpipe/sinks"
)

const token = "reconcile-test-token"

// newSink returns a sink sending to s as fast as the test needs, its
// configuration changed by change.
func newSink(t *testing.T, s *sim.Server, change ...func(*sinks.Config)) *sinks.Impact {
	t.Helper()
	cfg := sinks.Config{BaseURL: s.URL(), Rate: "100000/s", Burst: 50, Workers: 4, MaxAttempts: 5,
		BackoffInitial: 5 * time.Millisecond, BackoffMax: 50 * time.Millisecond, RequestTimeout: 5 * time.Second}
	for _, c := range change {
		c(&cfg)
	}
	sink, err := sinks.NewWithCredentials(cfg, sinks.Credentials{AccountSID: s.AccountSID(), AuthToken: token}, "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	return sink
}

// order is conversion i of campaign, with the event date given.
func order(i int, campaign string, event time.Time) *pipeline.Conversion {
	id := fmt.Sprintf("R-%05d", i)
	return &pipeline.Conversion{
		Key: pipeline.Key{EventType: "12345", OrderID: id},
		Fields: []pipeline.Field{
			{Name: "EventTypeId", Value: "12345"}, {Name: "ClickId", Value: "click-" + id},
			{Name: "EventDate", Value: event.UTC().Format(time.RFC3339)}, {Name: "CampaignId", Value: campaign},
			{Name: "OrderId", Value: id}, {Name: "CurrencyCode", Value: "EUR"}, {Name: "OrderSubTotalPostDiscount", Value: "12.50"},
		},
	}
}

// gets counts the GET requests the simulator saw.
func gets(s *sim.Server) int {
	n := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodGet {
			n++
		}
	}
	return n
}

// TestRun sends 5,000 orders over HTTP, 2% to a campaign without
// contract, 3% failing processing at random, 1% ambiguous sends whose
// resend impact takes as CONV_DUPLICATE; once processed, Run finds each
// tracked or not tracked with impact's reason, none unknown, at one
// listing per campaign plus one lookup per conversion not tracked.
func TestRun(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: token, Quota: 100000, Seed: 5,
		Processing: sim.Processing{Campaigns: []string{"1000"}, ErrorRate: 0.03}})
	sink := newSink(t, s)
	const n = 5000
	first := time.Now().Add(-30 * 24 * time.Hour)
	var cs []reconcile.Conversion
	for i := range n {
		camp := "1000"
		if i%50 == 7 {
			camp = "2000" // no contract
		}
		if i%100 == 3 {
			s.DropNext(1, true) // an ambiguous send: the resend is a duplicate
		}
		c := order(i, camp, first.Add(time.Duration(i)*(30*24*time.Hour/n)))
		out, err := sink.Send(t.Context(), c)
		if err != nil || out.State != pipeline.StateAccepted {
			t.Fatalf("%s: %+v %v", c.Key, out, err)
		}
		ed, _ := time.Parse(time.RFC3339, c.Fields[2].Value)
		cs = append(cs, reconcile.Conversion{Key: c.Key, CampaignID: camp, EventDate: ed, AcceptedAt: time.Now(),
			SubmissionID: out.SubmissionID, QueuedURI: out.QueuedURI, MaybeSent: out.MaybeSent})
	}
	// An ambiguous send whose first processing failed is no duplicate:
	// it made no action.
	if d := s.Duplicates(); d < n/100*9/10 || d > n/100 {
		t.Fatalf("%d duplicates at the simulator, want about %d", d, n/100)
	}
	s.Advance(2 * time.Hour)
	before := gets(s)
	rep, err := reconcile.Run(t.Context(), sink, cs, s.Now(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	requests := gets(s) - before
	// What impact says of each, asked after the count.
	notTracked := 0
	for i, r := range rep.Results {
		sub, err := sink.LookupSubmission(t.Context(), cs[i].QueuedURI)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case r.Verdict == reconcile.Unknown:
			t.Errorf("%s unknown: %s", r.Key, r.Note)
		case sub.ErrorReason == "CONV_DUPLICATE":
			if !cs[i].MaybeSent || r.Verdict != reconcile.Tracked || r.Action == nil {
				t.Errorf("%s, an ambiguous send retried: %+v", r.Key, r)
			}
		case sub.ErrorReason != "":
			notTracked++
			if r.Verdict != reconcile.NotTracked || r.ErrorReason != sub.ErrorReason || r.Meaning == "" {
				t.Errorf("%s: %+v, impact says %s", r.Key, r, sub.ErrorReason)
			}
		case r.Verdict != reconcile.Tracked || r.Action == nil || r.Action.Amount != "12.50" || r.Action.State != pipeline.ActionPending && r.Action.State != pipeline.ActionApproved:
			t.Errorf("%s: %+v", r.Key, r)
		}
	}
	if notTracked < n/50 || rep.Count(reconcile.NotTracked) != notTracked {
		t.Errorf("%d not tracked (report %d), want at least the %d of the campaign without contract", notTracked, rep.Count(reconcile.NotTracked), n/50)
	}
	// One listing per campaign (30 days of event dates each), one more
	// per campaign by acceptance time (for actions impact may have
	// re-dated, which finds none here: the failed ones are looked up).
	if requests != rep.Requests || rep.ListRequests != 4 || rep.RedatedRequests != 2 || rep.Lookups != notTracked {
		t.Errorf("%d requests at the simulator, the report says %d: %d listings (%d re-dated), %d lookups; want 2+2 listings and %d lookups",
			requests, rep.Requests, rep.ListRequests, rep.RedatedRequests, rep.Lookups, notTracked)
	}
	t.Logf("%d conversions: %d tracked, %d not tracked, in %d requests (%d listing, %d lookups)",
		n, rep.Count(reconcile.Tracked), notTracked, requests, rep.ListRequests, rep.Lookups)
}

// TestRunBudget: a budget smaller than the plan leaves the rest unknown,
// saying why, and spends no request more.
func TestRunBudget(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: token, Processing: sim.Processing{Campaigns: []string{"1000"}}})
	sink := newSink(t, s)
	now := time.Now()
	var cs []reconcile.Conversion
	for i := range 6 {
		camp := "1000"
		if i >= 3 {
			camp = "2000"
		}
		v := url.Values{}
		for _, f := range order(i, camp, now.Add(-time.Duration(i)*time.Hour)).Form() {
			v.Set(f.Name, f.Value)
		}
		uri, err := s.Submit(v)
		if err != nil {
			t.Fatal(err)
		}
		ed, _ := time.Parse(time.RFC3339, v.Get("EventDate"))
		cs = append(cs, reconcile.Conversion{Key: pipeline.Key{EventType: "12345", OrderID: v.Get("OrderId")}, CampaignID: camp,
			EventDate: ed, AcceptedAt: now, QueuedURI: uri})
	}
	s.Advance(2 * time.Hour)
	rep, err := reconcile.Run(t.Context(), sink, cs, s.Now(), reconcile.Options{Budget: 3})
	if err != nil {
		t.Fatal(err)
	}
	// Two listings (one per campaign), then one lookup of campaign 2000's.
	if rep.Requests != 3 || gets(s) != 3 || rep.Count(reconcile.Tracked) != 3 || rep.Count(reconcile.NotTracked) != 1 || rep.Count(reconcile.Unknown) != 2 {
		t.Fatalf("report %+v, %d requests", rep, gets(s))
	}
	for _, r := range rep.Results {
		if r.Verdict == reconcile.Unknown && r.Note == "" {
			t.Errorf("%s unknown without a note", r.Key)
		}
	}
}

// TestRunRefusedListing: a listing impact refuses (a start over 3 years
// back, which the simulator checks against its own clock) is reported
// and its conversions looked up instead.
func TestRunRefusedListing(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: token})
	sink := newSink(t, s)
	v := url.Values{}
	for _, f := range order(1, "1000", time.Now().Add(-24*time.Hour)).Form() {
		v.Set(f.Name, f.Value)
	}
	uri, err := s.Submit(v)
	if err != nil {
		t.Fatal(err)
	}
	ed, _ := time.Parse(time.RFC3339, v.Get("EventDate"))
	c := reconcile.Conversion{Key: pipeline.Key{EventType: "12345", OrderID: v.Get("OrderId")}, CampaignID: "1000", EventDate: ed,
		AcceptedAt: time.Now(), QueuedURI: uri}
	s.Advance(3*365*24*time.Hour + 48*time.Hour) // the simulator's clock is past 3 years
	// Planned at an earlier now, the window is within 3 years.
	rep, err := reconcile.Run(t.Context(), sink, []reconcile.Conversion{c}, time.Now().Add(2*time.Hour), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 1 || rep.Lookups != 1 || rep.Results[0].Verdict != reconcile.Unknown {
		t.Fatalf("%+v", rep)
	}
}

// submitAll records n tracked conversions of campaign 1000 at the
// simulator, event dates spread over days, and returns them as accepted
// now.
func submitAll(t *testing.T, s *sim.Server, n, days int) []reconcile.Conversion {
	t.Helper()
	now := time.Now()
	first := now.Add(-time.Duration(days) * 24 * time.Hour)
	step := time.Duration(days) * 24 * time.Hour / time.Duration(n)
	cs := make([]reconcile.Conversion, n)
	for i := range cs {
		v := url.Values{}
		for _, f := range order(i, "1000", first.Add(time.Duration(i)*step)).Form() {
			v.Set(f.Name, f.Value)
		}
		uri, err := s.Submit(v)
		if err != nil {
			t.Fatal(err)
		}
		ed, _ := time.Parse(time.RFC3339, v.Get("EventDate"))
		cs[i] = reconcile.Conversion{Key: pipeline.Key{EventType: "12345", OrderID: v.Get("OrderId")}, CampaignID: "1000",
			EventDate: ed, AcceptedAt: now, QueuedURI: uri}
	}
	return cs
}

// TestRunNarrows: a window whose result needs more than 10 pages (pages
// of 2,000 here), because of actions from other sources, is refused by
// the API, split in two and listed again.
func TestRunNarrows(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: token})
	sink := newSink(t, s, func(c *sinks.Config) { c.ListPageSize = 2000 })
	all := submitAll(t, s, 10*2000+500, 30)
	var cs []reconcile.Conversion // a quarter of the actions come from elsewhere
	for i, c := range all {
		if i%4 != 3 {
			cs = append(cs, c)
		}
	}
	s.Advance(2 * time.Hour)
	rep, err := reconcile.Run(t.Context(), sink, cs, s.Now(), reconcile.Options{PageSize: 2000})
	if err != nil {
		t.Fatal(err)
	}
	// One refused page, then two halves of about 10,250 actions: 5 or 6
	// pages each.
	if rep.Count(reconcile.Tracked) != len(cs) || rep.Narrowed != 1 || len(rep.Skipped) != 0 || rep.Lookups != 0 || rep.Requests != gets(s) ||
		rep.Requests < 12 || rep.Requests > 13 {
		t.Fatalf("%d tracked of %d, narrowed %d, skipped %v, %d requests (%d at the simulator)",
			rep.Count(reconcile.Tracked), len(cs), rep.Narrowed, rep.Skipped, rep.Requests, gets(s))
	}
}

// TestRunRedated: impact re-dates late conversions to their submission
// time, so their event-date listing misses them; a listing by acceptance
// time finds them, where one lookup each would be needed otherwise.
func TestRunRedated(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: token, RedateAfter: 7 * 24 * time.Hour})
	sink := newSink(t, s)
	cs := submitAll(t, s, 3000, 40) // event dates 40 days back to now
	s.Advance(2 * time.Hour)
	rep, err := reconcile.Run(t.Context(), sink, cs, s.Now(), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.Verdict != reconcile.Tracked || r.Action == nil {
			t.Fatalf("%s: %+v", r.Key, r)
		}
	}
	// One event-date listing, one by acceptance time, no lookup.
	if rep.ListRequests != 2 || rep.RedatedRequests != 1 || rep.Lookups != 0 || gets(s) != 2 {
		t.Fatalf("%d listings (%d re-dated), %d lookups, %d requests at the simulator", rep.ListRequests, rep.RedatedRequests, rep.Lookups, gets(s))
	}
}
