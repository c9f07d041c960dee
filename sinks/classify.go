package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"convpipe/pipeline"
)

// answer is what one attempt got back: a response, or the error that
// stopped it.
type answer struct {
	status int
	header http.Header
	body   []byte
	// err is the transport error, or the error reading the body.
	err error
	// wrote is set when the whole request was written to the connection.
	wrote bool
	// stopped is set when the caller's context ended the attempt.
	stopped bool
	// timedOut is set when the attempt's own timeout ended it.
	timedOut bool
}

// verdict is what an answer means for the conversion.
type verdict struct {
	// state is the conversion's state if no further attempt is made.
	state pipeline.State
	// retry says whether another attempt may succeed.
	retry bool
	// gate, when set, is how long to wait: the server said the account
	// may send nothing before then (Retry-After, a spent window), so the
	// pacer holds every worker until then. When it is zero and retry is
	// set, the wait is the conversion's backoff.
	gate time.Time
	// limits are the rate-limit headers of the answer.
	limits limits
	// maybeSent is set when the request may have been processed without
	// its answer reaching us.
	maybeSent bool
	// duplicate is set when the API refused the OrderId as a duplicate.
	duplicate bool
	// stopped is set when the caller's context ended the attempt.
	stopped bool
	// fatal, when set, must stop the run (wraps pipeline.ErrFatal).
	fatal error
	// messages describe the answer.
	messages []pipeline.Message
	// submissionID and queuedURI come from a QUEUED answer.
	submissionID, queuedURI string
	// overlong are the headers that asked for a wait beyond the policy's
	// maxWait: a protocol error, for the caller to report.
	overlong []protocolError
}

// policy is what classify is told besides the answer.
type policy struct {
	// maxWait bounds every wait the server asks for (sink.max_wait).
	maxWait time.Duration
	// secrets removes the credentials from every text of the answer that
	// the verdict keeps, before it is shortened; nil removes nothing.
	secrets *redactor
}

// scrub is scrub with the credentials removed first, so that no cut
// leaves a part of them.
func (p policy) scrub(s string) string { return scrub(p.secrets.redact(s)) }

// protocolError is a header whose value asked for more than the sink
// allows.
type protocolError struct {
	header, value string
}

// envelope is the API's JSON answer, in both casings: json matches keys
// case-insensitively, preferring the exact ones.
type envelope struct {
	Status      string       `json:"Status"`
	QueuedURI   string       `json:"QueuedUri"`
	Message     string       `json:"Message"`
	ErrorReason string       `json:"ErrorReason"`
	ErrorType   string       `json:"ErrorType"`
	Lower       []fieldError `json:"errors"`
	Upper       []fieldError `json:"Errors"`
}

type fieldError struct {
	Field   string `json:"field"`
	Level   string `json:"level"`
	Message string `json:"message"`
}

// duplicateRe finds the word that says a value is a duplicate, in a
// lower-cased message whose echoed values are removed.
var duplicateRe = regexp.MustCompile(`\b(conv_)?duplicated?\b`)

// echoRe matches what a message quotes of the request: values in
// parentheses or double quotes.
var echoRe = regexp.MustCompile(`\([^)]*\)|"[^"]*"`)

