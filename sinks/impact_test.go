package sinks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

// testToken is the token of the tests; it must never show in any output.
const testToken = "tok-7f3a-NEVER-PRINT-ME"

// conv returns a valid conversion with order id O-<i> and one item.
func conv(i int) *pipeline.Conversion {
	id := fmt.Sprintf("O-%04d", i)
	return &pipeline.Conversion{
		Key: pipeline.Key{EventType: "12345", OrderID: id},
		Fields: []pipeline.Field{
			{Name: "EventTypeId", Value: "12345"}, {Name: "ClickId", Value: "click-" + id},
			{Name: "EventDate", Value: "2026-01-02T03:04:05Z"}, {Name: "CampaignId", Value: "1000"},
			{Name: "OrderId", Value: id}, {Name: "CurrencyCode", Value: "EUR"},
		},
		Items: []pipeline.Item{{Fields: []pipeline.Field{
			{Name: "ItemSku", Value: "SKU-1"}, {Name: "ItemCategory", Value: "shoes"},
			{Name: "ItemQuantity", Value: "2"}, {Name: "ItemPrice", Value: "19.90"},
		}}},
	}
}

// harness is a simulator and a sink pointed at it, logging to logs.
type harness struct {
	sim  *sim.Server
	sink *Impact
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fast is a sink configuration for tests: a generous rate, short backoff.
func fast(c *Config) {
	c.Rate = "1000/s"
	c.Burst = 10
	c.Workers = 4
	c.RequestTimeout = 2 * time.Second
	c.ConnectTimeout = time.Second
	c.BackoffInitial = 5 * time.Millisecond
	c.BackoffMax = 50 * time.Millisecond
	c.MaxAttempts = 5
	c.MaxElapsed = 20 * time.Second
}

func newHarness(t *testing.T, sc sim.Config, change func(*Config)) *harness {
	t.Helper()
	if sc.AuthToken == "" {
		sc.AuthToken = testToken
	}
	s := sim.NewTestServer(t, sc)
	t.Setenv(EnvAccountSID, s.AccountSID())
	t.Setenv(EnvAuthToken, testToken)
	cfg := Config{BaseURL: s.URL()}
	fast(&cfg)
	if change != nil {
		change(&cfg)
	}
	logs := &syncBuffer{}
	sink, err := New(cfg, "test", slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sink.Close()
		// Whatever the test did, the token is nowhere in the logs.
		if strings.Contains(logs.String(), testToken) {
			t.Errorf("the token shows in the log:\n%s", logs)
		}
	})
	return &harness{sim: s, sink: sink, logs: logs}
}

type result struct {
	out pipeline.Outcome
	err error
}

