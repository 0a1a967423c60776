// Command chaos runs fault-injection campaigns against real oracled member
// processes on loopback (package oracle/chaos) and prints a table of what
// they found: runs per fault kind, operations, acknowledged items, lost
// items, linearizability violations.
//
//	go run ./cmd/chaos -runs-per-fault 100 -seed 7
//	go run ./cmd/chaos -faults kill-leader -runs-per-fault 1 -seed 7007   # rerun one failed seed's kind
//	go run ./cmd/chaos -run-seed 7000142 -faults pause-leader              # rerun one run exactly
//	go run ./cmd/chaos -runs-per-fault 100 -seed 7 -journal chaos-7.jsonl -max-duration 2h  # in sittings
//
// It builds cmd/oracled from the module it runs in, so run it from the
// repository. Linux only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gnarklog "github.com/consensys/gnark/logger"

	"github.com/truegpu/truegpu/internal/cli"
	"github.com/truegpu/truegpu/oracle/chaos"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		cli.Exit("chaos", err)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `chaos runs fault-injection campaigns against real oracled processes.

Each run starts a fresh 3-member cluster with mutual TLS on loopback, drives
attestors, register clients, readers and a report watcher through the public
gRPC API, injects faults (SIGKILL and restart, SIGSTOP past the election
timeout, partitions, latency and connection resets through a TCP proxy, a
skewed leader clock, failing disk writes, a kill in the middle of a snapshot
restore, a member added and one removed), heals, and checks that every
acknowledged item is on every member, that the members reach one state
hash, that the register history is linearizable, that no member panicked,
and the promises of each fault kind (docs/RELIABILITY.md). A failed run's
directory is kept.

Usage:
  chaos [flags]

Flags:
`)
		fs.PrintDefaults()
	}
	runs := fs.Int("runs-per-fault", 1, "runs of each fault kind")
	seed := fs.Uint64("seed", 1, "campaign seed; run i of kind k uses chaos.RunSeed(seed, k, i)")
	runSeed := fs.Uint64("run-seed", 0, "run exactly one run with this seed (with one -faults kind) instead of a campaign")
	faults := fs.String("faults", "all", "comma-separated fault kinds, or all: "+faultNames())
	episodes := fs.Int("episodes", 1, "faults injected one after another in each run")
	hold := fs.Duration("hold", 3*time.Second, "shortest duration of a fault (each lasts up to twice this)")
	warmup := fs.Duration("warmup", 3*time.Second, "workload before the first fault")
	dir := fs.String("dir", "", "scratch directory (default a new temporary one; failed runs are kept there)")
	verbose := fs.Bool("v", false, "print each run's progress")
	maxDuration := fs.Duration("max-duration", 0, "start no run after this long (0: no limit); the table covers the runs done")
	parallel := fs.Int("parallel", 1, "runs at once, each on its own cluster (seeds and order are those of -parallel 1)")
	tableOnly := fs.Bool("table", false, "with -journal: print the table of the runs the journal holds for this -seed and -episodes, and run nothing")
	journal := fs.String("journal", "", "record each finished run in this file and skip the runs it already holds for this -seed and -episodes, so a long campaign can run in sittings; the table covers every recorded run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *runs < 1 {
		return errors.New("-runs-per-fault must be at least 1")
	}
	if *parallel < 1 {
		return errors.New("-parallel must be at least 1")
	}
	kinds, err := parseFaults(*faults)
	if err != nil {
		return err
	}
	if *runSeed != 0 && len(kinds) != 1 {
		return errors.New("-run-seed needs exactly one -faults kind")
	}
	if *tableOnly {
		if *journal == "" {
			return errors.New("-table needs -journal")
		}
		j, err := chaos.ReadJournal(*journal)
		if err != nil {
			return err
		}
		defer j.Close()
		ep := max(*episodes, 1)
		rows := j.Rows(*seed, ep, kinds)
		total := 0
		for _, r := range rows {
			total += r.Runs
		}
		fmt.Fprintf(stdout, "campaign seed %d, %d episode(s) per run: %d of %d runs recorded in %s, by oracled build: %s\n\n",
			*seed, ep, total, *runs*len(kinds), *journal, strings.Join(j.Builds(*seed, ep), ", "))
		chaos.WriteTable(stdout, rows)
		return nil
	}
	// The attestors prove in this process; gnark's progress lines would
	// bury the table.
	gnarklog.Disable()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root, err := chaos.ModuleRoot()
	if err != nil {
		return err
	}
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "truegpu-chaos-"); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "chaos: building oracled into %s\n", *dir)
	bin, err := chaos.BuildOracled(ctx, root, *dir)
	if err != nil {
		return err
	}
	base := chaos.RunConfig{Binary: bin, Dir: *dir, Episodes: *episodes, Hold: *hold, Warmup: *warmup}
	if *verbose {
		base.Log = stderr
	}
	if *runSeed != 0 {
		base.Fault, base.Seed = kinds[0], *runSeed
		base.Dir = filepath.Join(*dir, fmt.Sprintf("%s-seed-%d", kinds[0], *runSeed))
		r := chaos.Run(ctx, base)
		report(stdout, kinds[0], 0, r)
		if !r.Passed() {
			return fmt.Errorf("run failed; its files are in %s", base.Dir)
		}
		return nil
	}
	start := time.Now()
	var until time.Time
	if *maxDuration > 0 {
		until = start.Add(*maxDuration)
	}
	var j *chaos.Journal
	if *journal != "" {
		if j, err = chaos.OpenJournal(*journal, chaos.OracledBuild(bin)); err != nil {
			return err
		}
		defer j.Close()
	}
	rows, err := chaos.Campaign(ctx, base, kinds, *runs, *seed, until, j, *parallel, func(k chaos.Fault, i int, r *chaos.RunResult) {
		report(stderr, k, i, r)
	})
	fmt.Fprintf(stdout, "\ncampaign seed %d, -runs-per-fault %d, %d episode(s) per run, %d at once, %v\n", *seed, *runs, *episodes, *parallel, time.Since(start).Round(time.Second))
	if j != nil {
		fmt.Fprintf(stdout, "runs recorded in %s, by oracled build: %s\n", *journal, strings.Join(j.Builds(*seed, max(*episodes, 1)), ", "))
	}
	fmt.Fprintln(stdout)
	chaos.WriteTable(stdout, rows)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if r.Passed != r.Runs {
			return fmt.Errorf("some runs failed (the table names their seeds); the files of the runs that failed in this sitting are in %s", *dir)
		}
	}
	os.RemoveAll(*dir)
	return nil
}

func report(w io.Writer, k chaos.Fault, i int, r *chaos.RunResult) {
	verdict := "passed"
	if !r.Passed() {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "chaos: %s run %d seed %d %s in %v: %s; %d ops, %d acknowledged, %d lost, linearizability %s, applied index %d, forced stops %d\n",
		k, i, r.Seed, verdict, r.Duration.Round(time.Second), strings.Join(r.Faults, "; "), r.Ops, r.Acked, len(r.Lost), r.Linearizable.Result, r.AppliedIndex, r.ForcedStops)
	for _, p := range r.Problems() {
		fmt.Fprintf(w, "chaos:   %s\n", p)
	}
}

func faultNames() string {
	var s []string
	for _, f := range chaos.Faults {
		s = append(s, string(f))
	}
	return strings.Join(append(s, string(chaos.Mixed)), ", ")
}

func parseFaults(s string) ([]chaos.Fault, error) {
	if s == "all" {
		return chaos.Faults, nil
	}
	var out []chaos.Fault
	for _, name := range strings.Split(s, ",") {
		f, err := chaos.ParseFault(strings.TrimSpace(name))
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}