var emailRe = regexp.MustCompile(`[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)

// scrub makes a text from the server safe to keep: e-mail addresses are
// replaced, control characters flattened, the length bounded.
func scrub(s string) string {
	s = emailRe.ReplaceAllString(s, "[e-mail]")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// classify decides, in one place, what every answer means: the
// conversion's state, whether to retry, how long the server asked to
// wait (at most p.maxWait), and whether the run must stop.
func classify(a answer, now time.Time, p policy) verdict {
	var v verdict
	v.limits, v.overlong = parseLimits(a.header, now, p.maxWait)
	if a.stopped || a.err != nil {
		return noAnswer(v, a, p)
	}
	st := a.status
	var env envelope
	jsonOK := json.Unmarshal(a.body, &env) == nil
	switch {
	case st >= 200 && st < 300:
		return success(v, a, env, jsonOK, p)
	case st == http.StatusUnauthorized || st == http.StatusForbidden:
		return refusedCredentials(v, st)
	case st == http.StatusNotFound || st == http.StatusMethodNotAllowed:
		v.state = pipeline.StateFailed
		v.messages = msgs(fmt.Sprintf("HTTP %d %s: a configuration error: check sink.base_url and the account SID", st, http.StatusText(st)))
		return v
	case st == http.StatusTooManyRequests:
		return rateLimited(v, a, now, p)
	case st == http.StatusRequestTimeout:
		v.state, v.retry, v.maybeSent = pipeline.StateFailed, true, true
		v.messages = msgs("HTTP 408: the server timed out reading the request")
		return v
	case st >= 500:
		return serverError(v, a, now, p)
	case st >= 400:
		return rejected(v, st, env, a.body, p)
	default:
		v.state = pipeline.StateFailed
		v.messages = msgs(fmt.Sprintf("HTTP %d %s: unexpected (a redirect?): check sink.base_url", st, http.StatusText(st)))
		return v
	}
}

// noAnswer builds the verdict of an attempt that got no whole answer: the
// caller stopped it, or a transport error ended it (retried unless no
// retry can fix it).
func noAnswer(v verdict, a answer, p policy) verdict {
	if a.stopped {
		v.state, v.stopped, v.maybeSent = pipeline.StateFailed, true, a.wrote
		v.messages = msgs("stopped before an answer")
		return v
	}
	v.state, v.retry = pipeline.StateFailed, true
	v.maybeSent = a.wrote
	v.messages = msgs(p.secrets.redact(describeErr(a)))
	if isPermanentTransport(a.err) {
		v.retry = false
	}
	return v
}

// success builds the verdict of a 2xx answer: accepted when it says
// QUEUED, rejected when it says ERROR, and otherwise failed but maybe sent.
func success(v verdict, a answer, env envelope, jsonOK bool, p policy) verdict {
	if jsonOK && strings.EqualFold(env.Status, "QUEUED") {
		v.state = pipeline.StateAccepted
		v.queuedURI = p.secrets.redact(env.QueuedURI)
		v.submissionID = lastSegment(v.queuedURI)
		return v
	}
	if jsonOK && strings.EqualFold(env.Status, "ERROR") {
		return rejected(v, a.status, env, a.body, p)
	}
	// The API may have taken it: not a success, but maybe sent.
	v.state, v.maybeSent = pipeline.StateFailed, true
	v.messages = msgs(fmt.Sprintf("HTTP %d with an answer the API does not document (%s): not counted as accepted; was Accept: application/json honoured?",
		a.status, p.excerpt(a.header, a.body)))
	return v
}

// refusedCredentials builds the verdict of a 401 or 403 answer: fatal, as
// every further request would be refused too.
func refusedCredentials(v verdict, status int) verdict {
	v.state = pipeline.StateFailed
	if status == http.StatusUnauthorized {
		v.fatal = fmt.Errorf("impact: 401 unauthorized: the account SID or the auth token is wrong (check %s and %s): %w",
			EnvAccountSID, EnvAuthToken, pipeline.ErrFatal)
	} else {
		v.fatal = fmt.Errorf("impact: 403 forbidden: the auth token is valid but not allowed to create conversions for this account (check the token's scope, and that %s is the token's account): %w",
			EnvAccountSID, pipeline.ErrFatal)
	}
	v.messages = msgs(v.fatal.Error())
	return v
}

// rateLimited builds the verdict of a 429 answer: retried, with the gate
// at the Retry-After or at the window's reset, whichever is later.
func rateLimited(v verdict, a answer, now time.Time, p policy) verdict {
	v.state, v.retry = pipeline.StateFailed, true
	until := ""
	if ra, ok := v.retryAfter(a.header, now, p.maxWait); ok {
		v.gate = now.Add(ra)
		until = fmt.Sprintf(", Retry-After %s", ra)
	}
	v.messages = msgs("HTTP 429: rate limited" + until)
	if v.limits.remaining == 0 && v.limits.reset.After(v.gate) {
		v.gate = v.limits.reset
	}
	return v
}

// serverError builds the verdict of a 5xx answer: retried unless the
// server cannot do what is asked, and maybe sent when the request was
// written or the status does not say it was refused before recording.
func serverError(v verdict, a answer, now time.Time, p policy) verdict {
	st := a.status
	v.state, v.retry = pipeline.StateFailed, true
	// Any 5xx may come after the API recorded the conversion: a gateway
	// answers 503 or 504 when the backend was slow to confirm what it
	// stored. Only without the whole request written can 503 and 501 be
	// taken as refused before recording.
	v.maybeSent = a.wrote || (st != http.StatusServiceUnavailable && st != http.StatusNotImplemented)
	if st == http.StatusNotImplemented || st == http.StatusHTTPVersionNotSupported {
		v.retry = false
	}
	v.messages = msgs(fmt.Sprintf("HTTP %d %s (%s)", st, http.StatusText(st), p.excerpt(a.header, a.body)))
	if st == http.StatusServiceUnavailable {
		if ra, ok := v.retryAfter(a.header, now, p.maxWait); ok {
			v.gate = now.Add(ra)
		}
	}
	return v
}

// waitSlack is how far a wait the server asks for may exceed maxWait
// before it is capped and reported: a reset rounded up to whole seconds,
// or counted from a clock a little ahead, of a window as long as maxWait
// (impact's hour) is no protocol error.
const waitSlack = time.Minute

// retryAfter reads the answer's Retry-After, capped at maxWait: one longer
// than maxWait+waitSlack is noted as a protocol error.
func (v *verdict) retryAfter(h http.Header, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	raw := h.Get("Retry-After")
	d, ok := parseRetryAfter(raw, now)
	if ok && d > maxWait+waitSlack {
		v.overlong = append(v.overlong, protocolError{"Retry-After", raw})
		d = maxWait
	}
	return d, ok
}

// rejected builds the verdict of an ERROR answer: the API refused the
// conversion; it is not retried. It is a duplicate only when the API says
// so as it documents: a duplicate error on the OrderId field, or
// CONV_DUPLICATE as the answer's ErrorReason or ErrorType.
func rejected(v verdict, status int, env envelope, body []byte, p policy) verdict {
	v.state = pipeline.StateRejected
	for _, e := range append(env.Lower, env.Upper...) {
		v.messages = append(v.messages, pipeline.Message{Field: p.scrub(e.Field), Text: p.scrub(e.Message)})
		if isDuplicateOrderID(e) {
			v.duplicate = true
		}
	}
	if env.Message != "" || env.ErrorReason != "" {
		text := env.Message
		if env.ErrorReason != "" {
			text = strings.TrimSpace(text + " (" + env.ErrorReason + ")")
		}
		v.messages = append(v.messages, pipeline.Message{Text: p.scrub(text)})
	}
	if isDuplicateReason(env.ErrorReason) || isDuplicateReason(env.ErrorType) {
		v.duplicate = true
	}
	if len(v.messages) == 0 {
		v.messages = msgs(fmt.Sprintf("HTTP %d %s (%s)", status, http.StatusText(status), p.excerpt(nil, body)))
	}
	return v
}

// isDuplicateOrderID reports whether a field error is the API's answer to
// a duplicate OrderId: on the OrderId field, a message that says
// duplicate (or CONV_DUPLICATE) outside the values it echoes.
func isDuplicateOrderID(e fieldError) bool {
	if !strings.EqualFold(strings.TrimSpace(e.Field), "OrderId") {
		return false
	}
	m := echoRe.ReplaceAllString(strings.ToLower(e.Message), " ")
	return duplicateRe.MatchString(m)
}

// isDuplicateReason reports whether an ErrorReason or ErrorType value is
// CONV_DUPLICATE.
func isDuplicateReason(s string) bool {
	return strings.EqualFold(strings.TrimSpace(s), "CONV_DUPLICATE")
}

func msgs(text string) []pipeline.Message { return []pipeline.Message{{Text: text}} }

func lastSegment(uri string) string {
	uri = strings.TrimRight(uri, "/")
	if i := strings.LastIndexByte(uri, '/'); i >= 0 {
		return uri[i+1:]
	}
	return uri
}

// excerpt describes an answer's body briefly.
func (p policy) excerpt(h http.Header, body []byte) string {
	ct := ""
	if h != nil {
		ct = p.scrub(h.Get("Content-Type"))
	}
	s := p.scrub(string(body))
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	switch {
	case s == "" && ct == "":
		return "empty body"
	case s == "":
		return "empty " + ct + " body"
	case ct != "":
		return ct + ": " + s
	}
	return s
}

// describeErr describes a transport error without the request's URL.
func describeErr(a answer) string {
	err := a.err
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var where string
	switch {
	case a.status != 0:
		where = fmt.Sprintf("reading the HTTP %d answer", a.status)
	case a.wrote:
		where = "after the request was sent"
	default:
		where = "before the request was sent"
	}
	if a.timedOut {
		return fmt.Sprintf("no answer within sink.request_timeout (%s)", where)
	}
	return fmt.Sprintf("network error %s: %v", where, err)
}

// isPermanentTransport reports transport errors that no retry can fix:
// certificate problems and malformed requests.
func isPermanentTransport(err error) bool {
	s := err.Error()
	switch {
	case strings.Contains(s, "x509:"), strings.Contains(s, "tls: failed to verify"):
		return true
	case errors.Is(err, context.Canceled):
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return true
	}
	return false
}

// limits are the rate-limit headers of one answer.
type limits struct {
	// limit and remaining are -1 when not sent.
	limit, remaining int
	// perHour is set when limit is per hour (the -hour headers).
	perHour bool
	// reset is when the window resets; zero when not sent.
	reset time.Time
}

// parseLimits reads X-RateLimit-Limit/Remaining/Reset, their -hour forms
// and RateLimit-Reset. Reset is read as seconds until the reset, or as a
// Unix time when it is that large. A reset later than maxWait from now,
// or an hourly limit that spaces requests further apart than maxWait, is
// a protocol error: it is returned, and maxWait is used instead.
func parseLimits(h http.Header, now time.Time, maxWait time.Duration) (limits, []protocolError) {
	l := limits{limit: -1, remaining: -1}
	if h == nil {
		return l, nil
	}
	var overlong []protocolError
	num := func(names ...string) (int, string) {
		for _, n := range names {
			if v := strings.TrimSpace(h.Get(n)); v != "" {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < math.MaxInt32 {
					return int(f), n
				}
			}
		}
		return -1, ""
	}
	var name string
	l.limit, name = num("X-RateLimit-Limit", "X-RateLimit-Limit-hour", "RateLimit-Limit")
	l.perHour = strings.HasSuffix(name, "-hour")
	if l.perHour && l.limit > 0 && time.Hour/time.Duration(l.limit) > maxWait {
		overlong = append(overlong, protocolError{name, h.Get(name)})
		l.limit = int(math.Ceil(time.Hour.Seconds() / maxWait.Seconds()))
	}
	l.remaining, _ = num("X-RateLimit-Remaining", "X-RateLimit-Remaining-hour", "RateLimit-Remaining")
	for _, n := range []string{"X-RateLimit-Reset", "X-RateLimit-Reset-hour", "RateLimit-Reset"} {
		if t, ok := parseReset(h.Get(n), now); ok {
			if t.Sub(now) > maxWait+waitSlack {
				overlong = append(overlong, protocolError{n, h.Get(n)})
				t = now.Add(maxWait)
			}
			l.reset = t
			break
		}
	}
	return l, overlong
}

// unixThreshold separates "seconds until" from "Unix time" in reset
// headers: no window is longer than ten years, no clock is before 2001.
const unixThreshold = 1e9

func parseReset(s string, now time.Time) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return time.Time{}, false
	}
	if f >= unixThreshold {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), true
	}
	return now.Add(time.Duration(f * float64(time.Second))), true
}

// parseRetryAfter reads Retry-After as seconds or as an HTTP date. A
// wait too long for a time.Duration is the longest one.
func parseRetryAfter(s string, now time.Time) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f < 0 || math.IsNaN(f) {
			return 0, false
		}
		if f >= float64(math.MaxInt64/time.Second) {
			return math.MaxInt64, true
		}
		return time.Duration(f * float64(time.Second)), true
	}
	if t, err := http.ParseTime(s); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// readVerdict is what the answer to a read (a listing of actions, a
// submission lookup) means.
type readVerdict struct {
	// ok: a 2xx answer; body is its body.
	ok   bool
	body []byte
	// notFound: a 404 (for a submission: unknown, or no longer kept).
	notFound bool
	// retry says whether another attempt may succeed; gate, limits and
	// overlong are as in verdict.
	retry    bool
	gate     time.Time
	limits   limits
	overlong []protocolError
	// fatal, when set, must stop the run (wraps pipeline.ErrFatal).
	fatal error
	// err describes a failed attempt (a *QueryError for a refused query).
	err error
}

// classifyRead decides what the answer to a GET means. What a status
// says of the account and the transport (credentials, rate limits, 5xx,
// network errors) is classify's verdict, so that reads and sends agree;
// reads add their own meaning of 2xx, 400, 403 and 404. A read changes
// nothing, so every 5xx and transport error may be retried. what names
// the request in errors.
func classifyRead(a answer, now time.Time, p policy, what string) readVerdict {
	v := classify(a, now, p)
	rv := readVerdict{limits: v.limits, overlong: v.overlong, gate: v.gate}
	text := func() string {
		if len(v.messages) == 0 {
			return fmt.Sprintf("HTTP %d", a.status)
		}
		return v.messages[0].Text
	}
	st := a.status
	switch {
	case a.stopped:
		rv.err = fmt.Errorf("impact: %s: stopped before an answer", what)
	case a.err != nil:
		rv.retry = v.retry
		rv.err = fmt.Errorf("impact: %s: %s", what, text())
	case st >= 200 && st < 300:
		rv.ok, rv.body = true, a.body
	case st == http.StatusUnauthorized:
		rv.fatal = v.fatal
	case st == http.StatusForbidden:
		// Not latched: a token scoped to conversions may still send.
		rv.err = fmt.Errorf("impact: %s: 403 forbidden: the auth token is not allowed to read this (a scoped token needs read access to Actions and APISubmissions): %w", what, pipeline.ErrFatal)
	case st == http.StatusNotFound:
		rv.notFound = true
	case st == http.StatusTooManyRequests || st == http.StatusRequestTimeout || st >= 500:
		rv.retry = st != http.StatusNotImplemented && st != http.StatusHTTPVersionNotSupported
		rv.err = fmt.Errorf("impact: %s: %s", what, text())
	case st >= 400:
		rv.err = &QueryError{What: what, Status: st, Message: readMessage(a.body, p)}
	default:
		rv.err = fmt.Errorf("impact: %s: HTTP %d %s: unexpected (a redirect?): check sink.base_url", what, st, http.StatusText(st))
	}
	return rv
}

// readMessage is the message of a refused read, in either envelope.
func readMessage(body []byte, p policy) string {
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		return p.excerpt(nil, body)
	}
	parts := []string{}
	if env.Message != "" {
		parts = append(parts, p.scrub(env.Message))
	}
	for _, e := range append(env.Lower, env.Upper...) {
		parts = append(parts, p.scrub(strings.TrimSpace(e.Field+": "+e.Message)))
	}
	if len(parts) == 0 {
		return p.excerpt(nil, body)
	}
	return strings.Join(parts, "; ")
}
