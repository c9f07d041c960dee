package sinks

import (
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

// TestQuotaLeft: what the server's answers say is left of its window,
// sends and reads alike; unknown before any answer.
func TestQuotaLeft(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: testToken, Quota: 10, Window: time.Hour})
	cfg := Config{BaseURL: s.URL()}
	fast(&cfg)
	sink, err := NewWithCredentials(cfg, Credentials{AccountSID: s.AccountSID(), AuthToken: testToken}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	if n, known := sink.QuotaLeft(); known {
		t.Fatalf("before any answer: %d known", n)
	}
	for i := range 3 {
		if out, err := sink.Send(t.Context(), conv(i)); err != nil || out.State != pipeline.StateAccepted {
			t.Fatalf("send %d: %+v %v", i, out, err)
		}
	}
	if _, err := sink.LookupSubmission(t.Context(), "SIM00000001"); err != nil {
		t.Fatal(err)
	}
	// Unless the window rolled over meanwhile (then it is fuller).
	if n, known := sink.QuotaLeft(); !known || (n != 6 && n < 9) {
		t.Errorf("after 4 requests of 10: %d left, known %v; want 6", n, known)
	}
}
