package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/reconcile"
	"convpipe/sinks"
)

// reconcileFlags are the flags of `convpipe reconcile`.
type reconcileFlags struct {
	configPath  string
	ledgerPath  string
	settle      time.Duration
	maxRequests int
	rate        string
	deadline    string
	maxDuration time.Duration
	summaryJSON string
	metricsFile string
	logFormat   string
	logLevel    string
}

func newReconcileCmd() *cobra.Command {
	var f reconcileFlags
	cmd := &cobra.Command{
		Use:   "reconcile --config FILE",
		Short: "Learn what impact made of the accepted conversions: tracked, or not tracked and why",
		Long: `reconcile asks impact what it made of every conversion accepted at least the
settle time ago (reconcile.settle, default 1h) whose outcome is not final yet,
and records it in the ledger: tracked (the action's id, state, amount and
locking date), or not tracked (impact's ErrorType and ErrorReason, and what
they mean in plain words). It lists actions in bulk, page by page over the
event dates of the conversions, and looks up single submissions only for
those the listings did not find: a fraction of a request per conversion,
through the same pacer and quota as sending. A conversion accepted more than
90 days ago whose action is not found can no longer be learned: reconcile
warns about it.

` + "`convpipe run`" + ` reconciles at its end by default, with the quota sending left over
(--no-reconcile skips it); this command does it alone, with the quota it
needs (--max-requests, reconcile.max_requests bound it).

Exit codes: 0 nothing found not tracked; 1 fatal error; 2 usage or
configuration error; 3 some conversions were found not tracked; 4 another run
holds the ledger's lock.`,
		Example: `  convpipe reconcile --config /etc/convpipe.yaml
  convpipe ledger export --config /etc/convpipe.yaml --state not_tracked`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runReconcileCmd(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVarP(&f.configPath, "config", "c", "", "configuration file (YAML; see configs/)")
	fs.StringVar(&f.ledgerPath, "ledger", "", "the ledger's SQLite file, or a postgres:// URL (overrides ledger.path and ledger.url)")
	fs.DurationVar(&f.settle, "settle", 0, "ask only about conversions accepted at least this long ago (overrides reconcile.settle; default 1h)")
	fs.IntVar(&f.maxRequests, "max-requests", 0, "make at most this many requests (overrides reconcile.max_requests; 0: no bound)")
	fs.StringVar(&f.rate, "rate", "", "the account's quota, e.g. 1000/h (overrides sink.rate)")
	fs.StringVar(&f.deadline, "deadline", "", "stop at this clock time (06:00) or RFC 3339 time (overrides run.deadline)")
	fs.DurationVar(&f.maxDuration, "max-duration", 0, "stop after this long (overrides run.max_duration)")
	fs.StringVar(&f.summaryJSON, "summary-json", "", "write the summary as JSON to this file")
	fs.StringVar(&f.metricsFile, "metrics-file", "", "write the summary as a Prometheus textfile (node_exporter) to this file")
	fs.StringVar(&f.logFormat, "log-format", "", "log format: text or json (overrides run.log_format)")
	fs.StringVar(&f.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides run.log_level)")
	return cmd
}

// loadReconcile reads the configuration of `convpipe reconcile` with the
// flags over it, and validates it.
func loadReconcile(f *reconcileFlags) (Config, error) {
	cfg, err := loadConfig(f.configPath)
	if err != nil {
		return cfg, err
	}
	for _, o := range []struct {
		set       bool
		apply     func()
		key, flag string
	}{
		{f.rate != "", func() { cfg.Sink.Rate = f.rate }, "sink.rate", "--rate"},
		{f.deadline != "", func() { cfg.Run.Deadline = f.deadline }, "run.deadline", "--deadline"},
		{f.logFormat != "", func() { cfg.Run.LogFormat = f.logFormat }, "run.log_format", "--log-format"},
		{f.logLevel != "", func() { cfg.Run.LogLevel = f.logLevel }, "run.log_level", "--log-level"},
		{f.settle != 0, func() { cfg.Reconcile.Settle = f.settle }, "reconcile.settle", "--settle"},
		{f.maxRequests != 0, func() { cfg.Reconcile.MaxRequests = f.maxRequests }, "reconcile.max_requests", "--max-requests"},
	} {
		if o.set {
			o.apply()
			cfg.setByFlag(o.key, o.flag)
		}
	}
	if f.maxDuration != 0 {
		cfg.Run.MaxDuration = f.maxDuration
	}
	if f.ledgerPath != "" {
		cfg.Ledger = cfg.Ledger.WithFlag(f.ledgerPath)
	}
	return cfg, cfg.validate()
}

// runReconcileCmd is `convpipe reconcile`: load, open the sink and the
// ledger, reconcile, record it as a run, report.
func runReconcileCmd(cmd *cobra.Command, f *reconcileFlags) error {
	cfg, err := loadReconcile(f)
	if err != nil {
		return err
	}
	log := newLogger(cmd.ErrOrStderr(), cfg.Run.LogFormat, cfg.Run.LogLevel)
	sid, token, err := cfg.Sink.Credentials(nil)
	if err != nil {
		return configError{fmt.Errorf("sink: %w", err)}
	}
	imp, err := sinks.NewFromSettings(cfg.sink, sinks.Credentials{AccountSID: sid, AuthToken: token}, version, log)
	if err != nil {
		return configError{fmt.Errorf("sink: %w", err)}
	}
	defer imp.Close()
	var deadline time.Time
	if cfg.Run.Deadline != "" {
		deadline, _ = parseDeadline(cfg.Run.Deadline, time.Now())
	}
	ctx, _, stop := stopContext(cmd.Context(), deadline, cfg.Run.MaxDuration, log)
	defer stop()
	led, err := cfg.Ledger.Open(ctx, ledger.Options{Command: redactedArgs(), Account: sid})
	if err != nil {
		if errors.Is(err, pipeline.ErrLocked) {
			return &codeError{code: exitLocked, err: err}
		}
		return fmt.Errorf("ledger: %w", err)
	}
	defer led.Close()
	info := pipeline.RunInfo{ID: newRunID(), Started: time.Now().UTC(), Args: redactedArgs()}
	if err := led.BeginRun(ctx, info); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	rc := reconciler{led: led, rd: imp, runID: info.ID, now: reconcileClock, log: log,
		opt: reconcile.Options{Settle: cfg.Reconcile.Settle, Budget: cfg.Reconcile.MaxRequests, PageSize: cfg.sink.ListPageSize}}
	rs, runErr := rc.run(ctx)
	rs.Budget = int64(cfg.Reconcile.MaxRequests)
	s := pipeline.Summary{RunID: info.ID, Reconcile: &rs, Seconds: time.Since(info.Started).Seconds()}
	wctx := context.WithoutCancel(ctx)
	if s.Open, err = led.Problems(wctx); err != nil && runErr == nil {
		runErr = fmt.Errorf("ledger: %w", err)
	}
	info.Finished, info.Summary = time.Now().UTC(), &s
	if err := led.FinishRun(wctx, info); err != nil && runErr == nil {
		runErr = fmt.Errorf("ledger: %w", err)
	}
	return finishReconcile(cmd.OutOrStdout(), f, cfg.Ledger.Name(), s, runErr, log)
}

// finishReconcile prints the summary of `convpipe reconcile`, writes its
// files and returns the error carrying the exit code.
func finishReconcile(w io.Writer, f *reconcileFlags, ledgerName string, s pipeline.Summary, runErr error, log *slog.Logger) error {
	code := exitCode(runErr, &s)
	fmt.Fprintf(w, "\nreconcile %s — %s\n", s.RunID, humanDuration(time.Duration(s.Seconds*float64(time.Second))))
	printReconcile(w, s, ledgerName)
	fmt.Fprintf(w, "  ledger    %s\n", ledgerName)
	if runErr != nil {
		fmt.Fprintf(w, "  FAILED    %v\n", runErr)
	} else if code == exitOK {
		fmt.Fprintln(w, "  OK        nothing found not tracked")
	}
	writeSummaryFiles(log, f.summaryJSON, f.metricsFile, s, code)
	return exitResult(code, runErr)
}
