package sim

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// actionsPath is the Actions endpoint with the query v.
func actionsPath(v url.Values) string {
	return "/Advertisers/" + DefaultAccountSID + "/Actions?" + v.Encode()
}

// seed submits n tracked conversions of campaign 1000 with event dates
// from first on, one step apart, and lets them complete.
func seed(t *testing.T, s *Server, n int, first time.Time, step time.Duration) {
	t.Helper()
	for i := range n {
		v := valid()
		v.Set("OrderId", fmt.Sprint("A-", i))
		v.Set("EventDate", first.Add(time.Duration(i)*step).UTC().Format(time.RFC3339))
		if _, err := s.Submit(v); err != nil {
			t.Fatal(err)
		}
	}
	s.Advance(DefaultCompleteAfter)
}

func TestActionsQueryRules(t *testing.T) {
	s := NewTestServer(t, Config{Quota: 1000})
	now := time.Now().UTC()
	day := func(d int) string { return now.AddDate(0, 0, d).Format(time.RFC3339) }
	tests := []struct {
		name  string
		query url.Values
		want  string // fragment of the 400 message; empty: 200
	}{
		{"no campaign", url.Values{}, "CampaignId is required"},
		{"bad campaign", url.Values{"CampaignId": {"x"}}, "Invalid CampaignId"},
		{"no dates: last 7 days", url.Values{"CampaignId": {"1000"}}, ""},
		{"45 days", url.Values{"CampaignId": {"1000"}, "ActionDateStart": {day(-45)}, "ActionDateEnd": {day(0)}}, ""},
		{"46 days", url.Values{"CampaignId": {"1000"}, "ActionDateStart": {day(-46)}, "ActionDateEnd": {day(0)}}, "cannot exceed 45 days"},
		{"updated range 46 days", url.Values{"CampaignId": {"1000"}, "StartDate": {day(-46)}, "EndDate": {day(0)}}, "cannot exceed 45 days"},
		{"start without end", url.Values{"CampaignId": {"1000"}, "ActionDateStart": {day(-4)}}, "must be given together"},
		{"end before start", url.Values{"CampaignId": {"1000"}, "LockingDateStart": {day(-1)}, "LockingDateEnd": {day(-2)}}, "must not be before"},
		{"over 3 years back", url.Values{"CampaignId": {"1000"}, "StartDate": {day(-1200)}, "EndDate": {day(-1190)}}, "3 years"},
		{"not a date", url.Values{"CampaignId": {"1000"}, "ActionDateStart": {"yesterday"}, "ActionDateEnd": {day(0)}}, "Invalid date format"},
		{"page size under 2000", url.Values{"CampaignId": {"1000"}, "PageSize": {"100"}}, "Invalid PageSize"},
		{"page 0", url.Values{"CampaignId": {"1000"}, "Page": {"0"}}, "Invalid Page"},
		{"bad state", url.Values{"CampaignId": {"1000"}, "State": {"LOCKED"}}, "Invalid State"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := get(t, s, actionsPath(tt.query))
			if r.header.Get("X-RateLimit-Remaining") == "" || r.header.Get("X-RateLimit-Limit") != "1000" {
				t.Errorf("list answer without the rate-limit headers: %v", r.header)
			}
			if tt.want == "" {
				if r.status != 200 || r.body["Actions"] == nil {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				return
			}
			if r.status != 400 || r.body["Status"] != "ERROR" || !strings.Contains(r.raw, tt.want) {
				t.Fatalf("%d %s, want 400 with %q", r.status, r.raw, tt.want)
			}
		})
	}
}

func TestActionsPaging(t *testing.T) {
	s := NewTestServer(t, Config{})
	first := time.Now().AddDate(0, 0, -30)
	const n = 4500
	seed(t, s, n, first, 5*time.Minute)
	q := url.Values{
		"CampaignId": {"1000"}, "PageSize": {"2000"},
		"ActionDateStart": {first.Add(-time.Hour).UTC().Format(time.RFC3339)}, "ActionDateEnd": {time.Now().UTC().Format(time.RFC3339)},
	}
	seen, states := map[string]bool{}, map[any]int{}
	path := actionsPath(q)
	for page := 1; path != ""; page++ {
		r := get(t, s, path)
		if r.status != 200 || r.body["@page"] != fmt.Sprint(page) || r.body["@numpages"] != "3" || r.body["@total"] != fmt.Sprint(n) {
			t.Fatalf("page %d: %d %.300s", page, r.status, r.raw)
		}
		for _, a := range r.body["Actions"].([]any) {
			a := a.(map[string]any)
			states[a["State"]]++
			if a["Amount"] != "28.84" || a["CampaignId"] != "1000" || a["ActionTrackerId"] != "12345" || a["LockingDate"] == "" {
				t.Fatalf("action %v", a)
			}
			seen[a["Oid"].(string)] = true
		}
		path, _ = r.body["@nextpageuri"].(string)
	}
	if len(seen) != n {
		t.Fatalf("%d orders listed, want %d", len(seen), n)
	}
	// Locked 27 days after the event: the first 3 days' are approved.
	if states["APPROVED"] < 3*24*12-12 || states["APPROVED"] > 3*24*12+12 || states["PENDING"]+states["APPROVED"] != n {
		t.Errorf("states %v", states)
	}
	// The event-date filter: a window of the first day only.
	q.Set("ActionDateEnd", first.Add(24*time.Hour-time.Second).UTC().Format(time.RFC3339))
	if r := get(t, s, actionsPath(q)); r.body["@total"] != fmt.Sprint(24*12) {
		t.Fatalf("first day: %v actions, want %d", r.body["@total"], 24*12)
	}
}

