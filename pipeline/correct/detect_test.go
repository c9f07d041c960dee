package correct

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

var key = pipeline.Key{EventType: "12345", OrderID: "O-1"}

// accepted is an order of two items: S1 2 × 10.00 and S2 1 × 5.50.
func accepted() pipeline.Lines {
	return pipeline.Lines{PayloadHash: "h1", CampaignID: "1000", EventDate: "2026-11-20T10:00:00Z", Currency: "EUR",
		Items: []pipeline.LineItem{{Sku: "S1", Quantity: "2", Price: "10.00"}, {Sku: "S2", Quantity: "1", Price: "5.50"}}}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		name   string
		change func(l *pipeline.Lines)
		kind   pipeline.CorrectionKind
		state  pipeline.CorrectionState
		after  string
		form   url.Values // the fields of the request besides the identification and Reason
	}{
		{"partial return", func(l *pipeline.Lines) { l.Items[0].Quantity = "1" }, pipeline.CorrectItems, pipeline.CorrectionPlanned, "15.50",
			url.Values{"Sku": {"S1"}, "Quantity": {"1"}}},
		{"quantity raised", func(l *pipeline.Lines) { l.Items[1].Quantity = "3" }, pipeline.CorrectItems, pipeline.CorrectionPlanned, "36.50",
			url.Values{"Sku": {"S2"}, "Quantity": {"3"}}},
		{"item removed", func(l *pipeline.Lines) { l.Items = l.Items[:1] }, pipeline.CorrectItems, pipeline.CorrectionPlanned, "20.00",
			url.Values{"Sku": {"S2"}, "Quantity": {"0"}}},
		{"two items changed", func(l *pipeline.Lines) { l.Items[0].Quantity = "0"; l.Items[1].Quantity = "2" }, pipeline.CorrectItems, pipeline.CorrectionPlanned, "11.00",
			url.Values{"ItemSku1": {"S1"}, "ItemQuantity1": {"0"}, "ItemSku2": {"S2"}, "ItemQuantity2": {"2"}}},
		{"price changed", func(l *pipeline.Lines) { l.Items[0].Price = "8.00" }, pipeline.CorrectAmount, pipeline.CorrectionPlanned, "21.50",
			url.Values{"Amount": {"21.50"}}},
		{"item added", func(l *pipeline.Lines) {
			l.Items = append(l.Items, pipeline.LineItem{Sku: "S3", Quantity: "1", Price: "1.00"})
		},
			pipeline.CorrectAmount, pipeline.CorrectionPlanned, "26.50", url.Values{"Amount": {"26.50"}}},
		{"order discount", func(l *pipeline.Lines) { l.OrderDiscount = "5" }, pipeline.CorrectAmount, pipeline.CorrectionPlanned, "20.50",
			url.Values{"Amount": {"20.50"}}},
		{"negative", func(l *pipeline.Lines) { l.OrderDiscount = "30" }, pipeline.CorrectAmount, pipeline.CorrectionRefused, "-4.50", nil},
		{"currency", func(l *pipeline.Lines) { l.Currency = "USD"; l.Items[0].Quantity = "1" }, pipeline.CorrectAmount, pipeline.CorrectionRefused, "15.50", nil},
		{"no money changed", func(l *pipeline.Lines) { l.EventDate = "2026-11-21T10:00:00Z" }, pipeline.CorrectAmount, pipeline.CorrectionManual, "25.50", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := accepted()
			now.PayloadHash = "h2"
			tt.change(&now)
			c := Detect(key, accepted(), now)
			if c.Kind != tt.kind || c.State != tt.state || c.After != tt.after || c.Before != "25.50" || c.FromHash != "h1" || c.ToHash != "h2" {
				t.Fatalf("correction %+v", c)
			}
			if tt.form == nil {
				if c.Form != "" || len(c.Messages) == 0 {
					t.Fatalf("a correction not to send has a request or no message: %+v", c)
				}
				return
			}
			got, _ := url.ParseQuery(c.Form)
			want := url.Values{"ActionTrackerId": {"12345"}, "OrderId": {"O-1"}, "Reason": {"ORDER_UPDATE"}}
			for k, v := range tt.form {
				want[k] = v
			}
			if got.Encode() != want.Encode() || c.Method != "PUT" || len(c.Changes) == 0 {
				t.Fatalf("request %s %s, want %s (changes %v)", c.Method, got.Encode(), want.Encode(), c.Changes)
			}
		})
	}
}

