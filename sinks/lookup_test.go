package sinks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"convpipe/pipeline"
	"convpipe/sim"
)

func TestClassifyRead(t *testing.T) {
	now := time.Now()
	p := policy{maxWait: time.Hour, secrets: newRedactor("IR1", testToken)}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name                     string
		a                        answer
		ok, notFound, retry      bool
		fatal, latched, queryErr bool
		narrow                   bool
		gate                     time.Duration
		text                     string
	}{
		{name: "200", a: answer{status: 200, body: []byte(`{"Actions":[]}`)}, ok: true},
		{name: "404", a: answer{status: 404, body: []byte(`{"Status":"ERROR","Message":"Submission not found"}`)}, notFound: true},
		{name: "400 range", a: answer{status: 400, body: []byte(`{"Status":"ERROR","Message":"The date range cannot exceed 45 days"}`)}, queryErr: true, text: "cannot exceed 45 days"},
		{name: "400 too many pages", a: answer{status: 400, body: []byte(`{"Status":"ERROR","Message":"The result would need more than 10 pages of 2000 actions (20001): narrow the date range or increase PageSize"}`)},
			queryErr: true, narrow: true, text: "more than 10 pages"},
		{name: "400 reduce the range", a: answer{status: 400, body: []byte(`{"Message":"Too many records: reduce the date range"}`)}, queryErr: true, narrow: true},
		{name: "400 field envelope", a: answer{status: 400, body: []byte(`{"Status":"ERROR","errors":[{"field":"PageSize","message":"too small"}]}`)}, queryErr: true, text: "PageSize: too small"},
		{name: "400 echoing the token", a: answer{status: 400, body: []byte(`{"Message":"bad auth ` + testToken + `"}`)}, queryErr: true, text: "bad auth [redacted]"},
		{name: "401", a: answer{status: 401}, fatal: true, latched: true, text: "account SID or the auth token is wrong"},
		{name: "403 not latched", a: answer{status: 403}, fatal: true, text: "read access to Actions"},
		{name: "429 Retry-After", a: answer{status: 429, header: hdr("Retry-After", "7")}, retry: true, gate: 7 * time.Second},
		{name: "429 spent window, no Retry-After", a: answer{status: 429, header: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "30")}, retry: true, gate: 30 * time.Second},
		{name: "429 bare", a: answer{status: 429}, retry: true},
		{name: "500", a: answer{status: 500}, retry: true, text: "HTTP 500"},
		{name: "503 Retry-After", a: answer{status: 503, header: hdr("Retry-After", "2")}, retry: true, gate: 2 * time.Second},
		{name: "501", a: answer{status: 501}},
		{name: "reset", a: answer{err: syscall.ECONNRESET, wrote: true}, retry: true, text: "network error"},
		{name: "stopped", a: answer{err: context.Canceled, stopped: true}, text: "stopped"},
		{name: "302", a: answer{status: 302}, text: "redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rv := classifyRead(tt.a, now, p, "the read")
			if rv.ok != tt.ok || rv.notFound != tt.notFound || rv.retry != tt.retry {
				t.Fatalf("ok %v notFound %v retry %v, want %v %v %v (%v)", rv.ok, rv.notFound, rv.retry, tt.ok, tt.notFound, tt.retry, rv.err)
			}
			err := rv.err
			if rv.fatal != nil {
				err = rv.fatal
			}
			if (rv.fatal != nil) != tt.latched || (err != nil && errors.Is(err, pipeline.ErrFatal)) != tt.fatal {
				t.Errorf("fatal %v (latched %v), want %v (%v)", err, rv.fatal != nil, tt.fatal, tt.latched)
			}
			var qe *QueryError
			if errors.As(rv.err, &qe) != tt.queryErr {
				t.Errorf("query error %v, want %v", rv.err, tt.queryErr)
			}
			if errors.Is(rv.err, pipeline.ErrNarrow) != tt.narrow {
				t.Errorf("narrow %v, want %v", errors.Is(rv.err, pipeline.ErrNarrow), tt.narrow)
			}
			if tt.text != "" && (err == nil || !strings.Contains(err.Error(), tt.text)) {
				t.Errorf("error %v, want %q", err, tt.text)
			}
			if err != nil && strings.Contains(err.Error(), testToken) {
				t.Errorf("the token shows: %v", err)
			}
			if got := rv.gate.Sub(now); (tt.gate == 0) != rv.gate.IsZero() || (tt.gate != 0 && (got < tt.gate-time.Second || got > tt.gate+time.Second)) {
				t.Errorf("gate in %s, want %s", got, tt.gate)
			}
		})
	}
}

