package correct

import (
	"fmt"
	"time"

	"convpipe/pipeline"
)

// The guard's defaults.
const (
	// DefaultMaxShare is the largest share of a run's accepted orders
	// that may be corrected at once.
	DefaultMaxShare = 0.05
	// DefaultGuardMin is how many corrections a run may always make: the
	// guard holds only beyond it, so that a small shop's one return is
	// not a mass change.
	DefaultGuardMin = 10
)

// MassChangeError is the guard's refusal: more of the accepted orders
// would be corrected than a shop's changes explain (a changed OrderId
// template, a new currency in the mapping). Nothing was corrected.
type MassChangeError struct {
	Planned, Accepted int64
	MaxShare          float64
	GuardMin          int64
}

func (e *MassChangeError) Error() string {
	return fmt.Sprintf("corrections: %d of the %d accepted orders (%.1f%%) would be corrected, more than corrections.max_share (%.1f%%) and more than corrections.guard_min (%d): "+
		"that looks like a change of the mapping (a new currency, another OrderId template), not of the orders, and would rewrite impact's history; nothing was corrected. "+
		"Check `convpipe corrections plan`; if the corrections are right, apply them with --max-share 100%% (or set corrections.max_share)",
		e.Planned, e.Accepted, 100*float64(e.Planned)/float64(max(e.Accepted, e.Planned)), 100*e.MaxShare, e.GuardMin)
}

// Guard refuses planned corrections out of accepted orders when they are
// more than maxShare of them and more than guardMin.
func Guard(planned, accepted int64, maxShare float64, guardMin int64) error {
	if planned <= guardMin || float64(planned) <= maxShare*float64(max(accepted, planned)) {
		return nil
	}
	return &MassChangeError{Planned: planned, Accepted: accepted, MaxShare: maxShare, GuardMin: guardMin}
}

// limit says, before a request is spent, why impact can no longer take c:
// its action locked (locking known, now past it), reversed, or its
// modifications spent. "" when it can.
func limit(c pipeline.Correction, reversed bool, modifications int, locking time.Time, now time.Time) string {
	switch {
	case reversed:
		return "the action is reversed: a reversal is final"
	case !locking.IsZero() && !now.Before(locking):
		return fmt.Sprintf("the action locked on %s: impact takes no change after its locking date", locking.UTC().Format(time.RFC3339))
	case c.Kind != pipeline.CorrectReversal && modifications >= MaxModifications:
		return fmt.Sprintf("the action took %d modifications, impact's limit", modifications)
	}
	return ""
}

// MaxModifications is how many modifications impact takes for one
// action.
const MaxModifications = 1000
