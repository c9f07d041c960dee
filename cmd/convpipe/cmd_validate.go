package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"convpipe/pipeline"
	"convpipe/pipeline/engine"
)

type validateFlags struct {
	common
	limit     int
	maxErrors int
}

func newValidateCmd() *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate --config FILE",
		Short: "Check the configuration and the export, and show the conversions as they would be sent",
		Long: `validate checks the configuration and each object's header against the
mapping, reads the whole export, and prints the first --limit conversions as
they would be sent (the form body and a readable JSON view), then every row
and order error found, with counts. It sends nothing and does not touch the
ledger.

Exit codes: 0 no problems; 2 configuration error; 3 problems found in the
export; 1 the export could not be listed.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runValidate(cmd, &f) },
	}
	f.common.register(cmd.Flags())
	cmd.Flags().IntVarP(&f.limit, "limit", "n", 3, "how many conversions to print")
	cmd.Flags().IntVar(&f.maxErrors, "max-errors", 1000, "print at most this many errors (all are counted)")
	return cmd
}

func runValidate(cmd *cobra.Command, f *validateFlags) error {
	j := &validateJob{cmd: cmd, f: f, skips: map[string][]pipeline.Ref{}}
	if err := j.load(); err != nil {
		return err
	}
	opt, err := j.open()
	if err != nil {
		return err
	}
	s, err := engine.Run(cmd.Context(), opt)
	if err != nil {
		return err
	}
	return j.report(s)
}

// validateJob is one `convpipe validate`, in phases as runJob: load (the
// configuration, validated), open (the reading), the engine's run, which
// hands every decision and row error to the job, and report (the
// problems, what the filters left out, the counts and the exit code).
type validateJob struct {
	cmd *cobra.Command
	f   *validateFlags
	cfg Config
	out io.Writer

	shown     int                       // conversions printed so far
	skips     map[string][]pipeline.Ref // reason → first line of each order or row left out
	skipOrder []string                  // the reasons in skips, as first seen
	problems  []pipeline.Message        // the first --max-errors problems
	nProblems int                       // every problem, kept or not
}

// load reads the configuration, puts the flags over it and validates it
// whole, the sink section included, as run does.
func (j *validateJob) load() error {
	cfg, err := j.f.load()
	if err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	j.cfg = cfg
	j.out = j.cmd.OutOrStdout()
	return nil
}

// open sets the memory limit and opens the reading, and returns the
// engine's options: no sink, every decision and row error to the job.
func (j *validateJob) open() (engine.Options, error) {
	log := newLogger(j.cmd.ErrOrStderr(), j.cfg.Run.LogFormat, "error")
	limitMemory(j.cfg.Group.Budget())
	src, mapper, err := buildReading(j.cmd.Context(), j.cfg)
	if err != nil {
		return engine.Options{}, err
	}
	return engine.Options{
		Source: src, Mapper: mapper, Group: j.cfg.Group, Logger: log, Events: j.cfg.events,
		OnDecision: j.decided,
		OnRowError: j.keep,
	}, nil
}

// skip counts a row or an order a filter left out, with its first line.
func (j *validateJob) skip(reason string, ref pipeline.Ref) {
	if _, ok := j.skips[reason]; !ok {
		j.skipOrder = append(j.skipOrder, reason)
	}
	j.skips[reason] = append(j.skips[reason], ref)
}

// keep counts a problem, and keeps it if fewer than --max-errors are.
func (j *validateJob) keep(m pipeline.Message) {
	j.nProblems++
	if len(j.problems) < j.f.maxErrors {
		j.problems = append(j.problems, m)
	}
}

// decided takes one decision of the engine: the rows and the order a
// filter left out, the problems of an invalid order, and the first
// --limit conversions to send, printed.
func (j *validateJob) decided(d engine.Decision) {
	for _, sr := range d.Mapped.SkippedRows {
		if len(sr.Refs) > 0 {
			j.skip("row: "+sr.Text, sr.Refs[0])
		}
	}
	switch d.Action {
	case engine.ActionSkip:
		j.skip("order: "+d.Mapped.Skip, d.Mapped.Conversion.Refs[0])
	case engine.ActionInvalid:
		for _, p := range d.Mapped.Problems {
			if len(p.Refs) == 0 {
				p.Refs = d.Mapped.Conversion.Refs
			}
			j.keep(p)
		}
	case engine.ActionSend:
		if j.shown < j.f.limit {
			j.shown++
			printConversion(j.out, j.shown, d.Mapped.Conversion, d.Body)
		}
	}
}

// report prints the problems, what the filters left out and the counts,
// and returns the error carrying the exit code.
func (j *validateJob) report(s pipeline.Summary) error {
	out := j.out
	if j.nProblems > 0 {
		fmt.Fprintf(out, "\n%d problems:\n", j.nProblems)
		for _, p := range j.problems {
			fmt.Fprintf(out, "  %s\n", formatProblem(p))
		}
		if j.nProblems > len(j.problems) {
			fmt.Fprintf(out, "  … and %d more (--max-errors)\n", j.nProblems-len(j.problems))
		}
	}
	if len(j.skipOrder) > 0 {
		fmt.Fprintln(out, "\nleft out by a filter:")
		for _, reason := range j.skipOrder {
			refs := j.skips[reason]
			fmt.Fprintf(out, "  %s: %d (%s)\n", reason, len(refs), refsList(refs))
		}
	}
	t := s.Total
	fmt.Fprintf(out, "\n%d objects (%d unreadable), %d rows (%d malformed, %d skipped by a filter), %d orders: %d valid, %d invalid, %d skipped\n",
		len(s.Objects), s.FileErrors, t.Rows, t.RowErrors, t.SkippedRows, t.Orders, t.ToSend, t.Invalid, t.Skipped)
	empty := emptySource(s, describeSource(j.cfg.Source), j.cfg.Run.AllowEmpty)
	if empty != "" {
		fmt.Fprintf(out, "ATTENTION %s\n", empty)
	}
	if s.FileErrors > 0 || t.RowErrors > 0 || t.Invalid > 0 || empty != "" {
		return &codeError{code: exitAttention}
	}
	return nil
}

// formatProblem renders a problem as "file:line: Field "value": text".
func formatProblem(p pipeline.Message) string {
	var b strings.Builder
	for i, r := range p.Refs {
		if i > 0 {
			b.WriteString(", ")
		}
		if i == 4 && len(p.Refs) > 5 {
			fmt.Fprintf(&b, "… (%d lines)", len(p.Refs))
			break
		}
		b.WriteString(r.String())
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		if p.Value != "" {
			fmt.Fprintf(&b, " %q", p.Value)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Text)
	return b.String()
}

// printConversion shows one conversion as its form body and as readable
// JSON (fields in wire order).
func printConversion(w io.Writer, n int, c *pipeline.Conversion, body string) {
	fmt.Fprintf(w, "conversion %d: %s (from %s)\n", n, c.Key, refsList(c.Refs))
	fmt.Fprintf(w, "  body: %s\n", body)
	var b strings.Builder
	b.WriteString("  {\n")
	form := c.Form()
	for i, fld := range form {
		v, _ := json.Marshal(fld.Value)
		fmt.Fprintf(&b, "    %q: %s", fld.Name, v)
		if i < len(form)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("  }\n")
	fmt.Fprint(w, b.String())
}

func refsList(refs []pipeline.Ref) string {
	parts := make([]string, 0, len(refs))
	for i, r := range refs {
		if i == 6 {
			parts = append(parts, fmt.Sprintf("… %d lines", len(refs)))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}
