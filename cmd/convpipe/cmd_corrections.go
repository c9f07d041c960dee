package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/correct"
	"convpipe/pipeline/engine"
	"convpipe/sim"
	"convpipe/sinks"
)

// correctionsFlags are the flags of `convpipe corrections`.
type correctionsFlags struct {
	ledgerFlags
	all      bool   // plan: every correction, applied ones too
	maxShare string // apply: the guard's share (overrides corrections.max_share)
}

func newCorrectionsCmd() *cobra.Command {
	var f correctionsFlags
	cmd := &cobra.Command{
		Use:   "corrections",
		Short: "Plan and apply corrections of accepted orders: returns, cancellations, changed amounts",
		Long: `corrections keeps impact in step with the shop once an accepted order changes:
a run that sends records, for every accepted order whose lines changed (a
partial return, a removed item, a new price) or that a filter marked as a
reversal (cancelled, returned, test, fraud) now leaves out, the correction
impact needs: a modification (PUT /Actions: item quantities, or the amount)
or a reversal (DELETE /Actions with a DispositionCode).

plan shows them, with what impact accepted, the order now and the request;
apply sends them at the account's quota, as run sends conversions, and
records each outcome: applied, too_late (the action locked or was reversed:
the amount paid in error is to settle by hand), rejected, failed (sent again
by the next apply), or manual (the ledger does not know what was accepted).

Exit codes: 0 nothing needs a person; 1 fatal error (also: the mass-change
guard refused); 2 usage or configuration error; 3 some corrections need a
person; 4 another run holds the ledger's lock.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.path, "ledger", "", "the ledger's SQLite file, or a postgres:// URL (overrides ledger.path and ledger.url)")
	pf.StringVarP(&f.configPath, "config", "c", "", "configuration file (its ledger, and for apply its sink)")
	pf.StringVar(&f.account, "account", "", "plan: the impact account SID whose corrections to read (default: the only one)")
	plan := &cobra.Command{
		Use:   "plan",
		Short: "Show the corrections to make: accepted values, new values, action, request",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return runCorrectionsPlan(cmd, &f) },
	}
	plan.Flags().BoolVar(&f.all, "all", false, "show every correction, also those applied or superseded")
	apply := &cobra.Command{
		Use:   "apply --config FILE",
		Short: "Send the planned corrections to impact.com and record their outcomes",
		Example: `  convpipe corrections plan --config /etc/convpipe.yaml
  convpipe corrections apply --config /etc/convpipe.yaml
  # after checking the plan of a mass change (the guard refused it):
  convpipe corrections apply --config /etc/convpipe.yaml --max-share 100%`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runCorrectionsApply(cmd, &f) },
	}
	apply.Flags().StringVar(&f.maxShare, "max-share", "", "the mass-change guard: the largest share of the accepted orders corrected at once, e.g. 5% or 100% (overrides corrections.max_share)")
	cmd.AddCommand(plan, apply)
	return cmd
}

// needsPerson reports whether a correction's state needs a person.
func needsPerson(s pipeline.CorrectionState) bool {
	switch s {
	case pipeline.CorrectionTooLate, pipeline.CorrectionRejected, pipeline.CorrectionRefused, pipeline.CorrectionManual, pipeline.CorrectionFailed:
		return true
	}
	return false
}

// runCorrectionsPlan prints the corrections of the ledger: those to make
// and those that need a person (--all: every one).
func runCorrectionsPlan(cmd *cobra.Command, f *correctionsFlags) error {
	l, err := f.open(cmd)
	if err != nil {
		return err
	}
	defer l.Close()
	ctx, w := cmd.Context(), cmd.OutOrStdout()
	counts := map[pipeline.CorrectionState]int{}
	err = l.Corrections(ctx, pipeline.CorrectionFilter{}, func(c pipeline.Correction) error {
		if !f.all && (c.State == pipeline.CorrectionApplied || c.State == pipeline.CorrectionSuperseded) {
			return nil
		}
		counts[c.State]++
		return printCorrection(ctx, w, l, c)
	})
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	open := counts[pipeline.CorrectionPlanned] + counts[pipeline.CorrectionPending] + counts[pipeline.CorrectionFailed]
	person := 0
	for s, n := range counts {
		if needsPerson(s) && s != pipeline.CorrectionFailed {
			person += n
		}
	}
	fmt.Fprintf(w, "\n%d corrections to apply (`convpipe corrections apply`), %d need a person\n", open, person)
	if person > 0 {
		return &codeError{code: exitAttention}
	}
	return nil
}

// printCorrection prints one correction as plan shows it.
func printCorrection(ctx context.Context, w io.Writer, l ledger.Store, c pipeline.Correction) error {
	fmt.Fprintf(w, "\n%s  #%d %s: %s", c.Key, c.Seq, kindName(c.Kind), c.State)
	if c.DetectedBy != "" {
		fmt.Fprintf(w, " (found by run %s)", c.DetectedBy)
	}
	fmt.Fprintln(w)
	for _, side := range []struct{ name, hash, amount string }{{"accepted", c.FromHash, c.Before}, {"now     ", c.ToHash, c.After}} {
		if side.hash == "" && side.amount == "" {
			continue
		}
		text := side.amount + " " + c.Currency
		if side.hash != "" {
			ln, ok, err := l.Lines(ctx, c.Key, side.hash)
			if err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
			if ok {
				text += ": " + linesText(ln)
			} else if side.name == "accepted" {
				text = "unknown (accepted before convpipe kept amounts)"
			}
		}
		fmt.Fprintf(w, "  %s  %s\n", side.name, strings.TrimSpace(text))
	}
	if len(c.Changes) > 0 {
		fmt.Fprintf(w, "  action    %s: %s\n", kindName(c.Kind), correct.Describe(c))
	}
	if c.Form != "" {
		fmt.Fprintf(w, "  request   %s /Advertisers/{AccountSID}/Actions  %s\n", c.Method, c.Form)
	}
	if c.PaidInError != "" {
		fmt.Fprintf(w, "  paid in error  %s %s: settle it with the partner by hand\n", c.PaidInError, c.Currency)
	}
	for _, m := range c.Messages {
		fmt.Fprintf(w, "  note      %s\n", ledger.FormatMessage(m))
	}
	return nil
}

func kindName(k pipeline.CorrectionKind) string {
	switch k {
	case pipeline.CorrectItems:
		return "item modification"
	case pipeline.CorrectAmount:
		return "amount modification"
	case pipeline.CorrectReversal:
		return "full reversal"
	}
	return string(k)
}

// linesText is an order's lines in a line: "S1 2 × 10.00, S2 1 for 5.50".
func linesText(l pipeline.Lines) string {
	var parts []string
	for _, it := range l.Items {
		q := cmp.Or(it.Quantity, "1")
		switch {
		case it.SubTotal != "":
			parts = append(parts, fmt.Sprintf("%s %s for %s", it.Sku, q, it.SubTotal))
		default:
			parts = append(parts, fmt.Sprintf("%s %s × %s", it.Sku, q, it.Price))
		}
		if d, err := strconv.ParseFloat(it.Discount, 64); err == nil && d != 0 {
			parts[len(parts)-1] += " less " + it.Discount
		}
	}
	if d, err := strconv.ParseFloat(l.OrderDiscount, 64); err == nil && d != 0 {
		parts = append(parts, "order discount "+l.OrderDiscount)
	}
	return strings.Join(parts, ", ")
}

// applyJob is one `convpipe corrections apply`.
type applyJob struct {
	cmd *cobra.Command
	f   *correctionsFlags
	cfg Config
	log *slog.Logger
	led ledger.Store
	imp *sinks.Impact
}

// runCorrectionsApply sends the ledger's open corrections.
func runCorrectionsApply(cmd *cobra.Command, f *correctionsFlags) error {
	j := &applyJob{cmd: cmd, f: f}
	cfg, err := loadConfig(f.configPath)
	if err != nil {
		return err
	}
	if f.path != "" {
		cfg.Ledger = cfg.Ledger.WithFlag(f.path)
	}
	if f.maxShare != "" {
		cfg.Corrections.MaxShare = f.maxShare
		cfg.setByFlag("corrections.max_share", "--max-share")
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	j.cfg = cfg
	j.log = newLogger(cmd.ErrOrStderr(), cfg.Run.LogFormat, cfg.Run.LogLevel)
	ctx, _, stop := stopContext(cmd.Context(), time.Time{}, cfg.Run.MaxDuration, j.log)
	defer stop()
	sid, token, err := cfg.Sink.Credentials(nil)
	if err != nil {
		return configError{fmt.Errorf("sink: %w", err)}
	}
	if j.imp, err = sinks.NewFromSettings(cfg.sink, sinks.Credentials{AccountSID: sid, AuthToken: token}, version, j.log); err != nil {
		return configError{fmt.Errorf("sink: %w", err)}
	}
	defer j.imp.Close()
	if j.led, err = cfg.Ledger.Open(ctx, ledger.Options{Command: redactedArgs(), Account: sid}); err != nil {
		if errors.Is(err, pipeline.ErrLocked) {
			return &codeError{code: exitLocked, err: err}
		}
		return fmt.Errorf("ledger: %w", err)
	}
	defer j.led.Close()
	return j.apply(ctx)
}

// apply records the apply as a run, applies, writes the results file and
// prints what happened.
func (j *applyJob) apply(ctx context.Context) error {
	info := pipeline.RunInfo{ID: newRunID(), Started: time.Now().UTC(), Args: redactedArgs()}
	if err := j.led.BeginRun(ctx, info); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	todo, err := correct.Pending(ctx, j.led)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	basis, err := acceptedBasis(ctx, j.led, todo)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	res, applyErr := newApplier(j.led, j.imp, info.ID, j.cfg, j.log).Apply(ctx, todo, basis)
	wctx := context.WithoutCancel(ctx)
	info.Finished = time.Now().UTC()
	info.Summary = &pipeline.Summary{RunID: info.ID, Total: pipeline.Counts{Requests: int64(res.Requests)}}
	if err := j.led.FinishRun(wctx, info); err != nil && applyErr == nil {
		applyErr = fmt.Errorf("ledger: %w", err)
	}
	results, resErr := writeResults(wctx, j.cfg, j.led, info.ID)
	w := j.cmd.OutOrStdout()
	printApplied(w, res)
	person, err := personCount(wctx, j.led)
	if err != nil && applyErr == nil {
		applyErr = fmt.Errorf("ledger: %w", err)
	}
	if resErr == nil {
		fmt.Fprintf(w, "  results   %s\n", results)
	}
	if applyErr != nil {
		return &codeError{code: exitFatal, err: applyErr}
	}
	if person > 0 || resErr != nil {
		fmt.Fprintf(w, "  attention %d corrections need a person: see `convpipe corrections plan`\n", person)
		return &codeError{code: exitAttention}
	}
	return nil
}

// newApplier is the Applier of the run runID: the impact client sends
// and settles, the configuration's guard.
func newApplier(led ledger.Store, imp *sinks.Impact, runID string, cfg Config, log *slog.Logger) *correct.Applier {
	return &correct.Applier{Ledger: led, Modifier: imp, Reader: imp, RunID: runID,
		MaxShare: cfg.Corrections.Share(), GuardMin: cfg.Corrections.Min(), Log: log,
		Locking: reconciledLocking(led)}
}

// reconciledLocking returns an action's locking date as the last
// reconcile learned it, for the limits checked before a request.
func reconciledLocking(led ledger.Store) func(pipeline.Key) (time.Time, bool) {
	return func(k pipeline.Key) (time.Time, bool) {
		e, ok, err := led.Get(context.Background(), k)
		if err != nil || !ok || e.Reconciled == nil || e.Reconciled.LockingDate.IsZero() {
			return time.Time{}, false
		}
		return e.Reconciled.LockingDate, true
	}
}

// impactHas reports whether impact has an action for an entry in state
// s, as far as the ledger knows: accepted (not yet reconciled), tracked,
// or changed since.
func impactHas(s pipeline.State) bool {
	return s == pipeline.StateAccepted || s == pipeline.StateTracked || s == pipeline.StateChanged
}

// acceptedBasis is the mass-change guard's basis for the planned
// corrections of todo: the accepted orders seen by the runs that found
// them (already sent, changed, reversed), from their summaries.
func acceptedBasis(ctx context.Context, l ledger.Store, todo []pipeline.Correction) (int64, error) {
	seen := map[string]bool{}
	var n int64
	for _, c := range todo {
		if c.State != pipeline.CorrectionPlanned || seen[c.DetectedBy] {
			continue
		}
		seen[c.DetectedBy] = true
		r, ok, err := l.Run(ctx, c.DetectedBy)
		if err != nil {
			return 0, err
		}
		if ok && r.Summary != nil {
			t := r.Summary.Total
			n += t.AlreadySent + t.Changed + t.Reversals
		}
	}
	return n, nil
}

// personCount counts the corrections that need a person.
func personCount(ctx context.Context, l ledger.Store) (int, error) {
	n := 0
	err := l.Corrections(ctx, pipeline.CorrectionFilter{}, func(c pipeline.Correction) error {
		if needsPerson(c.State) {
			n++
		}
		return nil
	})
	return n, err
}

// printApplied prints one line per correction an Apply wrote.
func printApplied(w io.Writer, res correct.Result) {
	fmt.Fprintf(w, "\ncorrections — %d written, %d requests\n", len(res.Corrections), res.Requests)
	for _, c := range res.Corrections {
		line := fmt.Sprintf("  %s #%d %s: %s", c.Key, c.Seq, kindName(c.Kind), c.State)
		if d := correct.Describe(c); d != "" {
			line += " (" + d + ")"
		}
		if c.Before != "" || c.After != "" {
			line += fmt.Sprintf(", %s → %s %s", c.Before, c.After, c.Currency)
		}
		if c.PaidInError != "" {
			line += fmt.Sprintf("; %s %s paid in error: settle it by hand", c.PaidInError, c.Currency)
		} else if c.State != pipeline.CorrectionApplied && len(c.Messages) > 0 {
			line += ": " + ledger.FormatMessage(c.Messages[0])
		}
		fmt.Fprintln(w, line)
	}
}

// hookCorrections makes a run that sends keep what impact accepts and
// record the corrections it finds.
func (j *runJob) hookCorrections() {
	if j.opt.Mode != engine.Send || j.led == nil {
		return
	}
	ctx := context.WithoutCancel(j.ctx)
	j.rec = correct.NewRecorder(j.led, j.opt.RunID)
	j.opt.OnDecision = func(d engine.Decision) {
		j.rec.Decided(ctx, string(d.Action), d.Mapped, d.Hash, d.Prev)
	}
	j.opt.OnOutcome = func(o pipeline.Outcome) { j.rec.Outcome(ctx, o) }
}

// runCorrections, after the engine, checks the recorder and, with
// --corrections, applies the open corrections; what it applied is no
// longer counted as changed or to reverse.
func (j *runJob) runCorrections(summary *pipeline.Summary) error {
	if j.rec == nil {
		return nil
	}
	if err := j.rec.Err(); err != nil {
		return fmt.Errorf("%w: %w", errCorrectionsLedger, err)
	}
	if !j.f.corrections || summary.Stopped != "" {
		return nil
	}
	todo, err := correct.Pending(j.ctx, j.led)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	res, err := newApplier(j.led, j.imp, j.opt.RunID, j.cfg, j.log).Apply(j.ctx, todo, j.rec.Detected().Accepted)
	j.applied = &res
	summary.Total.Requests += int64(res.Requests)
	for _, c := range res.Corrections {
		if c.State != pipeline.CorrectionApplied {
			continue
		}
		switch {
		case c.Kind == pipeline.CorrectReversal && summary.Total.Reversals > 0:
			summary.Total.Reversals--
			summary.Total.Corrected++
		case c.Kind != pipeline.CorrectReversal && summary.Total.Changed > 0:
			summary.Total.Changed--
			summary.Total.Corrected++
		}
	}
	return err
}

// errCorrectionsLedger marks a run whose corrections could not all be
// recorded.
var errCorrectionsLedger = errors.New("corrections: the ledger failed")

// correctionAttention is what run --corrections leaves for a person.
func (j *runJob) correctionAttention() []string {
	if j.applied == nil {
		return nil
	}
	var out []string
	for _, st := range []pipeline.CorrectionState{pipeline.CorrectionTooLate, pipeline.CorrectionRejected, pipeline.CorrectionFailed, pipeline.CorrectionRefused, pipeline.CorrectionManual} {
		if n := j.applied.States[st]; n > 0 {
			out = append(out, fmt.Sprintf("%d corrections %s: see `convpipe corrections plan`", n, st))
		}
	}
	return out
}

// printCorrections prints what run --corrections applied, or what the
// run found to correct.
func (j *runJob) printCorrections(w io.Writer) {
	if j.applied != nil {
		if len(j.applied.Corrections) > 0 {
			printApplied(w, *j.applied)
		}
		return
	}
	if j.rec != nil {
		if d := j.rec.Detected(); d.Planned+d.Manual+d.Refused > 0 {
			fmt.Fprintf(w, "  corrections %d planned, %d need a person: `convpipe corrections plan` shows them, `convpipe corrections apply` (or run --corrections) applies them\n",
				d.Planned, d.Manual+d.Refused)
		}
	}
}

// printHistory prints the story of the orders of es: when each was
// recorded and what it is now, what impact accepted, and every
// correction since.
func printHistory(ctx context.Context, w io.Writer, l ledger.Store, es []pipeline.Entry) error {
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }
	for _, e := range es {
		fmt.Fprintf(w, "\nhistory of %s:\n", e.Key)
		fmt.Fprintf(w, "  %s  first recorded\n", day(e.Created))
		line := fmt.Sprintf("  %s  %s", day(e.Updated), e.State)
		if impactHas(e.State) {
			line = fmt.Sprintf("  %s  sent, %s", day(e.Updated), e.State)
		}
		if e.SubmissionID != "" {
			line += " (submission " + e.SubmissionID + ")"
		}
		fmt.Fprintln(w, line)
		err := l.Corrections(ctx, pipeline.CorrectionFilter{OrderID: e.Key.OrderID}, func(c pipeline.Correction) error {
			if c.Key != e.Key {
				return nil
			}
			what := correct.Describe(c)
			if c.Kind == pipeline.CorrectReversal {
				what = "reversed: " + c.Reason
			} else {
				what = "modified: " + what
			}
			fmt.Fprintf(w, "  %s  %s, %s → %s %s: %s", day(c.Updated), what, c.Before, c.After, c.Currency, c.State)
			if c.PaidInError != "" {
				fmt.Fprintf(w, " (%s %s paid in error)", c.PaidInError, c.Currency)
			}
			fmt.Fprintln(w)
			return nil
		})
		if err != nil {
			return fmt.Errorf("ledger: %w", err)
		}
		if ln, ok, err := l.Lines(ctx, e.Key, acceptedHashOf(e)); err != nil {
			return fmt.Errorf("ledger: %w", err)
		} else if ok {
			fmt.Fprintf(w, "  in impact (as far as the ledger knows)  %s\n", linesText(ln))
		} else if impactHas(e.State) {
			fmt.Fprintln(w, "  in impact  unknown amounts (accepted before convpipe kept them)")
		}
	}
	return nil
}

// acceptedHashOf is the payload impact has for e.
func acceptedHashOf(e pipeline.Entry) string {
	if e.State == pipeline.StateChanged && e.SentHash != "" {
		return e.SentHash
	}
	return e.PayloadHash
}

// seedSimulator gives the --simulate simulator an action for every order
// the ledger has as accepted with its lines kept: the simulator stands
// for the account the ledger has been sending to, so that corrections of
// what an earlier simulated run sent find their actions.
func seedSimulator(ctx context.Context, s *sim.Server, l ledger.Store) (int, error) {
	n := 0
	err := l.Entries(ctx, pipeline.Filter{}, func(e pipeline.Entry) error {
		if !impactHas(e.State) {
			return nil
		}
		ln, ok, err := l.Lines(ctx, e.Key, acceptedHashOf(e))
		if err != nil || !ok {
			return err
		}
		if err := s.Seed(linesForm(e.Key, ln)); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

// linesForm is the conversion form of key's lines, as Seed takes it.
func linesForm(key pipeline.Key, ln pipeline.Lines) url.Values {
	v := url.Values{"EventTypeId": {key.EventType}, "OrderId": {key.OrderID}, "CampaignId": {ln.CampaignID},
		"EventDate": {ln.EventDate}, "CurrencyCode": {ln.Currency}}
	set := func(name, value string) {
		if value != "" {
			v.Set(name, value)
		}
	}
	set("OrderSubTotalPostDiscount", ln.Amount)
	set("OrderDiscount", ln.OrderDiscount)
	for i, it := range ln.Items {
		n := strconv.Itoa(i + 1)
		set("ItemSku"+n, it.Sku)
		set("ItemQuantity"+n, it.Quantity)
		set("ItemPrice"+n, it.Price)
		set("ItemSubTotal"+n, it.SubTotal)
		set("ItemDiscount"+n, it.Discount)
	}
	return v
}

// seedSimulator seeds the --simulate simulator from the ledger (see
// seedSimulator).
func (j *runJob) seedSimulator() error {
	if j.sim == nil || j.led == nil {
		return nil
	}
	n, err := seedSimulator(j.ctx, j.sim, j.led)
	if err != nil {
		return fmt.Errorf("simulator: seed from the ledger: %w", err)
	}
	if n > 0 {
		j.log.Info("the simulator starts with the actions of the orders the ledger has as accepted", "actions", n)
	}
	return nil
}
