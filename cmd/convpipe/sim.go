package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"convpipe/sim"
)

func newSimCmd() *cobra.Command {
	var (
		addr    string
		sid     string
		verbose bool
		cfg     sim.Config
		reset   string
		headers string
		dups    string
	)
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run the impact.com Conversions API simulator on loopback",
		Long: `sim runs a simulator of impact.com's Conversions API on a loopback address,
for trial runs and tests: point sink.base_url at it. It accepts the account SID
from --account-sid or IMPACT_ACCOUNT_SID and the token from IMPACT_AUTH_TOKEN,
checks the documented fields, keeps a quota with the rate-limit headers, and
can inject faults. It runs until interrupted (Ctrl-C), then prints what it saw.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("sim: --addr %q: %w", addr, err)
			}
			if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
				return fmt.Errorf("sim: --addr %q: the simulator listens on loopback only", addr)
			}
			if sid == "" {
				sid = os.Getenv("IMPACT_ACCOUNT_SID")
			}
			cfg.AccountSID = sid
			cfg.AuthToken = os.Getenv("IMPACT_AUTH_TOKEN")
			if cfg.AccountSID == "" || cfg.AuthToken == "" {
				return errors.New("sim: set IMPACT_ACCOUNT_SID (or --account-sid) and IMPACT_AUTH_TOKEN: the credentials the simulator accepts")
			}
			if cfg.ResetFormat = sim.ResetFormat(reset); !slices.Contains([]sim.ResetFormat{sim.ResetSeconds, sim.ResetUnix}, cfg.ResetFormat) {
				return fmt.Errorf("sim: --reset-format %q: seconds or unix", reset)
			}
			if cfg.Headers = sim.HeaderStyle(headers); !slices.Contains([]sim.HeaderStyle{sim.HeadersPlain, sim.HeadersHour}, cfg.Headers) {
				return fmt.Errorf("sim: --headers %q: plain or hour", headers)
			}
			if cfg.Duplicates = sim.DuplicateMode(dups); !slices.Contains([]sim.DuplicateMode{sim.DuplicateError, sim.DuplicateReason, sim.DuplicateQueued}, cfg.Duplicates) {
				return fmt.Errorf("sim: --duplicates %q: error, reason or queued", dups)
			}
			for name, r := range map[string]float64{
				"error-rate": cfg.Faults.ErrorRate, "drop-rate": cfg.Faults.DropRate, "drop-after-rate": cfg.Faults.DropAfterRate,
				"slow-body-rate": cfg.Faults.SlowBodyRate, "spike-rate": cfg.Faults.SpikeRate, "429-rate": cfg.Faults.TooManyRate,
			} {
				if r < 0 || r > 1 {
					return fmt.Errorf("sim: --%s %v: a share between 0 and 1", name, r)
				}
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))

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
			counts := s.Counts()
			statuses := make([]int, 0, len(counts))
			for st := range counts {
				statuses = append(statuses, st)
			}
			slices.Sort(statuses)
			var parts []string
			for _, st := range statuses {
				parts = append(parts, fmt.Sprintf("%d: %d", st, counts[st]))
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "convpipe sim: stopped; %d accepted, %d duplicates, %d connections; requests by status {%s}\n",
				len(s.Accepted()), s.Duplicates(), s.Connections(), strings.Join(parts, ", "))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8089", "loopback address to listen on")
	f.StringVar(&sid, "account-sid", "", "account SID to accept (default $IMPACT_ACCOUNT_SID); the token is read from $IMPACT_AUTH_TOKEN only")
	f.IntVar(&cfg.Quota, "quota", 1000, "requests allowed per window (0: no quota)")
	f.DurationVar(&cfg.Window, "window", time.Hour, "quota window length")
	f.StringVar(&reset, "reset-format", string(sim.ResetSeconds), "X-RateLimit-Reset as seconds until the reset (seconds) or as a Unix time (unix)")
	f.StringVar(&headers, "headers", string(sim.HeadersPlain), "rate-limit headers: plain (X-RateLimit-*) or hour (X-RateLimit-*-hour, RateLimit-Reset)")
	f.StringVar(&dups, "duplicates", string(sim.DuplicateError), "a duplicate OrderId is answered as a 400 field error (error), a 400 with ErrorReason CONV_DUPLICATE (reason), or QUEUED with the reason in the submission only (queued)")
	f.DurationVar(&cfg.DedupWindow, "dedup-window", 0, "how long an OrderId stays a duplicate (0: forever)")
	f.DurationVar(&cfg.CompleteAfter, "complete-after", 5*time.Second, "how long a submission takes to be Complete")
	f.BoolVar(&cfg.UpperCaseErrors, "upper-case-errors", false, `answer validation errors as {"Status","Message","Errors":[{"Field","Message"}]}`)
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random faults")
	f.DurationVar(&cfg.Faults.Latency, "latency", 0, "mean latency of an answer")
	f.DurationVar(&cfg.Faults.LatencyJitter, "latency-jitter", 0, "latency spread (±)")
	f.Float64Var(&cfg.Faults.SpikeRate, "spike-rate", 0, "share of requests delayed by --spike")
	f.DurationVar(&cfg.Faults.Spike, "spike", 2*time.Second, "latency spike")
	f.Float64Var(&cfg.Faults.ErrorRate, "error-rate", 0, "share of requests answered 500/502/503/504")
	f.Float64Var(&cfg.Faults.DropRate, "drop-rate", 0, "share of connections closed before the request is handled")
	f.Float64Var(&cfg.Faults.DropAfterRate, "drop-after-rate", 0, "share of connections closed after the conversion was recorded (ambiguous sends)")
	f.Float64Var(&cfg.Faults.SlowBodyRate, "slow-body-rate", 0, "share of accepted answers whose body is delayed by --slow-body")
	f.DurationVar(&cfg.Faults.SlowBody, "slow-body", 5*time.Second, "delay of a slow body")
	f.Float64Var(&cfg.Faults.TooManyRate, "429-rate", 0, "share of requests that start a burst of 429 answers")
	f.IntVar(&cfg.Faults.TooManyBurst, "429-burst", 3, "length of a 429 burst")
	f.DurationVar(&cfg.Faults.RetryAfter, "retry-after", 2*time.Second, "Retry-After of a 429 burst")
	f.BoolVar(&verbose, "verbose", false, "log every request")
	return cmd
}
