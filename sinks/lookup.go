package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"convpipe/pipeline"
)

var _ pipeline.OutcomeReader = (*Impact)(nil)

// The rules of GET /Actions.
const (
	// MaxActionRange is the longest event-date range of one query.
	MaxActionRange = 45 * 24 * time.Hour
	// ActionPageSize is impact's default and largest documented page
	// size, MinActionPageSize its smallest.
	ActionPageSize    = 20000
	MinActionPageSize = 2000
)

// QueryError is a read the API refused (400): a range too wide, a result
// that would need more than 10 pages. Retrying the same query cannot
// succeed; a narrower one may.
type QueryError struct {
	// What names the request ("actions of campaign 1000 from ... to ...").
	What string
	// Status is the HTTP status; Message the API's message, scrubbed.
	Status  int
	Message string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("impact: %s: refused (HTTP %d): %s", e.What, e.Status, e.Message)
}

// narrowRe recognises the API's refusal of a result too large for its
// pages: "more than 10 pages", "narrow the date range", "reduce the date
// range" (the wording is undocumented: these are the docs' own words).
var narrowRe = regexp.MustCompile(`(?i)more than \d+ pages|narrow the (date )?range|reduce the date range`)

// Unwrap returns pipeline.ErrNarrow when the API refused the result as too
// large for its pages: a narrower range may succeed.
func (e *QueryError) Unwrap() error {
	if narrowRe.MatchString(e.Message) {
		return pipeline.ErrNarrow
	}
	return nil
}

var batchIDRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// ListActions returns one page (from 1) of the actions of q's campaign
// whose event date lies in q's range. A range over MaxActionRange, or an
// end before the start, is refused before any request.
func (s *Impact) ListActions(ctx context.Context, q pipeline.ActionQuery, page int) (pipeline.ActionPage, error) {
	what := fmt.Sprintf("actions of campaign %s from %s to %s, page %d", q.CampaignID,
		q.Start.UTC().Format(time.RFC3339), q.End.UTC().Format(time.RFC3339), page)
	switch {
	case !digitRe.MatchString(q.CampaignID) || len(q.CampaignID) > 10:
		return pipeline.ActionPage{}, fmt.Errorf("impact: %s: the campaign id must be an integer of up to 10 digits", what)
	case q.End.Before(q.Start) || q.End.Sub(q.Start) > MaxActionRange:
		return pipeline.ActionPage{}, fmt.Errorf("impact: %s: the range must not be reversed nor span more than 45 days", what)
	case page < 1:
		return pipeline.ActionPage{}, fmt.Errorf("impact: %s: pages count from 1", what)
	}
	v := url.Values{
		"CampaignId":      {q.CampaignID},
		"ActionDateStart": {q.Start.UTC().Format(time.RFC3339)},
		"ActionDateEnd":   {q.End.UTC().Format(time.RFC3339)},
		"PageSize":        {strconv.Itoa(s.cfg.ListPageSize)},
		"Page":            {strconv.Itoa(page)},
	}
	body, _, err := s.read(ctx, what, "/Advertisers/"+s.sid+"/Actions?"+v.Encode())
	if err != nil {
		return pipeline.ActionPage{}, err
	}
	p, err := parseActionPage(body)
	if err != nil {
		return p, fmt.Errorf("impact: %s: %w", what, err)
	}
	return p, nil
}

// Actions lists every action of campaign with an event date from start
// to end, both included: the range split into windows of at most
// MaxActionRange, each read page by page, calling visit with each page's
// actions. It returns the number of requests made.
func (s *Impact) Actions(ctx context.Context, campaign string, start, end time.Time, visit func([]pipeline.Action) error) (requests int, err error) {
	for _, w := range SplitRange(start, end, MaxActionRange) {
		for page, pages := 1, 1; page <= pages; page++ {
			p, err := s.ListActions(ctx, pipeline.ActionQuery{CampaignID: campaign, Start: w[0], End: w[1]}, page)
			requests++
			if err != nil {
				return requests, err
			}
			if err := visit(p.Actions); err != nil {
				return requests, err
			}
			pages = p.Pages
		}
	}
	return requests, nil
}

