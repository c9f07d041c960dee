package main

import (
	"fmt"
	"net/http"
	"time"

	"convpipe/sim"
	"convpipe/sinks"
)

// The transient-faults runs: the configured rate, the default workers, a
// simulator that answers a share of requests with a 5xx (nothing
// recorded, so the retry is accepted).
const (
	faultRate  = 50
	faultFor   = 30 * time.Second
	faultShare = 0.10
)

// faultStats is what the simulator saw of one run under faults.
type faultStats struct {
	cmd                string
	requests, accepted int
	failed5xx          int
	rate, acceptedRate float64
	conns              int
}

// faults is figure 3b: the send rate with 10% transient faults beside the
// same run without faults.
func (b *bench) faults() error {
	clean, err := b.faultRun("faults-none", 0)
	if err != nil {
		return err
	}
	faulty, err := b.faultRun("faults-10", faultShare)
	if err != nil {
		return err
	}
	workers := sinks.DefaultConfig().Workers
	sec := &section{Title: "3b. Sending under transient faults"}
	sec.Text = append(sec.Text, fmt.Sprintf(
		"`convpipe run` (the built binary) at `sink.rate: %d/s` with the default `sink.workers: %d`, for %s, against the simulator answering after 50 ms ± 25 ms; "+
			"in the second run it answers %.0f%% of the requests with a 500, 502, 503 or 504 (counted against the quota, nothing recorded), which the sink retries with backoff (`sink.backoff_initial: 1s`). "+
			"A conversion waiting to retry holds no request slot: the engine keeps more conversions in progress than the sink has requests in flight. "+
			"*Steady state* leaves out the first second and the last one before `--max-duration` stops the run (after it, only retries of conversions already taken up go out).", faultRate, workers, faultFor, 100*faultShare))
	sec.Commands = append(sec.Commands, faulty.cmd)
	sec.Table = [][]string{{"", "no faults", fmt.Sprintf("%.0f%% transient faults", 100*faultShare)}}
	for _, row := range []struct {
		name string
		f    func(s faultStats) string
	}{
		{"Requests", func(s faultStats) string { return fmtInt(int64(s.requests)) }},
		{"Steady-state request rate", func(s faultStats) string {
			return fmt.Sprintf("%.1f/s (%.1f%% of %d/s)", s.rate, 100*s.rate/faultRate, faultRate)
		}},
		{"Steady-state accepted rate", func(s faultStats) string { return fmt.Sprintf("%.1f/s", s.acceptedRate) }},
		{"5xx answers", func(s faultStats) string { return fmtInt(int64(s.failed5xx)) }},
		{"TCP connections opened", func(s faultStats) string { return fmt.Sprintf("%d (workers: %d)", s.conns, workers) }},
	} {
		sec.Table = append(sec.Table, []string{row.name, row.f(clean), row.f(faulty)})
	}
	b.report.section(sec)
	b.report.add(verdict{
		Figure:   fmt.Sprintf("Send rate with %.0f%% transient faults, %d/s, default workers (%d)", 100*faultShare, faultRate, workers),
		Measured: fmt.Sprintf("%.1f/s = %.1f%% (without faults: %.1f/s = %.1f%%)", faulty.rate, 100*faulty.rate/faultRate, clean.rate, 100*clean.rate/faultRate),
		Target:   "≥ 90% of the configured rate",
		Met:      met(faulty.rate >= 0.9*faultRate),
		Why:      "retries wait off the request slots: a conversion in backoff does not hold one of the sink's workers.",
	})
	return nil
}

// faultRun runs convpipe for faultFor against a simulator that answers
// share of the requests with a 5xx.
func (b *bench) faultRun(name string, share float64) (faultStats, error) {
	s := sim.New(sim.Config{Quota: 1 << 30, Window: time.Second,
		Faults: sim.Faults{Latency: 50 * time.Millisecond, LatencyJitter: 25 * time.Millisecond, ErrorRate: share}})
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		return faultStats{}, err
	}
	defer s.Close()
	cfg, err := b.sendConfig(name, url, fmt.Sprintf("%d/s", faultRate), 1, sinks.DefaultConfig().Workers)
	if err != nil {
		return faultStats{}, err
	}
	run, err := b.send(s, cfg, faultFor, nil)
	if err != nil {
		return faultStats{}, err
	}
	rs := run.requests
	if len(rs) < 2 {
		return faultStats{}, fmt.Errorf("%s: only %d requests arrived", name, len(rs))
	}
	// The steady state ends a second before --max-duration stops the
	// run: after it, only the retries of conversions already taken up
	// go out (within the grace period), which says nothing of the rate.
	first, last := rs[0].Time, rs[len(rs)-1].Time
	from, to := first.Add(time.Second), minTime(last, first.Add(faultFor)).Add(-time.Second)
	st := faultStats{cmd: run.cmd, requests: len(rs), conns: run.conns}
	ok, steady := countStatus(rs, from, to, http.StatusOK)
	st.rate = float64(steady) / to.Sub(from).Seconds()
	st.acceptedRate = float64(ok) / to.Sub(from).Seconds()
	for _, r := range rs {
		if r.Status >= 500 {
			st.failed5xx++
		}
		if r.Status == http.StatusOK {
			st.accepted++
		}
	}
	b.logf("%s: %d requests, steady %.1f/s (accepted %.1f/s), 5xx %d, conns %d", name, st.requests, st.rate, st.acceptedRate, st.failed5xx, st.conns)
	return st, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