func TestActionsTooManyPages(t *testing.T) {
	s := NewTestServer(t, Config{})
	first := time.Now().AddDate(0, 0, -20)
	seed(t, s, MaxActionPages*MinActionPageSize+1, first, time.Minute)
	q := url.Values{"CampaignId": {"1000"}, "PageSize": {"2000"},
		"ActionDateStart": {first.UTC().Format(time.RFC3339)}, "ActionDateEnd": {time.Now().UTC().Format(time.RFC3339)}}
	if r := get(t, s, actionsPath(q)); r.status != 400 || !strings.Contains(r.raw, "more than 10 pages") {
		t.Fatalf("%d %.300s", r.status, r.raw)
	}
	q.Set("PageSize", "20000")
	if r := get(t, s, actionsPath(q)); r.status != 200 || r.body["@numpages"] != "2" {
		t.Fatalf("with the default page size: %d %.300s", r.status, r.body["@numpages"])
	}
}

func TestActionsLifecycle(t *testing.T) {
	s := NewTestServer(t, Config{CompleteAfter: 10 * time.Minute})
	if _, err := s.Submit(valid()); err != nil {
		t.Fatal(err)
	}
	// valid() is dated 2023-12-01: list by creation (the last 7 days).
	list := func() []any {
		r := get(t, s, actionsPath(url.Values{"CampaignId": {"1000"}}))
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		return r.body["Actions"].([]any)
	}
	if a := list(); len(a) != 0 {
		t.Fatalf("an action before the submission completed: %v", a)
	}
	s.Advance(10 * time.Minute)
	a := list()
	if len(a) != 1 || a[0].(map[string]any)["State"] != "APPROVED" || a[0].(map[string]any)["EventDate"] != "2023-12-02T07:55:24Z" {
		t.Fatalf("an action of an event years ago, locked: %v", a)
	}
	if !s.Reverse("12345", "O-1") {
		t.Fatal("no action to reverse")
	}
	if a := list(); a[0].(map[string]any)["State"] != "REVERSED" {
		t.Fatalf("after the reversal: %v", a)
	}
}

func TestOmitRetryAfter(t *testing.T) {
	s := NewTestServer(t, Config{Quota: 1, OmitRetryAfter: true})
	post(t, s, DefaultAuthToken, valid())
	r := get(t, s, actionsPath(url.Values{"CampaignId": {"1000"}}))
	if r.status != 429 || r.header.Get("Retry-After") != "" || r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") == "" {
		t.Fatalf("spent quota: %d %v", r.status, r.header)
	}
	s2 := NewTestServer(t, Config{OmitRetryAfter: true})
	s2.TooManyNext(1, time.Second)
	if r := post(t, s2, DefaultAuthToken, valid()); r.status != 429 || r.header.Get("Retry-After") != "" {
		t.Fatalf("burst: %d %v", r.status, r.header)
	}
}

func TestActionsRedated(t *testing.T) {
	s := NewTestServer(t, Config{RedateAfter: 7 * 24 * time.Hour})
	old := valid() // dated 2023
	fresh := valid()
	fresh.Set("OrderId", "O-2")
	fresh.Set("EventDate", time.Now().Add(-24*time.Hour).UTC().Format(time.RFC3339))
	for _, v := range []url.Values{old, fresh} {
		if _, err := s.Submit(v); err != nil {
			t.Fatal(err)
		}
	}
	s.Advance(DefaultCompleteAfter)
	r := get(t, s, actionsPath(url.Values{"CampaignId": {"1000"}}))
	dates := map[any]string{}
	for _, a := range r.body["Actions"].([]any) {
		a := a.(map[string]any)
		dates[a["Oid"]] = a["EventDate"].(string)
	}
	ed, _ := time.Parse(time.RFC3339, dates["O-1"])
	if time.Since(ed) > time.Hour || dates["O-2"] != fresh.Get("EventDate") {
		t.Fatalf("event dates %v: the old order re-dated to its submission, the fresh one kept", dates)
	}
}
