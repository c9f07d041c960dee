package sinks

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

func TestClassifyModify(t *testing.T) {
	js := func(s string) []byte { return []byte(s) }
	tests := []struct {
		name  string
		a     answer
		want  pipeline.CorrectionState
		retry bool
	}{
		{"queued", answer{status: 200, body: js(`{"Status":"QUEUED","QueuedUri":"/Advertisers/X/APISubmissions/S1"}`)}, pipeline.CorrectionApplied, false},
		{"locked", answer{status: 400, body: js(`{"Status":"ERROR","Message":"Action 1 is locked since its locking date 2026-01-01T00:00:00Z and can no longer be changed"}`)}, pipeline.CorrectionTooLate, false},
		{"reversed", answer{status: 400, body: js(`{"Status":"ERROR","Message":"Action 1 is reversed (ITEM_RETURNED): a reversed action cannot be changed"}`)}, pipeline.CorrectionTooLate, false},
		{"modifications", answer{status: 400, body: js(`{"Status":"ERROR","Message":"Action 1 has reached the limit of 1000 modifications"}`)}, pipeline.CorrectionTooLate, false},
		{"bad field", answer{status: 400, body: js(`{"Status":"ERROR","Message":"Invalid Quantity (1.5)"}`)}, pipeline.CorrectionRejected, false},
		{"not found", answer{status: 404, body: js(`{"Status":"ERROR","Message":"Action not found"}`)}, pipeline.CorrectionFailed, false},
		{"5xx", answer{status: 503}, pipeline.CorrectionFailed, true},
		{"429", answer{status: 429, header: http.Header{"Retry-After": {"1"}}}, pipeline.CorrectionFailed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := classifyModify(tt.a, time.Now(), policy{maxWait: time.Hour})
			if v.state != tt.want || v.retry != tt.retry {
				t.Fatalf("state %s retry %v (%v), want %s %v", v.state, v.retry, v.messages, tt.want, tt.retry)
			}
		})
	}
}

// TestModifyAgainstTheSimulator sends a modification and a reversal over
// loopback, through the pacer, with a dropped answer retried.
func TestModifyAgainstTheSimulator(t *testing.T) {
	h := newHarness(t, sim.Config{Quota: 100}, nil)
	seedActions(t, h.sim, 2, h.sim.Now().Add(-48*time.Hour), time.Hour)
	form := url.Values{"ActionTrackerId": {"12345"}, "OrderId": {"O-0000"}, "Sku": {"SKU-1"}, "Quantity": {"1"}, "Reason": {"ORDER_UPDATE"}}
	left := 0
	leaving := func() error { left++; return nil }
	h.sim.TooManyNext(1, time.Millisecond)
	out, err := h.sink.Modify(t.Context(), &pipeline.Correction{Key: pipeline.Key{EventType: "12345", OrderID: "O-0000"}, Method: "PUT", Form: form.Encode()}, leaving)
	if err != nil || out.State != pipeline.CorrectionApplied || out.Attempts != 2 || left != 1 || out.SubmissionID == "" {
		t.Fatalf("modification: %+v %v (leaving called %d times)", out, err, left)
	}
	rev := url.Values{"ActionTrackerId": {"12345"}, "OrderId": {"O-0001"}, "DispositionCode": {"ITEM_RETURNED"}}
	out, err = h.sink.Modify(t.Context(), &pipeline.Correction{Method: "DELETE", Form: rev.Encode()}, nil)
	if err != nil || out.State != pipeline.CorrectionApplied {
		t.Fatalf("reversal: %+v %v", out, err)
	}
	out, err = h.sink.Modify(t.Context(), &pipeline.Correction{Method: "DELETE", Form: rev.Encode()}, nil)
	if err != nil || out.State != pipeline.CorrectionTooLate || !strings.Contains(out.Messages[0].Text, "reversed") {
		t.Fatalf("a second reversal: %+v %v", out, err)
	}
	mods := h.sim.Modifications()
	if len(mods) != 2 || mods[0].Amount != "19.90" || mods[1].Method != "DELETE" {
		t.Fatalf("the simulator took %+v", mods)
	}
	// An answer lost after the change, or a 5xx once the request was
	// written: not resent, to be settled by the caller.
	for _, fault := range []func(){func() { h.sim.DropNext(1, true) }, func() { h.sim.FailNext(503) }} {
		fault()
		form.Set("Quantity", "0")
		out, err = h.sink.Modify(t.Context(), &pipeline.Correction{Method: "PUT", Form: form.Encode()}, nil)
		if err != nil || !out.MaybeSent || out.State != pipeline.CorrectionFailed || out.Attempts != 1 || !strings.Contains(out.Messages[0].Text, "settled") {
			t.Fatalf("an ambiguous answer: %+v %v", out, err)
		}
	}
	if n := len(h.sim.Modifications()); n != 3 {
		t.Fatalf("%d modifications: the dropped one is taken, the 5xx one not, none resent", n)
	}
}
