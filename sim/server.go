package sim

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Status values recorded for requests that got no HTTP answer.
const (
	// StatusInFlight: the request is being handled.
	StatusInFlight = -1
	// StatusDropped: the server closed the connection without answering.
	StatusDropped = 0
	// StatusClientGone: the client went away before the answer.
	StatusClientGone = 499
)

// maxBody is the largest request body the simulator reads.
const maxBody = 1 << 20

// Request is one request the server saw.
type Request struct {
	// Time is when the request arrived.
	Time   time.Time
	Method string
	Path   string
	// Query is the request's raw query.
	Query string
	// Status is the answer's status (recorded before the answer is
	// written), StatusInFlight, StatusDropped or StatusClientGone.
	Status int
	// Recorded is true when the request's conversion was recorded (also
	// when its connection was dropped afterwards).
	Recorded bool
	// OrderID is the conversion's OrderId, once its body was parsed and
	// validated (empty for other requests).
	OrderID string
}

// Received is one conversion the server accepted.
type Received struct {
	// Time is when it was recorded.
	Time time.Time
	// EventType is the EventTypeId (or ActionTrackerId) or EventTypeCode.
	EventType string
	OrderID   string
	// Values are the conversion's fields.
	Values url.Values
	// Body is the request body as it arrived.
	Body string
	// SubmissionID is the id in the QueuedUri.
	SubmissionID string
	// Header holds the request's headers, Authorization removed.
	Header http.Header
}

// Server is the simulated API. Its methods are safe for concurrent use,
// also while it serves.
type Server struct {
	cfg Config

	mu     sync.Mutex
	rnd    *rand.Rand
	faults Faults
	// Scripted faults for the next requests.
	dropBefore, dropAfter int
	slowNext              int
	slowNextFor           time.Duration
	errNext               []int
	tooMany               int
	tooManyFor            time.Duration
	// Quota.
	winIdx      int64
	used        int
	closedUntil time.Time
	closingOne  bool
	// Records.
	seen     map[string]time.Time
	accepted []Received
	dups     int
	subs     map[string]*submission
	nsub     int
	actions  []*action
	nact     int
	mods     []Modification
	requests []Request
	// batch holds the batch files taken from a drop (sim/batch.go).
	batch      *batches
	batchOnce  sync.Once
	refuseNext string
	// offset is how far Advance moved the simulated clock.
	offset atomic.Int64

	conns atomic.Int64

	srv  *http.Server
	ln   net.Listener
	url  string
	done chan struct{}
}

// New returns a server with the given configuration; Start starts it.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	return &Server{
		cfg:    cfg,
		rnd:    rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		faults: cfg.Faults,
		seen:   map[string]time.Time{},
		subs:   map[string]*submission{},
		done:   make(chan struct{}),
	}
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves in the
// background. It returns the base URL, such as "http://127.0.0.1:8089".
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("sim: listen %s: %w", addr, err)
	}
	s.ln = ln
	s.url = "http://" + ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		},
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s.url, nil
}

// URL returns the base URL once the server is started.
func (s *Server) URL() string { return s.url }

// Close stops the server and closes every connection.
func (s *Server) Close() error {
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.done
	return err
}

// TB is the part of testing.TB that NewTestServer uses.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// NewTestServer starts a server on a free loopback port and closes it when
// the test ends.
func NewTestServer(t TB, cfg Config) *Server {
	t.Helper()
	s := New(cfg)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// AccountSID returns the account the server serves.
func (s *Server) AccountSID() string { return s.cfg.AccountSID }

// SetFaults replaces the random faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// DropNext closes the connections of the next n requests without an
// answer: before the conversion is handled, or after it was recorded when
// afterRecording is set (an ambiguous send).
func (s *Server) DropNext(n int, afterRecording bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if afterRecording {
		s.dropAfter += n
	} else {
		s.dropBefore += n
	}
}

// SlowNext delays the body of the next n accepted answers by d, after the
// conversion was recorded and the status line was sent.
func (s *Server) SlowNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slowNext, s.slowNextFor = n, d
}

