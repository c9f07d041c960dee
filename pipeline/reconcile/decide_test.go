package reconcile

import (
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

func TestDecide(t *testing.T) {
	act := func(id string, st pipeline.ActionState) pipeline.Action {
		return pipeline.Action{ID: "1000.12345." + id, CampaignID: "1000", ActionTrackerID: "12345", OrderID: id, State: st,
			Amount: "39.80", Currency: "EUR", LockingDate: now.AddDate(0, 0, 20)}
	}
	complete := func(errType, reason string) pipeline.Submission {
		return pipeline.Submission{Found: true, Status: "Complete", CompletionDate: now.Add(-time.Hour), ErrorType: errType, ErrorReason: reason}
	}
	maybe := func(c Conversion) Conversion { c.MaybeSent = true; return c }
	byCode := conv("code", 2, 5)
	byCode.Key.EventType = "SALE"
	otherCampaign := conv("camp", 2, 5)
	otherCampaign.CampaignID = "2000"
	noRef := conv("noref", 2, 5)
	noRef.SubmissionID, noRef.QueuedURI = "", ""
	tests := []struct {
		name    string
		c       Conversion
		actions []pipeline.Action
		sub     *pipeline.Submission
		// listed: the conversion's window was listed (default: yes)
		unlisted bool
		verdict  Verdict
		action   string // ActionId wanted
		reason   string
		text     string // a fragment of Meaning or Note
		final    bool
	}{
		{name: "pending action", c: conv("p", 2, 5), actions: []pipeline.Action{act("p", pipeline.ActionPending)}, verdict: Tracked, action: "1000.12345.p"},
		{name: "approved action is final", c: conv("a", 2, 5), actions: []pipeline.Action{act("a", pipeline.ActionApproved)}, verdict: Tracked, action: "1000.12345.a", final: true},
		{name: "reversed action", c: conv("r", 2, 5), actions: []pipeline.Action{act("r", pipeline.ActionReversed)}, verdict: Tracked, action: "1000.12345.r", final: true},
		{name: "a live action beats a reversed one", c: conv("x", 2, 5), actions: []pipeline.Action{act("x", pipeline.ActionReversed), func() pipeline.Action {
			a := act("x", pipeline.ActionPending)
			a.ID = "live"
			return a
		}()}, verdict: Tracked, action: "live"},
		{name: "matched by event code", c: byCode, actions: []pipeline.Action{{ID: "c1", CampaignID: "1000", EventCode: "SALE", OrderID: "code", State: pipeline.ActionPending}}, verdict: Tracked, action: "c1"},
		{name: "another event type's action", c: conv("e", 2, 5), actions: []pipeline.Action{{ID: "e1", CampaignID: "1000", ActionTrackerID: "999", OrderID: "e"}}, verdict: Unknown, text: "not looked up"},
		{name: "another campaign's action", c: otherCampaign, actions: []pipeline.Action{act("camp", pipeline.ActionPending)}, unlisted: true, verdict: Unknown, text: "not listed"},
		{name: "own duplicate with an action", c: maybe(conv("d", 2, 5)), actions: []pipeline.Action{act("d", pipeline.ActionPending)}, sub: ptr(complete("Validation", "CONV_DUPLICATE")),
			verdict: Tracked, action: "1000.12345.d", text: "convpipe's earlier send"},
		{name: "alien duplicate with an action", c: conv("d2", 2, 5), actions: []pipeline.Action{act("d2", pipeline.ActionPending)}, sub: ptr(complete("Validation", "CONV_DUPLICATE")),
			verdict: Tracked, action: "1000.12345.d2", text: "did not send twice"},
		{name: "own duplicate, action not listed", c: maybe(conv("d3", 2, 5)), sub: ptr(complete("Validation", "CONV_DUPLICATE")), verdict: Tracked, text: "earlier send made the action"},
		{name: "alien duplicate", c: conv("d4", 2, 5), sub: ptr(complete("Validation", "CONV_DUPLICATE")), verdict: NotTracked, reason: "CONV_DUPLICATE", text: "already had an order", final: true},
		{name: "contract missing", c: conv("k", 2, 5), sub: ptr(complete("Contract Error", "CONTRACT_NOT_FOUND")), verdict: NotTracked, reason: "CONTRACT_NOT_FOUND", text: "no partner contract", final: true},
		{name: "outside the window", c: conv("w", 60, 5), sub: ptr(complete("Contract Error", "OUTSIDE_ASSOCIATION_WINDOW")), verdict: NotTracked, reason: "OUTSIDE_ASSOCIATION_WINDOW", text: "referral window", final: true},
		{name: "two reasons", c: conv("two", 2, 5), sub: ptr(complete("Contract Error", "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE")), verdict: NotTracked, reason: "CONTRACT_NOT_FOUND RESTRICTED_PROMOCODE", text: "another partner's channel", final: true},
		{name: "unknown reason", c: conv("u", 2, 5), sub: ptr(complete("Validation", "NEW_THING")), verdict: NotTracked, reason: "NEW_THING", text: "NEW_THING is not in convpipe's table", final: true},
		{name: "type without reason", c: conv("t", 2, 5), sub: ptr(complete("Validation", "")), verdict: NotTracked, text: "without a reason", final: true},
		{name: "complete without error, not listed", c: conv("cl", 2, 5), sub: ptr(complete("", "")), verdict: Tracked, text: "re-dates"},
		{name: "still processing", c: conv("q", 2, 5), sub: &pipeline.Submission{Found: true, Status: "In Progress"}, verdict: Unknown, text: "still processing"},
		{name: "404", c: conv("nf", 2, 5), sub: &pipeline.Submission{}, verdict: Unknown, text: "does not know the submission"},
		{name: "not settled", c: conv("n", 0.01, 0.1), verdict: Unknown, text: "less than the settle time"},
		{name: "record expired", c: conv("old", 95, 91*24), verdict: Unknown, text: "can no longer be learned", final: true},
		{name: "expired but tracked", c: conv("old2", 95, 91*24), actions: []pipeline.Action{act("old2", pipeline.ActionApproved)}, verdict: Tracked, final: true, action: "1000.12345.old2"},
		{name: "budget spent before the lookup", c: conv("b", 2, 5), verdict: Unknown, text: "not looked up"},
		{name: "budget spent before the listing", c: conv("b2", 2, 5), unlisted: true, verdict: Unknown, text: "not listed"},
		{name: "no submission to look up", c: noRef, verdict: Unknown, text: "no submission id"},
		{name: "event over 3 years back", c: conv("ancient", 4*365, 5), sub: &pipeline.Submission{}, verdict: Unknown, text: "more than 3 years back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Listing{Actions: tt.actions}
			if !tt.unlisted {
				l.Windows = PlanListing([]Conversion{tt.c}, now, Options{Settle: time.Nanosecond})
			}
			subs := map[string]pipeline.Submission{}
			if tt.sub != nil {
				subs[tt.c.Key.String()] = *tt.sub
			}
			got := Decide([]Conversion{tt.c}, l, subs, now, Options{})
			if len(got) != 1 {
				t.Fatalf("%d results", len(got))
			}
			r := got[0]
			if r.Key != tt.c.Key || r.Verdict != tt.verdict || r.ErrorReason != tt.reason || r.Final != tt.final {
				t.Fatalf("%+v, want %s reason %q final %v", r, tt.verdict, tt.reason, tt.final)
			}
			if (r.Action == nil) != (tt.action == "") || (r.Action != nil && r.Action.ID != tt.action) {
				t.Errorf("action %+v, want %q", r.Action, tt.action)
			}
			if !strings.Contains(r.Meaning+" | "+r.Note, tt.text) {
				t.Errorf("meaning %q note %q, want %q", r.Meaning, r.Note, tt.text)
			}
			if r.Verdict == NotTracked && (r.Meaning == "" || r.ErrorType == "") {
				t.Errorf("not tracked without its type or meaning: %+v", r)
			}
			if r.Verdict == Unknown && r.Note == "" {
				t.Errorf("unknown without a note")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
