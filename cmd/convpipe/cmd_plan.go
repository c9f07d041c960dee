package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"convpipe/mapping"
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
		cfg.setByFlag("sink.rate", "--rate")
	}
	if f.ledgerPath != "" {
		cfg.Ledger = cfg.Ledger.WithFlag(f.ledgerPath)
	}
	if err := cfg.validate(); err != nil {
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
	ages := ageCounts{now: time.Now()}
	s, err := engine.Run(ctx, engine.Options{
		Source: src, Mapper: mapper, Ledger: pled, Group: cfg.Group, All: f.all, Logger: log, Events: cfg.events,
		OnDecision: func(d engine.Decision) {
			ages.add(d)
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
	if !cfg.events.IsZero() {
		fmt.Fprintf(out, "  outside        %d dated outside --events-since/--events-until: not sent, not recorded\n", t.OutsideWindow)
	}
	ages.print(out, cfg.Mapping)
	if empty := emptySource(s, describeSource(cfg.Source), cfg.Run.AllowEmpty); empty != "" {
		fmt.Fprintf(out, "  ATTENTION      %s\n", empty)
		return &codeError{code: exitAttention}
	}
	if t.ToSend > 0 && perSecond > 0 {
		d := time.Duration(float64(t.ToSend) / float64(perSecond) * float64(time.Second))
		fmt.Fprintf(out, "  sending takes  about %s at %s (one request per conversion, no retries)\n", humanDuration(d), cfg.Sink.Rate)
	}
	chooseWay(ages.wayInput(t.ToSend, float64(perSecond), cfg)).print(out)
	return nil
}

// ageBounds are the ages plan sorts the orders it would send by: a week,
// a month, impact's 88 days for batch files, its 398 days with a MediaId.
var ageBounds = []int{7, 30, 88, 398}

// ageCounts counts the orders a plan would send by the age of their
// EventDate, and those the age guard keeps back.
type ageCounts struct {
	now     time.Time
	buckets [5]int64 // under each of ageBounds, and older
	tooOld  int64
}

func (a *ageCounts) add(d engine.Decision) {
	switch d.Action {
	case engine.ActionSend:
		v, _ := d.Mapped.Conversion.Get("EventDate")
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			if t, err = time.Parse(time.DateOnly, v); err != nil {
				return // NOW: sent with the time of sending
			}
		}
		days := int(a.now.Sub(t) / (24 * time.Hour))
		i := 0
		for i < len(ageBounds) && days >= ageBounds[i] {
			i++
		}
		a.buckets[i]++
	case engine.ActionInvalid:
		for _, m := range d.Mapped.Problems {
			if mapping.IsTooOld(m) {
				a.tooOld++
				break
			}
		}
	}
}

// print writes the age distribution and, when the age guard keeps orders
// back, the warning.
func (a *ageCounts) print(w io.Writer, m mapping.Config) {
	b := a.buckets
	fmt.Fprintf(w, "  event dates    of those to send: %d under 7 days old, %d 7-30 days, %d 30-88 days, %d 88-398 days, %d older\n",
		b[0], b[1], b[2], b[3], b[4])
	if a.tooOld > 0 {
		fmt.Fprintf(w, "  WARNING        %d orders older than mapping.max_event_age (%s) are invalid, not sent: impact would re-date them to the day they are sent or not attribute them; "+
			"raise max_event_age, or run with --allow-old, only if your contract allows it\n",
			a.tooOld, mapping.Age(cmp.Or(time.Duration(m.MaxEventAge), mapping.DefaultMaxEventAge)))
	}
	if b[3]+b[4] > 0 {
		fmt.Fprintf(w, "  NOTE           %d orders to send are older than 88 days: impact's batch files refuse them, the API may re-date them\n", b[3]+b[4])
	}
}
