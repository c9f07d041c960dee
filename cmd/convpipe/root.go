package main

import (
	"fmt"
	"os"

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
outcome in a ledger so that any run can be repeated or resumed safely.`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newSimCmd())
	return root
}

func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "convpipe:", err)
		return 2
	}
	return 0
}
