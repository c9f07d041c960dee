package main

// The reconcile step, shared by `convpipe reconcile` and the end of
// `convpipe run`, its lines in the summary, its metrics and the history
// that `convpipe ledger show` prints.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"convpipe/ledger"
	"convpipe/pipeline"
	"convpipe/pipeline/reconcile"
	"convpipe/sinks"
)

// reconcileClock is the time reconciles are made at.
var reconcileClock = time.Now

// reconciler is the reconcile step, of `convpipe reconcile` and of the
// end of `convpipe run`: it reads the conversions to ask about from the
// ledger, asks (pipeline/reconcile), and records what it learned.
type reconciler struct {
	led   ledger.Store
	rd    pipeline.OutcomeReader
	opt   reconcile.Options
	runID string
	now   func() time.Time
	log   *slog.Logger
}

// putChunk is how many entries one ledger write of a reconcile holds.
const putChunk = 1000

// run reconciles and returns what it found. A fatal answer that stopped
// the requests is returned with what was learned before it, which is
// recorded; a stop at the deadline or by a signal is not an error but
// rs.Stopped.
func (r reconciler) run(ctx context.Context) (pipeline.ReconcileSummary, error) {
	// Only what has settled is read: what a run just sent is not.
	now := r.now()
	var es []pipeline.Entry
	if err := r.led.Reconcilable(ctx, now.Add(-cmp.Or(r.opt.Settle, reconcile.DefaultSettle)), func(e pipeline.Entry) error {
		if reconcile.Asks(e) {
			es = append(es, e)
		}
		return nil
	}); err != nil {
		return pipeline.ReconcileSummary{}, fmt.Errorf("ledger: %w", err)
	}
	rs := pipeline.ReconcileSummary{Considered: int64(len(es))}
	if len(es) == 0 {
		return rs, nil
	}
	cs := make([]reconcile.Conversion, len(es))
	for i, e := range es {
		cs[i] = reconcile.FromEntry(e)
	}
	rep, stop := reconcile.Run(ctx, r.rd, cs, now, r.opt)
	rs.Requests, rs.ListRequests, rs.Lookups = int64(rep.Requests), int64(rep.ListRequests), int64(rep.Lookups)
	if stop != nil {
		rs.Stopped = stop.Error()
	}
	var writes []pipeline.Entry
	for i, res := range rep.Results {
		r.count(&rs, es[i], res)
		if e, ok := reconcile.Apply(es[i], res, now, r.runID); ok {
			writes = append(writes, e)
		}
	}
	wctx := context.WithoutCancel(ctx)
	for len(writes) > 0 {
		n := min(len(writes), putChunk)
		if err := r.led.PutReconciled(wctx, writes[:n]); err != nil {
			return rs, fmt.Errorf("ledger: %w", err)
		}
		writes = writes[n:]
	}
	for _, s := range rep.Skipped {
		r.log.Info("reconcile: listing not made", "what", s)
	}
	// Running out of time or being stopped ends a reconcile early, as it
	// ends a run: rs.Stopped says so and the next reconcile goes on. Only
	// an answer that stops every request (ErrFatal) is an error.
	if errors.Is(stop, pipeline.ErrFatal) {
		return rs, stop
	}
	return rs, nil
}

// count adds one result to rs, and warns of a conversion found not
// tracked or whose outcome can no longer be learned.
func (r reconciler) count(rs *pipeline.ReconcileSummary, e pipeline.Entry, res reconcile.Result) {
	switch res.Verdict {
	case reconcile.Tracked:
		rs.Tracked++
	case reconcile.NotTracked:
		rs.NotTracked++
		if rs.Reasons == nil {
			rs.Reasons = map[string]int64{}
		}
		rs.Reasons[res.ErrorReason]++
		if len(rs.Found) < pipeline.MaxFound {
			rs.Found = append(rs.Found, pipeline.NotTrackedOrder{Key: e.Key, ErrorType: res.ErrorType, ErrorReason: res.ErrorReason, Meaning: res.Meaning})
		}
		r.log.Warn("not tracked by impact", "key", e.Key.String(), "error_type", res.ErrorType, "error_reason", res.ErrorReason, "meaning", res.Meaning)
	default:
		rs.Unknown++
		r.log.Debug("reconcile: outcome not known", "key", e.Key.String(), "note", res.Note)
		if res.Final {
			rs.Expired++
			r.log.Warn("reconcile: the outcome can no longer be learned", "key", e.Key.String(), "accepted", e.AcceptedAt.Format(time.RFC3339), "note", res.Note)
		}
	}
}

