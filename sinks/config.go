package sinks

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// The environment variables that hold the credentials by default.
const (
	EnvAccountSID = "IMPACT_ACCOUNT_SID"
	EnvAuthToken  = "IMPACT_AUTH_TOKEN"
)

// DefaultBaseURL is the API's base URL.
const DefaultBaseURL = "https://api.impact.com"

// Config configures the impact.com sink (the `sink:` section of the
// configuration file). Zero values take the defaults of DefaultConfig.
type Config struct {
	// BaseURL is the API's base URL. Plain http:// is refused except to
	// loopback (127.0.0.0/8, ::1, localhost), where the simulator runs.
	BaseURL string `yaml:"base_url"`
	// AccountSID is the account SID, or "${VAR}" to read it from the
	// environment; empty reads IMPACT_ACCOUNT_SID.
	AccountSID string `yaml:"account_sid"`
	// AuthToken must be empty (read IMPACT_AUTH_TOKEN) or "${VAR}": a
	// token written in the configuration is refused.
	AuthToken string `yaml:"auth_token"`
	// IRVersion, when set, is sent as the IR-Version header.
	IRVersion string `yaml:"ir_version"`
	// Rate is the account's quota as "1000/h", "20/s", "50/min" or
	// "N/<duration>" ("100/15m").
	Rate string `yaml:"rate"`
	// Burst is how many requests may go at once after a quiet spell.
	Burst int `yaml:"burst"`
	// Workers is how many conversions are sent at the same time. It sizes
	// the connection pool; the caller runs as many goroutines.
	Workers int `yaml:"workers"`
	// ConnectTimeout bounds connecting (and the TLS handshake).
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// RequestTimeout bounds one attempt, from sending to the whole answer.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxAttempts bounds the requests made for one conversion.
	MaxAttempts int `yaml:"max_attempts"`
	// MaxElapsed bounds the time one conversion may spend in attempts and
	// backoff, not counting the time spent waiting for the quota.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
	// BackoffInitial and BackoffMax shape the exponential backoff between
	// attempts (with ±50% jitter).
	BackoffInitial time.Duration `yaml:"backoff_initial"`
	BackoffMax     time.Duration `yaml:"backoff_max"`
	// MaxWait bounds every wait the server asks for: a Retry-After, the
	// reset of a spent rate-limit window, the spacing an hourly limit
	// implies. A longer one is a protocol error: it is logged (once per
	// header), and the sink waits MaxWait instead.
	MaxWait time.Duration `yaml:"max_wait"`
	// ListPageSize is the page size of action listings (reconcile):
	// impact's default and largest, 20,000, down to its minimum, 2,000.
	ListPageSize int `yaml:"list_page_size"`
	// Kind is the way of sending: "api" (one request per conversion, the
	// default) or "batch" (batch files over SFTP, see Batch).
	Kind string `yaml:"kind"`
	// Batch configures the batch way (kind: batch, or run --via batch).
	Batch BatchConfig `yaml:"batch"`
}

// DefaultConfig returns the defaults: the public API, 1000 requests an
// hour, 4 workers, connect timeout 10s, request timeout 30s, 10 attempts
// within 15 minutes per conversion, and no wait the server asks for
// longer than an hour (max_wait).
func DefaultConfig() Config {
	return Config{
		BaseURL:        DefaultBaseURL,
		Rate:           "1000/h",
		Burst:          1,
		Workers:        4,
		ConnectTimeout: 10 * time.Second,
		RequestTimeout: 30 * time.Second,
		MaxAttempts:    10,
		MaxElapsed:     15 * time.Minute,
		BackoffInitial: time.Second,
		BackoffMax:     time.Minute,
		MaxWait:        time.Hour,
		ListPageSize:   ActionPageSize,
	}
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.BaseURL == "" {
		c.BaseURL = d.BaseURL
	}
	if c.Rate == "" {
		c.Rate = d.Rate
	}
	if c.Burst == 0 {
		c.Burst = d.Burst
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.MaxElapsed == 0 {
		c.MaxElapsed = d.MaxElapsed
	}
	if c.BackoffInitial == 0 {
		c.BackoffInitial = d.BackoffInitial
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = d.BackoffMax
	}
	if c.MaxWait == 0 {
		c.MaxWait = d.MaxWait
	}
	if c.ListPageSize == 0 {
		c.ListPageSize = d.ListPageSize
	}
	return c
}

var (
	envRef  = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)
	sidRe   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	digitRe = regexp.MustCompile(`^[0-9]+$`)
)

