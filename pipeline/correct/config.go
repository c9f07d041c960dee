package correct

import (
	"fmt"
	"strconv"
	"strings"
)

// Config is the corrections section of the configuration file.
type Config struct {
	// MaxShare is the largest share of a run's accepted orders that may
	// be corrected at once, "5%" or "0.05" (default 5%).
	MaxShare string `yaml:"max_share,omitempty"`
	// GuardMin is how many corrections are always allowed, whatever the
	// share (default 10).
	GuardMin int `yaml:"guard_min,omitempty"`
}

// ParseShare reads a share: "5%", "100%" or "0.05", from 0 to 1.
func ParseShare(s string) (float64, error) {
	t := strings.TrimSpace(s)
	pct := strings.HasSuffix(t, "%")
	f, err := strconv.ParseFloat(strings.TrimSuffix(t, "%"), 64)
	if pct {
		f /= 100
	}
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is not a share: 5%%, 100%% or 0.05", s)
	}
	return f, nil
}

// Validate reports the first bad field of c.
func (c Config) Validate() error {
	if c.MaxShare != "" {
		if _, err := ParseShare(c.MaxShare); err != nil {
			return fmt.Errorf("corrections.max_share: %w", err)
		}
	}
	if c.GuardMin < 0 {
		return fmt.Errorf("corrections.guard_min: must be >= 0")
	}
	return nil
}

// Share returns MaxShare as a number, DefaultMaxShare when unset.
func (c Config) Share() float64 {
	if f, err := ParseShare(c.MaxShare); err == nil && c.MaxShare != "" {
		return f
	}
	return DefaultMaxShare
}

// Min returns GuardMin, DefaultGuardMin when unset.
func (c Config) Min() int64 {
	if c.GuardMin > 0 {
		return int64(c.GuardMin)
	}
	return DefaultGuardMin
}