// SplitRange splits the range from start to end, both included, into
// consecutive windows of at most max, each [from, to] with to inclusive
// (one second before the next window's start). A reversed range has no
// window.
func SplitRange(start, end time.Time, max time.Duration) [][2]time.Time {
	var out [][2]time.Time
	for from := start; !from.After(end); from = from.Add(max) {
		to := from.Add(max - time.Second)
		if to.After(end) {
			to = end
		}
		out = append(out, [2]time.Time{from, to})
	}
	return out
}

// LookupSubmission returns the record of one submission, named by its
// QueuedUri (which must be this account's APISubmissions) or its id. A
// submission impact does not know, or no longer keeps, is Found false.
func (s *Impact) LookupSubmission(ctx context.Context, ref string) (pipeline.Submission, error) {
	prefix := "/Advertisers/" + s.sid + "/APISubmissions/"
	id := strings.TrimPrefix(ref, prefix)
	what := "submission " + s.secrets.redact(scrub(id))
	if !batchIDRe.MatchString(id) {
		return pipeline.Submission{}, fmt.Errorf("impact: %s: not a submission id, nor a QueuedUri of this account's APISubmissions", what)
	}
	body, notFound, err := s.read(ctx, what, prefix+url.PathEscape(id))
	if err != nil || notFound {
		return pipeline.Submission{ID: id}, err
	}
	sub, err := parseSubmission(body)
	if err != nil {
		return sub, fmt.Errorf("impact: %s: %w", what, err)
	}
	sub.ID = cmpOr(sub.ID, id)
	return sub, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// read makes a GET of pathQuery (under the base URL) with attempts, each
// holding a request slot and let through by the pacer, as Send does; it
// returns the body of the 2xx answer, or notFound for a 404.
func (s *Impact) read(ctx context.Context, what, pathQuery string) (body []byte, notFound bool, err error) {
	bo := s.newBackOff()
	var last string
	for attempt := 1; ; attempt++ {
		if err := s.fatalErr(); err != nil {
			return nil, false, err
		}
		rv, err := s.readOnce(ctx, what, pathQuery)
		if err != nil {
			return nil, false, err
		}
		switch {
		case rv.fatal != nil:
			return nil, false, s.setFatal(rv.fatal)
		case rv.ok:
			return rv.body, false, nil
		case rv.notFound:
			return nil, true, nil
		case !rv.retry:
			return nil, false, rv.err
		}
		last = rv.err.Error()
		if attempt >= s.cfg.MaxAttempts {
			return nil, false, fmt.Errorf("impact: %s: gave up after %d attempts (sink.max_attempts): %s", what, attempt, last)
		}
		wait := time.Duration(0)
		if rv.gate.IsZero() {
			wait = bo.NextBackOff()
		}
		if !sleep(ctx, wait) {
			return nil, false, fmt.Errorf("impact: %s: stopped: %w", what, ctx.Err())
		}
	}
}

// readOnce makes one attempt of read and classifies its answer; an error
// means no attempt was made (ctx ended, or the quota allows none before
// its deadline).
func (s *Impact) readOnce(ctx context.Context, what, pathQuery string) (readVerdict, error) {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return readVerdict{}, fmt.Errorf("impact: %s: stopped: %w", what, ctx.Err())
	}
	defer func() { <-s.slots }()
	release, err := s.pacer.acquire(ctx)
	if err != nil {
		return readVerdict{}, fmt.Errorf("impact: %s: %w", what, err)
	}
	a := s.get(ctx, s.base+pathQuery)
	rv := classifyRead(a, time.Now(), s.pol, what)
	s.warnOverlong(rv.overlong)
	release(rv.limits, rv.gate)
	return rv, nil
}

// get makes one GET request and reads its whole answer.
func (s *Impact) get(ctx context.Context, u string) answer {
	actx, cancel := context.WithTimeoutCause(ctx, s.cfg.RequestTimeout, errAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return answer{err: fmt.Errorf("build request: %w", err)}
	}
	req.SetBasicAuth(s.sid, s.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", s.ua)
	if s.cfg.IRVersion != "" {
		req.Header.Set("IR-Version", s.cfg.IRVersion)
	}
	ended := func(a answer) answer {
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
	// A page of 20,000 actions is some megabytes.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return ended(answer{status: resp.StatusCode, header: resp.Header, err: fmt.Errorf("read answer: %w", err)})
	}
	return ended(answer{status: resp.StatusCode, header: resp.Header, body: b})
}

// flex is a JSON value impact may write as a string, a number or null.
type flex string

func (f *flex) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flex(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a string or a number expected, got %s", b)
		}
		*f = flex(n.String())
	}
	return nil
}