// printReconcile writes the reconcile lines of a summary: what was found,
// the conversions not tracked with their reasons in plain words, and what
// the ledger holds open.
func printReconcile(w io.Writer, s pipeline.Summary, ledgerName string) {
	if rs := s.Reconcile; rs != nil {
		switch {
		case rs.NotRun != "":
			fmt.Fprintf(w, "  reconcile not made: %s\n", rs.NotRun)
		default:
			fmt.Fprintf(w, "  reconcile %d asked about: %d tracked, %d not tracked, %d still unknown; %d %s (%d listing %s, %d %s)\n",
				rs.Considered, rs.Tracked, rs.NotTracked, rs.Unknown, rs.Requests, plural(int(rs.Requests), "request", "requests"),
				rs.ListRequests, plural(int(rs.ListRequests), "page", "pages"), rs.Lookups, plural(int(rs.Lookups), "lookup", "lookups"))
		}
		for _, o := range rs.Found {
			fmt.Fprintf(w, "    not tracked %s: %s (%s): %s\n", o.Key, o.ErrorReason, o.ErrorType, o.Meaning)
		}
		if n := rs.NotTracked - int64(len(rs.Found)); n > 0 {
			fmt.Fprintf(w, "    and %d more: `%s`\n", n, ledgerCommand(ledgerName, "export", "--state", string(pipeline.StateNotTracked)))
		}
		if rs.Expired > 0 {
			fmt.Fprintf(w, "  WARNING   %d accepted %s over 90 days ago: impact no longer keeps %s submission record and no action was found, so %s outcome can no longer be learned (see the log)\n",
				rs.Expired, plural(int(rs.Expired), "conversion was", "conversions were"), plural(int(rs.Expired), "its", "their"), plural(int(rs.Expired), "its", "their"))
		}
		if rs.Stopped != "" {
			fmt.Fprintf(w, "  reconcile stopped early: %s (the next reconcile goes on)\n", rs.Stopped)
		}
	}
	printOpen(w, s.Open, ledgerName)
}

// printOpen writes what the ledger holds open, by state, with the oldest
// date and the command that lists each.
func printOpen(w io.Writer, open []pipeline.OpenProblem, ledgerName string) {
	if len(open) == 0 {
		return
	}
	parts := make([]string, len(open))
	for i, p := range open {
		parts[i] = fmt.Sprintf("%d %s since %s", p.Count, p.State, p.Oldest.Format("2006-01-02"))
	}
	fmt.Fprintf(w, "  open      in the ledger, this run's and earlier runs': %s\n", strings.Join(parts, ", "))
	for _, p := range open {
		fmt.Fprintf(w, "            `%s`\n", ledgerCommand(ledgerName, "export", "--state", string(p.State)))
	}
}

// reconcileStep is the reconcile at the end of a run (unless
// --no-reconcile), with only the quota sending left over (reconcileBudget),
// then the ledger's open problems, both into s. An error is the ledger's
// or one that stopped every request; what was learned is recorded.
func (j *runJob) reconcileStep(s *pipeline.Summary) error {
	ctx := context.WithoutCancel(j.ctx)
	var err error
	if !j.f.noReconcile && j.imp != nil {
		rs := pipeline.ReconcileSummary{}
		budget, why := j.reconcileBudget(*s)
		switch {
		case j.ctx.Err() != nil:
			rs.NotRun = "the run was stopped"
		case why != "":
			rs.NotRun = why
		default:
			rs, err = j.reconcile(budget)
			rs.Budget = int64(budget)
		}
		s.Reconcile = &rs
	}
	open, perr := j.led.Problems(ctx)
	if perr != nil && err == nil {
		err = fmt.Errorf("ledger: %w", perr)
	}
	s.Open = open
	return err
}

// reconcile reconciles within budget requests. With --simulate, the
// simulator's clock is first moved on by the settle time, so that the
// conversions just sent are processed and settled.
func (j *runJob) reconcile(budget int) (pipeline.ReconcileSummary, error) {
	cfg := j.cfg.Reconcile
	now := reconcileClock
	if j.sim != nil {
		settle := cmp.Or(cfg.Settle, reconcile.DefaultSettle)
		j.sim.Advance(settle)
		now = j.sim.Now
		j.log.Info("simulator: its clock moved on by the settle time, so that what was just sent is processed", "settle", settle.String())
	}
	rc := reconciler{led: j.led, rd: j.imp, runID: j.opt.RunID, now: now, log: j.log,
		opt: reconcile.Options{Settle: cfg.Settle, Budget: budget, PageSize: j.cfg.sink.ListPageSize}}
	// The run's deadline holds: the pacer waits for no request past it.
	return rc.run(j.ctx)
}