// sendAll sends convs from the sink's number of workers and returns the
// results in the order of convs.
func sendAll(ctx context.Context, sink *Impact, convs []*pipeline.Conversion) []result {
	res := make([]result, len(convs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range sink.Workers() {
		wg.Go(func() {
			for i := range next {
				out, err := sink.Send(ctx, convs[i])
				res[i] = result{out, err}
			}
		})
	}
	for i := range convs {
		next <- i
	}
	close(next)
	wg.Wait()
	return res
}

func convs(n int) []*pipeline.Conversion {
	cs := make([]*pipeline.Conversion, n)
	for i := range cs {
		cs[i] = conv(i)
	}
	return cs
}

// checkNoLeak fails when the token shows in an outcome or error.
func checkNoLeak(t *testing.T, res ...result) {
	t.Helper()
	for _, r := range res {
		b, _ := json.Marshal(r.out)
		if strings.Contains(string(b), testToken) || (r.err != nil && strings.Contains(r.err.Error(), testToken)) {
			t.Fatalf("the token shows in %s / %v", b, r.err)
		}
	}
}

// acceptedOnce checks that the simulator holds each of cs exactly once,
// and nothing else.
func acceptedOnce(t *testing.T, s *sim.Server, cs ...*pipeline.Conversion) {
	t.Helper()
	count := map[string]int{}
	for _, r := range s.Accepted() {
		count[r.OrderID]++
	}
	for _, c := range cs {
		if id := c.Key.OrderID; count[id] != 1 {
			t.Errorf("%s accepted %d times by the simulator, want 1", id, count[id])
		}
	}
	if len(count) != len(cs) {
		t.Errorf("the simulator holds %d orders, want %d", len(count), len(cs))
	}
}

func TestSendAccepted(t *testing.T) {
	h := newHarness(t, sim.Config{}, func(c *Config) { c.IRVersion = "14" })
	out, err := h.sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 1 || out.HTTPStatus != 200 {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	got := h.sim.Accepted()
	if len(got) != 1 {
		t.Fatalf("accepted %d", len(got))
	}
	r := got[0]
	if out.SubmissionID != r.SubmissionID || out.QueuedURI != "/Advertisers/"+h.sim.AccountSID()+"/APISubmissions/"+r.SubmissionID {
		t.Errorf("submission %q %q, simulator %q", out.SubmissionID, out.QueuedURI, r.SubmissionID)
	}
	if r.Body != conv(1).Encode() {
		t.Errorf("body %q, want %q", r.Body, conv(1).Encode())
	}
	for k, want := range map[string]string{
		"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded",
		"User-Agent": "convpipe/test", "IR-Version": "14",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
}

func TestQuotaKept(t *testing.T) {
	const quota, n = 50, 150
	tests := []struct {
		name   string
		format sim.ResetFormat
		rate   string
		burst  int
		// full: the windows between the first and the last are used to
		// the last request (within 1%).
		full bool
	}{
		{"faster than the quota, unix reset", sim.ResetUnix, "500/s", 10, true},
		{"faster than the quota, seconds reset", sim.ResetSeconds, "500/s", 10, false},
		{"at the quota's rate", sim.ResetUnix, "50/s", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, sim.Config{Quota: quota, Window: time.Second, ResetFormat: tt.format}, func(c *Config) {
				c.Rate, c.Burst = tt.rate, tt.burst
			})
			res := sendAll(t.Context(), h.sink, convs(n))
			for i, r := range res {
				if r.err != nil || r.out.State != pipeline.StateAccepted || r.out.Attempts != 1 {
					t.Fatalf("conversion %d: %+v %v", i, r.out, r.err)
				}
			}
			acceptedOnce(t, h.sim, convs(n)...)
			if c := h.sim.Counts(); c[429] != 0 {
				t.Errorf("%d requests sent into a closed window (429)", c[429])
			}
			buckets := h.sim.PerBucket(time.Second)
			starts := slices.SortedFunc(maps.Keys(buckets), time.Time.Compare)
			for i, w := range starts {
				got := buckets[w]
				if got > quota {
					t.Errorf("window %s: %d requests, quota %d", w.Format("15:04:05"), got, quota)
				}
				if tt.full && i > 0 && i < len(starts)-1 && float64(got) < 0.99*quota {
					t.Errorf("window %s: %d requests, quota %d: the quota was not used", w.Format("15:04:05"), got, quota)
				}
			}
			if tt.full && len(starts) > n/quota+1 {
				t.Errorf("%d windows used for %d requests at %d a window", len(starts), n, quota)
			}
			if tt.rate == "500/s" && !strings.Contains(h.logs.String(), "quota window closed: waiting") {
				t.Errorf("the wait for the window was not logged:\n%s", h.logs)
			}
		})
	}
}

func TestClosedWindowWaitsWithoutSpending(t *testing.T) {
	for _, style := range []sim.HeaderStyle{sim.HeadersPlain, sim.HeadersHour} {
		t.Run(string(style), func(t *testing.T) {
			h := newHarness(t, sim.Config{Headers: style}, func(c *Config) { c.Workers = 1 })
			ctx := t.Context()
			for i := range 2 {
				if out, err := h.sink.Send(ctx, conv(i)); err != nil || out.State != pipeline.StateAccepted {
					t.Fatalf("%+v %v", out, err)
				}
			}
			const closed = 1500 * time.Millisecond
			until := time.Now().Add(closed)
			h.sim.CloseWindow(closed)
			// The next one is served and says the window is spent.
			if out, err := h.sink.Send(ctx, conv(2)); err != nil || out.State != pipeline.StateAccepted {
				t.Fatalf("%+v %v", out, err)
			}
			if p := h.sink.Pace(); p.WaitingUntil.Before(until) {
				t.Errorf("Pace().WaitingUntil = %v, want at least %v", p.WaitingUntil, until)
			}
			for i := 3; i < 6; i++ {
				if out, err := h.sink.Send(ctx, conv(i)); err != nil || out.State != pipeline.StateAccepted || out.Attempts != 1 {
					t.Fatalf("%+v %v", out, err)
				}
			}
			reqs := h.sim.Requests()
			for _, r := range reqs[3:] {
				if r.Time.Before(until) {
					t.Errorf("request at %s, before the window reopened at %s", r.Time.Format("15:04:05.000"), until.Format("15:04:05.000"))
				}
			}
			if c := h.sim.Counts(); c[429] != 0 {
				t.Errorf("%d requests got 429", c[429])
			}
			if n := strings.Count(h.logs.String(), "quota window closed: waiting"); n != 1 {
				t.Errorf("logged the wait %d times, want once:\n%s", n, h.logs)
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	h := newHarness(t, sim.Config{}, func(c *Config) { c.Workers = 1 })
	h.sim.TooManyNext(2, time.Second)
	out, err := h.sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 3 {
		t.Fatalf("%+v %v", out, err)
	}
	reqs := h.sim.Requests()
	if len(reqs) != 3 || reqs[0].Status != 429 || reqs[1].Status != 429 || reqs[2].Status != 200 {
		t.Fatalf("requests %+v", reqs)
	}
	for i := 1; i < len(reqs); i++ {
		if gap := reqs[i].Time.Sub(reqs[i-1].Time); gap < time.Second {
			t.Errorf("request %d came %s after a 429 with Retry-After: 1", i, gap)
		}
	}
}

func TestHourHeadersLowerTheRate(t *testing.T) {
	h := newHarness(t, sim.Config{Headers: sim.HeadersHour, Quota: 3600 * 200, Window: time.Hour}, nil)
	if _, err := h.sink.Send(t.Context(), conv(1)); err != nil {
		t.Fatal(err)
	}
	if p := h.sink.Pace(); p.PerSecond != 200 || !p.WaitingUntil.IsZero() {
		t.Fatalf("pace %+v, want the server's 200/s", p)
	}
}

func TestStormSurvived(t *testing.T) {
	// The synchronous duplicate answer, so that the sink's resolution of
	// each ambiguous send shows in its outcome.
	h := newHarness(t, sim.Config{Seed: 7, Duplicates: sim.DuplicateError, Faults: sim.Faults{
		Latency: 2 * time.Millisecond, LatencyJitter: 2 * time.Millisecond,
		SpikeRate: 0.03, Spike: 300 * time.Millisecond,
		ErrorRate: 0.3, DropRate: 0.05, DropAfterRate: 0.05,
		SlowBodyRate: 0.03, SlowBody: 2 * time.Second,
		TooManyRate: 0.02, TooManyBurst: 3, RetryAfter: time.Second,
	}}, func(c *Config) {
		c.RequestTimeout = 500 * time.Millisecond
		c.MaxAttempts = 30
	})
	const n = 80
	res := sendAll(t.Context(), h.sink, convs(n))
	checkNoLeak(t, res...)
	resolved := 0
	for i, r := range res {
		if r.err != nil || r.out.State != pipeline.StateAccepted {
			t.Errorf("conversion %d: %+v %v", i, r.out, r.err)
		}
		if len(r.out.Messages) > 0 && strings.Contains(r.out.Messages[0].Text, "counted as accepted") {
			resolved++
		}
	}
	acceptedOnce(t, h.sim, convs(n)...)
	if d := h.sim.Duplicates(); d != resolved {
		t.Errorf("the simulator refused %d duplicates, the sink resolved %d", d, resolved)
	}
	c := h.sim.Counts()
	if c[500]+c[502]+c[503]+c[504] == 0 || c[sim.StatusDropped] == 0 {
		t.Errorf("the storm did not happen: %v", c)
	}
	t.Logf("requests by status %v; %d ambiguous sends resolved as duplicates", c, resolved)
}

func TestRejectedNotRetried(t *testing.T) {
	for _, upper := range []bool{false, true} {
		t.Run(fmt.Sprintf("upper case envelope %v", upper), func(t *testing.T) {
			h := newHarness(t, sim.Config{UpperCaseErrors: upper}, nil)
			c := conv(1)
			c.Items[0].Fields[2].Value = "1.5" // ItemQuantity
			out, err := h.sink.Send(t.Context(), c)
			if err != nil || out.State != pipeline.StateRejected || out.Attempts != 1 || out.HTTPStatus != 400 {
				t.Fatalf("%+v %v", out, err)
			}
			if len(out.Messages) == 0 || !slices.ContainsFunc(out.Messages, func(m pipeline.Message) bool {
				return m.Field == "ItemQuantity1" && strings.Contains(m.Text, "1.5")
			}) {
				t.Errorf("messages %+v lack the field error", out.Messages)
			}
			if got := len(h.sim.Requests()); got != 1 {
				t.Errorf("%d requests, want 1", got)
			}
		})
	}
}

func TestFatal(t *testing.T) {
	tests := []struct {
		name string
		sim  sim.Config
		want string
	}{
		{"bad credentials", sim.Config{AuthToken: "another-token"}, "account SID or the auth token is wrong"},
		{"token without scope", sim.Config{AuthToken: "another-token", ScopelessToken: testToken}, "scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.sim, nil)
			out, err := h.sink.Send(t.Context(), conv(1))
			if !errors.Is(err, pipeline.ErrFatal) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrFatal saying %q", err, tt.want)
			}
			if out.State != pipeline.StateFailed || out.Attempts != 1 || out.Key != conv(1).Key {
				t.Errorf("outcome %+v", out)
			}
			// The run stops: no further request is made.
			res := sendAll(t.Context(), h.sink, convs(8))
			for _, r := range res {
				if !errors.Is(r.err, pipeline.ErrFatal) || r.out.State != pipeline.StateFailed || r.out.Attempts != 0 {
					t.Errorf("after the fatal answer: %+v %v", r.out, r.err)
				}
			}
			if got := len(h.sim.Requests()); got != 1 {
				t.Errorf("%d requests, want 1", got)
			}
			checkNoLeak(t, append(res, result{out, err})...)
			if !strings.Contains(h.logs.String(), "stopping") {
				t.Errorf("the fatal error was not logged:\n%s", h.logs)
			}
		})
	}
}

// within fails the test when fn does not return within d: a bound against
// hangs, far above the expected time.
func within(t *testing.T, d time.Duration, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("still running after %s", d)
	}
}

func TestCancelStopsPromptly(t *testing.T) {
	t.Run("in flight", func(t *testing.T) {
		h := newHarness(t, sim.Config{Faults: sim.Faults{Latency: 30 * time.Second}}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		// Cancel once every worker's request has reached the simulator.
		go func() {
			defer cancel()
			for h.sim.Counts()[sim.StatusInFlight] < h.sink.Workers() {
				time.Sleep(5 * time.Millisecond)
			}
		}()
		var res []result
		within(t, 20*time.Second, func() { res = sendAll(ctx, h.sink, convs(10)) })
		inFlight := 0
		for i, r := range res {
			if r.err != nil || r.out.State != pipeline.StateFailed || r.out.Key != conv(i).Key ||
				len(r.out.Messages) == 0 || !strings.HasPrefix(r.out.Messages[0].Text, "stopped before an answer") {
				t.Errorf("conversion %d: %+v %v", i, r.out, r.err)
			}
			if r.out.Attempts == 1 {
				inFlight++
				if !r.out.MaybeSent {
					t.Errorf("conversion %d was written but is not marked as maybe sent", i)
				}
			}
		}
		if inFlight != h.sink.Workers() {
			t.Errorf("%d conversions in flight, want %d", inFlight, h.sink.Workers())
		}
		if len(h.sim.Accepted()) != 0 {
			t.Error("the simulator accepted conversions")
		}
		// The simulator sees the requests abandoned.
		deadline := time.Now().Add(5 * time.Second)
		for h.sim.Counts()[sim.StatusClientGone] != inFlight && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := h.sim.Counts()[sim.StatusClientGone]; got != inFlight {
			t.Errorf("the simulator saw %d abandoned requests, want %d", got, inFlight)
		}
	})
	t.Run("waiting for a closed window", func(t *testing.T) {
		h := newHarness(t, sim.Config{}, nil)
		h.sim.CloseWindow(time.Hour)
		if _, err := h.sink.Send(t.Context(), conv(0)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(200*time.Millisecond, cancel)
		var out pipeline.Outcome
		within(t, 10*time.Second, func() { out, _ = h.sink.Send(ctx, conv(1)) })
		if out.State != pipeline.StateFailed || out.Attempts != 0 || out.Messages[0].Text != "stopped before an answer" {
			t.Fatalf("%+v", out)
		}
	})
	t.Run("deadline before the window reopens", func(t *testing.T) {
		h := newHarness(t, sim.Config{}, nil)
		h.sim.CloseWindow(time.Hour)
		if _, err := h.sink.Send(t.Context(), conv(0)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		var out pipeline.Outcome
		within(t, 10*time.Second, func() { out, _ = h.sink.Send(ctx, conv(1)) })
		if out.State != pipeline.StateFailed || out.Attempts != 0 || !strings.Contains(out.Messages[0].Text, "no request before the deadline") {
			t.Fatalf("%+v", out)
		}
		if len(h.sim.Requests()) != 1 {
			t.Errorf("%d requests, want 1", len(h.sim.Requests()))
		}
	})
}

func TestAmbiguousSendCountsOnce(t *testing.T) {
	tests := []struct {
		name  string
		dups  sim.DuplicateMode
		fault func(s *sim.Server)
		// dup: the retry meets a duplicate answer
		dup bool
	}{
		{"dropped after recording, duplicate as field error", sim.DuplicateError, func(s *sim.Server) { s.DropNext(1, true) }, true},
		{"dropped after recording, duplicate as reason", sim.DuplicateReason, func(s *sim.Server) { s.DropNext(1, true) }, true},
		{"dropped after recording, duplicate queued", sim.DuplicateQueued, func(s *sim.Server) { s.DropNext(1, true) }, false},
		{"timed out after recording", sim.DuplicateError, func(s *sim.Server) { s.SlowNext(1, 30*time.Second) }, true},
		{"dropped before recording", sim.DuplicateError, func(s *sim.Server) { s.DropNext(1, false) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The slow answer is cut by the request timeout; the others
			// must not be.
			h := newHarness(t, sim.Config{Duplicates: tt.dups}, func(c *Config) { c.RequestTimeout = 3 * time.Second })
			tt.fault(h.sim)
			out, err := h.sink.Send(t.Context(), conv(1))
			if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 2 || !out.MaybeSent {
				t.Fatalf("%+v %v\n%s", out, err, h.logs)
			}
			if got := len(out.Messages) > 0 && strings.Contains(out.Messages[0].Text, "counted as accepted"); got != tt.dup {
				t.Errorf("resolved as a duplicate: %v, want %v (%+v)", got, tt.dup, out.Messages)
			}
			acceptedOnce(t, h.sim, conv(1))
		})
	}
}

func TestDuplicateOnFirstAttemptIsRejected(t *testing.T) {
	h := newHarness(t, sim.Config{Duplicates: sim.DuplicateError}, nil)
	if out, err := h.sink.Send(t.Context(), conv(1)); err != nil || out.State != pipeline.StateAccepted {
		t.Fatalf("%+v %v", out, err)
	}
	out, err := h.sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateRejected || out.MaybeSent || out.Messages[0].Field != "OrderId" {
		t.Fatalf("%+v %v", out, err)
	}
}

func TestDuplicateAfterEarlierRunCountsAsAccepted(t *testing.T) {
	h := newHarness(t, sim.Config{Duplicates: sim.DuplicateError}, nil)
	if out, err := h.sink.Send(t.Context(), conv(1)); err != nil || out.State != pipeline.StateAccepted {
		t.Fatalf("%+v %v", out, err)
	}
	// A later run resends it: its ledger entry was left pending.
	c := conv(1)
	c.MaybeSent = true
	out, err := h.sink.Send(t.Context(), c)
	if err != nil || out.State != pipeline.StateAccepted || !out.MaybeSent || out.Attempts != 1 {
		t.Fatalf("%+v %v", out, err)
	}
	acceptedOnce(t, h.sim, conv(1))
}

func TestKeepAlive(t *testing.T) {
	h := newHarness(t, sim.Config{Faults: sim.Faults{Latency: time.Millisecond}}, func(c *Config) { c.Workers = 3 })
	res := sendAll(t.Context(), h.sink, convs(60))
	for _, r := range res {
		if r.err != nil || r.out.State != pipeline.StateAccepted {
			t.Fatalf("%+v %v", r.out, r.err)
		}
	}
	if c := h.sim.Connections(); c > h.sink.Workers() {
		t.Errorf("%d connections opened for %d workers", c, h.sink.Workers())
	}
}

func TestNewRefuses(t *testing.T) {
	t.Setenv(EnvAccountSID, "IR1")
	t.Setenv(EnvAuthToken, testToken)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"http to a remote host", Config{BaseURL: "http://api.impact.com"}, "sink.base_url:"},
		{"literal token", Config{AuthToken: testToken}, "sink.auth_token:"},
		{"bad rate", Config{Rate: "lots"}, "sink.rate:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg, "test", nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), testToken) {
				t.Fatalf("error %v, want %q without the token", err, tt.want)
			}
		})
	}
	t.Setenv(EnvAuthToken, "")
	if _, err := New(Config{}, "test", nil); err == nil || !strings.Contains(err.Error(), EnvAuthToken) {
		t.Fatalf("missing token: %v", err)
	}
}

func TestNetworkErrorsDoNotLeak(t *testing.T) {
	h := newHarness(t, sim.Config{}, func(c *Config) { c.MaxAttempts = 2 })
	_ = h.sim.Close() // nothing listens any more
	out, err := h.sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateFailed || out.Attempts != 2 || out.MaybeSent {
		t.Fatalf("%+v %v", out, err)
	}
	if !strings.Contains(out.Messages[0].Text, "gave up after 2 attempts") || !strings.Contains(out.Messages[1].Text, "before the request was sent") {
		t.Errorf("messages %+v", out.Messages)
	}
	checkNoLeak(t, result{out, err})
	b, _ := json.Marshal(out)
	if strings.Contains(string(b), "/Advertisers/") {
		t.Errorf("the outcome names the endpoint: %s", b)
	}
}

// TestNewWithCredentials: credentials given as values authenticate with
// the environment empty (the --simulate path), and incomplete ones are
// refused before anything is sent.
func TestNewWithCredentials(t *testing.T) {
	s := sim.NewTestServer(t, sim.Config{AuthToken: testToken})
	t.Setenv(EnvAccountSID, "")
	t.Setenv(EnvAuthToken, "")
	cfg := Config{BaseURL: s.URL()}
	fast(&cfg)
	for _, bad := range []Credentials{{AccountSID: s.AccountSID()}, {AuthToken: testToken}, {AccountSID: "IR 1", AuthToken: testToken}} {
		if _, err := NewWithCredentials(cfg, bad, "test", nil); err == nil || strings.Contains(err.Error(), testToken) {
			t.Errorf("NewWithCredentials(%q): %v, want an error without the token", bad.AccountSID, err)
		}
	}
	sink, err := NewWithCredentials(cfg, Credentials{AccountSID: s.AccountSID(), AuthToken: testToken}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	out, err := sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateAccepted {
		t.Fatalf("outcome %+v, %v", out, err)
	}
	if n := len(s.Accepted()); n != 1 {
		t.Errorf("%d accepted at the simulator, want 1", n)
	}
}
