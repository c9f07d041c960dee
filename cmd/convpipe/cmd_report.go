package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/sinks"
)

// reportFlags are the flags of `convpipe report`.
type reportFlags struct {
	ledgerFlags
	out          string
	since, until string
	rate         string
}

func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report --out FILE [--since DATE] [--until DATE]",
		Short: "Write an HTML report of the ledger over a period: outcomes per day, quota use, runs, problems",
		Long: `report reads the ledger (read-only: it works while a run holds the lock) and
writes one self-contained HTML file, viewable offline: the orders per day by
outcome, the conversions answered per hour against the quota, the runs, what
the last run left and how long it takes at the quota, and the problems by
reason with the orders behind them. The period is by the day (UTC) an
order's entry was last written; by default the last 30 days.`,
		Example: `  convpipe report --config shop.yaml --out report.html
  convpipe report --ledger out/demo/ledger.db --since 2026-11-01 --until 2026-11-30 --out november.html`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runReport(cmd, &f) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.path, "ledger", "", "the ledger's SQLite file")
	fs.StringVarP(&f.configPath, "config", "c", "", "configuration file whose ledger.path and sink.rate to use")
	fs.StringVarP(&f.out, "out", "o", "report.html", "the HTML file to write")
	fs.StringVar(&f.since, "since", "", "the first day (2026-11-01); default 30 days before --until")
	fs.StringVar(&f.until, "until", "", "the last day, included; default today (UTC)")
	fs.StringVar(&f.rate, "rate", "", "the account's quota, e.g. 1000/h (default sink.rate of --config)")
	return cmd
}

// reportPeriod resolves --since and --until into [since, until) in UTC.
func reportPeriod(since, until string, now time.Time) (time.Time, time.Time, error) {
	end := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 1)
	if until != "" {
		t, err := time.Parse(time.DateOnly, until)
		if err != nil {
			return time.Time{}, time.Time{}, usageError{fmt.Errorf("--until %q: want a date, 2026-11-30", until)}
		}
		end = t.AddDate(0, 0, 1)
	}
	start := end.AddDate(0, 0, -30)
	if since != "" {
		t, err := time.Parse(time.DateOnly, since)
		if err != nil {
			return time.Time{}, time.Time{}, usageError{fmt.Errorf("--since %q: want a date, 2026-11-01", since)}
		}
		start = t
	}
	if !start.Before(end) {
		return time.Time{}, time.Time{}, usageError{errors.New("--since is after --until")}
	}
	return start, end, nil
}

func runReport(cmd *cobra.Command, f *reportFlags) error {
	since, until, err := reportPeriod(f.since, f.until, time.Now())
	if err != nil {
		return err
	}
	rateText := f.rate
	if rateText == "" && f.configPath != "" {
		cfg, err := loadConfig(f.configPath)
		if err != nil {
			return err
		}
		rateText = cfg.Sink.Rate
	}
	var perHour float64
	if rateText != "" {
		r, err := sinks.ParseRate(rateText)
		if err != nil {
			return usageError{fmt.Errorf("--rate: %w", err)}
		}
		perHour = float64(r) * 3600
	}
	l, err := f.open(cmd)
	if err != nil {
		return err
	}
	defer l.Close()
	entries, runs, err := readLedger(cmd.Context(), l)
	if err != nil {
		return err
	}
	d := buildReport(entries, runs, since, until, perHour)
	d.Title, d.Generated = "convpipe: "+l.Name(), time.Now()
	if err := writeFileAtomic(f.out, func(w io.Writer) error { return writeHTMLReport(w, d) }); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "report: %s (%s to %s, %d orders, %d runs)\n", f.out, since.Format(time.DateOnly), until.AddDate(0, 0, -1).Format(time.DateOnly), len(entries), len(d.Runs))
	return nil
}

// readLedger reads every entry and every run of l.
func readLedger(ctx context.Context, l ledger.Store) ([]pipeline.Entry, []pipeline.RunInfo, error) {
	var entries []pipeline.Entry
	if err := l.Entries(ctx, pipeline.Filter{}, func(e pipeline.Entry) error {
		entries = append(entries, e)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	var runs []pipeline.RunInfo
	if err := l.Runs(ctx, func(r pipeline.RunInfo) error {
		runs = append(runs, r)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	return entries, runs, nil
}
