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
	// message says the OrderId is a duplicate (the default).
	DuplicateError DuplicateMode = "error"
	// DuplicateReason answers 400 with the other envelope, a top-level
	// Message and ErrorReason CONV_DUPLICATE.
	DuplicateReason DuplicateMode = "reason"
	// DuplicateQueued answers 200 QUEUED; only the submission record says
	// CONV_DUPLICATE. The duplicate is not added to Accepted.
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
	// Duplicates is how a duplicate OrderId is answered (default error).
	Duplicates DuplicateMode
	// DedupWindow is how long an OrderId stays a duplicate; 0 is forever.
	DedupWindow time.Duration
	// CompleteAfter is how long a submission stays Queued/In Progress
	// before it is Complete.
	CompleteAfter time.Duration
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
	DefaultAccountSID = "IRSIMULATOR"
	DefaultAuthToken  = "sim-token"
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
		c.Duplicates = DuplicateError
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
