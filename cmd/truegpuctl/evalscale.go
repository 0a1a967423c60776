package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"text/tabwriter"
	"time"

	"github.com/truegpu/truegpu/oracle/scaleeval"
)

func init() {
	var (
		nodes, reads, clients, workers int
		seed                           uint64
		decided                        float64
		dir                            string
		asJSON                         bool
		fillTime                       time.Duration
	)
	register(&command{
		Name:  "eval scale",
		Usage: "[flags]",
		Short: "measure one cluster's state, reads, epoch close and snapshots at a fleet size",
		Long: `
Eval scale runs a development cluster in this process (three Raft members on
loopback, Raft over mutual TLS, Pebble state and log), fills it with
-nodes synthetic nodes and measures what the fleet costs one cluster.

The fleet goes through Raft and every member's state machine: each node's
registration is signed by its own key and proposed on the leader (the
node-facing admission budget and replay window are skipped; Apply checks
each signature). A node has one device (three in four) or two, all of one
claimed class among H100-SXM, A100-80GB, L40S and RTX-4090, each with a
complete, unique NVML fingerprint. A share of the nodes (-decided) gets one
decided challenge: issued, committed with the node's signed commitment,
then accepted (four in five) or rejected as invalid with the node's signed
proof submission. Those proofs are placeholders of the real size, so the
members' audits do not sign the epoch closed here.

It prints:

  state          member 1's state (Pebble) and Raft log on disk, per node
                 and per decided challenge, and the logical state size (the
                 snapshot stream's bytes)
  REST reads     GET /v1/nodes/{address} of random registered nodes and
                 first pages of GET /v1/nodes (100 rows, a class and
                 mostly a status filter, score order) on member 1's HTTP
                 gateway, from -clients keep-alive connections in this
                 process: requests per second, p50 and p99
  epoch close    a close_epoch command proposed on the leader until applied
                 there and on every member (every node record scored, the
                 Merkle tree, the report), and the tree rebuilt alone from
                 the epoch's leaves
  snapshot       a Raft snapshot on the leader (time, size); then a
                 follower is stopped, its data deleted and restarted, and
                 installs the leader's snapshot: time until it has applied
                 the leader's index, and both states' hashes
  memory         the Go heap in use and the process's resident set and peak
                 (three members and the load generator share the process)

With -fill-time the registrations stop once that time has passed (checked
between chunks of a twentieth of -nodes) and the nodes registered by then
are measured; "nodes asked for" shows -nodes. Progress goes to standard
error. The figures are of one process on one
machine and vary with its load; docs/SCALE.md records measured runs.

Exit status: 0 measured, 1 the cluster or a measurement failed, 2 bad usage.`,
		Flags: func(fs *flag.FlagSet) {
			fs.IntVar(&nodes, "nodes", 100_000, "synthetic nodes to register")
			fs.Uint64Var(&seed, "seed", 1, "seed of the fleet and the read mix")
			fs.Float64Var(&decided, "decided", 0.1, "share of nodes given one decided challenge (0: none)")
			fs.IntVar(&reads, "reads", 20_000, "GET node requests (list pages: a tenth of it)")
			fs.IntVar(&clients, "clients", 8, "concurrent HTTP connections of the read load")
			fs.IntVar(&workers, "workers", 512, "commands in flight while filling the state")
			fs.StringVar(&dir, "dir", "", "data `directory`, which must be empty or absent and is kept (default: a temporary directory, removed)")
			fs.DurationVar(&fillTime, "fill-time", 0, "stop registering after this long and measure the nodes registered by then (0: no limit)")
			fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
		},
		Run: func(ctx *runContext, args []string) error {
			if len(args) > 0 {
				return usageError("eval scale takes no arguments, got %q", args[0])
			}
			switch {
			case nodes < 10:
				return usageError("-nodes must be at least 10")
			case decided < 0 || decided > 1:
				return usageError("-decided must be between 0 and 1")
			case reads < 10:
				return usageError("-reads must be at least 10")
			case clients < 1 || workers < 1:
				return usageError("-clients and -workers must be positive")
			case fillTime < 0:
				return usageError("-fill-time must not be negative")
			}
			if dir != "" {
				if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
					return usageError("-dir %s is not empty", dir)
				}
			}
			d := decided
			if d == 0 {
				d = -1
			}
			c, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			rep, err := scaleeval.Run(c, scaleeval.Options{Nodes: nodes, Seed: seed, Decided: d, Dir: dir, Reads: reads,
				Clients: clients, Workers: workers, FillTime: fillTime, Progress: ctx.Stderr})
			if err != nil {
				return fmt.Errorf("eval scale: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(ctx.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return printScale(ctx.Stdout, rep)
		},
	})
}

func printScale(w io.Writer, r *scaleeval.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mb := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	rows := [][2]string{
		{"nodes (devices)", fmt.Sprintf("%d (%d)", r.Nodes, r.Devices)},
		{"nodes asked for", fmt.Sprintf("%d", r.Requested)},
		{"decided challenges (accepted)", fmt.Sprintf("%d (%d)", r.Decided, r.Accepted)},
		{"registrations committed", fmt.Sprintf("%.0f/s (%.1f s)", r.RegistrationsPS, r.RegisterMillis/1000)},
		{"challenge commands committed", fmt.Sprintf("%d at %.0f/s", r.ChallengeCommand, r.ChallengeCmdsPS)},
		{"state on disk, registered", fmt.Sprintf("%s, %.0f B/node", mb(r.StateBytesRegistered), r.StateBytesPerNode)},
		{"state on disk, with challenges", fmt.Sprintf("%s, %.0f B/decided challenge", mb(r.StateBytes), r.StateBytesPerDecided)},
		{"logical state (snapshot stream)", fmt.Sprintf("%s, %.0f B/node", mb(r.LogicalStateBytes), r.LogicalBytesPerNode)},
		{"node record (encoded, mean)", fmt.Sprintf("%.0f B", r.NodeRecordBytes)},
		{"Raft log on disk", fmt.Sprintf("%s, %.0f B/node, %d entries", mb(r.RaftLogBytes), r.RaftLogBytesPerNode, r.RaftLogEntries)},
		{"REST GET /v1/nodes/{address}", readRow(r.GetNode)},
		{"REST GET /v1/nodes (page of 100)", readRow(r.ListNodes)},
		{"epoch close (leader; all members)", fmt.Sprintf("%.0f ms; %.0f ms", r.EpochCloseMillis, r.EpochAllMillis)},
		{"epoch record", fmt.Sprintf("%s, %d leaves, read in %.0f ms", mb(int64(r.EpochRecordBytes)), r.EpochLeaves, r.EpochReadMillis)},
		{"Merkle tree build", fmt.Sprintf("%.0f ms", r.MerkleMillis)},
		{"Raft snapshot (leader)", fmt.Sprintf("%.0f ms, %s at index %d", r.SnapshotMillis, mb(r.SnapshotBytes), r.SnapshotIndex)},
		{"snapshot installed on a wiped follower", fmt.Sprintf("%.0f ms (%s, from snapshot: %v)", r.RestoreMillis, r.RestoredMember, r.RestoredFromSnapshot)},
		{"state hash, leader = restored", fmt.Sprintf("%v at index %d", r.SourceStateHash == r.RestoredStateHash, r.HashIndex)},
		{"Go heap in use (filled; end)", fmt.Sprintf("%s; %s", mb(r.HeapInUseFilled), mb(r.HeapInUse))},
		{"process RSS (end; peak)", fmt.Sprintf("%s; %s", mb(r.RSS), mb(r.PeakRSS))},
		{"total", fmt.Sprintf("%.1f s", r.TotalMillis/1000)},
	}
	for _, row := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}

func readRow(s scaleeval.ReadStats) string {
	return fmt.Sprintf("%.0f/s, p50 %.2f ms, p99 %.2f ms (%d requests, %d connections, %.0f B)", s.PerSecond, s.P50Millis, s.P99Millis, s.Requests, s.Clients, s.Bytes)
}
