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
	endpoint string
	ua       string
	client   *http.Client
	pacer    *pacer
	log      *slog.Logger

	fatal    atomic.Pointer[error]
	fatalLog sync.Once
}

var (
	_ pipeline.Sink  = (*Impact)(nil)
	_ pipeline.Pacer = (*Impact)(nil)
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
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !sidRe.MatchString(creds.AccountSID) || creds.AuthToken == "" {
		return nil, errors.New("sink: credentials: an account SID (letters, digits, - and _) and a token are needed")
	}
	return newImpact(cfg, creds, version, log)
}

func newImpact(cfg Config, creds Credentials, version string, log *slog.Logger) (*Impact, error) {
	sid, token := creds.AccountSID, creds.AuthToken
	base, _ := endpointBase(cfg.BaseURL)
	limit, _ := ParseRate(cfg.Rate)
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
	return &Impact{
		cfg:      cfg,
		sid:      sid,
		token:    token,
		endpoint: base + "/Advertisers/" + sid + "/Conversions",
		ua:       "convpipe/" + version,
		client: &http.Client{
			Transport: tr,
			// A redirect of a POST is a configuration error: report it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		pacer: newPacer(limit, cfg.Burst, log),
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
// A conversion whose earlier attempt may have reached the API (a timeout
// or reset after the request was written, or an earlier run's send: the
// conversion's MaybeSent) and which is then refused as a duplicate OrderId
// counts as accepted.
func (s *Impact) Send(ctx context.Context, c *pipeline.Conversion) (pipeline.Outcome, error) {
	out := pipeline.Outcome{Key: c.Key}
	if err := s.fatalErr(); err != nil {
		out.State, out.Messages = pipeline.StateFailed, msgs("not sent: "+err.Error())
		return out, err
	}
	out.MaybeSent = c.MaybeSent
	body := c.Encode()
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     s.cfg.BackoffInitial,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         s.cfg.BackoffMax,
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	bo.Reset()

	var start time.Time
	var paced time.Duration // time spent waiting for the quota after start
	stopped := func(why string) (pipeline.Outcome, error) {
		out.State = pipeline.StateFailed
		out.Messages = append(msgs(why), out.Messages...)
		if !start.IsZero() {
			out.Duration = time.Since(start)
		}
		return out, nil
	}
	for {
		if ctx.Err() != nil {
			return stopped("stopped before an answer")
		}
		t0 := time.Now()
		release, err := s.pacer.acquire(ctx)
		if !start.IsZero() {
			paced += time.Since(t0)
		}
		if err != nil {
			if errors.Is(err, errQuotaDeadline) {
				return stopped("stopped before an answer: " + err.Error())
			}
			return stopped("stopped before an answer")
		}
		if err := s.fatalErr(); err != nil {
			release(limits{limit: -1, remaining: -1}, time.Time{})
			out.State = pipeline.StateFailed
			out.Messages = append(msgs("not sent: "+err.Error()), out.Messages...)
			return out, err
		}
		if start.IsZero() {
			start = time.Now()
		}
		a := s.post(ctx, body)
		out.Attempts++
		now := time.Now()
		v := classify(a, now)
		release(v.limits, v.gate)

		earlierMaybeSent := out.MaybeSent
		out.MaybeSent = out.MaybeSent || v.maybeSent
		out.HTTPStatus = a.status
		out.Messages = s.redact(v.messages)
		out.Duration = now.Sub(start)
		if v.fatal != nil {
			err := s.setFatal(v.fatal)
			out.State = pipeline.StateFailed
			return out, err
		}
		if v.stopped {
			out.State = pipeline.StateFailed
			return out, nil
		}
		if v.duplicate && earlierMaybeSent {
			out.State = pipeline.StateAccepted
			out.Messages = append(msgs("duplicate OrderId after an attempt that may have reached the API: counted as accepted"), out.Messages...)
			return out, nil
		}
		if !v.retry {
			out.State = v.state
			out.SubmissionID, out.QueuedURI = v.submissionID, v.queuedURI
			return out, nil
		}
		if out.Attempts >= s.cfg.MaxAttempts {
			out.State = pipeline.StateFailed
			out.Messages = append(msgs(fmt.Sprintf("gave up after %d attempts (sink.max_attempts)", out.Attempts)), out.Messages...)
			return out, nil
		}
		// When the server said how long to wait, the pacer's gate holds
		// every worker until then; otherwise back off.
		var wait time.Duration
		if v.gate.IsZero() {
			wait = bo.NextBackOff()
		}
		if active := time.Since(start) - paced; active+wait > s.cfg.MaxElapsed {
			out.State = pipeline.StateFailed
			out.Messages = append(msgs(fmt.Sprintf("gave up after %d attempts in %s (sink.max_elapsed)", out.Attempts, active.Round(time.Millisecond))), out.Messages...)
			return out, nil
		}
		s.log.Debug("sink: retrying", "key", c.Key.String(), "attempt", out.Attempts, "wait", wait.String(), "status", a.status)
		if !sleep(ctx, wait) {
			return stopped("stopped before an answer")
		}
	}
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
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), http.MethodPost, s.endpoint, strings.NewReader(body))
	if err != nil {
		return answer{err: fmt.Errorf("build request: %w", err)}
	}
	req.SetBasicAuth(s.sid, s.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", s.ua)
	if s.cfg.IRVersion != "" {
		req.Header.Set("IR-Version", s.cfg.IRVersion)
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

// redact removes the token from messages, should a server echo it.
func (s *Impact) redact(ms []pipeline.Message) []pipeline.Message {
	if s.token == "" {
		return ms
	}
	for i := range ms {
		ms[i].Text = strings.ReplaceAll(ms[i].Text, s.token, redacted)
		ms[i].Value = strings.ReplaceAll(ms[i].Value, s.token, redacted)
		ms[i].Field = strings.ReplaceAll(ms[i].Field, s.token, redacted)
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
