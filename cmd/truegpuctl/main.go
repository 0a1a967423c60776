// Command truegpuctl is the operator and consumer client of a TrueGPU oracle
// cluster, and the local tool for work proofs and key ceremonies.
//
// Each verb lives in its own file and adds itself to the command table with
// register. What several verbs share lives in client.go (the verbs that call
// an oracle member) and proof.go (the proof and key verbs). A verb may be two
// words ("eval fleet"); the two-word verb wins over the one-word verb with
// the same first word. Exit codes: 0 success, 1 the operation failed, 2 bad
// usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/truegpu/truegpu/internal/cli"
)

// command is one verb of truegpuctl.
type command struct {
	// Name is the verb, e.g. "nodes" or "ceremony".
	Name string
	// Usage is the argument synopsis shown after the verb.
	Usage string
	// Short is a one-line description for the command list.
	Short string
	// Long is the full help text printed by "truegpuctl help VERB".
	Long string
	// Flags registers the verb's flags; nil means no flags.
	Flags func(fs *flag.FlagSet)
	// Run executes the verb with the arguments left after flag parsing.
	Run func(ctx *runContext, args []string) error
}

// runContext carries what every verb needs.
type runContext struct {
	Stdout io.Writer
	Stderr io.Writer
	Flags  *flag.FlagSet
}

// errUsage marks an error caused by bad arguments; it exits with status 2.
var errUsage = cli.ErrUsage

// usageError reports bad arguments to a verb.
func usageError(format string, args ...any) error {
	return cli.UsageError(format, args...)
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.Name]; dup {
		panic("truegpuctl: duplicate command " + c.Name)
	}
	commands[c.Name] = c
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" && len(args) == 1 {
		printUsage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "help" {
		c, ok := commands[args[1]]
		if len(args) > 2 && commands[args[1]+" "+args[2]] != nil {
			c, ok = commands[args[1]+" "+args[2]], true
		}
		if !ok {
			fmt.Fprintf(stderr, "truegpuctl: unknown command %q; run 'truegpuctl -h' for the list\n", args[1])
			return 2
		}
		printCommandHelp(stdout, c)
		return 0
	}
	c, ok := commands[args[0]]
	if len(args) > 1 && commands[args[0]+" "+args[1]] != nil {
		// A two-word verb such as "eval fleet".
		c, ok, args = commands[args[0]+" "+args[1]], true, args[1:]
	}
	if !ok {
		fmt.Fprintf(stderr, "truegpuctl: unknown command %q; run 'truegpuctl -h' for the list\n", args[0])
		return 2
	}
	fs := flag.NewFlagSet("truegpuctl "+c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { printCommandHelp(stderr, c) }
	if c.Flags != nil {
		c.Flags(fs)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	err := c.Run(&runContext{Stdout: stdout, Stderr: stderr, Flags: fs}, fs.Args())
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "truegpuctl %s: %v\nrun 'truegpuctl help %s' for usage\n", c.Name, err, c.Name)
		return 2
	default:
		fmt.Fprintf(stderr, "truegpuctl %s: %v\n", c.Name, err)
		return 1
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "truegpuctl: operator and consumer client for a TrueGPU oracle cluster.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: truegpuctl COMMAND [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].Short)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'truegpuctl help COMMAND' for a command's flags and arguments.")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: truegpuctl %s %s\n\n", c.Name, c.Usage)
	fmt.Fprintln(w, strings.TrimSpace(c.Long))
	fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
	if c.Flags != nil {
		c.Flags(fs)
		fmt.Fprintln(w, "\nFlags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}
