package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/correct"
	"convpipe/pipeline/engine"
	"convpipe/sim"
	"convpipe/sinks"
	"convpipe/sources"
)

type runFlags struct {
	common
	rate          string
	workers       int
	dryRun        bool
	dryRunOut     string
	deadline      string
	maxDuration   time.Duration
	ledgerPath    string
	all           bool
	retryRejected bool
	summaryJSON   string
	metricsFile   string
	metricsPush   string
	metricsAcct   string
	report        string
	progress      string
	simulate      bool
	noReconcile   bool
	simCampaigns  []string
	reserve       string // --reserve, see shared.go
	corrections   bool
	via           string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Read the export, send what is new to impact.com, record every outcome",
		Long: `run reads the export, groups its lines into orders, maps and checks them, skips
what the ledger says is done, submits the rest at the configured quota and
records every outcome in the ledger. Objects processed by an earlier run with
the same ETag and size are not read again (--all reads them).

It stops cleanly at --deadline, after --max-duration, or on SIGINT/SIGTERM:
reading stops, in-flight requests get run.grace to finish, and the summary is
printed; a second signal aborts in-flight requests. The next run resumes.

At its end, run reconciles (see convpipe reconcile) with the quota sending
left over; --no-reconcile skips it. The summary shows, beside the run's own
figures, what the ledger holds open from every run.

Exit codes: 0 all good; 1 fatal error; 2 usage or configuration error;
3 finished, but some rows or conversions are invalid, rejected, failed,
changed or found not tracked, accepted orders are now cancelled (to
reverse), corrections need a person, the results file could not be written,
or the source selected no object (see run.allow_empty); 4 another run holds
the ledger's lock.`,
		Example: `  # nightly, from cron: stop by 06:00, leave figures for node_exporter
  convpipe run --config /etc/convpipe.yaml --deadline 06:00 --metrics-file /var/lib/node_exporter/convpipe.prom

  # in Kubernetes: report to a Pushgateway
  convpipe run --config /etc/convpipe/convpipe.yaml --max-duration 7h --metrics-push http://pushgateway:9091

  # backfill one quarter, resumable
  convpipe run --config backfill.yaml --since 2024-01-01 --until 2024-03-31

  # see what would be sent, sending nothing
  convpipe run --config convpipe.yaml --dry-run --dry-run-out payloads.jsonl`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRun(cmd, &f)
		},
	}
	fs := cmd.Flags()
	f.common.register(fs)
	fs.StringVar(&f.rate, "rate", "", "the account's quota, e.g. 1000/h, 20/s, 50/min (overrides sink.rate)")
	fs.IntVar(&f.workers, "workers", 0, "concurrent requests (overrides sink.workers)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "send nothing and write what would be sent as JSON lines; the ledger is read, never written")
	fs.StringVar(&f.dryRunOut, "dry-run-out", "-", "with --dry-run: file for the JSON lines, - for standard output (the summary then goes to standard error)")
	fs.StringVar(&f.deadline, "deadline", "", "stop at this clock time (06:00, the next one) or RFC 3339 time (overrides run.deadline)")
	fs.DurationVar(&f.maxDuration, "max-duration", 0, "stop after this long, e.g. 7h30m (overrides run.max_duration)")
	fs.StringVar(&f.ledgerPath, "ledger", "", "the ledger's SQLite file, or a postgres:// URL (overrides ledger.path and ledger.url)")
	fs.BoolVar(&f.all, "all", false, "read every object, also those processed before and unchanged")
	fs.BoolVar(&f.retryRejected, "retry-rejected", false, "send again conversions the API rejected, even if unchanged")
	fs.StringVar(&f.summaryJSON, "summary-json", "", "write the summary as JSON to this file")
	fs.StringVar(&f.metricsFile, "metrics-file", "", "write the summary as a Prometheus textfile (node_exporter) to this file")
	fs.StringVar(&f.metricsPush, "metrics-push", "", "push the summary's metrics to the Pushgateway at this URL, grouped by job=\"convpipe\" and account; a failed push exits 3")
	fs.StringVar(&f.metricsAcct, "metrics-account", "", "the account label of --metrics-push (default: sid- and a hash of the account SID, which is not stored)")
	fs.StringVar(&f.report, "report", "", "write the HTML report of the ledger's last 30 days to this file (as `convpipe report --out`)")
	fs.StringVar(&f.progress, "progress", "", "progress display: auto, bar, log or off (overrides run.progress)")
	fs.StringVar(&f.reserve, "reserve", "", "with ledger.shared: leave this part of each quota window to the account's other runs, e.g. 20% (a backfill beside the nightly run)")
	fs.BoolVar(&f.corrections, "corrections", false, "after sending, apply the corrections of accepted orders that changed or were cancelled (PUT/DELETE Actions; see `convpipe corrections`), under the mass-change guard")
	fs.StringVar(&f.via, "via", "", "the way of sending: api (one request per order) or batch (impact's batch files over SFTP; see sink.batch) (overrides sink.kind)")
	fs.BoolVar(&f.simulate, "simulate", false, "send to a built-in impact.com API simulator on loopback instead of the real API (no credentials needed); for trying a configuration")
	fs.BoolVar(&f.noReconcile, "no-reconcile", false, "do not reconcile at the end of the run (see convpipe reconcile)")
	fs.StringSliceVar(&f.simCampaigns, "simulate-campaigns", nil, "with --simulate: the CampaignIds the simulated account has a contract for; conversions for others are not tracked (default: all)")
	return cmd
}