// FailNext answers the next requests with the given statuses (5xx), one
// each, in order.
func (s *Server) FailNext(statuses ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errNext = append(s.errNext, statuses...)
}

// TooManyNext answers the next n requests 429 with Retry-After d (rounded
// up to whole seconds) and no other rate-limit headers.
func (s *Server) TooManyNext(n int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tooMany, s.tooManyFor = n, d
}

// CloseWindow closes the quota window for d: the next request is still
// served, and its answer says Remaining 0 with the reset d from now; the
// requests after it get 429 until then.
func (s *Server) CloseWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closedUntil = time.Now().Add(d)
	s.closingOne = true
}

// Accepted returns the conversions recorded, in order.
func (s *Server) Accepted() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Received, len(s.accepted))
	copy(out, s.accepted)
	return out
}

// Duplicates returns how many conversions were refused or flagged as
// duplicates.
func (s *Server) Duplicates() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dups
}

// Requests returns every request seen, in the order of arrival.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	copy(out, s.requests)
	return out
}

// Counts returns the number of requests by status (StatusInFlight for
// those being handled).
func (s *Server) Counts() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[int]int{}
	for _, r := range s.requests {
		m[r.Status]++
	}
	return m
}

// Connections returns the number of connections opened so far.
func (s *Server) Connections() int { return int(s.conns.Load()) }

// PerBucket returns the number of conversion requests (POST) that arrived
// in each interval of length d, keyed by the interval's start. Intervals
// are aligned to multiples of d in Unix time, as quota windows are.
func (s *Server) PerBucket(d time.Duration) map[time.Time]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[time.Time]int{}
	for _, r := range s.requests {
		if r.Method == http.MethodPost {
			m[time.Unix(0, r.Time.UnixNano()/int64(d)*int64(d))]++
		}
	}
	return m
}

// plan is the faults drawn for one request.
type plan struct {
	latency    time.Duration
	dropBefore bool
	dropAfter  bool
	slow       time.Duration
	status     int // injected 5xx
	tooMany    time.Duration
}

func (s *Server) draw() plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	var p plan
	p.latency = f.Latency
	if f.LatencyJitter > 0 {
		p.latency += time.Duration((s.rnd.Float64()*2 - 1) * float64(f.LatencyJitter))
	}
	if f.SpikeRate > 0 && s.rnd.Float64() < f.SpikeRate {
		p.latency += f.Spike
	}
	switch {
	case s.tooMany > 0:
		s.tooMany--
		p.tooMany = s.tooManyFor
	case f.TooManyRate > 0 && s.rnd.Float64() < f.TooManyRate:
		s.tooMany = max(f.TooManyBurst-1, 0)
		s.tooManyFor = f.RetryAfter
		p.tooMany = f.RetryAfter
	}
	switch {
	case s.dropBefore > 0:
		s.dropBefore--
		p.dropBefore = true
	case f.DropRate > 0 && s.rnd.Float64() < f.DropRate:
		p.dropBefore = true
	}
	switch {
	case len(s.errNext) > 0:
		p.status, s.errNext = s.errNext[0], s.errNext[1:]
	case f.ErrorRate > 0 && s.rnd.Float64() < f.ErrorRate:
		p.status = []int{500, 502, 503, 504}[s.rnd.IntN(4)]
	}
	switch {
	case s.dropAfter > 0:
		s.dropAfter--
		p.dropAfter = true
	case f.DropAfterRate > 0 && s.rnd.Float64() < f.DropAfterRate:
		p.dropAfter = true
	}
	switch {
	case s.slowNext > 0:
		s.slowNext--
		p.slow = s.slowNextFor
	case f.SlowBodyRate > 0 && s.rnd.Float64() < f.SlowBodyRate:
		p.slow = f.SlowBody
	}
	return p
}

