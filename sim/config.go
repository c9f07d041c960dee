package sim

import (
	"log/slog"
	"time"
)

// DuplicateMode says how the simulator answers a second conversion with the
// same OrderId and event type inside the deduplication window. impact's
// docs leave open whether this is an HTTP error or only a processing reason
// in the submission record, so the simulator can play every reading.
type DuplicateMode string

// The duplicate modes.
const (
	// DuplicateError answers 400 with a field error on OrderId whose
	// message says the OrderId is a duplicate: the synchronous reading.
	DuplicateError DuplicateMode = "error"
	// DuplicateReason answers 400 with the other envelope, a top-level
	// Message and ErrorReason CONV_DUPLICATE.
	DuplicateReason DuplicateMode = "reason"
	// DuplicateQueued answers 200 QUEUED; only the submission record says
	// CONV_DUPLICATE once it is processed. The duplicate is not added to
	// Accepted. The default, as impact's docs suggest.
	DuplicateQueued DuplicateMode = "queued"
)

// ResetFormat is how X-RateLimit-Reset is written.
type ResetFormat string

// The reset formats.
const (
	// ResetSeconds writes the whole seconds until the window resets,
	// rounded up (as documented).
	ResetSeconds ResetFormat = "seconds"
	// ResetUnix writes the Unix time of the reset, rounded up (as the
	// docs' example looks).
	ResetUnix ResetFormat = "unix"
)

// HeaderStyle is which rate-limit headers the simulator sends.
type HeaderStyle string

// The header styles.
const (
	// HeadersPlain sends X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (the advertiser API's documented headers).
	HeadersPlain HeaderStyle = "plain"
	// HeadersHour sends X-RateLimit-Limit-hour, X-RateLimit-Remaining-hour
	// and RateLimit-Reset (seconds until), as the partner API does.
	HeadersHour HeaderStyle = "hour"
)

// Config configures a Server. The zero value is usable: it serves account
// DefaultAccountSID with token DefaultAuthToken, without a quota or faults.
type Config struct {
	// AccountSID and AuthToken are the credentials the server accepts.
	AccountSID string
	AuthToken  string
	// ScopelessToken, when set, is a second token that authenticates but
	// lacks the scope for the endpoints: it gets 403.
	ScopelessToken string
	// Quota is the number of requests allowed per Window; 0 means no
	// quota and no rate-limit headers.
	Quota int
	// Window is the quota window's length (default one hour). Windows are
	// aligned to multiples of Window in Unix time.
	Window time.Duration
	// ResetFormat is how X-RateLimit-Reset is written (default seconds).
	ResetFormat ResetFormat
	// Headers is which rate-limit headers are sent (default plain).
	Headers HeaderStyle
	// Duplicates is how a duplicate OrderId is answered (default queued).
	Duplicates DuplicateMode
	// DedupWindow is how long an OrderId stays a duplicate, on the
	// simulated clock; 0 is forever. Only a conversion that was tracked
	// (processed without error) makes its OrderId a duplicate.
	DedupWindow time.Duration
	// CompleteAfter is how long, on the simulated clock, a submission
	// stays Queued (the first half) and In Progress (the second half)
	// before it is Complete and its action, if any, exists. Zero takes
	// DefaultCompleteAfter; a negative value completes it at once.
	CompleteAfter time.Duration
	// KeepSubmissions is how long, on the simulated clock, a submission
	// record can be read after it was made (default 90 days, as impact
	// keeps them); later its GET answers 404.
	KeepSubmissions time.Duration
	// LockAfter is how long after its event date an action locks: PENDING
	// until then, APPROVED after (default 27 days, the longest days-only
	// locking period).
	LockAfter time.Duration
	// Processing decides which submissions complete with an error.
	Processing Processing
	// RedateAfter, when set, re-dates the action of a conversion whose
	// event date is more than this before its submission to the
	// submission time (impact re-dates late conversions; how late is
	// undocumented): its EventDate and locking date follow the new date.
	RedateAfter time.Duration
	// OmitRetryAfter answers every 429 (a spent quota, an injected burst)
	// without Retry-After, as the brand API documents none: a client has
	// X-RateLimit-Reset (with a quota) or its own backoff.
	OmitRetryAfter bool
	// UpperCaseErrors answers validation errors in the envelope
	// {"Status","Message","Errors":[{"Field","Message"}]} instead of
	// {"Status","errors":[{"field","level","message"}]}.
	UpperCaseErrors bool
	// Seed seeds the random faults, so that a run can be repeated.
	Seed uint64
	// Faults are the random faults injected from the start.
	Faults Faults
	// Logger, when set, receives one debug line per request.
	Logger *slog.Logger
}

