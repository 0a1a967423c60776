// Command attestor is the TrueGPU node agent. It runs on a GPU node,
// registers the node's devices with an oracle cluster, answers challenges
// (runs the seeded workload, commits before the deadline, proves and
// submits) and prints device fingerprints.
//
//	attestor keygen --key node.key
//	attestor fingerprint --device nvml
//	attestor selftest --device cuda --profile demo
//	attestor run --oracle oracle.example:7443 --key node.key --device nvml
//	attestor run --oracle 127.0.0.1:7400 --insecure --dev-keys --device sim:h100
//
// Devices: nvml (NVML identity, CUDA execution), cuda (CUDA driver only),
// cpu (the reference implementation; honest CPU-only nodes), and
// sim:<profile> (simulated honest and adversarial devices, see
// attest/sim). Exit codes: 0 success, 1 failure, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/truegpu/truegpu/internal/cli"
)

// command is one verb.
type command struct {
	Name  string
	Usage string
	Short string
	Flags func(fs *flag.FlagSet) any
	Run   func(ctx context.Context, env *env, opts any, args []string) error
}

// env is what every verb writes to.
type env struct {
	Stdout, Stderr io.Writer
}

func usageError(format string, args ...any) error {
	return cli.UsageError(format, args...)
}

var commands = map[string]*command{}

func register(c *command) { commands[c.Name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{Stdout: stdout, Stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				printCommandHelp(stderr, c)
				return 0
			}
		}
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "attestor: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("attestor "+c.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts any
	if c.Flags != nil {
		opts = c.Flags(fs)
	}
	fs.Usage = func() { printCommandHelp(stderr, c); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.Run(ctx, e, opts, fs.Args()); err != nil {
		fmt.Fprintf(stderr, "attestor %s: %v\n", c.Name, err)
		return cli.ExitCode(err)
	}
	return 0
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "attestor is the TrueGPU node agent.\n\nUsage: attestor <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].Short)
	}
	fmt.Fprintln(w, "\nRun 'attestor help <command>' for its flags.")
}

func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: attestor %s %s\n\n%s\n", c.Name, c.Usage, c.Short)
	if c.Flags != nil {
		fs := flag.NewFlagSet(c.Name, flag.ContinueOnError)
		c.Flags(fs)
		fs.SetOutput(w)
		fmt.Fprintln(w, "\nFlags:")
		fs.PrintDefaults()
	}
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }
