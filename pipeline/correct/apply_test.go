package correct_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/correct"
	"convpipe/sim"
	"convpipe/sinks"
)

// rig is an Applier on a real SQLite ledger, sending to the simulator
// over loopback HTTP, with one accepted order O-1 (two items, 28.84)
// that impact tracked.
type rig struct {
	sim *sim.Server
	led *ledger.Ledger
	app *correct.Applier
	key pipeline.Key
}

func newRig(t *testing.T) *rig {
	t.Helper()
	s := sim.NewTestServer(t, sim.Config{})
	v := url.Values{"EventTypeId": {"12345"}, "ClickId": {"c"}, "CampaignId": {"1000"}, "OrderId": {"O-1"}, "CurrencyCode": {"EUR"},
		"EventDate": {s.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)},
		"ItemSku1":  {"S1"}, "ItemCategory1": {"C"}, "ItemQuantity1": {"1"}, "ItemPrice1": {"10"},
		"ItemSku2": {"S2"}, "ItemCategory2": {"C"}, "ItemQuantity2": {"6"}, "ItemSubTotal2": {"18.84"}}
	if _, err := s.Submit(v); err != nil {
		t.Fatal(err)
	}
	s.Advance(sim.DefaultCompleteAfter)
	led, err := ledger.Open(t.Context(), filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Account: s.AccountSID()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	cfg := sinks.Config{BaseURL: s.URL(), Rate: "1000/s", Burst: 10, Workers: 1}
	imp, err := sinks.NewWithCredentials(cfg.WithDefaults(), sinks.Credentials{AccountSID: s.AccountSID(), AuthToken: sim.DefaultAuthToken}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { imp.Close() })
	key := pipeline.Key{EventType: "12345", OrderID: "O-1"}
	if err := led.Put(t.Context(), pipeline.Entry{Key: key, State: pipeline.StateChanged, PayloadHash: "h2", SentHash: "h1"}); err != nil {
		t.Fatal(err)
	}
	return &rig{sim: s, led: led, key: key, app: &correct.Applier{Ledger: led, Modifier: imp, Reader: imp, RunID: "r2"}}
}

// partialReturn is the correction of S2 returned down to 3 (impact's
// amount then 19.42).
func (r *rig) partialReturn(eventDate string) pipeline.Correction {
	return pipeline.Correction{Key: r.key, Seq: 1, Kind: pipeline.CorrectItems, State: pipeline.CorrectionPlanned,
		FromHash: "h1", ToHash: "h2", Before: "28.84", After: "19.42", Currency: "EUR", CampaignID: "1000", EventDate: eventDate,
		Method: "PUT", Form: "ActionTrackerId=12345&OrderId=O-1&Reason=ORDER_UPDATE&Sku=S2&Quantity=3"}
}

func (r *rig) apply(t *testing.T, c pipeline.Correction) pipeline.Correction {
	t.Helper()
	res, err := r.app.Apply(t.Context(), []pipeline.Correction{c}, 1)
	if err != nil || len(res.Corrections) != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	return res.Corrections[0]
}

func (r *rig) changes() int {
	n := 0
	for _, q := range r.sim.Requests() {
		if q.Method == http.MethodPut || q.Method == http.MethodDelete {
			n++
		}
	}
	return n
}