// reconcileBudget is how many requests the reconcile at the end of a run
// may make, or why it makes none. While orders are left to send (the run
// stopped before sending them all), only reconcile.share of the hourly
// quota (default none); otherwise what the server says is left of its
// window, or, when no answer said so, the hourly quota; never more than
// reconcile.max_requests.
func (j *runJob) reconcileBudget(s pipeline.Summary) (int, string) {
	cfg := j.cfg.Reconcile
	hourly := 0
	if r, err := sinks.ParseRate(j.cfg.Sink.Rate); err == nil {
		hourly = int(float64(r) * 3600)
	}
	bound := func(n int) int {
		if cfg.MaxRequests > 0 {
			return min(n, cfg.MaxRequests)
		}
		return n
	}
	if s.Stopped != "" || s.Total.Unsent > 0 || s.NotRead != nil {
		if n := int(cfg.Share * float64(hourly)); n > 0 {
			return bound(n), ""
		}
		return 0, "orders are left to send, and reconciling takes no quota from sending (reconcile.share gives it a share); `convpipe reconcile` or the next run does it"
	}
	n, known := j.imp.QuotaLeft()
	switch {
	case known && n == 0:
		return 0, "sending used what the quota window had; `convpipe reconcile` or the next run does it"
	case known:
		return bound(n), ""
	}
	return bound(max(hourly, 1)), ""
}

// shownEntry is an entry as `convpipe ledger show` prints it: with the
// history of its reconciles.
type shownEntry struct {
	pipeline.Entry
	// History is what each reconcile that learned something new of the
	// entry recorded, oldest first.
	History []pipeline.Reconciliation `json:"reconcile_history,omitempty"`
}

// withHistory returns e with its reconcile history from l.
func withHistory(ctx context.Context, l ledger.Store, e pipeline.Entry) (shownEntry, error) {
	h, err := l.ReconcileHistory(ctx, e.Key)
	if err != nil {
		return shownEntry{}, fmt.Errorf("ledger: %w", err)
	}
	return shownEntry{Entry: e, History: h}, nil
}

// The metrics of reconciling and of the ledger's open problems. The open
// problems are exported on every run, those of earlier runs included, so
// that an alert can fire on problems older than some days while the exit
// code (this run's) is 0.
const (
	metricReconciled        = "convpipe_last_run_reconciled"
	metricReconcileRequests = "convpipe_last_run_reconcile_requests"
	metricOpen              = "convpipe_open_problems"
	metricOpenOldest        = "convpipe_open_problem_oldest_timestamp_seconds"
)

// addReconcileMetrics registers the reconcile figures of s (when it
// reconciled) and its open problems: a count for every problem state (0
// when none), and the first write of the oldest of each state that has
// any.
func addReconcileMetrics(reg *prometheus.Registry, s pipeline.Summary) {
	if rs := s.Reconcile; rs != nil {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricReconciled,
			Help: "Accepted conversions the last run's reconcile asked about, by what it found."}, []string{"verdict"})
		for k, n := range map[string]int64{"tracked": rs.Tracked, "not_tracked": rs.NotTracked, "unknown": rs.Unknown, "expired": rs.Expired} {
			v.WithLabelValues(k).Set(float64(n))
		}
		reg.MustRegister(v)
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricReconcileRequests, Help: "Requests made by the last run's reconcile."})
		g.Set(float64(rs.Requests))
		reg.MustRegister(g)
	}
	if s.DryRun {
		return
	}
	count := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricOpen,
		Help: "Ledger entries that need a human after the last run, of every run, by state."}, []string{"state"})
	oldest := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricOpenOldest,
		Help: "When the oldest open problem of each state was first recorded (Unix time)."}, []string{"state"})
	for _, st := range ledger.ProblemStates {
		count.WithLabelValues(string(st)).Set(0)
	}
	for _, p := range s.Open {
		count.WithLabelValues(string(p.State)).Set(float64(p.Count))
		oldest.WithLabelValues(string(p.State)).Set(float64(p.Oldest.UnixMilli()) / 1000)
	}
	reg.MustRegister(count, oldest)
}