// exchange is one request being handled.
type exchange struct {
	w http.ResponseWriter
	r *http.Request
	// idx is the request's index in Server.requests.
	idx int
	// json is whether the client accepts JSON answers.
	json bool
	// body is the request body, read first so that the server notices
	// a client that goes away; bodyErr is the error reading it.
	body    []byte
	bodyErr error
}

// ServeHTTP handles one request of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ex := s.begin(w, r)
	defer s.end(ex)
	ex.body, ex.bodyErr = io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	p := s.draw()
	if s.delayOrDrop(ex, p) || s.refuseCredentials(ex) {
		return
	}
	handle := s.route(ex)
	if handle == nil || s.refuseRate(ex, p) {
		return
	}
	if p.status != 0 {
		s.fail(ex, p.status, http.StatusText(p.status), nil)
		return
	}
	handle(ex, p)
}

// begin records the arrival of a request and returns its exchange.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) *exchange {
	ex := &exchange{w: w, r: r, json: acceptsJSON(r.Header.Get("Accept"))}
	s.mu.Lock()
	defer s.mu.Unlock()
	ex.idx = len(s.requests)
	s.requests = append(s.requests, Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Status: StatusInFlight})
	return ex
}

// end records a request that got no status as dropped, and logs it.
func (s *Server) end(ex *exchange) {
	s.mu.Lock()
	rec := &s.requests[ex.idx]
	if rec.Status == StatusInFlight {
		rec.Status = StatusDropped
	}
	st := rec.Status
	s.mu.Unlock()
	s.cfg.Logger.Debug("sim request", "method", ex.r.Method, "path", ex.r.URL.Path, "status", st)
}

// delayOrDrop injects the faults that come before the request is looked
// at: latency and a dropped connection. It reports whether the request
// ended.
func (s *Server) delayOrDrop(ex *exchange, p plan) bool {
	if p.latency > 0 && !sleep(ex.r.Context(), p.latency) {
		s.status(ex, StatusClientGone)
		return true
	}
	if p.dropBefore {
		s.status(ex, StatusDropped)
		hangUp(ex.w)
		return true
	}
	return false
}

// refuseCredentials answers 401 or 403 unless the request has the
// account's credentials with a token of the right scope. It reports
// whether it answered.
func (s *Server) refuseCredentials(ex *exchange) bool {
	user, pass, ok := ex.r.BasicAuth()
	switch {
	case !ok || user != s.cfg.AccountSID || (pass != s.cfg.AuthToken && (s.cfg.ScopelessToken == "" || pass != s.cfg.ScopelessToken)):
		ex.w.Header().Set("WWW-Authenticate", `Basic realm="impact"`)
		s.fail(ex, http.StatusUnauthorized, "Unauthorized: invalid credentials", nil)
		return true
	case pass == s.cfg.ScopelessToken:
		s.fail(ex, http.StatusForbidden, "Forbidden: the token is not allowed to access this resource", nil)
		return true
	}
	return false
}

// route returns the handler of the request's path and method. When there
// is none, it answers 404, 403 or 405 and returns nil.
func (s *Server) route(ex *exchange) func(*exchange, plan) {
	parts := strings.Split(strings.Trim(ex.r.URL.Path, "/"), "/")
	if len(parts) < 3 || parts[0] != "Advertisers" {
		s.fail(ex, http.StatusNotFound, "Not found", nil)
		return nil
	}
	if parts[1] != s.cfg.AccountSID {
		s.fail(ex, http.StatusForbidden, "Forbidden: the credentials do not belong to this account", nil)
		return nil
	}
	var handle func(*exchange, plan)
	var method string
	switch {
	case len(parts) == 3 && parts[2] == "Conversions":
		handle, method = s.conversion, http.MethodPost
	case len(parts) == 4 && parts[2] == "APISubmissions":
		handle, method = s.submission, http.MethodGet
	case len(parts) == 3 && parts[2] == "Actions":
		// GET lists, PUT modifies, DELETE reverses (modify.go).
		handle, method = s.actionsResource, ex.r.Method
	case len(parts) >= 3 && len(parts) <= 5 && parts[2] == "FTPFileSubmissions":
		handle, method = s.ftpSubmissions, http.MethodGet
	default:
		s.fail(ex, http.StatusNotFound, "Not found", nil)
		return nil
	}
	if ex.r.Method != method {
		ex.w.Header().Set("Allow", method)
		s.fail(ex, http.StatusMethodNotAllowed, "Method not allowed", nil)
		return nil
	}
	return handle
}