// Settings is a Config resolved once: defaults applied, every field
// checked, the rate and the endpoint parsed. Resolve makes it; a run
// resolves its configuration once, when it is loaded, and opens the sink
// from the Settings (NewFromSettings).
type Settings struct {
	Config
	// Limit is Rate parsed.
	Limit rate.Limit
	// Base is BaseURL as the endpoint's base, without a trailing slash.
	Base string
}

// WithBaseURL returns s sending to raw instead: for an endpoint known only
// once the rest is resolved (the built-in simulator's).
func (s Settings) WithBaseURL(raw string) (Settings, error) {
	base, err := endpointBase(raw)
	if err != nil {
		return s, fmt.Errorf("sink.base_url: %w", err)
	}
	s.BaseURL, s.Base = raw, base
	return s, nil
}

// Validate checks the configuration (with defaults for zero fields) and
// returns every problem, each naming its field ("sink.rate: ..."). It does
// not require the credentials to be set: New does, so that a dry run
// needs none.
func (c Config) Validate() error {
	_, err := c.Resolve()
	return err
}

// Resolve applies the defaults to c, checks it as Validate does and
// parses its rate and endpoint.
func (c Config) Resolve() (Settings, error) {
	c = c.WithDefaults()
	set := Settings{Config: c}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("sink.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	var err error
	if set.Base, err = endpointBase(c.BaseURL); err != nil {
		bad("base_url", "%v", err)
	}
	if c.AccountSID != "" && !envRef.MatchString(c.AccountSID) && !sidRe.MatchString(c.AccountSID) {
		bad("account_sid", "must be an account SID (letters, digits, - and _) or ${VAR}")
	}
	if c.AuthToken != "" && !envRef.MatchString(c.AuthToken) {
		bad("auth_token", "a token must not be written in the configuration: leave it empty to read %s, or write ${VAR}", EnvAuthToken)
	}
	if c.IRVersion != "" && !digitRe.MatchString(c.IRVersion) {
		bad("ir_version", "must be a version number such as 14, not %q", c.IRVersion)
	}
	if set.Limit, err = ParseRate(c.Rate); err != nil {
		bad("rate", "%v", err)
	}
	positive := func(field string, n int) {
		if n < 1 {
			bad(field, "must be > 0")
		}
	}
	positive("burst", c.Burst)
	positive("workers", c.Workers)
	positive("max_attempts", c.MaxAttempts)
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"connect_timeout", c.ConnectTimeout}, {"request_timeout", c.RequestTimeout},
		{"max_elapsed", c.MaxElapsed}, {"backoff_initial", c.BackoffInitial}, {"backoff_max", c.BackoffMax},
		{"max_wait", c.MaxWait},
	} {
		if d.v <= 0 {
			bad(d.field, "must be > 0")
		}
	}
	if c.ListPageSize < MinActionPageSize || c.ListPageSize > ActionPageSize {
		bad("list_page_size", "must be from %d to %d (impact's limits)", MinActionPageSize, ActionPageSize)
	}
	if c.BackoffMax < c.BackoffInitial {
		bad("backoff_max", "must be >= backoff_initial (%s)", c.BackoffInitial)
	}
	switch c.Kind {
	case "", KindAPI:
	case KindBatch:
		if err := c.Batch.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		bad("kind", "must be %s or %s, not %q", KindAPI, KindBatch, c.Kind)
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	return set, nil
}

// Credentials resolves the account SID and auth token: from the
// configuration's "${VAR}" references or literal SID, else from
// IMPACT_ACCOUNT_SID and IMPACT_AUTH_TOKEN. getenv is os.Getenv when nil.
// The error names the variable to set, never a value.
func (c Config) Credentials(getenv func(string) string) (sid, token string, err error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	resolve := func(field, v, env string) (string, error) {
		name := env
		if m := envRef.FindStringSubmatch(v); m != nil {
			name = m[1]
		} else if v != "" {
			return v, nil
		}
		s := strings.TrimSpace(getenv(name))
		if s == "" {
			return "", fmt.Errorf("sink.%s: not set: set the environment variable %s", field, name)
		}
		return s, nil
	}
	if sid, err = resolve("account_sid", c.AccountSID, EnvAccountSID); err != nil {
		return "", "", err
	}
	if !sidRe.MatchString(sid) {
		return "", "", errors.New("sink.account_sid: must be an account SID (letters, digits, - and _)")
	}
	if c.AuthToken != "" && !envRef.MatchString(c.AuthToken) {
		return "", "", fmt.Errorf("sink.auth_token: a token must not be written in the configuration: set %s", EnvAuthToken)
	}
	if token, err = resolve("auth_token", c.AuthToken, EnvAuthToken); err != nil {
		return "", "", err
	}
	return sid, token, nil
}

