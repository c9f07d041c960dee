package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"

	"convpipe/pipeline"
)

// maxAnswer bounds the answer body read.
const maxAnswer = 1 << 20

var errAttemptTimeout = errors.New("request timeout")

// Impact sends conversions to impact.com's Conversions API, one HTTP
// request per attempt, paced by the account's quota and retried with
// backoff. It is safe for concurrent use: run Workers() goroutines calling
// Send.
type Impact struct {
	cfg      Config
	sid      string
	token    string
	secrets  *redactor
	endpoint string
	// base is the API's base URL, for the read endpoints.
	base   string
	ua     string
	client *http.Client
	pacer  *pacer
	// slots holds one token per request in flight: at most Workers.
	slots chan struct{}
	pol   policy
	log   *slog.Logger

	fatal    atomic.Pointer[error]
	fatalLog sync.Once
	// warned holds the headers whose protocol error was logged.
	warned sync.Map
}

var (
	_ pipeline.Sink      = (*Impact)(nil)
	_ pipeline.Announcer = (*Impact)(nil)
	_ pipeline.Pacer     = (*Impact)(nil)
)

// New returns the sink for cfg, with credentials read as Config.Credentials
// says. version names convpipe's version in the User-Agent; log receives
// the sink's few log lines (nil discards them).
func New(cfg Config, version string, log *slog.Logger) (*Impact, error) {
	sid, token, err := cfg.Credentials(nil)
	if err != nil {
		return nil, err
	}
	return NewWithCredentials(cfg, Credentials{AccountSID: sid, AuthToken: token}, version, log)
}

// Credentials are an account's SID and auth token, as values: for a
// caller that resolved them itself (the built-in simulator's), so that
// nothing has to be put in the process environment.
type Credentials struct {
	AccountSID string
	AuthToken  string
}

// NewWithCredentials is New with the credentials given rather than read
// from the configuration and the environment.
func NewWithCredentials(cfg Config, creds Credentials, version string, log *slog.Logger) (*Impact, error) {
	set, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	return NewFromSettings(set, creds, version, log)
}