// refuseRate answers 429 for an injected burst or when the quota is spent,
// and sets the rate-limit headers otherwise. It reports whether it
// answered.
func (s *Server) refuseRate(ex *exchange, p plan) bool {
	w := ex.w
	if p.tooMany > 0 {
		if !s.cfg.OmitRetryAfter {
			w.Header().Set("Retry-After", strconv.FormatInt(ceilSeconds(p.tooMany), 10))
		}
		s.fail(ex, http.StatusTooManyRequests, "Too many requests", nil)
		return true
	}
	now := time.Now()
	limited, remaining, reset, has := s.takeQuota(now)
	if has {
		s.rateHeaders(w.Header(), remaining, reset, now)
	}
	if limited {
		if !s.cfg.OmitRetryAfter {
			w.Header().Set("Retry-After", strconv.FormatInt(max(ceilSeconds(reset.Sub(now)), 1), 10))
		}
		s.fail(ex, http.StatusTooManyRequests, "Rate limit exceeded", nil)
		return true
	}
	return false
}

// takeQuota counts one request against the quota and returns whether it is
// refused, what remains and when the window resets; has is false when
// there is no quota to report.
func (s *Server) takeQuota(now time.Time) (limited bool, remaining int, reset time.Time, has bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(s.closedUntil) {
		if s.closingOne {
			s.closingOne = false
			return false, 0, s.closedUntil, true
		}
		return true, 0, s.closedUntil, true
	}
	if s.cfg.Quota <= 0 {
		return false, 0, time.Time{}, false
	}
	w := int64(s.cfg.Window)
	idx := now.UnixNano() / w
	if idx != s.winIdx {
		s.winIdx, s.used = idx, 0
	}
	reset = time.Unix(0, (idx+1)*w)
	if s.used >= s.cfg.Quota {
		return true, 0, reset, true
	}
	s.used++
	return false, s.cfg.Quota - s.used, reset, true
}

func (s *Server) rateHeaders(h http.Header, remaining int, reset, now time.Time) {
	until := strconv.FormatInt(max(ceilSeconds(reset.Sub(now)), 0), 10)
	switch s.cfg.Headers {
	case HeadersHour:
		if s.cfg.Quota > 0 {
			h.Set("X-RateLimit-Limit-hour", strconv.Itoa(s.cfg.Quota))
		}
		h.Set("X-RateLimit-Remaining-hour", strconv.Itoa(remaining))
		h.Set("RateLimit-Reset", until)
	default:
		if s.cfg.Quota > 0 {
			h.Set("X-RateLimit-Limit", strconv.Itoa(s.cfg.Quota))
		}
		h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		if s.cfg.ResetFormat == ResetUnix {
			ns := reset.UnixNano()
			h.Set("X-RateLimit-Reset", strconv.FormatInt((ns+int64(time.Second)-1)/int64(time.Second), 10))
		} else {
			h.Set("X-RateLimit-Reset", until)
		}
	}
}

// conversion handles POST /Advertisers/{SID}/Conversions once the request
// is authenticated and counted.
func (s *Server) conversion(ex *exchange, p plan) {
	values, ok := s.readConversion(ex)
	if !ok {
		return
	}
	sub := s.record(ex, values)
	if sub == nil {
		return
	}
	s.queued(ex, p, sub)
}

