package sinks

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"convpipe/pipeline"
)

// classifyCase is an answer of TestClassify and what must hold of its
// verdict.
type classifyCase struct {
	name      string
	a         answer
	state     pipeline.State
	retry     bool
	fatal     bool
	maybeSent bool
	duplicate bool
	gate      time.Duration // from now; 0 none
	text      string        // a fragment of the messages
	field     string        // a field of the messages
	subID     string
}

// classifyCases returns the answers of TestClassify, received at now.
func classifyCases(now time.Time) []classifyCase {
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	return []classifyCase{
		{name: "queued", a: answer{status: 200, body: []byte(`{"Status":"QUEUED","QueuedUri":"/Advertisers/IR1/APISubmissions/A-123"}`)},
			state: pipeline.StateAccepted, subID: "A-123"},
		{name: "200 in XML", a: answer{status: 200, header: hdr("Content-Type", "application/xml"), body: []byte(`<ImpactRadiusResponse><Status>QUEUED</Status></ImpactRadiusResponse>`)},
			state: pipeline.StateFailed, maybeSent: true, text: "does not document"},
		{name: "200 empty", a: answer{status: 200}, state: pipeline.StateFailed, maybeSent: true, text: "empty body"},
		{name: "200 other json", a: answer{status: 200, body: []byte(`{"ok":true}`)}, state: pipeline.StateFailed, maybeSent: true},
		{name: "400 lower envelope", a: answer{status: 400, body: []byte(`{"Status":"ERROR","errors":[{"field":"Margin","level":"ERROR","message":"Invalid numeric format (fifty)"}]}`)},
			state: pipeline.StateRejected, field: "Margin", text: "Invalid numeric format (fifty)"},
		{name: "400 upper envelope", a: answer{status: 400, body: []byte(`{"Status":"ERROR","Message":"Invalid conversion","Errors":[{"Field":"OrderId","Message":"Required"}]}`)},
			state: pipeline.StateRejected, field: "OrderId", text: "Invalid conversion"},
		{name: "400 plain text", a: answer{status: 400, body: []byte(`bad`)}, state: pipeline.StateRejected, text: "HTTP 400"},
		{name: "400 scrubs e-mails", a: answer{status: 400, body: []byte(`{"Status":"ERROR","errors":[{"field":"CustomerId","message":"jane.doe@example.com is an e-mail"}]}`)},
			state: pipeline.StateRejected, text: "[e-mail] is an e-mail"},
		{name: "duplicate as field error", a: answer{status: 400, body: []byte(`{"Status":"ERROR","errors":[{"field":"OrderId","level":"ERROR","message":"Duplicate OrderId (O-1)"}]}`)},
			state: pipeline.StateRejected, duplicate: true},
		{name: "duplicate as reason", a: answer{status: 400, body: []byte(`{"Status":"ERROR","Message":"Conversion rejected","ErrorReason":"CONV_DUPLICATE"}`)},
			state: pipeline.StateRejected, duplicate: true, text: "CONV_DUPLICATE"},
		{name: "duplicate in a message without a field", a: answer{status: 400, body: []byte(`{"Status":"ERROR","Message":"duplicate oid for this action tracker"}`)},
			state: pipeline.StateRejected, text: "duplicate oid"},
		{name: "not a duplicate", a: answer{status: 400, body: []byte(`{"Status":"ERROR","errors":[{"field":"ItemSku2","message":"duplicate sku"}]}`)},
			state: pipeline.StateRejected},
		{name: "401", a: answer{status: 401}, state: pipeline.StateFailed, fatal: true, text: "account SID or the auth token is wrong"},
		{name: "403", a: answer{status: 403}, state: pipeline.StateFailed, fatal: true, text: "scope"},
		{name: "404", a: answer{status: 404}, state: pipeline.StateFailed, text: "configuration error"},
		{name: "405", a: answer{status: 405}, state: pipeline.StateFailed, text: "configuration error"},
		{name: "301", a: answer{status: 301}, state: pipeline.StateFailed, text: "redirect"},
		{name: "429 retry-after seconds", a: answer{status: 429, header: hdr("Retry-After", "7")},
			state: pipeline.StateFailed, retry: true, gate: 7 * time.Second},
		{name: "429 retry-after date", a: answer{status: 429, header: hdr("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat))},
			state: pipeline.StateFailed, retry: true, gate: 90 * time.Second},
		{name: "429 spent window", a: answer{status: 429, header: hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "120")},
			state: pipeline.StateFailed, retry: true, gate: 120 * time.Second},
		{name: "429 bare", a: answer{status: 429}, state: pipeline.StateFailed, retry: true},
		{name: "500", a: answer{status: 500}, state: pipeline.StateFailed, retry: true, maybeSent: true},
		{name: "502", a: answer{status: 502, body: []byte("<html>bad gateway</html>")}, state: pipeline.StateFailed, retry: true, maybeSent: true, text: "bad gateway"},
		{name: "503 retry-after", a: answer{status: 503, header: hdr("Retry-After", "3")}, state: pipeline.StateFailed, retry: true, gate: 3 * time.Second},
		{name: "503 after the body was written", a: answer{status: 503, wrote: true}, state: pipeline.StateFailed, retry: true, maybeSent: true},
		{name: "503 retry-after after the body was written", a: answer{status: 503, wrote: true, header: hdr("Retry-After", "3")},
			state: pipeline.StateFailed, retry: true, maybeSent: true, gate: 3 * time.Second},
		{name: "501 after the body was written", a: answer{status: 501, wrote: true}, state: pipeline.StateFailed, maybeSent: true},
		{name: "501 before the body was written", a: answer{status: 501}, state: pipeline.StateFailed},
		{name: "505 after the body was written", a: answer{status: 505, wrote: true}, state: pipeline.StateFailed, maybeSent: true},
		{name: "504", a: answer{status: 504}, state: pipeline.StateFailed, retry: true, maybeSent: true},
		{name: "408", a: answer{status: 408}, state: pipeline.StateFailed, retry: true, maybeSent: true},
		{name: "refused before sending", a: answer{err: syscall.ECONNREFUSED}, state: pipeline.StateFailed, retry: true, text: "before the request was sent"},
		{name: "reset after sending", a: answer{err: syscall.ECONNRESET, wrote: true}, state: pipeline.StateFailed, retry: true, maybeSent: true, text: "after the request was sent"},
		{name: "timeout after sending", a: answer{err: errors.New("context deadline exceeded"), wrote: true, timedOut: true},
			state: pipeline.StateFailed, retry: true, maybeSent: true, text: "no answer within sink.request_timeout"},
		{name: "body cut", a: answer{status: 200, err: errors.New("unexpected EOF"), wrote: true}, state: pipeline.StateFailed, retry: true, maybeSent: true, text: "reading the HTTP 200 answer"},
		{name: "certificate", a: answer{err: errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")}, state: pipeline.StateFailed},
		{name: "stopped", a: answer{err: errors.New("context canceled"), stopped: true, wrote: true}, state: pipeline.StateFailed, maybeSent: true, text: "stopped before an answer"},
	}
}

func TestClassify(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range classifyCases(now) {
		t.Run(tt.name, func(t *testing.T) {
			v := classify(tt.a, now, policy{maxWait: time.Hour})
			if v.state != tt.state || v.retry != tt.retry || (v.fatal != nil) != tt.fatal || v.maybeSent != tt.maybeSent || v.duplicate != tt.duplicate {
				t.Fatalf("got state %s retry %v fatal %v maybeSent %v duplicate %v; want %s %v %v %v %v",
					v.state, v.retry, v.fatal, v.maybeSent, v.duplicate, tt.state, tt.retry, tt.fatal, tt.maybeSent, tt.duplicate)
			}
			if tt.fatal && !errors.Is(v.fatal, pipeline.ErrFatal) {
				t.Errorf("fatal %v does not wrap ErrFatal", v.fatal)
			}
			var gate time.Duration
			if !v.gate.IsZero() {
				gate = v.gate.Sub(now)
			}
			if gate != tt.gate {
				t.Errorf("gate %s, want %s", gate, tt.gate)
			}
			var all []string
			for _, m := range v.messages {
				all = append(all, m.Field+": "+m.Text)
				if tt.field != "" && m.Field == tt.field {
					tt.field = ""
				}
			}
			if tt.field != "" {
				t.Errorf("no message on field %s: %q", tt.field, all)
			}
			if tt.text != "" && !strings.Contains(strings.Join(all, "\n"), tt.text) {
				t.Errorf("messages %q lack %q", all, tt.text)
			}
			if strings.Contains(strings.Join(all, "\n"), "jane.doe@example.com") {
				t.Errorf("messages keep an e-mail address: %q", all)
			}
			if v.submissionID != tt.subID {
				t.Errorf("submission id %q, want %q", v.submissionID, tt.subID)
			}
			if len(v.messages) == 0 && v.state != pipeline.StateAccepted {
				t.Error("no message")
			}
		})
	}
}

func TestParseLimits(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name             string
		h                map[string]string
		limit, remaining int
		perHour          bool
		reset            time.Duration // from now; -1: none
	}{
		{"none", nil, -1, -1, false, -1},
		{"seconds until", map[string]string{"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "998", "X-RateLimit-Reset": "3599"}, 1000, 998, false, 3599 * time.Second},
		{"unix time", map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1780315260"}, -1, 0, false, 60 * time.Second},
		{"hour headers", map[string]string{"X-RateLimit-Limit-hour": "1000", "X-RateLimit-Remaining-hour": "5", "RateLimit-Reset": "30"}, 1000, 5, true, 30 * time.Second},
		{"fractional seconds", map[string]string{"X-RateLimit-Reset": "1.5"}, -1, -1, false, 1500 * time.Millisecond},
		{"garbage", map[string]string{"X-RateLimit-Remaining": "lots", "X-RateLimit-Reset": "soon"}, -1, -1, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.h {
				h.Set(k, v)
			}
			l, _ := parseLimits(h, now, time.Hour)
			reset := time.Duration(-1)
			if !l.reset.IsZero() {
				reset = l.reset.Sub(now)
			}
			if l.limit != tt.limit || l.remaining != tt.remaining || l.perHour != tt.perHour || reset != tt.reset {
				t.Fatalf("got %+v (reset in %s), want limit %d remaining %d perHour %v reset in %s", l, reset, tt.limit, tt.remaining, tt.perHour, tt.reset)
			}
		})
	}
}

// TestDuplicateDetectionTooLoose: only impact's documented duplicate
// answers mark a refusal as a duplicate OrderId: a duplicate message on the
// OrderId field, or CONV_DUPLICATE as the ErrorReason or ErrorType of the
// JSON answer. Anything else, a duplicate on another field or the text
// CONV_DUPLICATE echoed anywhere else, is a plain rejection.
func TestDuplicateDetectionTooLoose(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		status    int
		body      string
		duplicate bool
	}{
		{"documented duplicate on OrderId", 400, `{"Status":"ERROR","Message":"Invalid conversion","Errors":[{"Field":"OrderId","Message":"Duplicate OrderId (O1): a conversion with this OrderId was already received for this event type"}]}`, true},
		{"duplicate on OrderId, lower-case envelope", 400, `{"Status":"ERROR","errors":[{"field":"orderid","level":"ERROR","message":"duplicate OrderId (O1)"}]}`, true},
		{"CONV_DUPLICATE on OrderId", 400, `{"Status":"ERROR","Errors":[{"Field":"OrderId","Message":"CONV_DUPLICATE"}]}`, true},
		{"CONV_DUPLICATE reason", 400, `{"Status":"ERROR","Message":"Conversion rejected","ErrorType":"Validation","ErrorReason":"CONV_DUPLICATE"}`, true},
		{"CONV_DUPLICATE reason, lower case", 400, `{"Status":"ERROR","Message":"Conversion rejected","errorReason":"conv_duplicate"}`, true},
		{"CONV_DUPLICATE type", 400, `{"Status":"ERROR","Message":"Conversion rejected","ErrorType":"CONV_DUPLICATE"}`, true},
		{"duplicate in a 200 ERROR answer", 200, `{"Status":"ERROR","errors":[{"field":"OrderId","message":"Duplicate OrderId (O1)"}]}`, true},
		{"duplicate ItemSku within the order", 400, `{"Errors":[{"Field":"ItemSku2","Message":"Duplicate ItemSku within order id O1"}]}`, false},
		{"duplicate ItemSku naming the oid", 400, `{"errors":[{"field":"ItemSku2","message":"duplicate sku for oid O1"}]}`, false},
		{"echo of CONV_DUPLICATE in another field", 400, `{"Status":"ERROR","Errors":[{"Field":"Text1","Message":"Invalid value (CONV_DUPLICATE)"}]}`, false},
		{"echo of CONV_DUPLICATE in the message", 400, `{"Status":"ERROR","Message":"Text1: CONV_DUPLICATE is not a number"}`, false},
		{"echo of CONV_DUPLICATE as another key's value", 400, `{"Status":"ERROR","Message":"Invalid conversion","Echo":{"ErrorReason":"CONV_DUPLICATE"}}`, false},
		{"echo of CONV_DUPLICATE in an OrderId value", 400, `{"Status":"ERROR","Errors":[{"Field":"OrderId","Message":"Too long (CONV_DUPLICATE-0123456789-0123456789-0123456789-0123456789-0123456789)"}]}`, false},
		{"echo of a duplicate-looking OrderId value", 400, `{"Status":"ERROR","Errors":[{"Field":"OrderId","Message":"Invalid characters in \"Duplicate order 7\""}]}`, false},
		{"other error on OrderId", 400, `{"Status":"ERROR","Errors":[{"Field":"OrderId","Message":"Required"}]}`, false},
		{"duplicate oid in a message without a field", 400, `{"Status":"ERROR","Message":"duplicate oid for this action tracker"}`, false},
		{"other reason", 400, `{"Status":"ERROR","Message":"Conversion rejected","ErrorType":"Validation","ErrorReason":"CONTRACT_NOT_FOUND"}`, false},
		{"CONV_DUPLICATE in XML", 400, `<ImpactRadiusResponse><Status>ERROR</Status><ErrorReason>CONV_DUPLICATE</ErrorReason></ImpactRadiusResponse>`, false},
		{"CONV_DUPLICATE in plain text", 400, `CONV_DUPLICATE`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := classify(answer{status: tt.status, body: []byte(tt.body), wrote: true}, now, policy{maxWait: time.Hour})
			if v.state != pipeline.StateRejected || v.retry || v.duplicate != tt.duplicate {
				t.Fatalf("got state %s retry %v duplicate %v; want rejected, no retry, duplicate %v (messages %+v)",
					v.state, v.retry, v.duplicate, tt.duplicate, v.messages)
			}
			if len(v.messages) == 0 {
				t.Error("no message")
			}
		})
	}
}

// TestServerWaitsAreCapped: every wait the server asks for is at most
// the policy's maxWait; a longer one is reported as a protocol error
// naming the header and its value.
func TestServerWaitsAreCapped(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	const maxWait = 10 * time.Minute
	far := now.Add(10 * 365 * 24 * time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name     string
		status   int
		h        []string
		gate     time.Duration // from now; 0 none
		reset    time.Duration // from now; 0 none
		limit    int
		overlong []protocolError
	}{
		{"Retry-After within", 429, []string{"Retry-After", "30"}, 30 * time.Second, 0, -1, nil},
		{"Retry-After at max_wait", 429, []string{"Retry-After", "600"}, maxWait, 0, -1, nil},
		{"Retry-After a second beyond, within the slack", 429, []string{"Retry-After", "601"}, maxWait + time.Second, 0, -1, nil},
		{"Retry-After beyond the slack", 429, []string{"Retry-After", "661"}, maxWait, 0, -1, []protocolError{{"Retry-After", "661"}}},
		{"Retry-After an HTTP date ten years ahead", 429, []string{"Retry-After", far}, maxWait, 0, -1, []protocolError{{"Retry-After", far}}},
		{"Retry-After too long for a duration", 429, []string{"Retry-After", "1e30"}, maxWait, 0, -1, []protocolError{{"Retry-After", "1e30"}}},
		{"Retry-After NaN", 429, []string{"Retry-After", "NaN"}, 0, 0, -1, nil},
		{"Retry-After on 503", 503, []string{"Retry-After", "1e9"}, maxWait, 0, -1, []protocolError{{"Retry-After", "1e9"}}},
		{"Retry-After on 500 is not used", 500, []string{"Retry-After", "1e9"}, 0, 0, -1, nil},
		{"429 with a window resetting in 2286", 429, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999"},
			maxWait, maxWait, -1, []protocolError{{"X-RateLimit-Reset", "9999999999"}}},
		{"429 with both too long", 429, []string{"Retry-After", far, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999"},
			maxWait, maxWait, -1, []protocolError{{"X-RateLimit-Reset", "9999999999"}, {"Retry-After", far}}},
		{"spent window resetting in 2286", 200, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "9999999999"},
			0, maxWait, -1, []protocolError{{"X-RateLimit-Reset", "9999999999"}}},
		{"window resetting within", 200, []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "599"}, 0, 599 * time.Second, -1, nil},
		{"one request an hour", 200, []string{"X-RateLimit-Limit-hour", "1"}, 0, 0, 6, []protocolError{{"X-RateLimit-Limit-hour", "1"}}},
		{"six requests an hour", 200, []string{"X-RateLimit-Limit-hour", "6"}, 0, 0, 6, nil},
		{"a limit not per hour", 200, []string{"X-RateLimit-Limit", "1"}, 0, 0, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i < len(tt.h); i += 2 {
				h.Set(tt.h[i], tt.h[i+1])
			}
			body := queued
			if tt.status != 200 {
				body = `{}`
			}
			v := classify(answer{status: tt.status, header: h, body: []byte(body), wrote: true}, now, policy{maxWait: maxWait})
			var gate, reset time.Duration
			if !v.gate.IsZero() {
				gate = v.gate.Sub(now)
			}
			if !v.limits.reset.IsZero() {
				reset = v.limits.reset.Sub(now)
			}
			if gate != tt.gate || reset != tt.reset || v.limits.limit != tt.limit {
				t.Errorf("gate %s, reset %s, limit %d; want %s, %s, %d", gate, reset, v.limits.limit, tt.gate, tt.reset, tt.limit)
			}
			if !slices.Equal(v.overlong, tt.overlong) {
				t.Errorf("protocol errors %+v, want %+v", v.overlong, tt.overlong)
			}
		})
	}
}
