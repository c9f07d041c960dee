package mapping

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"convpipe/pipeline"
)

// DefaultMaxEventAge is how old an order's EventDate may be by default:
// 88 days, the limit impact itself applies to batch files. impact
// re-dates a conversion submitted long after its event to the time of
// submission (and pays it under the contract of that day), and a
// contract's referral window rarely reaches further back.
const DefaultMaxEventAge = 88 * 24 * time.Hour

// Age is a length of time written in days ("88d") or as a Go duration
// ("2160h", "90m").
type Age time.Duration

// ParseAge reads "88d", "1.5d" or a Go duration such as "36h".
func ParseAge(s string) (Age, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(days, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q: want days (88d) or a duration (36h)", s)
		}
		return Age(n * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want days (88d) or a duration (36h)", s)
	}
	return Age(d), nil
}

// UnmarshalYAML reads an Age from a YAML scalar.
func (a *Age) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseAge(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*a = v
	return nil
}

// String writes whole days as "88d", anything else as a Go duration.
func (a Age) String() string {
	d := time.Duration(a)
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// tooOldText is in the text of every problem of an order older than
// max_event_age.
const tooOldText = "older than max_event_age"

// IsTooOld reports whether m is the problem of an order older than
// max_event_age.
func IsTooOld(m pipeline.Message) bool {
	return m.Field == "EventDate" && strings.Contains(m.Text, tooOldText)
}

// tooOld is the problem with an EventDate t that is older than maxAge at
// now, or "".
func tooOld(t, now time.Time, maxAge time.Duration) string {
	age := now.Sub(t)
	if maxAge <= 0 || age <= maxAge {
		return ""
	}
	return fmt.Sprintf("dated %s, %d days ago, "+tooOldText+" %s: impact would re-date it to today or not attribute it; "+
		"raise max_event_age (or run with --allow-old) if your contract allows it",
		t.Format(time.DateOnly), int(age/(24*time.Hour)), Age(maxAge))
}