// NewFromSettings is NewWithCredentials for a configuration already
// resolved by Config.Resolve: nothing is parsed or defaulted again.
func NewFromSettings(set Settings, creds Credentials, version string, log *slog.Logger) (*Impact, error) {
	if set.Base == "" || set.Limit <= 0 {
		return nil, errors.New("sink: settings not resolved: make them with Config.Resolve")
	}
	if !sidRe.MatchString(creds.AccountSID) || creds.AuthToken == "" {
		return nil, errors.New("sink: credentials: an account SID (letters, digits, - and _) and a token are needed")
	}
	cfg, sid, token := set.Config, creds.AccountSID, creds.AuthToken
	base, limit := set.Base, set.Limit
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if version == "" {
		version = "dev"
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		MaxIdleConns:          cfg.Workers,
		MaxIdleConnsPerHost:   cfg.Workers,
		MaxConnsPerHost:       cfg.Workers,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	secrets := newRedactor(sid, token)
	return &Impact{
		cfg:      cfg,
		sid:      sid,
		token:    token,
		secrets:  secrets,
		endpoint: base + "/Advertisers/" + sid + "/Conversions",
		base:     base,
		ua:       "convpipe/" + version,
		client: &http.Client{
			Transport: tr,
			// A redirect of a POST is a configuration error: report it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		pacer: newPacer(limit, cfg.Burst, log),
		slots: make(chan struct{}, cfg.Workers),
		pol:   policy{maxWait: cfg.MaxWait, secrets: secrets},
		log:   log,
	}, nil
}

// Workers returns how many goroutines the caller should run calling Send:
// the configured concurrency, which the connection pool is sized to.
func (s *Impact) Workers() int { return s.cfg.Workers }

// Pace returns the current rate and, while the server's quota window is
// closed, when it reopens.
func (s *Impact) Pace() pipeline.Pace { return s.pacer.pace() }

// Close releases idle connections.
func (s *Impact) Close() error {
	s.client.CloseIdleConnections()
	return nil
}

// Send submits one conversion: attempts, each after the pacer lets it
// through, until an answer is final, the attempts or time per conversion
// are spent, or ctx ends. Every case is an Outcome with a nil error, except
// 401 and 403, which return an error wrapping pipeline.ErrFatal (and from
// then on every Send returns it without a request).
//
// A conversion whose earlier attempt may have reached the API (a timeout,
// a reset or a 5xx answer after the request was written, or an earlier
// run's send: the conversion's MaybeSent) and which is then refused as a
// duplicate OrderId counts as accepted.
//
// When the quota allows no request before ctx's deadline, Send returns at
// once: with an error wrapping pipeline.ErrOutOfTime when no request was
// made for c, else with c's outcome (failed).
func (s *Impact) Send(ctx context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	return s.SendAnnounced(ctx, c, nil)
}

// SendAnnounced is Send, calling leaving (when not nil) just before the
// first request for c is made, after any wait for the quota; see
// pipeline.Announcer.
func (s *Impact) SendAnnounced(ctx context.Context, c *pipeline.Conversion, leaving func() error) (pipeline.Outcome, error) {
	st := &sendState{out: pipeline.Outcome{Key: c.Key}}
	if err := s.fatalErr(); err != nil {
		st.out.State, st.out.Messages = pipeline.StateFailed, msgs("not sent: "+err.Error())
		return st.out, err
	}
	st.out.MaybeSent = c.MaybeSent
	st.bo = s.newBackOff()
	body := c.Encode()
	for {
		if ctx.Err() != nil {
			return st.stop("stopped before an answer")
		}
		t, ended, err := s.attempt(ctx, st, body, leaving)
		if ended {
			return st.out, err
		}
		a, v := t.a, t.v
		if final, err := s.conclude(st, a, v, t.now); final {
			return st.out, err
		}
		wait, giveUp := s.retryWait(st, v)
		if giveUp != "" {
			return st.fail(giveUp), nil
		}
		s.log.Debug("sink: retrying", "key", c.Key.String(), "attempt", st.out.Attempts, "wait", wait.String(), "status", a.status)
		if !sleep(ctx, wait) {
			return st.stop("stopped before an answer")
		}
	}
}

// tried is one attempt's answer and its verdict.
type tried struct {
	a   answer
	v   verdict
	now time.Time
}

// attempt makes one attempt holding one of the sink's request slots (so
// that at most Workers requests are in flight however many goroutines
// call Send, and a conversion waiting to retry holds none): it waits for
// the pacer, announces the first request (leaving), posts and classifies
// the answer. ended reports that Send ends without an answer to conclude:
// st.out is the outcome, err the error Send returns.
func (s *Impact) attempt(ctx context.Context, st *sendState, body string, leaving func() error) (t tried, ended bool, err error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		_, err = st.stop("stopped before an answer")
		return t, true, err
	}
	defer func() { <-s.slots }()
	release, err := s.waitTurn(ctx, st)
	if err != nil {
		_, err = s.notAllowed(st, err)
		return t, true, err
	}
	if err := s.fatalErr(); err != nil {
		release(limits{limit: -1, remaining: -1}, time.Time{})
		st.fail("not sent: " + err.Error())
		return t, true, err
	}
	if st.out.Attempts == 0 && leaving != nil {
		if err := leaving(); err != nil {
			release(limits{limit: -1, remaining: -1}, time.Time{})
			st.fail("not sent: " + err.Error())
			return t, true, fmt.Errorf("sink: not sent: %w", err)
		}
	}
	if st.start.IsZero() {
		st.start = time.Now()
	}
	t.a = s.post(ctx, body)
	st.out.Attempts++
	t.now = time.Now()
	t.v = classify(t.a, t.now, s.pol)
	s.warnOverlong(t.v.overlong)
	release(t.v.limits, t.v.gate)
	return t, false, nil
}

// notAllowed ends a Send whose next attempt the pacer did not let through:
// ctx ended, or the quota allows no request before its deadline, which,
// when no request was made yet, is the caller's ErrOutOfTime.
func (s *Impact) notAllowed(st *sendState, err error) (pipeline.Outcome, error) {
	if errors.Is(err, pipeline.ErrFatal) { // the shared quota cannot be read
		out, _ := st.stop("stopped before an answer: " + err.Error())
		return out, fmt.Errorf("sink: %w", err)
	}
	if !errors.Is(err, errQuotaDeadline) {
		return st.stop("stopped before an answer")
	}
	out, _ := st.stop("stopped before an answer: " + err.Error())
	if out.Attempts == 0 {
		return out, fmt.Errorf("sink: %w", err)
	}
	return out, nil
}

// sendState is the progress of one Send.
type sendState struct {
	out pipeline.Outcome
	// start is when the first attempt was let through; zero before.
	start time.Time
	// paced is the time spent waiting for the quota after start.
	paced time.Duration
	bo    *backoff.ExponentialBackOff
}

// stop ends a Send that the caller stopped before an answer: failed, why
// first, and the time spent since the first attempt.
func (st *sendState) stop(why string) (pipeline.Outcome, error) {
	st.out.State = pipeline.StateFailed
	st.out.Messages = append(msgs(why), st.out.Messages...)
	if !st.start.IsZero() {
		st.out.Duration = time.Since(st.start)
	}
	return st.out, nil
}

// fail ends a Send as failed, why first.
func (st *sendState) fail(why string) pipeline.Outcome {
	st.out.State = pipeline.StateFailed
	st.out.Messages = append(msgs(why), st.out.Messages...)
	return st.out
}

// newBackOff returns the backoff between the attempts of one conversion.
func (s *Impact) newBackOff() *backoff.ExponentialBackOff {
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.BackoffInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.cfg.BackoffMax,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	bo.Reset()
	return bo
}

// waitTurn waits until the pacer lets an attempt through and returns the
// pacer's release; the wait counts as paced once the first attempt was
// made.
func (s *Impact) waitTurn(ctx context.Context, st *sendState) (release func(limits, time.Time), err error) {
	t0 := time.Now()
	release, err = s.pacer.acquire(ctx)
	if !st.start.IsZero() {
		st.paced += time.Since(t0)
	}
	return release, err
}

// fromElsewhere explains a duplicate OrderId for a conversion no request of
// ours can have delivered before.
const fromElsewhere = "impact already has this order from elsewhere (another integration or a tracking tag): not sent by convpipe before, so not counted as accepted"

// conclude records an attempt's verdict in the outcome, and reports
// whether it is final, with the error Send returns then.
func (s *Impact) conclude(st *sendState, a answer, v verdict, now time.Time) (final bool, err error) {
	out := &st.out
	earlierMaybeSent := out.MaybeSent
	out.MaybeSent = out.MaybeSent || v.maybeSent
	out.HTTPStatus = a.status
	out.Messages = s.redact(v.messages)
	out.Duration = now.Sub(st.start)
	switch {
	case v.fatal != nil:
		out.State = pipeline.StateFailed
		return true, s.setFatal(v.fatal)
	case v.stopped:
		out.State = pipeline.StateFailed
	case v.duplicate && earlierMaybeSent:
		out.State = pipeline.StateAccepted
		out.Messages = append(msgs("duplicate OrderId after an attempt that may have reached the API: counted as accepted"), out.Messages...)
	case v.duplicate:
		// No request of ours for it can have reached the API before.
		out.State = v.state
		out.Messages = append(out.Messages, msgs(fromElsewhere)...)
	case !v.retry:
		out.State = v.state
		out.SubmissionID, out.QueuedURI = v.submissionID, v.queuedURI
	default:
		return false, nil
	}
	return true, nil
}

// retryWait returns how long to wait before the next attempt, or why the
// conversion is given up: its attempts or its time are spent.
func (s *Impact) retryWait(st *sendState, v verdict) (wait time.Duration, giveUp string) {
	if st.out.Attempts >= s.cfg.MaxAttempts {
		return 0, fmt.Sprintf("gave up after %d attempts (sink.max_attempts)", st.out.Attempts)
	}
	// When the server said how long to wait, the pacer's gate holds
	// every worker until then; otherwise back off.
	if v.gate.IsZero() {
		wait = st.bo.NextBackOff()
	}
	if active := time.Since(st.start) - st.paced; active+wait > s.cfg.MaxElapsed {
		return 0, fmt.Sprintf("gave up after %d attempts in %s (sink.max_elapsed)", st.out.Attempts, active.Round(time.Millisecond))
	}
	return wait, ""
}

// post makes one attempt: one HTTP request and its whole answer.
func (s *Impact) post(ctx context.Context, body string) answer {
	actx, cancel := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errAttemptTimeout)
	defer cancel()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				wrote.Store(true)
			}
		},
	}
	req, err := s.newRequest(httptrace.WithClientTrace(actx, trace), body)
	if err != nil {
		return answer{err: fmt.Errorf("build request: %w", err)}
	}
	ended := func(a answer) answer {
		a.wrote = wrote.Load()
		if a.err != nil {
			a.stopped = ctx.Err() != nil
			a.timedOut = !a.stopped && errors.Is(context.Cause(actx), errAttemptTimeout)
		}
		return a
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return ended(answer{err: err})
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		// The status came, the answer did not: the request was processed
		// or is being processed.
		a := ended(answer{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("read answer: %w", err)})
		a.wrote = true
		return a
	}
	// Drain what is left so that the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return ended(answer{status: resp.StatusCode, header: resp.Header, body: b})
}

