package reconcile

import (
	"fmt"
	"testing"
	"time"

	"convpipe/pipeline"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// conv is a conversion of campaign 1000 with the event days ago and
// accepted hours ago.
func conv(id string, eventDaysAgo float64, acceptedHoursAgo float64) Conversion {
	return Conversion{
		Key: pipeline.Key{EventType: "12345", OrderID: id}, CampaignID: "1000",
		EventDate:    now.Add(-time.Duration(eventDaysAgo * float64(24*time.Hour))),
		AcceptedAt:   now.Add(-time.Duration(acceptedHoursAgo * float64(time.Hour))),
		SubmissionID: "S-" + id, QueuedURI: "/Advertisers/IR1/APISubmissions/S-" + id,
	}
}

func spread(n int, days float64) []Conversion {
	cs := make([]Conversion, n)
	for i := range cs {
		cs[i] = conv(fmt.Sprint("O", i), days*float64(i)/float64(n), 2)
	}
	return cs
}

func TestPlanListing(t *testing.T) {
	other := conv("X", 3, 2)
	other.CampaignID = "2000"
	tests := []struct {
		name  string
		cs    []Conversion
		o     Options
		want  int // windows
		pages int // expected pages in all
	}{
		{"nothing", nil, Options{}, 0, 0},
		{"one", []Conversion{conv("A", 1, 2)}, Options{}, 1, 1},
		{"not settled", []Conversion{conv("A", 1, 0.5)}, Options{}, 0, 0},
		{"settle time of 10 minutes", []Conversion{conv("A", 1, 0.5)}, Options{Settle: 10 * time.Minute}, 1, 1},
		{"10,000 over 30 days", spread(10000, 30), Options{}, 1, 1},
		{"10,000 over 100 days", spread(10000, 100), Options{}, 3, 3},
		{"45,000 in 30 days", spread(45000, 30), Options{}, 1, 3},
		{"250,000 in 30 days: over 10 pages", spread(250000, 30), Options{}, 2, 13},
		{"two campaigns", []Conversion{conv("A", 1, 2), other}, Options{}, 2, 2},
		{"no campaign", []Conversion{{Key: pipeline.Key{EventType: "1", OrderID: "A"}, EventDate: now, AcceptedAt: now.Add(-2 * time.Hour)}}, Options{}, 0, 0},
		{"event over 3 years back", []Conversion{conv("A", 4*365, 2)}, Options{}, 0, 0},
		{"budget of 2 pages", spread(10000, 100), Options{Budget: 2}, 2, 2},
		{"budget too small for a window", spread(45000, 30), Options{Budget: 2}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := PlanListing(tt.cs, now, tt.o)
			pages := 0
			for _, w := range ws {
				pages += w.Pages
			}
			if len(ws) != tt.want || pages != tt.pages {
				t.Fatalf("%d windows of %d pages, want %d of %d: %+v", len(ws), pages, tt.want, tt.pages, ws)
			}
			o := tt.o.withDefaults()
			for _, c := range tt.cs {
				if !settled(c, now, o) || !listable(c, now, o) {
					continue
				}
				n := 0
				for _, w := range ws {
					if w.covers(c) {
						n++
					}
				}
				if n == 0 && tt.o.Budget == 0 {
					t.Fatalf("%s (event %s) is in no window", c.Key, c.EventDate)
				}
			}
			for _, w := range ws {
				if w.End.Sub(w.Start) > DefaultMaxRange || w.End.Before(w.Start) || w.Start.Nanosecond() != 0 || w.End.Nanosecond() != 0 {
					t.Errorf("window %s to %s", w.Start, w.End)
				}
				if w.Conversions > DefaultPageSize*DefaultMaxPages {
					t.Errorf("window of %d conversions: over 10 pages", w.Conversions)
				}
			}
		})
	}
}

