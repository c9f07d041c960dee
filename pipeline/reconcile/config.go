package reconcile

import (
	"errors"
	"time"
)

// Config is the reconcile section of the configuration: when a
// conversion is asked about, and how much of the quota reconciling may
// take.
type Config struct {
	// Settle is how long after its acceptance a conversion is first asked
	// about (default 1h): impact processes submissions in that time.
	Settle time.Duration `yaml:"settle"`
	// Share is the share of the hourly quota (0 to 1) that the reconcile
	// step at the end of a run may take while orders are left to send
	// (the run stopped before sending them all). Default 0: only what
	// sending leaves.
	Share float64 `yaml:"share"`
	// MaxRequests bounds the requests of one reconcile; 0 is no bound but
	// the quota and the run's deadline.
	MaxRequests int `yaml:"max_requests"`
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Settle < 0:
		return errors.New("reconcile.settle: must be >= 0 (0 takes the default, 1h)")
	case c.Share < 0 || c.Share > 1:
		return errors.New("reconcile.share: must be from 0 to 1")
	case c.MaxRequests < 0:
		return errors.New("reconcile.max_requests: must be >= 0")
	}
	return nil
}
