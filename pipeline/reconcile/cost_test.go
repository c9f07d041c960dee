package reconcile_test

import (
	"net/url"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/pipeline/reconcile"
	"convpipe/sim"
)

// TestCost measures what reconciling 10,000 accepted conversions with
// event dates over 30 days costs against the simulator when all were
// tracked, and what the naive way, one submission lookup per
// conversion, costs: requests counted at the simulator, over HTTP.
func TestCost(t *testing.T) {
	const n, days = 10000, 30
	s := sim.NewTestServer(t, sim.Config{AuthToken: token})
	sink := newSink(t, s)
	now := time.Now()
	first := now.Add(-days * 24 * time.Hour)
	cs := make([]reconcile.Conversion, n)
	for i := range cs {
		ed := first.Add(time.Duration(i) * (days * 24 * time.Hour / n))
		v := url.Values{}
		for _, f := range order(i, "1000", ed).Form() {
			v.Set(f.Name, f.Value)
		}
		uri, err := s.Submit(v)
		if err != nil {
			t.Fatal(err)
		}
		ed, _ = time.Parse(time.RFC3339, v.Get("EventDate"))
		cs[i] = reconcile.Conversion{Key: pipeline.Key{EventType: "12345", OrderID: v.Get("OrderId")}, CampaignID: "1000",
			EventDate: ed, AcceptedAt: now, QueuedURI: uri}
	}
	s.Advance(2 * time.Hour)

	before := gets(s)
	rep, err := reconcile.Run(t.Context(), sink, cs, s.Now(), reconcile.Options{Budget: 25})
	if err != nil {
		t.Fatal(err)
	}
	bulk := gets(s) - before
	if rep.Count(reconcile.Tracked) != n || bulk > 25 || bulk != rep.Requests {
		t.Fatalf("%d tracked of %d in %d requests (report %d), want all in at most 25", rep.Count(reconcile.Tracked), n, bulk, rep.Requests)
	}

	before = gets(s)
	for _, c := range cs {
		sub, err := sink.LookupSubmission(t.Context(), c.QueuedURI)
		if err != nil || sub.Status != pipeline.SubmissionComplete || sub.ErrorReason != "" {
			t.Fatalf("%s: %+v %v", c.Key, sub, err)
		}
	}
	naive := gets(s) - before
	if naive != n {
		t.Fatalf("the naive way made %d requests, want %d", naive, n)
	}
	t.Logf("reconciling %d conversions over %d days of event dates, all tracked: %d request(s) (%d listing pages, %d lookups) against %d for one lookup per conversion: %.0f× fewer",
		n, days, bulk, rep.ListRequests, rep.Lookups, naive, float64(naive)/float64(bulk))
}