func TestPlanLookups(t *testing.T) {
	found := conv("found", 2, 5)
	lost := conv("lost", 2, 5)
	older := conv("older", 2, 50)
	fresh := conv("fresh", 2, 0.2)
	expired := conv("expired", 2, 91*24)
	noRef := conv("noref", 2, 5)
	noRef.SubmissionID, noRef.QueuedURI = "", ""
	outside := conv("outside", 60, 5)
	noCampaign := conv("nocamp", 2, 5)
	noCampaign.CampaignID = ""
	cs := []Conversion{found, lost, older, fresh, expired, noRef, outside, noCampaign}
	l := Listing{
		Windows: PlanListing([]Conversion{found}, now, Options{}),
		Actions: []pipeline.Action{{ID: "1.2.3", ActionTrackerID: "12345", CampaignID: "1000", OrderID: "found", State: pipeline.ActionPending}},
	}
	tests := []struct {
		name   string
		l      Listing
		budget int
		want   []string
	}{
		{"only the missing, oldest first", l, 10, []string{"older", "lost", "nocamp"}},
		{"within the budget", l, 1, []string{"older"}},
		{"no budget", l, 0, nil},
		{"a refused window is looked up", Listing{Windows: l.Windows, Actions: l.Actions, Refused: PlanListing([]Conversion{outside}, now, Options{})}, 10,
			[]string{"older", "lost", "outside", "nocamp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PlanLookups(cs, tt.l, now, tt.budget, Options{})
			var ids []string
			for _, lk := range got {
				ids = append(ids, lk.Key.OrderID)
				if lk.Ref != "/Advertisers/IR1/APISubmissions/S-"+lk.Key.OrderID {
					t.Errorf("ref %q", lk.Ref)
				}
			}
			if fmt.Sprint(ids) != fmt.Sprint(tt.want) {
				t.Fatalf("lookups %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestHalves(t *testing.T) {
	w := PlanListing(spread(1000, 40), now, Options{})[0]
	h, ok := w.Halves()
	if !ok || !h[0].Start.Equal(w.Start) || !h[1].End.Equal(w.End) || !h[0].End.Equal(h[1].Start) || h[0].End.Nanosecond() != 0 {
		t.Fatalf("halves %+v of %+v", h, w)
	}
	for _, c := range spread(1000, 40) {
		if !h[0].covers(c) && !h[1].covers(c) {
			t.Fatalf("%s falls between the halves", c.Key)
		}
	}
	short := Window{ActionQuery: pipeline.ActionQuery{CampaignID: "1", Start: now, End: now.Add(time.Second)}}
	if _, ok := short.Halves(); ok {
		t.Error("a window of one second split")
	}
}

func TestPlanRedated(t *testing.T) {
	late := conv("late", 30, 5) // accepted 30 days after its event
	late2, late3 := conv("late2", 29, 5), conv("late3", 28, 5)
	found := conv("found", 30, 5)
	prompt := conv("prompt", 0.1, 2) // accepted hours after its event
	fresh := conv("fresh", 30, 0.2)  // not settled
	cs := []Conversion{late, late2, late3, found, prompt, fresh}
	l := Listing{
		Windows: PlanListing(cs, now, Options{}),
		Actions: []pipeline.Action{{ID: "a", ActionTrackerID: "12345", CampaignID: "1000", OrderID: "found"}},
	}
	ws := PlanRedated(cs, l, now, Options{})
	if len(ws) != 1 || ws[0].Conversions != 3 {
		t.Fatalf("windows %+v, want one for the late conversions", ws)
	}
	if w := ws[0]; w.Start.After(late.AcceptedAt.Add(-time.Minute+time.Second)) || w.End.Before(late.AcceptedAt.Add(time.Minute)) || w.End.Sub(w.Start) > DefaultMaxRange {
		t.Errorf("window %s to %s around the acceptance at %s", w.Start, w.End, late.AcceptedAt)
	}
	if ws := PlanRedated(cs, Listing{}, now, Options{}); len(ws) != 0 {
		t.Errorf("windows %+v before the event-date listing of the conversion was made", ws)
	}
	if ws := PlanRedated(cs[:2], l, now, Options{}); len(ws) != 0 {
		t.Errorf("windows %+v for two conversions: their lookups cost no more", ws)
	}
}