func (f flex) int() int {
	n, _ := strconv.Atoi(string(f))
	return n
}

// date parses an ISO 8601 date-time; empty is zero.
func (f flex) date(name string) (time.Time, error) {
	if f == "" {
		return time.Time{}, nil
	}
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(l, string(f)); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%s: not an ISO 8601 date (%s)", name, scrub(string(f)))
}

type actionJSON struct {
	ID              flex `json:"Id"`
	CampaignID      flex `json:"CampaignId"`
	ActionTrackerID flex `json:"ActionTrackerId"`
	EventCode       flex `json:"EventCode"`
	Oid             flex `json:"Oid"`
	State           flex `json:"State"`
	Amount          flex `json:"Amount"`
	Currency        flex `json:"Currency"`
	EventDate       flex `json:"EventDate"`
	CreationDate    flex `json:"CreationDate"`
	LockingDate     flex `json:"LockingDate"`
}

// parseActionPage reads a page of GET /Actions in impact's list envelope.
func parseActionPage(body []byte) (pipeline.ActionPage, error) {
	var env struct {
		Page    flex         `json:"@page"`
		Pages   flex         `json:"@numpages"`
		Total   flex         `json:"@total"`
		Actions []actionJSON `json:"Actions"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return pipeline.ActionPage{}, fmt.Errorf("the answer is not a list of actions: %v", err)
	}
	if env.Actions == nil && !strings.Contains(string(body), `"Actions"`) {
		return pipeline.ActionPage{}, errors.New("the answer is not a list of actions: no Actions")
	}
	p := pipeline.ActionPage{Page: env.Page.int(), Pages: max(env.Pages.int(), 1), Total: env.Total.int()}
	for i, a := range env.Actions {
		act := pipeline.Action{
			ID: string(a.ID), CampaignID: string(a.CampaignID), ActionTrackerID: string(a.ActionTrackerID),
			EventCode: string(a.EventCode), OrderID: string(a.Oid), State: pipeline.ActionState(strings.ToUpper(string(a.State))),
			Amount: string(a.Amount), Currency: string(a.Currency),
		}
		var errs [3]error
		act.EventDate, errs[0] = a.EventDate.date("EventDate")
		act.CreationDate, errs[1] = a.CreationDate.date("CreationDate")
		act.LockingDate, errs[2] = a.LockingDate.date("LockingDate")
		if err := errors.Join(errs[:]...); err != nil {
			return p, fmt.Errorf("action %d (%s): %w", i+1, scrub(string(a.ID)), err)
		}
		if act.ID == "" || act.OrderID == "" {
			return p, fmt.Errorf("action %d: no Id or no Oid", i+1)
		}
		p.Actions = append(p.Actions, act)
	}
	return p, nil
}

// parseSubmission reads an APISubmissions record.
func parseSubmission(body []byte) (pipeline.Submission, error) {
	var j struct {
		BatchID        flex `json:"BatchId"`
		ID             flex `json:"Id"`
		Status         flex `json:"Status"`
		CompletionDate flex `json:"CompletionDate"`
		ErrorType      flex `json:"ErrorType"`
		ErrorReason    flex `json:"ErrorReason"`
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return pipeline.Submission{}, fmt.Errorf("the answer is not a submission record: %v", err)
	}
	if j.Status == "" {
		return pipeline.Submission{}, errors.New("the answer is not a submission record: no Status")
	}
	done, err := j.CompletionDate.date("CompletionDate")
	if err != nil {
		return pipeline.Submission{}, err
	}
	return pipeline.Submission{
		ID: cmpOr(string(j.BatchID), string(j.ID)), Found: true, Status: scrub(string(j.Status)), CompletionDate: done,
		ErrorType: scrub(string(j.ErrorType)), ErrorReason: scrub(string(j.ErrorReason)),
	}, nil
}

// QuotaLeft returns how many requests the server's current rate-limit
// window has left, less those in flight, as its last answers said, and
// whether that is known (an answer of this window carried the headers).
// Reconciling at the end of a run takes only this: what sending left.
func (s *Impact) QuotaLeft() (n int, known bool) {
	p := s.pacer
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Before(p.closedUntil) {
		return 0, true
	}
	if !p.known || !now.Before(p.reset) {
		return 0, false
	}
	return max(p.remaining-p.inflight, 0), true
}
