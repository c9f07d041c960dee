package engine_test

import (
	"sync"
	"testing"
	"time"

	"convpipe/ledger"
	"convpipe/ledger/pgtest"
	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sinks"
	"convpipe/sources"
)

// TestRunClaimsBesideAnotherRun runs the engine on a shared PostgreSQL
// ledger while another run (a second Ledger on the same database) works
// on the same orders, at the moments that matter, from OnDecision and
// OnOutcome: A-1 is recorded accepted by the other run after this run
// decided to send it (not sent: already sent); A-2 is held by the other
// run while it "sends" it, and recorded accepted and released once A-3
// is answered (this run waits for it, then finds it sent); A-4 is
// recorded failed by the other run (not sent, left to the next run, the
// object not marked processed); A-3 is sent. The simulator accepts A-3
// alone.
func TestRunClaimsBesideAnotherRun(t *testing.T) {
	srv, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	t.Setenv("PGPASSWORD", pgtest.Password)
	if err := srv.CreateDatabase(t.Context(), "claims"); err != nil {
		t.Fatal(err)
	}
	url := srv.URL("claims")
	open := func() ledger.Store {
		l, err := ledger.OpenPostgres(t.Context(), url, "", ledger.Options{Create: true, Shared: true, Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	}
	led, other := open(), open()
	h := newHarness(t)
	h.write("a.csv", orders(1, 4))
	key := func(id string) pipeline.Key { return pipeline.Key{EventType: "12345", OrderID: id} }
	put := func(id string, st pipeline.State, hash string) {
		if err := other.Put(t.Context(), pipeline.Entry{Key: key(id), State: st, PayloadHash: hash, RunID: "other",
			Created: time.Now(), Updated: time.Now()}); err != nil {
			t.Error(err)
		}
	}
	if _, _, ok, err := other.ClaimOrder(t.Context(), key("A-2")); err != nil || !ok {
		t.Fatalf("the other run claims A-2: %v, %v", ok, err)
	}
	var hashA2 string
	var once sync.Once
	onDecision := func(d engine.Decision) {
		switch d.Mapped.Conversion.Key.OrderID {
		case "A-1":
			put("A-1", pipeline.StateAccepted, d.Hash)
		case "A-2":
			hashA2 = d.Hash
		case "A-4":
			put("A-4", pipeline.StateFailed, d.Hash)
		}
	}
	onOutcome := func(o pipeline.Outcome) {
		if o.Key.OrderID != "A-3" {
			return
		}
		once.Do(func() {
			put("A-2", pipeline.StateAccepted, hashA2)
			if err := other.ReleaseOrder(t.Context(), key("A-2")); err != nil {
				t.Error(err)
			}
		})
	}
	t.Setenv(sinks.EnvAccountSID, h.sim.AccountSID())
	t.Setenv(sinks.EnvAuthToken, h.token)
	src, err := sources.New(t.Context(), sources.Config{Location: h.dir + "/export"})
	if err != nil {
		t.Fatal(err)
	}
	sink, err := sinks.New(sinks.Config{BaseURL: h.sim.URL(), Rate: "2000/s", Burst: 20, Workers: 4, MaxAttempts: 3,
		BackoffInitial: time.Millisecond, BackoffMax: 10 * time.Millisecond}.WithDefaults(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	s, err := engine.Run(t.Context(), engine.Options{
		Mode: engine.Send, Source: src, Mapper: h.mapper, Sink: sink, Ledger: led, Claims: led, Workers: 4,
		RunID: "this", Grace: 5 * time.Second, OnDecision: onDecision, OnOutcome: onOutcome,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.acceptedOnce("A-3")
	c := s.Total
	if c.Orders != 4 || c.Accepted != 1 || c.AlreadySent != 2 || c.Unsent != 1 || c.ToSend != 2 || c.Requests != 1 {
		t.Errorf("counts = %+v; want 4 orders, A-3 accepted (1 request), A-1 and A-2 already sent, A-4 unsent", c)
	}
	want := map[string]pipeline.State{"A-1": pipeline.StateAccepted, "A-2": pipeline.StateAccepted, "A-3": pipeline.StateAccepted, "A-4": pipeline.StateFailed}
	for id, st := range want {
		e, ok, err := led.Get(t.Context(), key(id))
		if err != nil || !ok || e.State != st {
			t.Errorf("%s: %s, %v, %v; want %s", id, e.State, ok, err, st)
		}
	}
	objs, err := src.Objects(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if done, err := led.ObjectDone(t.Context(), objs[0]); err != nil || done {
		t.Errorf("ObjectDone with A-4 left to the next run = %v, %v; want false", done, err)
	}
}