// newRunID returns a sortable, unique run id: 20261123T201503Z-1a2b.
func newRunID() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// stopContext returns a context that ends on the first SIGINT/SIGTERM, at
// the deadline or after the maximum duration, with the reason as its
// cause, and a channel closed by a second signal.
func stopContext(parent context.Context, deadline time.Time, maxDur time.Duration, log *slog.Logger) (context.Context, <-chan struct{}, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	var cancels []context.CancelFunc
	if !deadline.IsZero() {
		c, cf := context.WithDeadlineCause(ctx, deadline, fmt.Errorf("deadline %s reached", deadline.Format(time.RFC3339)))
		ctx, cancels = c, append(cancels, cf)
	}
	if maxDur > 0 {
		c, cf := context.WithTimeoutCause(ctx, maxDur, fmt.Errorf("maximum duration %s reached", maxDur))
		ctx, cancels = c, append(cancels, cf)
	}
	abort := make(chan struct{})
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		n := 0
		for {
			select {
			case s := <-sigs:
				n++
				if n == 1 {
					log.Warn("stopping: no new requests; in-flight requests may finish (signal again to abort them)", "signal", s.String())
					cancel(fmt.Errorf("stopped by %s", s))
				} else {
					close(abort)
					signal.Stop(sigs)
					return
				}
			case <-done:
				return
			}
		}
	}()
	return ctx, abort, func() {
		signal.Stop(sigs)
		close(done)
		for _, c := range cancels {
			c()
		}
		cancel(nil)
	}
}

func runRun(cmd *cobra.Command, f *runFlags) error {
	j := &runJob{cmd: cmd, f: f}
	defer j.close()
	if err := j.load(); err != nil {
		return err
	}
	if err := j.open(); err != nil {
		return err
	}
	summary, runErr := j.run()
	return j.finish(summary, runErr)
}