// Processing is how the simulator processes a queued conversion: the
// checks impact makes after the QUEUED answer, each of which makes the
// submission Complete with an ErrorType and ErrorReason and no action.
// The zero value tracks every conversion.
type Processing struct {
	// Campaigns are the CampaignIds with a contract; a conversion for
	// another fails as Contract Error / CONTRACT_NOT_FOUND. Empty: every
	// campaign has one.
	Campaigns []string
	// EventTypes are the event types (EventTypeId, ActionTrackerId or
	// EventTypeCode) the account has; another fails as Validation /
	// ACTIONTRACKER_NOT_FOUND. Empty: every event type exists.
	EventTypes []string
	// AssociationWindow, when set, fails a conversion whose event date is
	// more than this before its submission as Contract Error /
	// OUTSIDE_ASSOCIATION_WINDOW.
	AssociationWindow time.Duration
	// RestrictedPromoCodes fail a conversion whose OrderPromoCode is one
	// of them as Contract Error / RESTRICTED_PROMOCODE.
	RestrictedPromoCodes []string
	// ErrorRate is the share of the conversions that pass those checks
	// which fail anyway, with one of the four reasons drawn at random
	// (seeded by Config.Seed).
	ErrorRate float64
}

// Faults are injected at random, each request drawing its own, with the
// server's seeded random source.
type Faults struct {
	// Latency is the mean delay before a request is handled, uniformly
	// spread by ± LatencyJitter.
	Latency       time.Duration
	LatencyJitter time.Duration
	// SpikeRate is the share of requests delayed by Spike on top.
	SpikeRate float64
	Spike     time.Duration
	// ErrorRate is the share of requests answered 500, 502, 503 or 504
	// (they count against the quota; nothing is recorded).
	ErrorRate float64
	// DropRate is the share of connections closed before the request is
	// handled: nothing is recorded.
	DropRate float64
	// DropAfterRate is the share of connections closed after the
	// conversion was recorded and before the answer: an ambiguous send.
	DropAfterRate float64
	// SlowBodyRate is the share of accepted answers whose body is written
	// after SlowBody (the conversion is already recorded).
	SlowBodyRate float64
	SlowBody     time.Duration
	// TooManyRate is the share of requests that start a burst of
	// TooManyBurst answers 429 with Retry-After = RetryAfter (rounded up
	// to whole seconds) and no other rate-limit headers.
	TooManyRate  float64
	TooManyBurst int
	RetryAfter   time.Duration
}

// Defaults used when Config leaves them empty.
const (
	DefaultAccountSID      = "IRSIMULATOR"
	DefaultAuthToken       = "sim-token"
	DefaultCompleteAfter   = time.Minute
	DefaultKeepSubmissions = 90 * 24 * time.Hour
	DefaultLockAfter       = 27 * 24 * time.Hour
)

func (c Config) withDefaults() Config {
	if c.AccountSID == "" {
		c.AccountSID = DefaultAccountSID
	}
	if c.AuthToken == "" {
		c.AuthToken = DefaultAuthToken
	}
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.ResetFormat == "" {
		c.ResetFormat = ResetSeconds
	}
	if c.Headers == "" {
		c.Headers = HeadersPlain
	}
	if c.Duplicates == "" {
		c.Duplicates = DuplicateQueued
	}
	switch {
	case c.CompleteAfter == 0:
		c.CompleteAfter = DefaultCompleteAfter
	case c.CompleteAfter < 0:
		c.CompleteAfter = 0
	}
	if c.KeepSubmissions <= 0 {
		c.KeepSubmissions = DefaultKeepSubmissions
	}
	if c.LockAfter <= 0 {
		c.LockAfter = DefaultLockAfter
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