func TestReverseAndUnknown(t *testing.T) {
	c := Reverse(key, accepted(), "ORDER_ERROR")
	form, _ := url.ParseQuery(c.Form)
	if c.Kind != pipeline.CorrectReversal || c.Method != "DELETE" || form.Get("DispositionCode") != "ORDER_ERROR" || c.Before != "25.50" || c.After != "0.00" {
		t.Fatalf("reversal %+v", c)
	}
	if c := Reverse(pipeline.Key{EventType: "SALE", OrderID: "O-1"}, accepted(), "ORDER_ERROR"); c.State != pipeline.CorrectionManual || c.Form != "" {
		t.Fatalf("reversal of an event type code: %+v", c)
	}
	e := pipeline.Entry{Key: key, State: pipeline.StateAccepted, PayloadHash: "old", SubmissionID: "S9", Created: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)}
	u := Unknown(key, e, pipeline.CorrectReversal, nil, "TEST_ACTION")
	if u.State != pipeline.CorrectionManual || u.Form != "" || len(u.Messages) != 1 {
		t.Fatalf("unknown: %+v", u)
	}
	for _, want := range []string{"needs a manual correction", "2026-10-01", "S9", "TEST_ACTION"} {
		if !strings.Contains(u.Messages[0].Text, want) {
			t.Errorf("message %q lacks %q", u.Messages[0].Text, want)
		}
	}
}

func TestPlan(t *testing.T) {
	planned := pipeline.Correction{Key: key, Seq: 1, Kind: pipeline.CorrectItems, State: pipeline.CorrectionPlanned, ToHash: "h2"}
	applied := planned
	applied.State = pipeline.CorrectionApplied
	next := pipeline.Correction{Key: key, Kind: pipeline.CorrectAmount, State: pipeline.CorrectionPlanned, ToHash: "h3"}
	rev := pipeline.Correction{Key: key, Kind: pipeline.CorrectReversal, State: pipeline.CorrectionPlanned}
	if _, ok := Plan(pipeline.Correction{Key: key, ToHash: "h2"}, []pipeline.Correction{planned}); ok {
		t.Error("the same change planned twice")
	}
	out, ok := Plan(next, []pipeline.Correction{planned})
	if !ok || len(out) != 2 || out[0].State != pipeline.CorrectionSuperseded || out[1].Seq != 2 {
		t.Errorf("a later change: %+v", out)
	}
	if out, ok := Plan(next, []pipeline.Correction{applied}); !ok || len(out) != 1 || out[0].Seq != 2 {
		t.Errorf("after an applied one: %+v", out)
	}
	if _, ok := Plan(next, []pipeline.Correction{applied, {Key: key, Seq: 2, Kind: pipeline.CorrectReversal, State: pipeline.CorrectionApplied}}); ok {
		t.Error("a change planned after the reversal")
	}
	if _, ok := Plan(rev, []pipeline.Correction{{Key: key, Seq: 1, Kind: pipeline.CorrectReversal, State: pipeline.CorrectionTooLate}}); ok {
		t.Error("a second reversal")
	}
}

func TestGuard(t *testing.T) {
	var mc *MassChangeError
	tests := []struct {
		planned, accepted int64
		fails             bool
	}{
		{0, 0, false}, {1, 1, false}, {10, 10, false}, {5, 100, false}, {11, 1000, false},
		{11, 100, true}, {51, 1000, true}, {200, 0, true},
	}
	for _, tt := range tests {
		err := Guard(tt.planned, tt.accepted, DefaultMaxShare, DefaultGuardMin)
		if (err != nil) != tt.fails || (err != nil && !errors.As(err, &mc)) {
			t.Errorf("Guard(%d of %d) = %v", tt.planned, tt.accepted, err)
		}
	}
	err := Guard(100, 100, DefaultMaxShare, DefaultGuardMin)
	if err == nil || !strings.Contains(err.Error(), "--max-share 100%") || !strings.Contains(err.Error(), "nothing was corrected") {
		t.Fatalf("the message says why and how to override: %v", err)
	}
	if Guard(100, 100, 1, DefaultGuardMin) != nil {
		t.Fatal("--max-share 100% does not override")
	}
}

func TestJudgeAndLimit(t *testing.T) {
	now := time.Now()
	put := pipeline.Correction{Kind: pipeline.CorrectItems, After: "15.50"}
	rev := pipeline.Correction{Kind: pipeline.CorrectReversal}
	pending := pipeline.Action{State: pipeline.ActionPending, Amount: "15.5", LockingDate: now.Add(time.Hour)}
	tests := []struct {
		c    pipeline.Correction
		a    pipeline.Action
		want seen
	}{
		{put, pending, seenApplied},
		{put, pipeline.Action{State: pipeline.ActionPending, Amount: "25.50", LockingDate: now.Add(time.Hour)}, seenNot},
		{put, pipeline.Action{State: pipeline.ActionApproved, Amount: "25.50"}, seenLocked},
		{put, pipeline.Action{State: pipeline.ActionReversed, Amount: "15.50"}, seenLocked},
		{rev, pipeline.Action{State: pipeline.ActionReversed}, seenApplied},
		{rev, pending, seenNot},
	}
	for i, tt := range tests {
		if got := judge(tt.c, tt.a, now); got != tt.want {
			t.Errorf("%d: judge = %d, want %d", i, got, tt.want)
		}
	}
	if limit(put, false, 0, time.Time{}, now) != "" || limit(put, false, 0, now.Add(-time.Second), now) == "" ||
		limit(put, false, MaxModifications, time.Time{}, now) == "" || limit(rev, true, 0, time.Time{}, now) == "" ||
		limit(rev, false, MaxModifications, time.Time{}, now) != "" {
		t.Error("limits")
	}
}
