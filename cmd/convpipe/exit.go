package main

import (
	"errors"

	"convpipe/pipeline"
)

// The exit codes, documented in the README. They are chosen here and
// nowhere else.
const (
	exitOK        = 0 // everything read was sent or was already sent
	exitFatal     = 1 // the run could not go on: source, ledger, credentials
	exitUsage     = 2 // bad command line or configuration
	exitAttention = 3 // the run finished, but some input or conversions need a human
	exitLocked    = 4 // another run holds the ledger's lock
)

// exitCode maps the result of a command to its exit code.
func exitCode(err error, s *pipeline.Summary) int {
	var ce configError
	switch {
	case err == nil:
	case errors.Is(err, pipeline.ErrLocked):
		return exitLocked
	case errors.As(err, &ce):
		return exitUsage
	default:
		return exitFatal
	}
	if s != nil && (s.FileErrors > 0 || s.Total.NeedsAttention() || (s.Reconcile != nil && s.Reconcile.NotTracked > 0)) {
		return exitAttention
	}
	return exitOK
}

// runExitCode is the exit code of `convpipe run`: exitCode's, and
// exitAttention when the verdict finds something else that needs a person
// (the results file could not be written, the source selected nothing).
func runExitCode(err error, s *pipeline.Summary, v verdict) int {
	code := exitCode(err, s)
	if code == exitOK && len(v.attention) > 0 {
		return exitAttention
	}
	return code
}

// exitResult is a command's error for its exit code and the error that
// ended it, if any: nil for exitOK without one.
func exitResult(code int, runErr error) error {
	if runErr != nil {
		return &codeError{code: code, err: runErr}
	}
	if code != exitOK {
		return &codeError{code: code}
	}
	return nil
}
