package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "convpipe",
		Short: "Turn order exports (CSV, Parquet; local or S3) into impact.com conversions",
		Long: `convpipe reads order exports, groups order lines into orders, maps them to
impact.com Conversions API payloads through a YAML mapping, checks them against
the API's rules and submits them at the account's quota, recording every
outcome in a ledger so that any run can be repeated or resumed safely.

Credentials come from the environment only: IMPACT_ACCOUNT_SID and
IMPACT_AUTH_TOKEN for the API, the AWS SDK's standard chain for S3.

Exit codes: 0 all good; 1 fatal error; 2 usage or configuration error;
3 finished, but some rows or conversions are invalid, rejected, failed,
changed or found not tracked, the results file could not be written, or the
source selected no object (see run.allow_empty); 4 another run holds the
ledger's lock.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newRunCmd(), newValidateCmd(), newPlanCmd(), newLedgerCmd(), newReportCmd(), newSimCmd(), newReconcileCmd(), newCorrectionsCmd())
	return root
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	var ce *codeError
	if errors.As(err, &ce) {
		if ce.err != nil {
			fmt.Fprintln(os.Stderr, "convpipe:", ce.err)
		}
		return ce.code
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(os.Stderr, "convpipe: %v\nSee '%s --help'.\n", err, cmd.CommandPath())
		return exitUsage
	}
	fmt.Fprintln(os.Stderr, "convpipe:", err)
	return exitCode(err, nil)
}

// codeError carries a command's chosen exit code to run; err, when not
// nil, is printed.
type codeError struct {
	code int
	err  error
}

func (e *codeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *codeError) Unwrap() error { return e.err }

// usageError is a command line cobra refused (a flag, the arguments):
// exit code 2, with a pointer to --help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageArgs marks the errors of an argument check as usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}
