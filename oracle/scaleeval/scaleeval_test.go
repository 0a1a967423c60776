package scaleeval

import (
	"context"
	"os"
	"testing"
)

// TestRunSmall measures a small fleet and checks the report's structure:
// every figure present, the node count, the epoch's leaves and root, and
// that the restored follower holds the leader's state. Timings are never
// asserted.
func TestRunSmall(t *testing.T) {
	var progress *os.File
	if testing.Verbose() {
		progress = os.Stderr
	}
	opts := Options{Nodes: 2000, Seed: 3, Reads: 400, Clients: 4, Dir: t.TempDir()}
	if progress != nil {
		opts.Progress = progress
	}
	rep, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Nodes != 2000 || rep.EpochLeaves != 2000 {
		t.Errorf("nodes %d, epoch leaves %d, want 2000", rep.Nodes, rep.EpochLeaves)
	}
	if rep.Devices < rep.Nodes || rep.Devices > 2*rep.Nodes {
		t.Errorf("devices %d for %d nodes", rep.Devices, rep.Nodes)
	}
	if rep.Decided < 100 || rep.Accepted == 0 || rep.Accepted >= rep.Decided {
		t.Errorf("decided %d, accepted %d: want about a tenth of the nodes, most but not all accepted", rep.Decided, rep.Accepted)
	}
	positive := map[string]float64{
		"register_ms": rep.RegisterMillis, "registrations_per_s": rep.RegistrationsPS, "challenges_ms": rep.ChallengeMillis,
		"state_bytes": float64(rep.StateBytes), "state_bytes_registered": float64(rep.StateBytesRegistered),
		"raft_log_bytes": float64(rep.RaftLogBytes), "state_bytes_per_node": rep.StateBytesPerNode,
		"raft_log_bytes_per_node": rep.RaftLogBytesPerNode, "logical_state_bytes": float64(rep.LogicalStateBytes),
		"node_record_bytes": rep.NodeRecordBytes,
		"get_per_s":         rep.GetNode.PerSecond, "get_p99": rep.GetNode.P99Millis, "get_bytes": rep.GetNode.Bytes,
		"list_per_s": rep.ListNodes.PerSecond, "list_p99": rep.ListNodes.P99Millis, "list_bytes": rep.ListNodes.Bytes,
		"epoch_close_ms": rep.EpochCloseMillis, "epoch_all_ms": rep.EpochAllMillis, "epoch_record_bytes": float64(rep.EpochRecordBytes),
		"merkle_ms": rep.MerkleMillis, "epoch_read_ms": rep.EpochReadMillis, "snapshot_ms": rep.SnapshotMillis, "snapshot_bytes": float64(rep.SnapshotBytes),
		"restore_ms": rep.RestoreMillis, "heap_filled": float64(rep.HeapInUseFilled), "heap": float64(rep.HeapInUse),
		"rss": float64(rep.RSS), "peak_rss": float64(rep.PeakRSS),
	}
	for k, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want > 0", k, v)
		}
	}
	if rep.GetNode.Requests != 400 || rep.ListNodes.Requests != 40 {
		t.Errorf("requests: %d GET node, %d list pages", rep.GetNode.Requests, rep.ListNodes.Requests)
	}
	if rep.EpochRoot == "" || rep.EpochRoot != rep.MerkleRoot {
		t.Errorf("epoch root %q, tree rebuilt from its leaves %q", rep.EpochRoot, rep.MerkleRoot)
	}
	if !rep.RestoredFromSnapshot {
		t.Error("the wiped follower replayed the log instead of installing the snapshot")
	}
	if rep.SourceStateHash == "" || rep.SourceStateHash != rep.RestoredStateHash || rep.HashIndex < rep.SnapshotIndex {
		t.Errorf("state hash at %d: leader %s, restored %s (snapshot index %d)", rep.HashIndex, rep.SourceStateHash, rep.RestoredStateHash, rep.SnapshotIndex)
	}
	if rep.PeakRSS < rep.RSS {
		t.Errorf("peak RSS %d below RSS %d", rep.PeakRSS, rep.RSS)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{{Nodes: 5}, {Decided: 2}, {Reads: 3}} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