const redacted = "[redacted]"

// redactedCopy returns c with credentials that are not "${VAR}"
// references replaced, and the base URL's userinfo hidden.
func (c Config) redactedCopy() Config {
	c.BaseURL = hideUserinfo(c.BaseURL)
	if c.AuthToken != "" && !envRef.MatchString(c.AuthToken) {
		c.AuthToken = redacted
	}
	if c.AccountSID != "" && !envRef.MatchString(c.AccountSID) {
		c.AccountSID = redacted
	}
	return c
}

// String returns the configuration with the credentials redacted.
func (c Config) String() string {
	type plain Config
	return fmt.Sprintf("%+v", plain(c.redactedCopy()))
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }

// MarshalYAML returns the configuration with the credentials redacted, so
// that configuration dumps never show them.
func (c Config) MarshalYAML() (any, error) {
	type plain Config
	return plain(c.redactedCopy()), nil
}

// ParseRate parses a rate as people write it: "1000/h", "20/s", "50/min",
// "1/hour", "100/15m". The count may be a decimal number.
func ParseRate(s string) (rate.Limit, error) {
	n, d, err := ParseQuota(s)
	if err != nil {
		return 0, err
	}
	return rate.Limit(n / d.Seconds()), nil
}

// ParseQuota parses a rate as ParseRate does, into its count and its
// window ("6000/min": 6000 and a minute).
func ParseQuota(s string) (float64, time.Duration, error) {
	num, per, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return 0, 0, fmt.Errorf("%q: want N/unit, such as 1000/h, 20/s or 50/min", s)
	}
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || n <= 0 || n > 1e9 {
		return 0, 0, fmt.Errorf("%q: the count must be a number > 0", s)
	}
	var d time.Duration
	switch strings.ToLower(strings.TrimSpace(per)) {
	case "s", "sec", "second":
		d = time.Second
	case "m", "min", "minute":
		d = time.Minute
	case "h", "hr", "hour":
		d = time.Hour
	case "d", "day":
		d = 24 * time.Hour
	default:
		d, err = time.ParseDuration(strings.TrimSpace(per))
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("%q: unknown unit %q: use s, min, h, day or a duration such as 15m", s, per)
		}
	}
	return n, d, nil
}

var errURLCredentials = errors.New("must not contain credentials: they come from the environment")

// endpointBase checks the base URL and returns it without a trailing
// slash. Plain http is allowed only to loopback hosts. No error shows
// what may be the URL's userinfo.
func endpointBase(raw string) (string, error) {
	shown := hideUserinfo(raw)
	u, err := url.Parse(raw)
	if err != nil {
		return "", parseError(raw, shown, err)
	}
	if u.User != nil {
		return "", errURLCredentials
	}
	if u.Host == "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: want https://host", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: must not have a query or fragment", shown)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", fmt.Errorf("%q: plain http is refused except to loopback (127.0.0.1, ::1, localhost): use https", shown)
		}
	default:
		return "", fmt.Errorf("%q: the scheme must be https", shown)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// parseError is the error of a URL that did not parse: url.Parse's, which
// quotes the URL, made for shown, raw with its userinfo hidden. When
// shown parses, what did not parse was the userinfo: the URL holds
// credentials.
func parseError(raw, shown string, err error) error {
	if shown != raw {
		if _, err = url.Parse(shown); err == nil {
			return errURLCredentials
		}
	}
	return fmt.Errorf("invalid URL: %w", err)
}

// userinfoMark replaces a URL's userinfo: valid there, so that the rest
// of the URL parses as it would.
const userinfoMark = "redacted"

// hideUserinfo returns raw with all that may be userinfo, from after the
// scheme's "://" (or from the start) to the last "@", replaced. A raw
// without "@" is returned as it is.
func hideUserinfo(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	start := 0
	if i := strings.Index(raw[:at], "://"); i >= 0 {
		start = i + len("://")
	}
	return raw[:start] + userinfoMark + raw[at:]
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
