package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"convpipe/pipeline"
)

var _ pipeline.Modifier = (*Impact)(nil)

// tooLateRe recognises impact's refusal of a change it can no longer
// take: the action is locked (past its locking date), reversed, or took
// its 1,000 modifications (the wording is undocumented: the docs' words).
var tooLateRe = regexp.MustCompile(`(?i)\block(ed|ing date)\b|\breversed\b|limit of \d+ modifications|\bmodifications? limit\b`)

// modifyVerdict is what an answer to PUT or DELETE /Actions means for the
// correction; retry, gate and fatal are the conversions' verdict's.
type modifyVerdict struct {
	verdict
	state pipeline.CorrectionState
}

// classifyModify decides what an answer to a correction means: the
// transport, credentials, rate limits and 5xx as for a conversion
// (classify); QUEUED is applied; a refusal saying the action is locked,
// reversed or out of modifications is too late; any other refusal is
// rejected; a 404 (no such action, or not yet: its conversion may still
// be processing) is failed, for the next apply to try again.
func classifyModify(a answer, now time.Time, p policy) modifyVerdict {
	v := modifyVerdict{verdict: classify(a, now, p), state: pipeline.CorrectionFailed}
	switch {
	case v.fatal != nil || v.retry || v.stopped:
	case v.verdict.state == pipeline.StateAccepted:
		v.state = pipeline.CorrectionApplied
	case a.status == http.StatusNotFound:
		v.messages = msgs("HTTP 404: " + readMessage(a.body, p) + " (no such action yet: its conversion may still be processing; the next apply tries again)")
	case v.verdict.state == pipeline.StateRejected:
		v.state = pipeline.CorrectionRejected
		for _, m := range v.messages {
			if tooLateRe.MatchString(m.Text) {
				v.state = pipeline.CorrectionTooLate
			}
		}
	}
	return v
}

// Modify sends one correction (PUT or DELETE /Advertisers/{SID}/Actions
// with c.Form), with attempts as Send makes them: each holding a request
// slot and let through by the pacer, retried on 429, 5xx and network
// errors that cannot have reached impact, leaving called before the
// first. An attempt that may have reached impact unanswered ends Modify,
// failed and MaybeSent: a correction is settled, not resent blindly. See
// pipeline.Modifier.
func (s *Impact) Modify(ctx context.Context, c *pipeline.Correction, leaving func() error) (pipeline.ModifyOutcome, error) {
	out := pipeline.ModifyOutcome{State: pipeline.CorrectionFailed}
	if c.Method != http.MethodPut && c.Method != http.MethodDelete {
		out.Messages = msgs(fmt.Sprintf("not sent: %q is neither PUT nor DELETE", c.Method))
		return out, nil
	}
	if err := s.fatalErr(); err != nil {
		out.Messages = msgs("not sent: " + err.Error())
		return out, err
	}
	bo := s.newBackOff()
	for {
		if ctx.Err() != nil {
			out.Messages = append(msgs("stopped before an answer"), out.Messages...)
			return out, nil
		}
		v, err := s.modifyOnce(ctx, c, &out, leaving)
		if err != nil {
			return out, err
		}
		out.MaybeSent = out.MaybeSent || v.maybeSent
		out.Messages = s.redact(v.messages)
		if v.fatal != nil {
			return out, s.setFatal(v.fatal)
		}
		if !v.retry || v.stopped {
			out.State, out.SubmissionID = v.state, v.submissionID
			return out, nil
		}
		if v.maybeSent {
			// The change may have been taken: a resend would change the
			// action twice. The caller settles it first (GET /Actions).
			out.Messages = append(msgs("no answer after the request may have reached impact: to be settled before it is sent again"), out.Messages...)
			return out, nil
		}
		if out.Attempts >= s.cfg.MaxAttempts {
			out.Messages = append(msgs(fmt.Sprintf("gave up after %d attempts (sink.max_attempts)", out.Attempts)), out.Messages...)
			return out, nil
		}
		wait := time.Duration(0)
		if v.gate.IsZero() {
			wait = bo.NextBackOff()
		}
		if !sleep(ctx, wait) {
			out.Messages = append(msgs("stopped before an answer"), out.Messages...)
			return out, nil
		}
	}
}

// modifyOnce makes one attempt of Modify; an error means no attempt was
// made (the run stops: ctx, the quota's deadline, leaving failed).
func (s *Impact) modifyOnce(ctx context.Context, c *pipeline.Correction, out *pipeline.ModifyOutcome, leaving func() error) (modifyVerdict, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return modifyVerdict{}, fmt.Errorf("sink: correction of %s not sent: %w", c.Key, ctx.Err())
	}
	defer func() { <-s.slots }()
	release, err := s.pacer.acquire(ctx)
	if err != nil {
		if errors.Is(err, errQuotaDeadline) && out.Attempts == 0 {
			return modifyVerdict{}, fmt.Errorf("sink: %w", pipeline.ErrOutOfTime)
		}
		return modifyVerdict{}, fmt.Errorf("sink: correction of %s: %w", c.Key, err)
	}
	if out.Attempts == 0 && leaving != nil {
		if err := leaving(); err != nil {
			release(limits{limit: -1, remaining: -1}, time.Time{})
			return modifyVerdict{}, fmt.Errorf("sink: not sent: %w", err)
		}
	}
	a := s.modifyRequest(ctx, c.Method, c.Form)
	out.Attempts++
	out.HTTPStatus = a.status
	v := classifyModify(a, time.Now(), s.pol)
	s.warnOverlong(v.overlong)
	release(v.limits, v.gate)
	return v, nil
}

// modifyRequest makes one PUT or DELETE of the Actions resource with the
// form body and reads its whole answer.
func (s *Impact) modifyRequest(ctx context.Context, method, form string) answer {
	actx, cancel := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errAttemptTimeout)
	defer cancel()
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, trace), method, s.base+"/Advertisers/"+s.sid+"/Actions", strings.NewReader(form))
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
		a.wrote = a.wrote || wrote.Load()
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
		return ended(answer{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("read answer: %w", err), wrote: true})
	}
	return ended(answer{status: resp.StatusCode, header: resp.Header, body: b})
}
