package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
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
	account    string // --account
}

func newLedgerCmd() *cobra.Command {
	var lf ledgerFlags
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Read the results ledger: export entries, show one order",
		Long: `ledger reads the results ledger (read-only: it works while a run holds the
lock). The ledger is the --ledger file or postgres:// URL, else ledger.url or
ledger.path of --config, else $CONVPIPE_LEDGER_URL, else the default file.
ledger init makes a new PostgreSQL ledger.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&lf.path, "ledger", "", "the ledger's SQLite file, or a postgres:// URL (the password in PGPASSWORD)")
	pf.StringVarP(&lf.configPath, "config", "c", "", "configuration file whose ledger.path or ledger.url to read")
	pf.StringVar(&lf.account, "account", "", "the impact account SID whose entries to read (default: the only one the ledger holds)")
	cmd.AddCommand(newLedgerExportCmd(&lf), newLedgerShowCmd(&lf), newLedgerRunsCmd(&lf), newLedgerInitCmd(&lf))
	return cmd
}

// config returns the configuration of the ledger the flags name: the
// --ledger file or URL, else the ledger of --config, else
// $CONVPIPE_LEDGER_URL, else the default path.
func (lf *ledgerFlags) config() (ledger.Config, error) {
	c := ledger.Config{Path: ledger.DefaultPath}.WithEnv(os.Getenv)
	if lf.configPath != "" {
		cfg, err := loadConfig(lf.configPath)
		if err != nil {
			return c, err
		}
		c = cfg.Ledger
	}
	if lf.path != "" {
		c = c.WithFlag(lf.path)
	}
	if err := c.Validate(); err != nil {
		return c, configError{err}
	}
	return c, nil
}

// open opens the ledger the flags name, read-only.
func (lf *ledgerFlags) open(cmd *cobra.Command) (ledger.Store, error) {
	c, err := lf.config()
	if err != nil {
		return nil, err
	}
	l, err := c.OpenReadOnly(cmd.Context())
	if err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	if err := lf.chooseAccount(cmd.Context(), l); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// chooseAccount makes l read the account of --account, which the ledger
// must hold; without it, a ledger of several accounts is an error naming
// them.
func (lf *ledgerFlags) chooseAccount(ctx context.Context, l ledger.Store) error {
	accounts, err := l.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if lf.account == "" {
		if len(accounts) > 1 {
			return configError{fmt.Errorf("ledger %s holds the accounts %s: choose one with --account", l.Name(), strings.Join(accounts, ", "))}
		}
		return nil
	}
	if !slices.Contains(accounts, lf.account) {
		return configError{fmt.Errorf("--account %s: ledger %s holds nothing of it (it holds: %s)", lf.account, l.Name(), strings.Join(accounts, ", "))}
	}
	return l.SetAccount(lf.account)
}

func newLedgerInitCmd(lf *ledgerFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Make a new ledger in a PostgreSQL database (runs refuse a database without one)",
		Long: `init makes the ledger's schema in the PostgreSQL database that --ledger,
ledger.url of --config or $CONVPIPE_LEDGER_URL names, or brings an existing
one up to date. A run never makes a PostgreSQL ledger itself: a URL that names
the wrong database, or a database restored empty, would send everything again.
For a SQLite ledger, init makes the file (a run makes it too).`,
		Example: `  PGPASSWORD=... convpipe ledger init --ledger postgres://convpipe@db.internal/convpipe?sslmode=verify-full`,
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := lf.config()
			if err != nil {
				return err
			}
			l, err := c.Open(cmd.Context(), ledger.Options{Command: redactedArgs(), Create: true, Account: lf.account})
			if err != nil {
				if errors.Is(err, pipeline.ErrLocked) {
					return &codeError{code: exitLocked, err: err}
				}
				return fmt.Errorf("ledger: %w", err)
			}
			if err := l.Close(); err != nil {
				return fmt.Errorf("ledger: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ledger %s is ready\n", l.Name())
			return nil
		},
	}
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
		return configError{fmt.Errorf("--state %q: one of pending, accepted, rejected, failed, invalid, skipped, changed, tracked, not_tracked", f.state)}
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
		shown, err := withHistory(cmd.Context(), l, e)
		if err != nil {
			return err
		}
		b, err := json.MarshalIndent(shown, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(out, string(b))
	}
	return printHistory(cmd.Context(), out, l, es)
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
		if rs := r.Summary.Reconcile; rs != nil && rs.NotRun == "" {
			line += fmt.Sprintf("; reconciled: %d tracked, %d not tracked, %d unknown", rs.Tracked, rs.NotTracked, rs.Unknown)
		}
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
		pipeline.StateInvalid, pipeline.StateSkipped, pipeline.StateChanged, pipeline.StateTracked, pipeline.StateNotTracked:
		return true
	}
	return false
}
