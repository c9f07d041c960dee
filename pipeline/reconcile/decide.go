package reconcile

import (
	"fmt"
	"strings"
	"time"

	"convpipe/pipeline"
)

// Verdict is what reconciling found of a conversion.
type Verdict string

// The verdicts.
const (
	// Tracked: impact made an action for the conversion.
	Tracked Verdict = "tracked"
	// NotTracked: impact processed it and made no action: it needs a
	// human (ErrorType, ErrorReason and Meaning say why).
	NotTracked Verdict = "not_tracked"
	// Unknown: not learned yet, or no longer learnable (Note says which).
	Unknown Verdict = "unknown"
)

// Result is what reconciling learned of one conversion.
type Result struct {
	Key     pipeline.Key `json:"key"`
	Verdict Verdict      `json:"verdict"`
	// Action is the conversion's action when tracked and listed: its
	// ActionId, state, amount and locking date. A conversion known as
	// tracked only from its submission has none.
	Action *pipeline.Action `json:"action,omitempty"`
	// ErrorType, ErrorReason and Meaning say why it is not tracked.
	ErrorType   string `json:"error_type,omitempty"`
	ErrorReason string `json:"error_reason,omitempty"`
	Meaning     string `json:"meaning,omitempty"`
	// Note explains anything else: a duplicate that is convpipe's own, why
	// the outcome is still unknown.
	Note string `json:"note,omitempty"`
	// Final is set when nothing about it can change any more: an action
	// APPROVED or REVERSED, a conversion not tracked, or one whose
	// outcome can no longer be learned.
	Final bool `json:"final,omitempty"`
}

// Notes of Decide.
const (
	noteOwnDuplicate         = "impact refused convpipe's resend of this order as CONV_DUPLICATE: the action is the one of convpipe's earlier send (an ambiguous send that was retried), not an error"
	noteAlienDuplicate       = "impact refused this conversion as CONV_DUPLICATE of an order convpipe did not send twice (another integration or tag?): the action listed may not be this conversion's"
	noteOwnDuplicateUnlisted = "impact refused convpipe's resend of this order as CONV_DUPLICATE, so its earlier send made the action; the action was not in the listed event-date range, so its id, state and amount are not known"
	noteCompleteUnlisted     = "the submission completed without error, so impact made an action; it was not in the listed event-date range (impact re-dates late conversions), so its id, state and amount are not known"
	noteExpired              = "the submission record is older than impact keeps them (90 days) and no action was found: the outcome can no longer be learned"
	noteTooOld               = "the event date is more than 3 years back: impact lists no actions that old, and"
)

// Decide returns, for each conversion in order, what the actions listed
// and the submissions looked up (by conversion key, Key.String()) say of
// it at now.
func Decide(cs []Conversion, l Listing, subs map[string]pipeline.Submission, now time.Time, o Options) []Result {
	o = o.withDefaults()
	ix := l.index()
	out := make([]Result, len(cs))
	for i, c := range cs {
		sub, looked := subs[c.Key.String()]
		a, found := ix.find(c)
		switch {
		case found:
			out[i] = tracked(c, a, sub, looked)
		case looked && sub.Found:
			out[i] = fromSubmission(c, sub, now)
		default:
			out[i] = unknown(c, l, looked, now, o)
		}
	}
	return out
}

// tracked is the result of a conversion with a listed action, and what
// its submission adds if it was looked up.
func tracked(c Conversion, a pipeline.Action, sub pipeline.Submission, looked bool) Result {
	r := Result{Key: c.Key, Verdict: Tracked, Action: &a, Final: a.State == pipeline.ActionApproved || a.State == pipeline.ActionReversed}
	if !looked || sub.ErrorReason == "" {
		return r
	}
	switch {
	case isDuplicate(sub.ErrorReason) && c.MaybeSent:
		r.Note = noteOwnDuplicate
	case isDuplicate(sub.ErrorReason):
		r.Note = noteAlienDuplicate
	default:
		r.Note = fmt.Sprintf("an action exists for the order although its submission failed (%s: %s)", sub.ErrorType, sub.ErrorReason)
	}
	return r
}

// fromSubmission is the result of a conversion without a listed action,
// from its submission record.
func fromSubmission(c Conversion, sub pipeline.Submission, now time.Time) Result {
	r := Result{Key: c.Key}
	switch {
	case !strings.EqualFold(sub.Status, pipeline.SubmissionComplete):
		r.Verdict = Unknown
		r.Note = fmt.Sprintf("impact is still processing the submission (%s, %s after it was accepted)", sub.Status, now.Sub(c.AcceptedAt).Round(time.Minute))
	case sub.ErrorReason == "" && sub.ErrorType == "":
		r.Verdict, r.Note = Tracked, noteCompleteUnlisted
	case isDuplicate(sub.ErrorReason) && c.MaybeSent:
		r.Verdict, r.Note = Tracked, noteOwnDuplicateUnlisted
	default:
		r.Verdict, r.Final = NotTracked, true
		r.ErrorType, r.ErrorReason = sub.ErrorType, sub.ErrorReason
		r.Meaning = Meaning(sub.ErrorReason)
		if sub.ErrorReason == "" {
			r.Meaning = "impact gave the error type " + sub.ErrorType + " without a reason"
		}
	}
	return r
}

// unknown is the result of a conversion neither listed nor found by a
// lookup: why it is not known yet, or can no longer be.
func unknown(c Conversion, l Listing, looked bool, now time.Time, o Options) Result {
	r := Result{Key: c.Key, Verdict: Unknown}
	age := now.Sub(c.AcceptedAt)
	prefix := ""
	if !listable(c, now, o) && c.CampaignID != "" && !c.EventDate.IsZero() {
		prefix = noteTooOld + " "
	}
	switch {
	case age < o.Settle:
		r.Note = fmt.Sprintf("accepted %s ago, less than the settle time (%s): impact may still be processing it", age.Round(time.Second), o.Settle)
	case age > o.Keep:
		r.Note, r.Final = prefix+noteExpired, true
	case looked:
		r.Note = prefix + "impact does not know the submission (404) and no action was found"
	case listable(c, now, o) && !l.covered(c) && !l.refused(c):
		r.Note = "its event date was not listed in this reconcile (request budget spent): the next one lists it"
	case c.ref() == "":
		r.Note = prefix + "no action was found and there is no submission id to look up"
	default:
		r.Note = prefix + "no action was found and its submission was not looked up (request budget spent): the next reconcile does"
	}
	return r
}

func isDuplicate(reason string) bool {
	for _, r := range strings.Fields(reason) {
		if strings.EqualFold(r, "CONV_DUPLICATE") {
			return true
		}
	}
	return false
}