func TestApplyLimitsBeforeARequest(t *testing.T) {
	t.Run("locking date known and past", func(t *testing.T) {
		r := newRig(t)
		r.app.Locking = func(pipeline.Key) (time.Time, bool) { return time.Now().Add(-time.Hour), true }
		c := r.apply(t, r.partialReturn(""))
		if c.State != pipeline.CorrectionTooLate || c.PaidInError != "9.42" || r.changes() != 0 {
			t.Fatalf("%+v, %d requests", c, r.changes())
		}
	})
	t.Run("1,000 modifications", func(t *testing.T) {
		r := newRig(t)
		for i := range correct.MaxModifications {
			old := pipeline.Correction{Key: r.key, Seq: i + 2, Kind: pipeline.CorrectAmount, State: pipeline.CorrectionApplied}
			if err := r.led.PutCorrection(t.Context(), old, nil); err != nil {
				t.Fatal(err)
			}
		}
		c := r.apply(t, r.partialReturn(""))
		if c.State != pipeline.CorrectionTooLate || !strings.Contains(c.Messages[0].Text, "1000 modifications") || r.changes() != 0 {
			t.Fatalf("%+v, %d requests", c, r.changes())
		}
	})
	t.Run("reversed before", func(t *testing.T) {
		r := newRig(t)
		rev := pipeline.Correction{Key: r.key, Seq: 2, Kind: pipeline.CorrectReversal, State: pipeline.CorrectionApplied}
		if err := r.led.PutCorrection(t.Context(), rev, nil); err != nil {
			t.Fatal(err)
		}
		if c := r.apply(t, r.partialReturn("")); c.State != pipeline.CorrectionTooLate || r.changes() != 0 {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("changed again since", func(t *testing.T) {
		r := newRig(t)
		if err := r.led.Put(t.Context(), pipeline.Entry{Key: r.key, State: pipeline.StateChanged, PayloadHash: "h3", SentHash: "h1"}); err != nil {
			t.Fatal(err)
		}
		if c := r.apply(t, r.partialReturn("")); c.State != pipeline.CorrectionSuperseded || r.changes() != 0 {
			t.Fatalf("%+v", c)
		}
	})
}

func TestApplySettlesBeforeAResend(t *testing.T) {
	r := newRig(t)
	ed := r.sim.Now().Add(-24 * time.Hour).UTC().Format(time.RFC3339)
	c := r.partialReturn(ed)
	// The first request is taken, its answer lost: settled, not resent.
	r.sim.DropNext(1, true)
	got := r.apply(t, c)
	if got.State != pipeline.CorrectionApplied || r.changes() != 1 || len(r.sim.Modifications()) != 1 {
		t.Fatalf("%+v: %d requests, %d taken", got, r.changes(), len(r.sim.Modifications()))
	}
	e, _, _ := r.led.Get(context.Background(), r.key)
	if e.State != pipeline.StateAccepted || e.PayloadHash != "h2" {
		t.Fatalf("entry %+v", e)
	}
	// A 502 once the request was written may come after impact took it:
	// settled, found not taken, sent again.
	r2 := newRig(t)
	r2.sim.FailNext(502)
	got = r2.apply(t, r2.partialReturn(ed))
	if got.State != pipeline.CorrectionApplied || r2.changes() != 2 || len(r2.sim.Modifications()) != 1 {
		t.Fatalf("%+v: %d requests, %d taken", got, r2.changes(), len(r2.sim.Modifications()))
	}
	// Pending from a run that died: the action shows it applied.
	r3 := newRig(t)
	p := r3.partialReturn(ed)
	p.State = pipeline.CorrectionPending
	form, _ := url.ParseQuery(p.Form)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPut, r3.sim.URL()+"/Advertisers/"+r3.sim.AccountSID()+"/Actions", strings.NewReader(form.Encode()))
	req.SetBasicAuth(r3.sim.AccountSID(), sim.DefaultAuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the earlier request: %v %v", resp, err)
	}
	if got := r3.apply(t, p); got.State != pipeline.CorrectionApplied || r3.changes() != 1 {
		t.Fatalf("%+v: %d requests", got, r3.changes())
	}
}

func TestApplyGuard(t *testing.T) {
	r := newRig(t)
	var todo []pipeline.Correction
	for i := range 11 {
		c := r.partialReturn("")
		c.Seq = i + 1
		todo = append(todo, c)
	}
	_, err := r.app.Apply(t.Context(), todo, 11)
	var mc *correct.MassChangeError
	if !errors.As(err, &mc) || !strings.Contains(err.Error(), "nothing was corrected") || r.changes() != 0 {
		t.Fatalf("the guard: %v, %d requests", err, r.changes())
	}
	r.app.MaxShare = 1
	if res, err := r.app.Apply(t.Context(), todo[:1], 11); err != nil || res.States[pipeline.CorrectionApplied] != 1 {
		t.Fatalf("with max_share 100%%: %+v %v", res, err)
	}
}
