package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"convpipe/pipeline"
	"convpipe/pipeline/engine"
	"convpipe/sinks"
)

type planFlags struct {
	common
	limit      int
	all        bool
	rate       string
	ledgerPath string
}

func newPlanCmd() *cobra.Command {
	var f planFlags
	cmd := &cobra.Command{
		Use:   "plan --config FILE",
		Short: "Say what a run would do and how long sending would take, sending nothing",
		Long: `plan reads the export as run would, consults the ledger (read-only; it works
while a run holds the lock) and prints how many conversions are new, already
sent, changed since acceptance and invalid, a few sample payloads, and how
long sending the new ones takes at the configured quota.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runPlan(cmd, &f) },
	}
	fs := cmd.Flags()
	f.common.register(fs)
	fs.IntVarP(&f.limit, "limit", "n", 2, "how many sample payloads to print")
	fs.BoolVar(&f.all, "all", false, "also read objects processed before and unchanged")
	fs.StringVar(&f.rate, "rate", "", "the account's quota, e.g. 1000/h (overrides sink.rate)")
	fs.StringVar(&f.ledgerPath, "ledger", "", "the ledger's SQLite file, or a postgres:// URL (overrides ledger.path and ledger.url)")
	return cmd
}

func runPlan(cmd *cobra.Command, f *planFlags) error {
	cfg, err := f.load()
	if err != nil {
		return err
	}
	if f.rate != "" {
		cfg.Sink.Rate = f.rate
	}
	if f.ledgerPath != "" {
		cfg.Ledger = cfg.Ledger.WithFlag(f.ledgerPath)
	}
	if err := cfg.validate(false); err != nil {
		return err
	}
	perSecond, err := sinks.ParseRate(cfg.Sink.Rate)
	if err != nil {
		return configError{fmt.Errorf("sink.rate: %w", err)}
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	log := newLogger(cmd.ErrOrStderr(), cfg.Run.LogFormat, "error")
	limitMemory(cfg.Group.Budget())
	src, mapper, err := buildReading(ctx, cfg)
	if err != nil {
		return err
	}
	var pled pipeline.Ledger
	if _, err := os.Stat(cfg.Ledger.Path); err == nil || cfg.Ledger.UsesURL() {
		led, err := cfg.Ledger.OpenReadOnly(ctx)
		if err == nil && configuredAccount(cfg) != "" {
			err = led.SetAccount(configuredAccount(cfg))
		}
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		defer led.Close()
		pled = led
	}
	shown := 0
	s, err := engine.Run(ctx, engine.Options{
		Source: src, Mapper: mapper, Ledger: pled, Group: cfg.Group, All: f.all, Logger: log,
		OnDecision: func(d engine.Decision) {
			if d.Action == engine.ActionSend && shown < f.limit {
				shown++
				printConversion(out, shown, d.Mapped.Conversion, d.Body)
			}
		},
	})
	if err != nil {
		return err
	}
	t := s.Total
	unchanged := 0
	for _, o := range s.Objects {
		if o.Unchanged {
			unchanged++
		}
	}
	fmt.Fprintf(out, "\nplan for %s\n", cfg.Source.Location)
	fmt.Fprintf(out, "  objects        %d to read, %d unchanged since an earlier run (not read; --all reads them), %d unreadable\n",
		len(s.Objects)-unchanged, unchanged, s.FileErrors)
	fmt.Fprintf(out, "  rows           %d (%d malformed, %d skipped by a filter)\n", t.Rows, t.RowErrors, t.SkippedRows)
	fmt.Fprintf(out, "  new            %d conversions to send\n", t.ToSend)
	fmt.Fprintf(out, "  already sent   %d\n", t.AlreadySent)
	fmt.Fprintf(out, "  changed        %d accepted earlier, changed since: need a correction, not resent\n", t.Changed)
	fmt.Fprintf(out, "  invalid        %d (see `convpipe validate`)\n", t.Invalid)
	fmt.Fprintf(out, "  skipped        %d by a filter\n", t.Skipped)
	if t.ToSend > 0 && perSecond > 0 {
		d := time.Duration(float64(t.ToSend) / float64(perSecond) * float64(time.Second))
		fmt.Fprintf(out, "  sending takes  about %s at %s (one request per conversion, no retries)\n", humanDuration(d), cfg.Sink.Rate)
	}
	return nil
}