// readConversion parses and validates the conversion in the request body.
// When it cannot, it answers (400 or 415) and returns ok false.
func (s *Server) readConversion(ex *exchange) (url.Values, bool) {
	if ex.bodyErr != nil {
		if ex.r.Context().Err() != nil {
			s.status(ex, StatusClientGone)
			return nil, false
		}
		msg := "Invalid request body"
		var tooBig *http.MaxBytesError
		if errors.As(ex.bodyErr, &tooBig) {
			msg = fmt.Sprintf("Request body too large: more than %d bytes", tooBig.Limit)
		}
		s.fail(ex, http.StatusBadRequest, msg, nil)
		return nil, false
	}
	values, err := parseBody(ex.r.Header.Get("Content-Type"), ex.body)
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errMediaType) {
			status = http.StatusUnsupportedMediaType
		}
		s.fail(ex, status, err.Error(), nil)
		return nil, false
	}
	if errs := validate(values); len(errs) > 0 {
		s.fail(ex, http.StatusBadRequest, "Invalid conversion", errs)
		return nil, false
	}
	return values, true
}

// record deduplicates a valid conversion, records it when it is new, and
// returns its submission. A duplicate is refused (answered, nil returned)
// unless the server queues duplicates, as failed submissions.
func (s *Server) record(ex *exchange, values url.Values) *submission {
	_, orderID := eventKey(values)
	header := ex.r.Header.Clone()
	header.Del("Authorization")
	s.mu.Lock()
	s.requests[ex.idx].OrderID = orderID
	sub, _ := s.store(values, string(ex.body), header)
	if sub == nil {
		s.mu.Unlock()
		s.duplicate(ex, orderID)
		return nil
	}
	s.requests[ex.idx].Recorded = true
	s.mu.Unlock()
	return sub
}

// queued answers a recorded conversion QUEUED with its submission's URI,
// unless the plan drops the connection or slows the body.
func (s *Server) queued(ex *exchange, p plan, sub *submission) {
	if p.dropAfter {
		s.status(ex, StatusDropped)
		hangUp(ex.w)
		return
	}
	uri := s.queuedURI(sub)
	if !ex.json {
		s.xml(ex, http.StatusOK, xmlAnswer{Status: "QUEUED", QueuedURI: uri})
		return
	}
	b, _ := json.Marshal(struct {
		Status    string `json:"Status"`
		QueuedURI string `json:"QueuedUri"`
	}{"QUEUED", uri})
	ex.w.Header().Set("Content-Type", "application/json")
	if p.slow > 0 {
		s.writeSlowly(ex, b, p.slow)
		return
	}
	s.status(ex, http.StatusOK)
	ex.w.WriteHeader(http.StatusOK)
	_, _ = ex.w.Write(b)
}

// writeSlowly answers 200 with b, its second half sent after d.
func (s *Server) writeSlowly(ex *exchange, b []byte, d time.Duration) {
	s.status(ex, http.StatusOK)
	ex.w.WriteHeader(http.StatusOK)
	half := len(b) / 2
	_, _ = ex.w.Write(b[:half])
	if f, ok := ex.w.(http.Flusher); ok {
		f.Flush()
	}
	if !sleep(ex.r.Context(), d) {
		s.status(ex, StatusClientGone)
		return
	}
	_, _ = ex.w.Write(b[half:])
}

// duplicate answers a duplicate OrderId as an error, in the configured
// form.
func (s *Server) duplicate(ex *exchange, orderID string) {
	if s.cfg.Duplicates == DuplicateReason {
		b, _ := json.Marshal(map[string]string{
			"Status":      "ERROR",
			"Message":     "Conversion rejected",
			"ErrorType":   "Validation",
			"ErrorReason": "CONV_DUPLICATE",
		})
		s.status(ex, http.StatusBadRequest)
		ex.w.Header().Set("Content-Type", "application/json")
		ex.w.WriteHeader(http.StatusBadRequest)
		_, _ = ex.w.Write(b)
		return
	}
	s.fail(ex, http.StatusBadRequest, "Invalid conversion", []FieldError{{
		Field:   "OrderId",
		Message: fmt.Sprintf("Duplicate OrderId (%s): a conversion with this OrderId was already received for this event type", orderID),
	}})
}

