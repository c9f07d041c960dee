//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package ledger

import (
	"errors"
	"os"
)

var errNoFlock = errors.New("advisory file locks are not supported on this platform")

func flockNB(*os.File, bool) error { return errNoFlock }

func funlock(*os.File) error { return errNoFlock }
