package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sinks"
)

// parseReserve parses --reserve: a percentage ("20%") or a fraction
// ("0.2") of each quota window, from 0 to less than all of it. It needs
// a shared ledger (PostgreSQL, or SQLite on one machine), where the
// account's quota is kept.
func parseReserve(s string, lc ledger.Config) (float64, error) {
	if s == "" {
		return 0, nil
	}
	if !lc.Shared {
		return 0, errors.New("--reserve: needs a shared ledger (ledger.shared: true), where runs of the account share its quota")
	}
	num, pct := strings.CutSuffix(strings.TrimSpace(s), "%")
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if pct {
		v /= 100
	}
	if err != nil || !(v >= 0 && v < 1) {
		return 0, fmt.Errorf("--reserve: %q: want a part of the quota such as 20%% or 0.2 (at least 0, less than all of it)", s)
	}
	return v, nil
}

// shareQuota makes the run's sink take its requests from the account's
// quota in a shared ledger, so that the account's runs side by side
// together stay within it (and leave --reserve of it to the others).
func (j *runJob) shareQuota(sink pipeline.Sink) error {
	imp, ok := sink.(*sinks.Impact)
	if !ok || j.f.dryRun || !j.cfg.Ledger.Shared {
		return nil
	}
	if err := imp.ShareQuota(j.led, j.reserve); err != nil {
		return configError{fmt.Errorf("--reserve: %w", err)}
	}
	return nil
}