// writeJSON answers status with v as JSON (XML clients get JSON too: the
// read endpoints are used with Accept: application/json only).
func (s *Server) writeJSON(ex *exchange, status int, v any) {
	b, _ := json.Marshal(v)
	s.status(ex, status)
	ex.w.Header().Set("Content-Type", "application/json")
	ex.w.WriteHeader(status)
	_, _ = ex.w.Write(b)
}

type fieldErrorLower struct {
	Field   string `json:"field"`
	Level   string `json:"level"`
	Message string `json:"message"`
}

type fieldErrorUpper struct {
	Field   string `json:"Field"`
	Message string `json:"Message"`
}

type xmlAnswer struct {
	XMLName   xml.Name `xml:"ImpactRadiusResponse"`
	Status    string   `xml:"Status"`
	Message   string   `xml:"Message,omitempty"`
	QueuedURI string   `xml:"QueuedUri,omitempty"`
}

// fail answers an error in the API's envelope (or in XML when the client
// does not accept JSON).
func (s *Server) fail(ex *exchange, status int, message string, errs []FieldError) {
	s.status(ex, status)
	if !ex.json {
		s.xml(ex, status, xmlAnswer{Status: "ERROR", Message: message})
		return
	}
	var v any
	if s.cfg.UpperCaseErrors || len(errs) == 0 {
		up := make([]fieldErrorUpper, len(errs))
		for i, e := range errs {
			up[i] = fieldErrorUpper(e)
		}
		v = struct {
			Status  string            `json:"Status"`
			Message string            `json:"Message"`
			Errors  []fieldErrorUpper `json:"Errors,omitempty"`
		}{"ERROR", message, up}
	} else {
		low := make([]fieldErrorLower, len(errs))
		for i, e := range errs {
			low[i] = fieldErrorLower{Field: e.Field, Level: "ERROR", Message: e.Message}
		}
		v = struct {
			Status string            `json:"Status"`
			Errors []fieldErrorLower `json:"errors"`
		}{"ERROR", low}
	}
	b, _ := json.Marshal(v)
	ex.w.Header().Set("Content-Type", "application/json")
	ex.w.WriteHeader(status)
	_, _ = ex.w.Write(b)
}

func (s *Server) xml(ex *exchange, status int, a xmlAnswer) {
	s.status(ex, status)
	b, _ := xml.Marshal(a)
	ex.w.Header().Set("Content-Type", "application/xml")
	ex.w.WriteHeader(status)
	_, _ = io.WriteString(ex.w, xml.Header)
	_, _ = ex.w.Write(b)
}

var errMediaType = errors.New("unsupported content type: application/x-www-form-urlencoded or application/json expected")

// parseBody reads a form or JSON body into fields.
func parseBody(contentType string, body []byte) (url.Values, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return nil, errMediaType
	}
	switch mt {
	case "application/x-www-form-urlencoded":
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("invalid form body: %w", err)
		}
		return v, nil
	case "application/json":
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("invalid JSON body: %w", err)
		}
		v := url.Values{}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				v.Set(k, x)
			case json.Number:
				v.Set(k, x.String())
			case bool:
				v.Set(k, strconv.FormatBool(x))
			case nil:
			default:
				return nil, fmt.Errorf("invalid JSON body: field %s must be a string, number or boolean", k)
			}
		}
		return v, nil
	}
	return nil, errMediaType
}

func acceptsJSON(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return true
		}
	}
	return false
}

// status records the status of the exchange's request; it is called
// before the answer is written, so that a client that has its answer finds
// it recorded.
func (s *Server) status(ex *exchange, st int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[ex.idx].Status = st
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// sleep waits for d and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
