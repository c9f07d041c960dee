package sinks

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"convpipe/pipeline"
)

// defaultMaxWait is sink.max_wait's default.
const defaultMaxWait = time.Hour

// TestServerWaitsAreUnbounded: a wait the server asks for (Retry-After,
// the reset of a spent window) is capped at sink.max_wait, and one beyond
// it is logged as a protocol error. A send whose deadline comes before the
// capped wait ends stops at once, without a request.
func TestServerWaitsAreUnbounded(t *testing.T) {
	tenYears := 10 * 365 * 24 * time.Hour
	tests := []struct {
		name    string
		replies func(now time.Time) []reply
		// attempts the first send makes, and its state
		attempts int
		state    pipeline.State
		header   string // logged as a protocol error
	}{
		{"429 Retry-After an HTTP date ten years ahead", func(now time.Time) []reply {
			return []reply{answerWith(429, `{}`, "Retry-After", now.Add(tenYears).UTC().Format(http.TimeFormat))}
		}, 1, pipeline.StateFailed, "Retry-After"},
		{"429 Retry-After ten years in seconds", func(time.Time) []reply {
			return []reply{answerWith(429, `{}`, "Retry-After", "315360000")}
		}, 1, pipeline.StateFailed, "Retry-After"},
		{"503 Retry-After an HTTP date ten years ahead", func(now time.Time) []reply {
			return []reply{answerWith(503, `{}`, "Retry-After", now.Add(tenYears).UTC().Format(http.TimeFormat))}
		}, 1, pipeline.StateFailed, "Retry-After"},
		{"spent window resetting in 2286", func(time.Time) []reply {
			return []reply{answerWith(200, queued, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999")}
		}, 1, pipeline.StateAccepted, "X-RateLimit-Reset"},
		{"spent window resetting in 31 years of seconds", func(time.Time) []reply {
			return []reply{answerWith(200, queued, "X-RateLimit-Remaining-hour", "0", "RateLimit-Reset", "999999999")}
		}, 1, pipeline.StateAccepted, "RateLimit-Reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			s := newScripted(t, testCreds, func(c *Config) { c.Workers = 1 }, tt.replies(before)...)
			// The deadline is well before the capped wait ends.
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			var out pipeline.Outcome
			within(t, 10*time.Second, func() { out, _ = s.sink.Send(ctx, conv(1)) })
			after := time.Now()
			if out.Attempts != tt.attempts || out.State != tt.state {
				t.Fatalf("first send: %+v", out)
			}
			p := s.sink.Pace()
			if p.WaitingUntil.Before(before.Add(defaultMaxWait)) || p.WaitingUntil.After(after.Add(defaultMaxWait)) {
				t.Errorf("waiting until %s, want sink.max_wait (%s) from the answer, between %s and %s", p.WaitingUntil.Format(time.RFC3339),
					defaultMaxWait, before.Add(defaultMaxWait).Format(time.RFC3339), after.Add(defaultMaxWait).Format(time.RFC3339))
			}
			if tt.state == pipeline.StateAccepted {
				// The next conversion cannot go before the deadline.
				within(t, 10*time.Second, func() { out, _ = s.sink.Send(ctx, conv(2)) })
				if out.Attempts != 0 {
					t.Fatalf("second send: %+v", out)
				}
			}
			if len(out.Messages) == 0 || !strings.Contains(out.Messages[0].Text, "no request before the deadline") {
				t.Errorf("messages %+v, want the quota's deadline", out.Messages)
			}
			logs := s.logs.String()
			if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "header="+tt.header) {
				t.Errorf("the wait beyond sink.max_wait was not logged as a warning naming %s:\n%s", tt.header, logs)
			}
		})
	}
}

// TestLoweredHourlyLimitStaysLow: the -hour limit headers lower the rate,
// and a later answer raises it again, never above sink.rate.
func TestLoweredHourlyLimitStaysLow(t *testing.T) {
	s := newScripted(t, testCreds, func(c *Config) { c.Workers, c.Rate, c.Burst = 1, "1000/s", 10 },
		answerWith(200, queued, "X-RateLimit-Limit-hour", "1", "X-RateLimit-Remaining-hour", "0", "X-RateLimit-Reset-hour", "0"),
		answerWith(200, queued, "X-RateLimit-Limit-hour", "7200", "X-RateLimit-Remaining-hour", "7000"),
		answerWith(200, queued, "X-RateLimit-Limit-hour", "36000000", "X-RateLimit-Remaining-hour", "35999000"),
	)
	for i, want := range []float64{1.0 / 3600, 2, 1000} {
		out, err := s.sink.Send(t.Context(), conv(i))
		if err != nil || out.State != pipeline.StateAccepted {
			t.Fatalf("send %d: %+v %v", i, out, err)
		}
		if got := s.sink.Pace().PerSecond; got != want {
			t.Fatalf("after answer %d: %v per second, want %v", i, got, want)
		}
	}
}

// TestQuotaDeadlineWithSendContext: when the rate allows no request before
// the deadline of the context given to Send, Send stops at once, without a
// request, and says so with pipeline.ErrOutOfTime: the run stops as at its
// deadline rather than recording the conversion as failed.
func TestQuotaDeadlineWithSendContext(t *testing.T) {
	s := newScripted(t, testCreds, func(c *Config) { c.Workers, c.Rate, c.Burst = 1, "1/h", 1 }, answerWith(200, queued))
	if out, err := s.sink.Send(t.Context(), conv(1)); err != nil || out.State != pipeline.StateAccepted {
		t.Fatalf("first send: %+v %v", out, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out pipeline.Outcome
	var err error
	within(t, 10*time.Second, func() { out, err = s.sink.Send(ctx, conv(2)) })
	if !errors.Is(err, pipeline.ErrOutOfTime) || out.State != pipeline.StateFailed || out.Attempts != 0 || len(out.Messages) == 0 ||
		out.Messages[0].Text != "stopped before an answer: the quota allows no request before the deadline" {
		t.Fatalf("second send: %+v %v", out, err)
	}
	if n := s.requests(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

// TestMaxWaitBoundsTheWait: with a short sink.max_wait, a server that
// asks twice for ten years is waited on for max_wait each time, logged
// once, and the conversion goes through.
func TestMaxWaitBoundsTheWait(t *testing.T) {
	far := time.Now().Add(10 * 365 * 24 * time.Hour).UTC().Format(http.TimeFormat)
	s := newScripted(t, testCreds, func(c *Config) { c.Workers, c.MaxWait = 1, 20*time.Millisecond },
		answerWith(429, `{}`, "Retry-After", far), answerWith(429, `{}`, "Retry-After", far), answerWith(200, queued))
	var out pipeline.Outcome
	var err error
	within(t, 10*time.Second, func() { out, err = s.sink.Send(t.Context(), conv(1)) })
	if err != nil || out.State != pipeline.StateAccepted || out.Attempts != 3 {
		t.Fatalf("%+v %v", out, err)
	}
	logs := s.logs.String()
	if n := strings.Count(logs, "level=WARN"); n != 1 || !strings.Contains(logs, "header=Retry-After") || !strings.Contains(logs, `value="`+far+`"`) {
		t.Errorf("want one warning naming Retry-After and %q:\n%s", far, logs)
	}
}