// newRequest builds the request of one attempt: the conversion's form,
// the credentials and the API's headers.
func (s *Impact) newRequest(ctx context.Context, body string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(s.sid, s.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", s.ua)
	if s.cfg.IRVersion != "" {
		req.Header.Set("IR-Version", s.cfg.IRVersion)
	}
	return req, nil
}

func (s *Impact) fatalErr() error {
	if p := s.fatal.Load(); p != nil {
		return *p
	}
	return nil
}

// setFatal latches the first fatal error and logs it once.
func (s *Impact) setFatal(err error) error {
	first := err // stored by pointer: never reassigned
	s.fatal.CompareAndSwap(nil, &first)
	stored := s.fatalErr()
	s.fatalLog.Do(func() { s.log.Error("sink: stopping: every further request would fail", "err", stored.Error()) })
	return stored
}

// warnOverlong logs, once per header, that the server asked for a wait
// beyond sink.max_wait.
func (s *Impact) warnOverlong(errs []protocolError) {
	for _, e := range errs {
		if _, seen := s.warned.LoadOrStore(e.header, true); !seen {
			s.log.Warn("sink: protocol error: the server asked to wait longer than sink.max_wait; waiting sink.max_wait",
				"header", e.header, "value", s.pol.scrub(e.value), "max_wait", s.cfg.MaxWait.String())
		}
	}
}

// redact removes the credentials, in any form, from messages, should a
// server echo them. classify removed them before shortening any text;
// this is the last net, for every message a Send returns.
func (s *Impact) redact(ms []pipeline.Message) []pipeline.Message {
	for i := range ms {
		ms[i].Text = s.secrets.redact(ms[i].Text)
		ms[i].Value = s.secrets.redact(ms[i].Value)
		ms[i].Field = s.secrets.redact(ms[i].Field)
	}
	return ms
}

// sleep waits for d and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
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
