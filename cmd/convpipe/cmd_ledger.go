package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"convpipe/ledger"
	"convpipe/pipeline"
)

func newLedgerCmd() *cobra.Command {
	var path, configPath string
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Read the results ledger: export entries, show one order",
		Long: `ledger reads the results ledger (read-only: it works while a run holds the
lock). The ledger is the --ledger file, or ledger.path of --config.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&path, "ledger", "", "the ledger's SQLite file")
	pf.StringVarP(&configPath, "config", "c", "", "configuration file whose ledger.path to read")
	open := func(cmd *cobra.Command) (*ledger.Ledger, error) {
		p := path
		if p == "" && configPath != "" {
			cfg, err := loadConfig(configPath)
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

	var format, state, runID string
	export := &cobra.Command{
		Use:   "export [--format csv|jsonl] [--state S] [--run R]",
		Short: "Write ledger entries as CSV or JSON lines to standard output",
		Example: `  convpipe ledger export --ledger convpipe-ledger.db --state rejected
  convpipe ledger export --config convpipe.yaml --format jsonl --run 20261123T010000Z-1a2b`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := pipeline.Filter{State: pipeline.State(state), RunID: runID}
			if state != "" && !validState(f.State) {
				return configError{fmt.Errorf("--state %q: one of pending, accepted, rejected, failed, invalid, skipped, changed", state)}
			}
			l, err := open(cmd)
			if err != nil {
				return err
			}
			defer l.Close()
			w := bufio.NewWriter(cmd.OutOrStdout())
			defer w.Flush()
			switch format {
			case "csv":
				return ledger.WriteCSV(cmd.Context(), w, l, f)
			case "jsonl":
				return ledger.WriteJSONL(cmd.Context(), w, l, f)
			}
			return configError{fmt.Errorf("--format %q: csv or jsonl", format)}
		},
	}
	export.Flags().StringVar(&format, "format", "csv", "csv or jsonl")
	export.Flags().StringVar(&state, "state", "", "only entries in this state")
	export.Flags().StringVar(&runID, "run", "", "only entries last written by this run")

	show := &cobra.Command{
		Use:   "show ORDER_ID",
		Short: "Show everything the ledger knows about one order (every event type)",
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := open(cmd)
			if err != nil {
				return err
			}
			defer l.Close()
			n := 0
			out := cmd.OutOrStdout()
			err = l.Entries(cmd.Context(), pipeline.Filter{OrderID: args[0]}, func(e pipeline.Entry) error {
				n++
				b, err := json.MarshalIndent(e, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(out, string(b))
				return nil
			})
			if err != nil {
				return err
			}
			if n == 0 {
				return &codeError{code: exitFatal, err: fmt.Errorf("order %q is not in the ledger", args[0])}
			}
			return nil
		},
	}
	runs := &cobra.Command{
		Use:   "runs",
		Short: "List the runs recorded in the ledger with their summaries",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := open(cmd)
			if err != nil {
				return err
			}
			defer l.Close()
			out := cmd.OutOrStdout()
			return l.Runs(cmd.Context(), func(r pipeline.RunInfo) error {
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
				_, err := fmt.Fprintln(out, strings.TrimSpace(line))
				return err
			})
		},
	}
	cmd.AddCommand(export, show, runs)
	return cmd
}

func validState(s pipeline.State) bool {
	switch s {
	case pipeline.StatePending, pipeline.StateAccepted, pipeline.StateRejected, pipeline.StateFailed,
		pipeline.StateInvalid, pipeline.StateSkipped, pipeline.StateChanged:
		return true
	}
	return false
}
