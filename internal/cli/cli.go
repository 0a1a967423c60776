// Package cli is what the commands (attestor, oracled, truegpuctl, chaos)
// share about how they end: a usage error, and the exit status an error
// maps to: 0 success (or help shown), 1 the operation failed, 2 bad usage.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// ErrUsage marks an error caused by bad arguments; a command ends with exit
// status 2 for it.
var ErrUsage = errors.New("usage")

// UsageError reports bad arguments. Its text starts with "usage: ".
func UsageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUsage, fmt.Sprintf(format, args...))
}

// ExitCode is the exit status for the error a command ended with: 0 for nil
// and for flag.ErrHelp (help was asked for and printed), 2 for an error
// wrapping ErrUsage, 1 for any other.
func ExitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		return 1
	}
}

// Exit ends the process with ExitCode(err), first writing "name: err" to
// stderr unless the exit status is 0.
func Exit(name string, err error) {
	os.Exit(report(os.Stderr, name, err))
}

// report writes err for Exit and returns the exit status.
func report(w io.Writer, name string, err error) int {
	code := ExitCode(err)
	if code != 0 {
		fmt.Fprintf(w, "%s: %v\n", name, err)
	}
	return code
}