func TestSplitRange(t *testing.T) {
	d := func(day int) time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, day) }
	tests := []struct {
		name       string
		start, end time.Time
		want       int
	}{
		{"one day", d(0), d(1), 1},
		{"30 days", d(0), d(30), 1},
		{"45 days less a second", d(0), d(45).Add(-time.Second), 1},
		{"45 days", d(0), d(45), 2},
		{"100 days", d(0), d(100), 3},
		{"reversed", d(2), d(1), 0},
		{"an instant", d(3), d(3), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := SplitRange(tt.start, tt.end, MaxActionRange)
			if len(ws) != tt.want {
				t.Fatalf("%d windows, want %d: %v", len(ws), tt.want, ws)
			}
			for i, w := range ws {
				if w[1].Sub(w[0]) >= MaxActionRange || w[1].Before(w[0]) {
					t.Errorf("window %d spans %s", i, w[1].Sub(w[0]))
				}
				if i > 0 && !w[0].Equal(ws[i-1][1].Add(time.Second)) {
					t.Errorf("window %d starts at %s, the one before ends at %s", i, w[0], ws[i-1][1])
				}
			}
			if len(ws) > 0 && (!ws[0][0].Equal(tt.start) || !ws[len(ws)-1][1].Equal(tt.end)) {
				t.Errorf("windows %v do not cover %s to %s", ws, tt.start, tt.end)
			}
		})
	}
}

// seedActions submits n conversions of campaign 1000 at the simulator,
// dated one every step from first, and lets them be processed.
func seedActions(t *testing.T, s *sim.Server, n int, first time.Time, step time.Duration) {
	t.Helper()
	for i := range n {
		v := url.Values{}
		for _, f := range conv(i).Form() {
			v.Set(f.Name, f.Value)
		}
		v.Set("EventDate", first.Add(time.Duration(i)*step).UTC().Format(time.RFC3339))
		if _, err := s.Submit(v); err != nil {
			t.Fatal(err)
		}
	}
	s.Advance(sim.DefaultCompleteAfter)
}

