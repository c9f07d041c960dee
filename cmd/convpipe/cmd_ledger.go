package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
)

// ledgerFlags are the flags every ledger subcommand shares: which ledger
// to read.
type ledgerFlags struct {
	path       string // --ledger
	configPath string // --config
}

func newLedgerCmd() *cobra.Command {
	var lf ledgerFlags
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Read the results ledger: export entries, show one order",
		Long: `ledger reads the results ledger (read-only: it works while a run holds the
lock). The ledger is the --ledger file, or ledger.path of --config.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&lf.path, "ledger", "", "the ledger's SQLite file")
	pf.StringVarP(&lf.configPath, "config", "c", "", "configuration file whose ledger.path to read")
	cmd.AddCommand(newLedgerExportCmd(&lf), newLedgerShowCmd(&lf), newLedgerRunsCmd(&lf))
	return cmd
}

// open opens the ledger read-only: the --ledger file, else ledger.path of
// --config, else the default path.
func (lf *ledgerFlags) open(cmd *cobra.Command) (*ledger.Ledger, error) {
	p := lf.path
	if p == "" && lf.configPath != "" {
		cfg, err := loadConfig(lf.configPath)
		if err != nil {
			return nil, err
		}
		p = cfg.Ledger.Path
	}
	if p == "" {
		p = ledger.DefaultPath
	}
	l, err := ledger.OpenReadOnly(cmd.Context(), p)
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	return l, nil
}

// ledgerExportFlags are the flags of `convpipe ledger export`.
type ledgerExportFlags struct {
	format string
	state  string
	runID  string
}

func newLedgerExportCmd(lf *ledgerFlags) *cobra.Command {
	var f ledgerExportFlags
	cmd := &cobra.Command{
		Use:   "export [--format csv|jsonl] [--state S] [--run R]",
		Short: "Write ledger entries as CSV or JSON lines to standard output",
		Example: `  convpipe ledger export --ledger convpipe-ledger.db --state rejected
  convpipe ledger export --config convpipe.yaml --format jsonl --run 20261123T010000Z-1a2b`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runLedgerExport(cmd, lf, &f) },
	}
	cmd.Flags().StringVar(&f.format, "format", "csv", "csv or jsonl")
	cmd.Flags().StringVar(&f.state, "state", "", "only entries in this state")
	cmd.Flags().StringVar(&f.runID, "run", "", "only entries last written by this run")
	return cmd
}

// runLedgerExport writes the entries that pass the filter as CSV or JSON
// lines to standard output.
func runLedgerExport(cmd *cobra.Command, lf *ledgerFlags, f *ledgerExportFlags) error {
	filter := pipeline.Filter{State: pipeline.State(f.state), RunID: f.runID}
	if f.state != "" && !validState(filter.State) {
		return configError{fmt.Errorf("--state %q: one of pending, accepted, rejected, failed, invalid, skipped, changed", f.state)}
	}
	l, err := lf.open(cmd)
	if err != nil {
		return err
	}
	defer l.Close()
	w := bufio.NewWriter(cmd.OutOrStdout())
	defer w.Flush()
	switch f.format {
	case "csv":
		return ledger.WriteCSV(cmd.Context(), w, l, filter)
	case "jsonl":
		return ledger.WriteJSONL(cmd.Context(), w, l, filter)
	}
	return configError{fmt.Errorf("--format %q: csv or jsonl", f.format)}
}

func newLedgerShowCmd(lf *ledgerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ORDER_ID | KEY",
		Short: "Show everything the ledger knows about one order (every event type)",
		Long: `show prints, as JSON, every entry the ledger has for one OrderId, of every
event type; or the one entry of a key as ledger export prints it: the event
type and the OrderId ("12345/berlin-2001"), or "!row/FILE:LINE",
"!file/KEY" and "!duplicate/FILE:LINE" for what could not be read or was
met twice.`,
		Example: `  convpipe ledger show --ledger convpipe-ledger.db berlin-2001
  convpipe ledger show --config convpipe.yaml 12345/berlin-2001`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLedgerShow(cmd, lf, args[0])
		},
	}
}

// runLedgerShow prints the entries of one order or key (findEntries) as
// indented JSON; one the ledger does not know is a fatal error.
func runLedgerShow(cmd *cobra.Command, lf *ledgerFlags, arg string) error {
	l, err := lf.open(cmd)
	if err != nil {
		return err
	}
	defer l.Close()
	es, err := findEntries(cmd.Context(), l, arg)
	if err != nil {
		return err
	}
	if len(es) == 0 {
		return &codeError{code: exitFatal, err: fmt.Errorf("order %q is not in the ledger", arg)}
	}
	out := cmd.OutOrStdout()
	for _, e := range es {
		b, err := json.MarshalIndent(e, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
	}
	return nil
}

// findEntries returns the entries of the OrderId arg, of every event
// type; when there are none and arg reads as a key as ledger export
// prints it ("EventType/OrderID", split at the first "/"), the entry of
// that key.
func findEntries(ctx context.Context, l pipeline.Ledger, arg string) ([]pipeline.Entry, error) {
	var es []pipeline.Entry
	collect := func(eventType string) func(pipeline.Entry) error {
		return func(e pipeline.Entry) error {
			if eventType == "" || e.Key.EventType == eventType {
				es = append(es, e)
			}
			return nil
		}
	}
	if err := l.Entries(ctx, pipeline.Filter{OrderID: arg}, collect("")); err != nil || len(es) > 0 {
		return es, err
	}
	eventType, orderID, ok := strings.Cut(arg, "/")
	if !ok || eventType == "" || orderID == "" {
		return nil, nil
	}
	err := l.Entries(ctx, pipeline.Filter{OrderID: orderID}, collect(eventType))
	return es, err
}

func newLedgerRunsCmd(lf *ledgerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "runs",
		Short: "List the runs recorded in the ledger with their summaries",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runLedgerRuns(cmd, lf)
		},
	}
}

// runLedgerRuns prints one line per run recorded in the ledger.
func runLedgerRuns(cmd *cobra.Command, lf *ledgerFlags) error {
	l, err := lf.open(cmd)
	if err != nil {
		return err
	}
	defer l.Close()
	out := cmd.OutOrStdout()
	return l.Runs(cmd.Context(), func(r pipeline.RunInfo) error {
		_, err := fmt.Fprintln(out, runLine(r))
		return err
	})
}

// runLine is one run as `convpipe ledger runs` lists it: its id, its start
// and its totals, or that it did not finish.
func runLine(r pipeline.RunInfo) string {
	line := fmt.Sprintf("%s  started %s", r.ID, r.Started.Format("2006-01-02 15:04:05Z07:00"))
	if r.Summary != nil {
		t := r.Summary.Total
		line += fmt.Sprintf("  accepted %d, rejected %d, failed %d, invalid %d, changed %d", t.Accepted, t.Rejected, t.Failed, t.Invalid, t.Changed)
		if r.Summary.Stopped != "" {
			line += "  (stopped: " + r.Summary.Stopped + ")"
		}
	} else {
		line += "  (unfinished)"
	}
	return strings.TrimSpace(line)
}

func validState(s pipeline.State) bool {
	switch s {
	case pipeline.StatePending, pipeline.StateAccepted, pipeline.StateRejected, pipeline.StateFailed,
		pipeline.StateInvalid, pipeline.StateSkipped, pipeline.StateChanged:
		return true
	}
	return false
}
