package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"convpipe/sim"
)

// simFlags are the flags of `convpipe sim`: the simulator's configuration,
// and the flags checked before they go into it.
type simFlags struct {
	addr    string
	sid     string
	verbose bool
	cfg     sim.Config
	reset   string
	headers string
	dups    string
}

func newSimCmd() *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the impact.com Conversions API simulator on loopback",
		Long: `sim runs a simulator of impact.com's Conversions API on a loopback address,
for trial runs and tests: point sink.base_url at it. It accepts the account SID
from --account-sid or IMPACT_ACCOUNT_SID and the token from IMPACT_AUTH_TOKEN,
checks the documented fields, keeps a quota with the rate-limit headers, and
can inject faults. It runs until interrupted (Ctrl-C), then prints what it saw.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runSim(cmd, &f) },
	}
	f.register(cmd.Flags())
	return cmd
}

// register defines the flags of `convpipe sim` on fs.
func (f *simFlags) register(fs *pflag.FlagSet) {
	cfg := &f.cfg
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8089", "loopback address to listen on")
	fs.StringVar(&f.sid, "account-sid", "", "account SID to accept (default $IMPACT_ACCOUNT_SID); the token is read from $IMPACT_AUTH_TOKEN only")
	fs.IntVar(&cfg.Quota, "quota", 1000, "requests allowed per window (0: no quota)")
	fs.DurationVar(&cfg.Window, "window", time.Hour, "quota window length")
	fs.StringVar(&f.reset, "reset-format", string(sim.ResetSeconds), "X-RateLimit-Reset as seconds until the reset (seconds) or as a Unix time (unix)")
	fs.StringVar(&f.headers, "headers", string(sim.HeadersPlain), "rate-limit headers: plain (X-RateLimit-*) or hour (X-RateLimit-*-hour, RateLimit-Reset)")
	fs.StringVar(&f.dups, "duplicates", string(sim.DuplicateQueued), "a duplicate OrderId is answered QUEUED with CONV_DUPLICATE in the submission only (queued), as a 400 field error (error), or a 400 with ErrorReason CONV_DUPLICATE (reason)")
	fs.DurationVar(&cfg.DedupWindow, "dedup-window", 0, "how long an OrderId stays a duplicate (0: forever)")
	fs.DurationVar(&cfg.CompleteAfter, "complete-after", 5*time.Second, "how long a submission takes to be Complete")
	fs.StringSliceVar(&cfg.Processing.Campaigns, "campaigns", nil, "CampaignIds with a contract; others complete as CONTRACT_NOT_FOUND (default: all)")
	fs.StringSliceVar(&cfg.Processing.EventTypes, "event-types", nil, "event types (ids or codes) the account has; others complete as ACTIONTRACKER_NOT_FOUND (default: all)")
	fs.DurationVar(&cfg.Processing.AssociationWindow, "association-window", 0, "event dates older than this at submission complete as OUTSIDE_ASSOCIATION_WINDOW (0: none)")
	fs.StringSliceVar(&cfg.Processing.RestrictedPromoCodes, "restricted-promo-codes", nil, "OrderPromoCodes that complete as RESTRICTED_PROMOCODE")
	fs.Float64Var(&cfg.Processing.ErrorRate, "processing-error-rate", 0, "share of the other conversions that complete with one of those errors at random")
	fs.BoolVar(&cfg.OmitRetryAfter, "omit-retry-after", false, "answer 429 without Retry-After")
	fs.DurationVar(&cfg.RedateAfter, "redate-after", 0, "re-date the action of a conversion whose event date is older than this at submission to the submission time (0: never)")
	fs.BoolVar(&cfg.UpperCaseErrors, "upper-case-errors", false, `answer validation errors as {"Status","Message","Errors":[{"Field","Message"}]}`)
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random faults")
	fs.DurationVar(&cfg.Faults.Latency, "latency", 0, "mean latency of an answer")
	fs.DurationVar(&cfg.Faults.LatencyJitter, "latency-jitter", 0, "latency spread (±)")
	fs.Float64Var(&cfg.Faults.SpikeRate, "spike-rate", 0, "share of requests delayed by --spike")
	fs.DurationVar(&cfg.Faults.Spike, "spike", 2*time.Second, "latency spike")
	fs.Float64Var(&cfg.Faults.ErrorRate, "error-rate", 0, "share of requests answered 500/502/503/504")
	fs.Float64Var(&cfg.Faults.DropRate, "drop-rate", 0, "share of connections closed before the request is handled")
	fs.Float64Var(&cfg.Faults.DropAfterRate, "drop-after-rate", 0, "share of connections closed after the conversion was recorded (ambiguous sends)")
	fs.Float64Var(&cfg.Faults.SlowBodyRate, "slow-body-rate", 0, "share of accepted answers whose body is delayed by --slow-body")
	fs.DurationVar(&cfg.Faults.SlowBody, "slow-body", 5*time.Second, "delay of a slow body")
	fs.Float64Var(&cfg.Faults.TooManyRate, "429-rate", 0, "share of requests that start a burst of 429 answers")
	fs.IntVar(&cfg.Faults.TooManyBurst, "429-burst", 3, "length of a 429 burst")
	fs.DurationVar(&cfg.Faults.RetryAfter, "retry-after", 2*time.Second, "Retry-After of a 429 burst")
	fs.BoolVar(&f.verbose, "verbose", false, "log every request")
}

// runSim checks the flags, then runs the simulator until interrupted.
func runSim(cmd *cobra.Command, f *simFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	f.cfg.Logger = simLogger(cmd.ErrOrStderr(), f.verbose)
	return serveSim(cmd, f.addr, f.cfg)
}

// check checks the flags and completes the simulator's configuration with
// them: the credentials, the header formats, the duplicate mode.
func (f *simFlags) check() error {
	if err := checkLoopback(f.addr); err != nil {
		return err
	}
	if f.sid == "" {
		f.sid = os.Getenv("IMPACT_ACCOUNT_SID")
	}
	cfg := &f.cfg
	cfg.AccountSID = f.sid
	cfg.AuthToken = os.Getenv("IMPACT_AUTH_TOKEN")
	if cfg.AccountSID == "" || cfg.AuthToken == "" {
		return errors.New("sim: set IMPACT_ACCOUNT_SID (or --account-sid) and IMPACT_AUTH_TOKEN: the credentials the simulator accepts")
	}
	if cfg.ResetFormat = sim.ResetFormat(f.reset); !slices.Contains([]sim.ResetFormat{sim.ResetSeconds, sim.ResetUnix}, cfg.ResetFormat) {
		return fmt.Errorf("sim: --reset-format %q: seconds or unix", f.reset)
	}
	if cfg.Headers = sim.HeaderStyle(f.headers); !slices.Contains([]sim.HeaderStyle{sim.HeadersPlain, sim.HeadersHour}, cfg.Headers) {
		return fmt.Errorf("sim: --headers %q: plain or hour", f.headers)
	}
	if cfg.Duplicates = sim.DuplicateMode(f.dups); !slices.Contains([]sim.DuplicateMode{sim.DuplicateError, sim.DuplicateReason, sim.DuplicateQueued}, cfg.Duplicates) {
		return fmt.Errorf("sim: --duplicates %q: error, reason or queued", f.dups)
	}
	return checkShares(cfg.Faults, cfg.Processing.ErrorRate)
}

// checkLoopback checks that addr is a host:port on loopback.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("sim: --addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("sim: --addr %q: the simulator listens on loopback only", addr)
	}
	return nil
}

// checkShares checks that every fault rate is a share between 0 and 1.
func checkShares(fl sim.Faults, processing float64) error {
	for name, r := range map[string]float64{
		"error-rate": fl.ErrorRate, "drop-rate": fl.DropRate, "drop-after-rate": fl.DropAfterRate,
		"slow-body-rate": fl.SlowBodyRate, "spike-rate": fl.SpikeRate, "429-rate": fl.TooManyRate,
		"processing-error-rate": processing,
	} {
		if r < 0 || r > 1 {
			return fmt.Errorf("sim: --%s %v: a share between 0 and 1", name, r)
		}
	}
	return nil
}

// simLogger logs to w at info level, or every request (debug) if verbose.
func simLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// serveSim runs the simulator on addr until SIGINT or SIGTERM, then
// prints what it saw.
func serveSim(cmd *cobra.Command, addr string, cfg sim.Config) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s := sim.New(cfg)
	url, err := s.Start(addr)
	if err != nil {
		return err
	}
	quota := "no quota"
	if cfg.Quota > 0 {
		quota = fmt.Sprintf("quota %d per %s", cfg.Quota, cfg.Window)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "convpipe sim: listening on %s (%s); Ctrl-C stops\n", url, quota)
	<-ctx.Done()
	stop()
	if err := s.Close(); err != nil {
		return fmt.Errorf("sim: close: %w", err)
	}
	byStatus := statusCounts(s.Counts())
	fmt.Fprintf(cmd.ErrOrStderr(), "convpipe sim: stopped; %d accepted, %d duplicates, %d connections; requests by status {%s}\n",
		len(s.Accepted()), s.Duplicates(), s.Connections(), byStatus)
	return nil
}

// statusCounts lists the requests per status, by status: "200: 5, 429: 1".
func statusCounts(counts map[int]int) string {
	statuses := make([]int, 0, len(counts))
	for st := range counts {
		statuses = append(statuses, st)
	}
	slices.Sort(statuses)
	var parts []string
	for _, st := range statuses {
		parts = append(parts, fmt.Sprintf("%d: %d", st, counts[st]))
	}
	return strings.Join(parts, ", ")
}
