// Command convpipe turns shops' order exports into impact.com conversions.
//
// See the README for the configuration, the subcommands and the exit codes.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}
