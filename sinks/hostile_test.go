package sinks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"convpipe/pipeline"
)

// reply answers one request of a scripted server; body is the request's.
type reply func(w http.ResponseWriter, r *http.Request, body string)

// scripted is a loopback server that answers its i-th request with the
// i-th reply (the last one again once they are spent), and a sink pointed
// at it.
type scripted struct {
	sink *Impact
	logs *syncBuffer

	mu   sync.Mutex
	reqs int
}

// requests returns how many requests the server received.
func (s *scripted) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs
}

// newScripted starts a scripted server on 127.0.0.1 and a sink with the
// test configuration (fast, changed by change) and creds.
func newScripted(t *testing.T, creds Credentials, change func(*Config), replies ...reply) *scripted {
	t.Helper()
	s := &scripted{logs: &syncBuffer{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		i := min(s.reqs, len(replies)-1)
		s.reqs++
		s.mu.Unlock()
		replies[i](w, r, string(b))
	}))
	t.Cleanup(srv.Close)
	cfg := Config{BaseURL: srv.URL}
	fast(&cfg)
	if change != nil {
		change(&cfg)
	}
	sink, err := NewWithCredentials(cfg, creds, "test", slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sink.Close() })
	s.sink = sink
	return s
}

// answerWith returns a reply of status with a JSON body and headers given
// as name, value pairs.
func answerWith(status int, body string, header ...string) reply {
	return func(w http.ResponseWriter, _ *http.Request, _ string) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

var testCreds = Credentials{AccountSID: "IRTEST", AuthToken: testToken}

const (
	queued       = `{"Status":"QUEUED","QueuedUri":"/Advertisers/IRTEST/APISubmissions/S-1"}`
	dupOrderID   = `{"Status":"ERROR","Message":"Invalid conversion","Errors":[{"Field":"OrderId","Message":"Duplicate OrderId (O-0001): a conversion with this OrderId was already received for this event type"}]}`
	dupItemSku   = `{"Errors":[{"Field":"ItemSku2","Message":"Duplicate ItemSku within order id O-0001"}]}`
	serverFailed = `{"Status":"ERROR","Message":"Internal error"}`
)

// TestDuplicateItemSkuAfter500IsRejected: after a 500 (maybe processed),
// a retry refused for a duplicate ItemSku was not accepted by impact: it
// is a rejection, not this sink's own earlier acceptance.
func TestDuplicateItemSkuAfter500IsRejected(t *testing.T) {
	s := newScripted(t, testCreds, nil, answerWith(500, serverFailed), answerWith(400, dupItemSku))
	out, err := s.sink.Send(t.Context(), conv(1))
	if err != nil || out.State != pipeline.StateRejected || out.Attempts != 2 || !out.MaybeSent || out.HTTPStatus != 400 {
		t.Fatalf("outcome %+v, %v; want rejected after 2 attempts, maybe sent", out, err)
	}
	if len(out.Messages) == 0 || out.Messages[0].Field != "ItemSku2" || strings.Contains(out.Messages[0].Text, "counted as accepted") {
		t.Errorf("messages %+v, want the ItemSku2 error first", out.Messages)
	}
	if n := s.requests(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

// TestDuplicateAfter503CountsAsAccepted: a gateway may answer 503 after
// the backend recorded the order, so a 503 to a request whose body was
// written may have been processed, and the retry's duplicate answer is
// this sink's own acceptance, not a rejection.
func TestDuplicateAfter503CountsAsAccepted(t *testing.T) {
	for _, first := range []int{502, 503, 504} {
		t.Run(http.StatusText(first), func(t *testing.T) {
			s := newScripted(t, testCreds, nil, answerWith(first, serverFailed), answerWith(400, dupOrderID))
			out, err := s.sink.Send(t.Context(), conv(1))
			if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 2 || !out.MaybeSent {
				t.Fatalf("outcome %+v, %v; want accepted after 2 attempts, maybe sent", out, err)
			}
			if len(out.Messages) == 0 || !strings.Contains(out.Messages[0].Text, "counted as accepted") {
				t.Errorf("messages %+v, want the duplicate counted as accepted", out.Messages)
			}
		})
	}
}

// TestSendAnnouncedCallsLeavingOnce: leaving is called once, just before
// the first request (not before a retry); when it fails no request is
// made and its error is returned.
func TestSendAnnouncedCallsLeavingOnce(t *testing.T) {
	s := newScripted(t, testCreds, nil, answerWith(500, serverFailed), answerWith(200, queued))
	calls := 0
	out, err := s.sink.SendAnnounced(t.Context(), conv(1), func() error {
		if s.requests() != 0 {
			t.Errorf("leaving called after %d requests", s.requests())
		}
		calls++
		return nil
	})
	if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 2 || calls != 1 {
		t.Fatalf("outcome %+v, %v, leaving called %d times; want accepted after 2 attempts, leaving once", out, err, calls)
	}
	refused := errors.New("ledger down")
	out, err = s.sink.SendAnnounced(t.Context(), conv(2), func() error { return refused })
	if !errors.Is(err, refused) || out.State != pipeline.StateFailed || out.Attempts != 0 || s.requests() != 2 {
		t.Fatalf("leaving failed: outcome %+v, %v, %d requests; want failed, not sent, the error", out, err, s.requests())
	}
}

// TestDuplicateFromElsewhere: a duplicate OrderId for a conversion that no
// request of ours can have delivered (not MaybeSent, first attempt) is a
// rejection that says impact has the order from elsewhere.
func TestDuplicateFromElsewhere(t *testing.T) {
	s := newScripted(t, testCreds, nil, answerWith(400, dupOrderID))
	out, err := s.sink.Send(t.Context(), conv(1))
	last := len(out.Messages) - 1
	if err != nil || out.State != pipeline.StateRejected || last < 1 || out.Messages[0].Field != "OrderId" ||
		!strings.Contains(out.Messages[last].Text, "from elsewhere") {
		t.Fatalf("outcome %+v, %v; want rejected, from elsewhere", out, err)
	}
}

// TestRetryWaitHoldsNoSlot: a conversion waiting to retry holds none of
// the sink's request slots, so another goes out meanwhile; and however
// many goroutines call Send, at most Workers requests are in flight.
// Before, the backoff slept inside the request slot, and under 10%
// transient faults a run fell to 41% of its rate (make bench, 3b).
func TestRetryWaitHoldsNoSlot(t *testing.T) {
	var mu sync.Mutex
	active, most := 0, 0
	first := true
	s := newScripted(t, testCreds, func(c *Config) {
		c.Workers, c.BackoffInitial, c.BackoffMax, c.MaxElapsed = 1, time.Minute, time.Minute, time.Hour
	},
		func(w http.ResponseWriter, r *http.Request, body string) {
			mu.Lock()
			active++
			most = max(most, active)
			fail := first
			first = false
			mu.Unlock()
			defer func() { mu.Lock(); active--; mu.Unlock() }()
			if fail {
				answerWith(503, serverFailed)(w, r, body)
				return
			}
			answerWith(200, queued)(w, r, body)
		})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	retrying := make(chan pipeline.Outcome, 1)
	go func() {
		out, _ := s.sink.Send(ctx, conv(1)) // 503, then a minute's backoff
		retrying <- out
	}()
	within(t, 10*time.Second, func() {
		for s.requests() == 0 {
			runtime.Gosched()
		}
	})
	var wg sync.WaitGroup
	outs := make([]pipeline.Outcome, 8)
	for i := range outs {
		wg.Go(func() { outs[i], _ = s.sink.Send(t.Context(), conv(2+i)) })
	}
	within(t, 10*time.Second, wg.Wait)
	for i, out := range outs {
		if out.State != pipeline.StateAccepted {
			t.Errorf("conversion %d sent while another waits to retry: %+v", 2+i, out)
		}
	}
	select {
	case out := <-retrying:
		t.Fatalf("the retrying conversion ended early: %+v", out)
	default:
	}
	cancel()
	if out := <-retrying; out.State != pipeline.StateFailed || out.Attempts != 1 {
		t.Errorf("the retrying conversion, stopped in its backoff: %+v", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if most != 1 {
		t.Errorf("%d requests in flight at once, want at most 1 (workers)", most)
	}
}