// runJob is one `convpipe run`, in phases: load (the configuration with
// the flags over it, validated once), open (the simulator, the stop
// context, the reading, the sink, the ledger and the run's record), run
// (the engine) and finish (the run's record closed, the results file, the
// summary, the metrics, the exit code). close releases what open took, in
// the reverse order.
type runJob struct {
	cmd *cobra.Command
	f   *runFlags
	cfg Config
	pr  *progressReporter
	log *slog.Logger

	ctx     context.Context
	abort   <-chan struct{}
	closers []func()

	creds *sinks.Credentials // the simulator's; nil: from the configuration
	sim   *sim.Server        // --simulate's simulator
	imp   *sinks.Impact      // the impact.com client; nil on a dry run
	opt   engine.Options
	dry   *sinks.DryRun
	led   ledger.Store
	info  pipeline.RunInfo
	// account is the impact account the run sends for: whose entries
	// the ledger reads and writes.
	account string
	// reserve is --reserve as a fraction.
	reserve float64
	// rec records the corrections the run finds, applied what
	// --corrections applied.
	rec     *correct.Recorder
	applied *correct.Result
}

// load reads the configuration, puts the flags over it and validates it.
func (j *runJob) load() error {
	f := j.f
	cfg, err := f.load()
	if err != nil {
		return err
	}
	if f.rate != "" {
		cfg.Sink.Rate = f.rate
		cfg.setByFlag("sink.rate", "--rate")
	}
	if f.workers != 0 {
		cfg.Sink.Workers = f.workers
		cfg.setByFlag("sink.workers", "--workers")
	}
	if f.deadline != "" {
		cfg.Run.Deadline = f.deadline
		cfg.setByFlag("run.deadline", "--deadline")
	}
	if f.maxDuration != 0 {
		cfg.Run.MaxDuration = f.maxDuration
	}
	if f.ledgerPath != "" {
		cfg.Ledger = cfg.Ledger.WithFlag(f.ledgerPath)
	}
	if f.progress != "" {
		cfg.Run.Progress = f.progress
		cfg.setByFlag("run.progress", "--progress")
	}
	if err := checkPushURL(f.metricsPush); err != nil {
		return configError{err}
	}
	if j.reserve, err = parseReserve(f.reserve, cfg.Ledger); err != nil {
		return configError{err}
	}
	if f.via != "" && f.via != sinks.KindAPI && f.via != sinks.KindBatch {
		return configError{fmt.Errorf("--via: %s or %s, not %q", sinks.KindAPI, sinks.KindBatch, f.via)}
	}
	if f.simulate && f.dryRun {
		return configError{errors.New("--simulate and --dry-run: choose one")}
	}
	// On a terminal, log lines and the progress bar share stderr.
	j.pr = newProgressReporter(j.cmd.ErrOrStderr(), nil, cfg.Run.progressInterval(), cfg.Run.Progress)
	j.log = newLogger(j.pr, cfg.Run.LogFormat, cfg.Run.LogLevel)
	j.pr.log = j.log
	if f.simulate {
		// The simulator's address is known once it runs; validate as if
		// it were set.
		cfg.Sink.BaseURL, cfg.Sink.AccountSID, cfg.Sink.AuthToken = "http://127.0.0.1", "", ""
		cfg.Sink.Batch.SFTP = simulatedSFTP
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	j.cfg = cfg
	return nil
}

// onClose registers fn to run when the job closes.
func (j *runJob) onClose(fn func()) { j.closers = append(j.closers, fn) }

// close runs the registered closers, the last first.
func (j *runJob) close() {
	for i := len(j.closers) - 1; i >= 0; i-- {
		j.closers[i]()
	}
}

// open starts what the run needs: the simulator (--simulate), the stop
// context, the memory limit, the reading, the sink and the ledger, and
// records the run's start in the ledger (not on a dry run).
func (j *runJob) open() error {
	cfg, f := &j.cfg, j.f
	if f.simulate {
		// Actions lock ten years after their event: a trial shows its
		// corrections applied whatever the sample's dates.
		simulator := sim.New(sim.Config{Quota: 1000, Window: time.Hour, LockAfter: 10 * 365 * 24 * time.Hour,
			Processing: sim.Processing{Campaigns: f.simCampaigns}})
		j.sim = simulator
		url, err := simulator.Start("127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		j.onClose(func() { simulator.Close() })
		if cfg.sink, err = cfg.sink.WithBaseURL(url); err != nil {
			return fmt.Errorf("simulator: %w", err)
		}
		j.creds = &sinks.Credentials{AccountSID: sim.DefaultAccountSID, AuthToken: sim.DefaultAuthToken}
		j.log.Info("sending to the built-in API simulator, not to impact.com", "url", url)
	}
	var deadline time.Time
	if cfg.Run.Deadline != "" {
		deadline, _ = parseDeadline(cfg.Run.Deadline, time.Now())
	}
	ctx, abort, stop := stopContext(j.cmd.Context(), deadline, cfg.Run.MaxDuration, j.log)
	j.ctx, j.abort = ctx, abort
	j.onClose(stop)

	// The one place `convpipe run` sets the process' memory limit.
	limitMemory(cfg.Group.Budget())
	src, mapper, err := buildReading(ctx, *cfg)
	if err != nil {
		return err
	}
	sink, err := j.openSink()
	if err != nil {
		return err
	}
	if err := j.openLedger(); err != nil {
		return err
	}
	if err := j.shareQuota(sink); err != nil {
		return err
	}
	if err := j.seedSimulator(); err != nil {
		return err
	}
	j.opt = engine.Options{
		Mode: engine.Send, Source: src, Mapper: mapper, Sink: sink,
		Group: cfg.Group, Workers: cfg.Sink.Workers, Queue: cfg.Run.Queue,
		All: f.all, RetryRejected: f.retryRejected, RunID: newRunID(),
		Grace: cfg.Run.Grace, Abort: j.abort, Logger: j.log, Events: cfg.events,
	}
	if f.dryRun {
		j.opt.Mode = engine.DryRun
	}
	if j.led != nil {
		j.opt.Ledger = j.led
	}
	if cfg.Ledger.Shared && !f.dryRun {
		j.opt.Claims = j.led // runs side by side: claim what is read and sent
	}
	if err := j.useBatch(); err != nil {
		return err
	}
	if cfg.Run.Progress != "off" {
		j.opt.OnProgress = j.pr.report
	}
	j.hookCorrections()
	j.info = pipeline.RunInfo{ID: j.opt.RunID, Started: time.Now().UTC(), Args: redactedArgs()}
	if !f.dryRun {
		if err := j.led.BeginRun(ctx, j.info); err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
	}
	return nil
}

// openSink opens the dry-run sink (--dry-run) or the impact.com client.
func (j *runJob) openSink() (pipeline.Sink, error) {
	if j.f.dryRun {
		var w io.Writer = j.cmd.OutOrStdout()
		if j.f.dryRunOut != "-" {
			// 0644 less the umask, as every file run writes.
			file, err := os.OpenFile(j.f.dryRunOut, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return nil, fmt.Errorf("--dry-run-out: %w", err)
			}
			j.onClose(func() { file.Close() })
			w = file
		}
		j.dry = sinks.NewDryRun(w)
		j.account = configuredAccount(j.cfg)
		return j.dry, nil
	}
	creds := j.creds
	if creds == nil {
		sid, token, err := j.cfg.Sink.Credentials(nil)
		if err != nil {
			return nil, configError{fmt.Errorf("sink: %w", err)}
		}
		creds = &sinks.Credentials{AccountSID: sid, AuthToken: token}
	}
	j.account = creds.AccountSID
	imp, err := sinks.NewFromSettings(j.cfg.sink, *creds, version, j.log)
	if err != nil {
		return nil, configError{fmt.Errorf("sink: %w", err)}
	}
	j.onClose(func() { imp.Close() })
	j.imp = imp
	return imp, nil
}

// openLedger opens the ledger: read-only for a dry run (and none if it
// does not exist yet), locked for a real one.
func (j *runJob) openLedger() error {
	lc := j.cfg.Ledger
	var err error
	if j.f.dryRun {
		if !lc.Made() {
			return nil // no ledger yet: everything is new
		}
		// A lost ledger (its marker without it) is an error here too.
		if j.led, err = lc.OpenReadOnly(j.ctx); err == nil && j.account != "" {
			err = j.led.SetAccount(j.account)
		}
	} else {
		// Only runs share a shared ledger; other commands that write
		// (ledger init, reconcile) hold it alone.
		j.led, err = lc.Open(j.ctx, ledger.Options{Command: redactedArgs(), Account: j.account, Shared: lc.Shared, Lease: lc.Lease})
	}
	if err != nil {
		if errors.Is(err, pipeline.ErrLocked) {
			return &codeError{code: exitLocked, err: err}
		}
		return fmt.Errorf("ledger: %w", err)
	}
	j.onClose(func() { j.led.Close() })
	return nil
}

// run runs the engine.
func (j *runJob) run() (pipeline.Summary, error) {
	cfg := j.cfg
	j.log.Info("run started", "run", j.opt.RunID, "source", cfg.Source.Location, "ledger", cfg.Ledger.Name(),
		"rate", cfg.Sink.Rate, "workers", cfg.Sink.Workers, "dry_run", j.f.dryRun)
	summary, runErr := engine.Run(j.ctx, j.opt)
	j.pr.done()
	if err := j.runCorrections(&summary); err != nil && runErr == nil {
		runErr = err
	}
	if j.dry != nil {
		if err := j.dry.Flush(); err != nil && runErr == nil {
			runErr = err
		}
	}
	return summary, runErr
}

// finish records the run's end and its results file (not on a dry run),
// prints the summary, writes --summary-json and --metrics-file, and
// returns the error carrying the exit code.
func (j *runJob) finish(summary pipeline.Summary, runErr error) error {
	cfg, f, log := j.cfg, j.f, j.log
	var missing *missingSourceError
	if errors.As(runErr, &missing) {
		runErr = missing // it says all: no "list source: " before it
	}
	if runErr != nil && summary.Stopped == "" {
		// The engine stopped before its first object (the listing
		// failed): the summary, and the run's record, say so too.
		summary.Stopped = "fatal: " + runErr.Error()
	}
	notes := summaryNotes{source: describeSource(cfg.Source), allowEmpty: cfg.Run.AllowEmpty}
	if !f.dryRun {
		notes.ledger = cfg.Ledger.Name()
		if runErr == nil {
			runErr = j.reconcileStep(&summary)
		}
		j.info.Finished = time.Now().UTC()
		j.info.Summary = &summary
		// The run's records must be finished even when ctx has ended.
		wctx := context.WithoutCancel(j.ctx)
		if err := j.led.FinishRun(wctx, j.info); err != nil && runErr == nil {
			runErr = fmt.Errorf("ledger: %w", err)
		}
		if notes.results, notes.resultsErr = writeResults(wctx, cfg, j.led, j.opt.RunID); notes.resultsErr != nil {
			log.Error("cannot write the results file", "err", notes.resultsErr)
			notes.results = ""
		}
	}
	v := judge(summary, runErr, notes)
	v.attention = append(v.attention, j.correctionAttention()...)
	code := runExitCode(runErr, &summary, v)
	if f.metricsPush != "" {
		// Pushed before the summary is printed, which says if it failed.
		if err := pushMetrics(context.WithoutCancel(j.ctx), f.metricsPush, j.metricsAccount(), runMetrics(summary, time.Now(), code)); err != nil {
			log.Error("cannot push the metrics", "err", err)
			v.attention = append(v.attention, fmt.Sprintf("the metrics could not be pushed (%v): the Pushgateway still shows an earlier run", err))
			code = runExitCode(runErr, &summary, v)
		}
	}
	printSummary(j.summaryOut(), summary, notes, v)
	j.printCorrections(j.summaryOut())
	writeSummaryFiles(log, f.summaryJSON, f.metricsFile, summary, code)
	if f.report != "" && !f.dryRun {
		if err := j.writeReport(context.WithoutCancel(j.ctx)); err != nil {
			log.Error("cannot write --report", "err", err)
		}
	}
	return exitResult(code, runErr)
}

// writeReport writes --report: the HTML report of the ledger's last 30
// days, this run included.
func (j *runJob) writeReport(ctx context.Context) error {
	since, until, err := reportPeriod("", "", time.Now())
	if err != nil {
		return err
	}
	entries, runs, err := readLedger(ctx, j.led)
	if err != nil {
		return err
	}
	var perHour float64
	if r, err := sinks.ParseRate(j.cfg.Sink.Rate); err == nil {
		perHour = float64(r) * 3600
	}
	d := buildReport(entries, runs, since, until, perHour)
	d.Title, d.Generated = "convpipe: "+j.led.Name(), time.Now()
	return writeFileAtomic(j.f.report, func(w io.Writer) error { return writeHTMLReport(w, d) })
}

// metricsAccount is the account label of the pushed metrics:
// --metrics-account, else accountLabel of the account SID.
func (j *runJob) metricsAccount() string {
	if j.f.metricsAcct != "" {
		return j.f.metricsAcct
	}
	return accountLabel(j.account)
}

// summaryOut is where the human summary goes: standard output, unless a
// dry run writes its JSON lines there (--dry-run-out -), which stay pure.
func (j *runJob) summaryOut() io.Writer {
	if j.f.dryRun && j.f.dryRunOut == "-" {
		return j.cmd.ErrOrStderr()
	}
	return j.cmd.OutOrStdout()
}

// writeResults writes the run's results CSV next to the ledger, into
// run.results_dir (created if missing, as the ledger's folder is), or,
// when that is an s3:// prefix, uploads it there (with the source's S3
// settings). It returns where the file went.
func writeResults(ctx context.Context, cfg Config, led pipeline.Ledger, runID string) (string, error) {
	p := ledger.ResultsPath(cfg.Ledger.Path, runID)
	dir := cfg.Run.ResultsDir
	write := func(w io.Writer) error { return ledger.WriteCSV(ctx, w, led, pipeline.Filter{RunID: runID}) }
	if !strings.HasPrefix(dir, "s3://") {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return "", fmt.Errorf("run.results_dir: %w", err)
			}
			p = filepath.Join(dir, filepath.Base(p))
		} else if cfg.Ledger.UsesURL() {
			// Next to ledger.path, whose folder a PostgreSQL ledger
			// does not make.
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				return "", fmt.Errorf("results file %s: %w", p, err)
			}
		}
		if err := writeFileAtomic(p, write); err != nil {
			return "", fmt.Errorf("results file %s: %w", p, err)
		}
		return p, nil
	}
	// A local copy, 0600, uploaded once complete.
	tmp, err := os.CreateTemp("", "convpipe-results-*.csv")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	bw := bufio.NewWriterSize(tmp, 64<<10)
	if err := write(bw); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	url := strings.TrimSuffix(dir, "/") + "/" + filepath.Base(p)
	return url, sources.Upload(ctx, cfg.Source.S3, url, tmp)
}

// configuredAccount is the account SID the configuration and the
// environment give, or "" when they give none (a dry run needs none).
func configuredAccount(cfg Config) string {
	if sid, _, err := cfg.Sink.Credentials(nil); err == nil {
		return sid
	}
	return ""
}

// redactedArgs is the command line as recorded in the ledger and the lock
// file. convpipe takes no secret as a flag, but a value that looks like a
// token is masked all the same.
func redactedArgs() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if i := strings.Index(a, "postgres"); i >= 0 && ledger.IsURL(a[i:]) {
			a = a[:i] + ledger.RedactURL(a[i:])
		}
		lower := strings.ToLower(a)
		if strings.Contains(lower, "token") || strings.Contains(lower, "secret") || strings.Contains(lower, "password") {
			if k, _, ok := strings.Cut(a, "="); ok {
				a = k + "=REDACTED"
			}
		}
		args[i] = a
	}
	return strings.Join(args, " ")
}