func TestActionsOverALongRange(t *testing.T) {
	h := newHarness(t, sim.Config{Quota: 1000}, nil)
	first := time.Now().Add(-100 * 24 * time.Hour).Truncate(time.Second)
	seedActions(t, h.sim, 500, first, 4*time.Hour) // 83 days of events
	seen := map[string]pipeline.Action{}
	n, err := h.sink.Actions(t.Context(), "1000", first, time.Now(), func(as []pipeline.Action) error {
		for _, a := range as {
			seen[a.OrderID] = a
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || len(seen) != 500 {
		t.Fatalf("%d requests, %d actions; want 3 windows of one page and 500", n, len(seen))
	}
	a := seen["O-0000"]
	if a.ID == "" || a.State != pipeline.ActionApproved || a.Amount != "39.80" || !a.EventDate.Equal(first) || a.LockingDate.IsZero() ||
		!a.Matches(pipeline.Key{EventType: "12345", OrderID: "O-0000"}) {
		t.Errorf("action %+v", a)
	}
	reqs := h.sim.Requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests at the simulator", len(reqs))
	}
	for _, r := range reqs {
		q, _ := url.ParseQuery(r.Query)
		start, _ := time.Parse(time.RFC3339, q.Get("ActionDateStart"))
		end, _ := time.Parse(time.RFC3339, q.Get("ActionDateEnd"))
		if r.Method != http.MethodGet || r.Status != 200 || end.Sub(start) > MaxActionRange || q.Get("PageSize") != "20000" {
			t.Errorf("request %+v", r)
		}
	}
}

func TestListActionsRefusedBeforeSending(t *testing.T) {
	h := newHarness(t, sim.Config{}, nil)
	now := time.Now()
	for _, q := range []pipeline.ActionQuery{
		{CampaignID: "1000", Start: now.Add(-46 * 24 * time.Hour), End: now},
		{CampaignID: "1000", Start: now, End: now.Add(-time.Hour)},
		{CampaignID: "x", Start: now.Add(-time.Hour), End: now},
	} {
		if _, err := h.sink.ListActions(t.Context(), q, 1); err == nil {
			t.Errorf("%+v: no error", q)
		}
	}
	if n := len(h.sim.Requests()); n != 0 {
		t.Fatalf("%d requests", n)
	}
}

func TestListActionsServerRefusal(t *testing.T) {
	// The simulator's own rule, met through a query the sink allows: a
	// start more than 3 years back.
	h := newHarness(t, sim.Config{}, nil)
	start := time.Now().AddDate(-4, 0, 0)
	_, err := h.sink.ListActions(t.Context(), pipeline.ActionQuery{CampaignID: "1000", Start: start, End: start.Add(time.Hour)}, 1)
	var qe *QueryError
	if !errors.As(err, &qe) || qe.Status != 400 || !strings.Contains(qe.Message, "3 years") {
		t.Fatalf("%v", err)
	}
	if n := len(h.sim.Requests()); n != 1 {
		t.Fatalf("%d requests, want 1 (a refusal is not retried)", n)
	}
}

func TestLookupSubmission(t *testing.T) {
	h := newHarness(t, sim.Config{Processing: sim.Processing{Campaigns: []string{"1000"}}}, nil)
	good, err := h.sink.Send(t.Context(), conv(1))
	if err != nil || good.QueuedURI == "" {
		t.Fatalf("%+v %v", good, err)
	}
	c := conv(2)
	for i, f := range c.Fields {
		if f.Name == "CampaignId" {
			c.Fields[i].Value = "2000"
		}
	}
	bad, err := h.sink.Send(t.Context(), c)
	if err != nil || bad.QueuedURI == "" {
		t.Fatalf("%+v %v", bad, err)
	}
	sub, err := h.sink.LookupSubmission(t.Context(), good.QueuedURI)
	if err != nil || !sub.Found || sub.Status != "Queued" || sub.ID != good.SubmissionID {
		t.Fatalf("before processing: %+v %v", sub, err)
	}
	h.sim.Advance(sim.DefaultCompleteAfter)
	tests := []struct {
		ref               string
		errType, errorWhy string
	}{
		{good.QueuedURI, "", ""},
		{good.SubmissionID, "", ""},
		{bad.QueuedURI, "Contract Error", "CONTRACT_NOT_FOUND"},
	}
	for _, tt := range tests {
		sub, err := h.sink.LookupSubmission(t.Context(), tt.ref)
		if err != nil || !sub.Found || sub.Status != pipeline.SubmissionComplete || sub.ErrorType != tt.errType || sub.ErrorReason != tt.errorWhy || sub.CompletionDate.IsZero() {
			t.Errorf("%s: %+v %v", tt.ref, sub, err)
		}
	}
	h.sim.Advance(91 * 24 * time.Hour)
	if sub, err := h.sink.LookupSubmission(t.Context(), good.QueuedURI); err != nil || sub.Found {
		t.Errorf("after 91 days: %+v %v, want not found", sub, err)
	}
	before := len(h.sim.Requests())
	for _, ref := range []string{"/Advertisers/OTHER/APISubmissions/X1", "https://elsewhere.example/x", "../Conversions"} {
		if _, err := h.sink.LookupSubmission(t.Context(), ref); err == nil {
			t.Errorf("%s: no error", ref)
		}
	}
	if n := len(h.sim.Requests()) - before; n != 0 {
		t.Errorf("%d requests for refs that are not this account's submissions", n)
	}
}

func TestReadsShareTheSendersQuota(t *testing.T) {
	h := newHarness(t, sim.Config{}, nil)
	h.sim.CloseWindow(time.Hour)
	// The send is served, and learns the window is spent.
	if out, err := h.sink.Send(t.Context(), conv(1)); err != nil || out.State != pipeline.StateAccepted {
		t.Fatalf("%+v %v", out, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	_, err := h.sink.LookupSubmission(ctx, "SIM00000001")
	if !errors.Is(err, pipeline.ErrOutOfTime) {
		t.Fatalf("lookup in a spent window: %v, want ErrOutOfTime at once", err)
	}
	if n := len(h.sim.Requests()); n != 1 {
		t.Fatalf("%d requests, want only the send's", n)
	}
}

func TestRead429WithoutRetryAfter(t *testing.T) {
	h := newHarness(t, sim.Config{OmitRetryAfter: true}, nil)
	h.sim.TooManyNext(2, time.Second)
	p, err := h.sink.ListActions(t.Context(), pipeline.ActionQuery{CampaignID: "1000", Start: time.Now().Add(-time.Hour), End: time.Now()}, 1)
	if err != nil || p.Pages != 1 {
		t.Fatalf("%+v %v", p, err)
	}
	if c := h.sim.Counts(); c[429] != 2 || c[200] != 1 {
		t.Fatalf("counts %v: want two 429s retried with backoff, then the answer", c)
	}
}

func TestReadGivesUp(t *testing.T) {
	h := newHarness(t, sim.Config{}, func(c *Config) { c.MaxAttempts = 2 })
	h.sim.FailNext(503, 502)
	_, err := h.sink.LookupSubmission(t.Context(), "SIM1")
	if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") || !strings.Contains(err.Error(), "submission SIM1") {
		t.Fatalf("%v", err)
	}
	if strings.Contains(fmt.Sprint(err), testToken) {
		t.Fatal("the token shows")
	}
}
