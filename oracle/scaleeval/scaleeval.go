// Package scaleeval measures what one oracle cluster costs as its fleet
// grows: it fills a three-member development cluster (oracle/devcluster,
// Raft over mutual TLS on loopback, Pebble state and log) with a synthetic
// fleet of registered nodes through Raft and the real state machine, then
// measures state bytes per node, REST reads on a member's HTTP gateway, an
// epoch close and its Merkle tree, a Raft snapshot and its installation on
// a wiped follower, and the process's memory. `truegpuctl eval scale` runs
// it; docs/SCALE.md records its figures.
package scaleeval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/devcluster"
	"github.com/truegpu/truegpu/oracle/fsm"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
	"github.com/truegpu/truegpu/verifier"
)

// Options configure a measurement. Zero values take the defaults.
type Options struct {
	// Nodes is the number of synthetic nodes registered. Default 100,000.
	Nodes int
	// Seed makes the fleet (devices, classes, which nodes are challenged,
	// verdicts) and the read mix reproducible. Default 1.
	Seed uint64
	// Decided is the share of nodes given one decided challenge (issued,
	// committed, then accepted or rejected). Default 0.1; negative: none.
	Decided float64
	// Dir holds the members' data. Default: a temporary directory
	// removed at the end.
	Dir string
	// Reads is the number of GET /v1/nodes/{address} requests; list
	// pages are a tenth of it, at least 10. Default 20,000.
	Reads int
	// Clients is the number of concurrent keep-alive HTTP connections of
	// the read load. Default 8.
	Clients int
	// Workers is the number of registrations and challenge commands in
	// flight while filling. Default 512.
	Workers int
	// FillTime, when positive, stops registering once this much time has
	// passed (checked between chunks of a twentieth of Nodes): the
	// report then measures the nodes registered by then.
	FillTime time.Duration
	// Progress receives progress lines; nil: none.
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Nodes == 0 {
		o.Nodes = 100_000
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	switch {
	case o.Decided == 0:
		o.Decided = 0.1
	case o.Decided < 0:
		o.Decided = 0
	}
	if o.Reads == 0 {
		o.Reads = 20_000
	}
	if o.Clients == 0 {
		o.Clients = 8
	}
	if o.Workers == 0 {
		o.Workers = 512
	}
	switch {
	case o.Nodes < 10:
		return errors.New("nodes must be at least 10")
	case o.Decided > 1:
		return errors.New("the decided share must be at most 1")
	case o.Reads < 10 || o.Clients < 1 || o.Workers < 1:
		return errors.New("reads must be at least 10, clients and workers at least 1")
	}
	return nil
}

// Report is the outcome of a measurement. Durations are in milliseconds,
// sizes in bytes.
type Report struct {
	// Nodes is the number of nodes registered and measured; Requested
	// the number asked for (more when Options.FillTime ran out first).
	Nodes     int    `json:"nodes"`
	Requested int    `json:"requested_nodes"`
	Devices   int    `json:"devices"`
	Seed      uint64 `json:"seed"`
	// Decided is the number of decided challenges (one per chosen node),
	// Accepted how many of them were accepted.
	Decided  int `json:"decided_challenges"`
	Accepted int `json:"accepted_challenges"`
	// Fill: registrations and challenge commands committed through Raft.
	RegisterMillis   float64 `json:"register_ms"`
	RegistrationsPS  float64 `json:"registrations_per_s"`
	ChallengeMillis  float64 `json:"challenges_ms"`
	ChallengeCmdsPS  float64 `json:"challenge_commands_per_s"`
	ChallengeCommand int     `json:"challenge_commands"`

	// Member 1's data on disk after registration and after the decided
	// challenges: state (its Pebble database), Raft log and stable store
	// (Pebble), snapshots.
	StateBytesRegistered  int64   `json:"state_bytes_registered"`
	StateBytes            int64   `json:"state_bytes"`
	RaftLogBytes          int64   `json:"raft_log_bytes"`
	RaftLogEntries        uint64  `json:"raft_log_entries"`
	StateBytesPerNode     float64 `json:"state_bytes_per_node"`
	RaftLogBytesPerNode   float64 `json:"raft_log_bytes_per_node"`
	StateBytesPerDecided  float64 `json:"state_bytes_per_decided_challenge"`
	LogicalStateBytes     int64   `json:"logical_state_bytes"`
	LogicalBytesPerNode   float64 `json:"logical_state_bytes_per_node"`
	NodeRecordBytes       float64 `json:"node_record_bytes_mean"`
	StateDirDescription   string  `json:"state_dir"`
	RaftLogDirDescription string  `json:"raft_log_dir"`

	GetNode   ReadStats `json:"rest_get_node"`
	ListNodes ReadStats `json:"rest_list_nodes"`

	// EpochCloseMillis is the close_epoch command proposed on the leader
	// until applied there (commit on a majority, scan of every node
	// record, scores, Merkle tree, report); EpochAllMillis until every
	// member applied it. MerkleMillis builds the tree from the epoch's
	// leaves alone.
	EpochCloseMillis float64 `json:"epoch_close_ms"`
	EpochAllMillis   float64 `json:"epoch_close_all_members_ms"`
	EpochLeaves      int     `json:"epoch_leaves"`
	EpochRecordBytes int     `json:"epoch_record_bytes"`
	MerkleMillis     float64 `json:"merkle_build_ms"`
	// EpochReadMillis reads and decodes the epoch record from the
	// state (what the feed API and each member's audit loop read), best
	// of three.
	EpochReadMillis float64 `json:"epoch_record_read_ms"`
	EpochRoot       string  `json:"epoch_root"`
	MerkleRoot      string  `json:"merkle_root"`

	// Snapshot: a user snapshot on the leader (FSM snapshot streamed into
	// Raft's file snapshot store); its size is the stream's.
	SnapshotMillis float64 `json:"snapshot_ms"`
	SnapshotBytes  int64   `json:"snapshot_bytes"`
	SnapshotIndex  uint64  `json:"snapshot_index"`
	// Restore: a follower stopped, its data directory deleted and the
	// member restarted; the leader sends it the snapshot. RestoreMillis
	// runs from the restart until the follower has applied the leader's
	// index. RestoredFromSnapshot says the follower's Raft installed a
	// snapshot (rather than replaying the log).
	RestoreMillis        float64 `json:"restore_ms"`
	RestoredMember       string  `json:"restored_member"`
	RestoredFromSnapshot bool    `json:"restored_from_snapshot"`
	SourceStateHash      string  `json:"source_state_hash"`
	RestoredStateHash    string  `json:"restored_state_hash"`
	HashIndex            uint64  `json:"hash_index"`

	// Memory of the whole process (three members, their Pebble caches
	// and the load generator): Go heap in use after a collection, at the
	// end of the fill and at the end; resident set and its peak.
	HeapInUseFilled int64 `json:"heap_inuse_after_fill"`
	HeapInUse       int64 `json:"heap_inuse_end"`
	RSS             int64 `json:"rss_end"`
	PeakRSS         int64 `json:"peak_rss"`
	GoroutinesEnd   int   `json:"goroutines_end"`

	TotalMillis float64 `json:"total_ms"`
}

// ReadStats are the figures of one kind of REST read.
type ReadStats struct {
	Requests  int     `json:"requests"`
	Clients   int     `json:"clients"`
	PerSecond float64 `json:"per_s"`
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
	Bytes     float64 `json:"response_bytes_mean"`
}

// classes are the claimed classes of the synthetic fleet, with the product
// name and memory their fingerprints carry.
var classes = []struct {
	class, name string
	mem         uint64
	cc          [2]uint32
}{
	{"H100-SXM", "NVIDIA H100 80GB HBM3", 85_520_809_984, [2]uint32{9, 0}},
	{"A100-80GB", "NVIDIA A100-SXM4-80GB", 85_899_345_920, [2]uint32{8, 0}},
	{"L40S", "NVIDIA L40S", 48_305_799_168, [2]uint32{8, 9}},
	{"RTX-4090", "NVIDIA GeForce RTX 4090", 25_757_220_864, [2]uint32{8, 9}},
}

// fleet describes the synthetic nodes; node i is a pure function of the
// seed and i.
type fleet struct{ seed uint64 }

func (f fleet) key(i int) *attest.NodeKey {
	return attest.NodeKeyFromSeed(fmt.Appendf(nil, "truegpu scale eval %d node %d", f.seed, i))
}

func (f fleet) rng(i int, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(f.seed^stream, uint64(i)))
}

// devices are one device (three nodes in four) or two, of one class per
// node, each with a complete NVML fingerprint unique to it.
func (f fleet) devices(i int) []*truegpuv1.Device {
	r := f.rng(i, 0x6465766963657321)
	c := classes[r.IntN(len(classes))]
	n := 1
	if r.IntN(4) == 0 {
		n = 2
	}
	devs := make([]*truegpuv1.Device, n)
	for d := range devs {
		devs[d] = &truegpuv1.Device{Index: uint32(d), ClaimedClass: c.class, Fingerprint: &truegpuv1.DeviceFingerprint{
			Uuid:                   fmt.Sprintf("GPU-%08x-%04x-%04x-%04x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint32()&0xffff, r.Uint64()&0xffffffffffff),
			Serial:                 fmt.Sprintf("%013d", r.Uint64()%10_000_000_000_000),
			BoardPartNumber:        "692-2G520-0200-000",
			BoardId:                uint64(r.Uint32()) << 8,
			PciBusId:               fmt.Sprintf("00000000:%02X:00.0", 0x18+d*0x10),
			PciDeviceId:            0x233010de,
			PciSubsystemId:         0x16c110de,
			Name:                   c.name,
			MemoryTotalBytes:       c.mem,
			VbiosVersion:           "96.00.99.00.01",
			DriverVersion:          "550.54.15",
			CudaDriverVersion:      12040,
			ComputeCapabilityMajor: c.cc[0],
			ComputeCapabilityMinor: c.cc[1],
			MaxSmClockMhz:          1980,
			MaxMemoryClockMhz:      2619,
			PowerLimitMw:           700_000,
		}}
	}
	return devs
}

// Run fills a new development cluster with opts.Nodes synthetic nodes and
// measures it. The cluster and, unless opts.Dir is set, its data are gone
// when Run returns.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "scale: "+format+"\n", args...)
		}
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "truegpu-scale-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	} else if ents, err := os.ReadDir(dir); err != nil {
		return nil, err
	} else if len(ents) > 0 {
		return nil, fmt.Errorf("data directory %s is not empty", dir)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	oracle.TuneGC()
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout = 2 * time.Second
	rc.ElectionTimeout = 2 * time.Second
	rc.LeaderLeaseTimeout = time.Second
	rc.SnapshotThreshold = 8192
	progress("starting a 3-member cluster in %s", dir)
	c, err := devcluster.Start(ctx, devcluster.Options{
		Dir: dir, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		// The measurement closes its own epoch; the scheduler's
		// challenges of the fleet would be noise.
		EpochInterval: 24 * 365 * time.Hour, ChallengeInterval: 24 * 365 * time.Hour,
		Raft: rc, Logger: quiet, RaftLog: io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start cluster: %w", err)
	}
	defer c.Close()
	rep := &Report{Nodes: opts.Nodes, Requested: opts.Nodes, Seed: opts.Seed}
	leader := c.Leader()
	if leader == nil {
		return nil, errors.New("the cluster has no leader")
	}
	fl := fleet{seed: opts.Seed}

	// Registrations, in chunks so that progress shows.
	start := time.Now()
	addrs := make([]ethcrypto.Address, 0, opts.Nodes)
	chunk := max(opts.Nodes/20, 1000)
	last := time.Now()
	for from := 0; from < opts.Nodes; from += chunk {
		n := min(chunk, opts.Nodes-from)
		got, err := devcluster.RegisterNodes(ctx, leader.Member, n, opts.Workers,
			func(i int) *attest.NodeKey { return fl.key(from + i) }, func(i int) []*truegpuv1.Device { return fl.devices(from + i) })
		if err != nil {
			return nil, fmt.Errorf("register nodes: %w", err)
		}
		addrs = append(addrs, got...)
		if time.Since(last) > 5*time.Second || len(addrs) == opts.Nodes {
			el := time.Since(start)
			progress("registered %d/%d nodes in %v (%.0f/s)", len(addrs), opts.Nodes, el.Round(time.Second), float64(len(addrs))/el.Seconds())
			last = time.Now()
		}
		if opts.FillTime > 0 && time.Since(start) > opts.FillTime && len(addrs) < opts.Nodes {
			progress("fill time %v used up: measuring the %d nodes registered", opts.FillTime, len(addrs))
			opts.Nodes, rep.Nodes = len(addrs), len(addrs)
			break
		}
	}
	el := time.Since(start)
	rep.RegisterMillis, rep.RegistrationsPS = ms(el), float64(opts.Nodes)/el.Seconds()
	for i := range opts.Nodes {
		rep.Devices += len(fl.devices(i))
	}
	if err := waitApplied(ctx, c, 2*time.Minute); err != nil {
		return nil, err
	}
	m1 := c.Nodes[0]
	m1dir := filepath.Join(dir, m1.ID)
	if rep.StateBytesRegistered, err = devcluster.DirSize(filepath.Join(m1dir, "state")); err != nil {
		return nil, err
	}

	// Decided challenges for a share of the nodes.
	if opts.Decided > 0 {
		progress("deciding one challenge for %.0f%% of the nodes", opts.Decided*100)
		start = time.Now()
		if err := decide(ctx, c, fl, addrs, opts, rep); err != nil {
			return nil, err
		}
		el = time.Since(start)
		rep.ChallengeMillis, rep.ChallengeCmdsPS = ms(el), float64(rep.ChallengeCommand)/el.Seconds()
		progress("%d challenges decided (%d accepted), %d commands in %v (%.0f/s)", rep.Decided, rep.Accepted, rep.ChallengeCommand, el.Round(time.Millisecond), rep.ChallengeCmdsPS)
	}
	if err := waitApplied(ctx, c, 2*time.Minute); err != nil {
		return nil, err
	}
	rep.HeapInUseFilled = heapInUse()

	// State on disk.
	if rep.StateBytes, err = devcluster.DirSize(filepath.Join(m1dir, "state")); err != nil {
		return nil, err
	}
	if rep.RaftLogBytes, err = devcluster.DirSize(filepath.Join(m1dir, "raft")); err != nil {
		return nil, err
	}
	st := m1.Member.Raft().Stats()
	first, _ := strconv.ParseUint(st["last_snapshot_index"], 10, 64)
	lastIdx, _ := strconv.ParseUint(st["last_log_index"], 10, 64)
	rep.RaftLogEntries = lastIdx - first
	rep.StateDirDescription = "member-1/state: the state machine's Pebble database (tables and WAL)"
	rep.RaftLogDirDescription = "member-1/raft: the Raft log and stable store (Pebble), entries after the last automatic snapshot"
	rep.StateBytesPerNode = float64(rep.StateBytesRegistered) / float64(opts.Nodes)
	rep.RaftLogBytesPerNode = float64(rep.RaftLogBytes) / float64(opts.Nodes)
	if rep.Decided > 0 {
		rep.StateBytesPerDecided = float64(rep.StateBytes-rep.StateBytesRegistered) / float64(rep.Decided)
	}
	if err := logicalSize(m1.Member.FSM(), rep); err != nil {
		return nil, err
	}
	progress("state %s on disk (%.0f B/node), Raft log %s (%d entries), %s logical",
		mib(rep.StateBytes), rep.StateBytesPerNode, mib(rep.RaftLogBytes), rep.RaftLogEntries, mib(rep.LogicalStateBytes))

	// REST reads on member 1's gateway.
	progress("REST reads: %d GET node, %d list pages, %d connections", opts.Reads, listPages(opts.Reads), opts.Clients)
	if rep.GetNode, rep.ListNodes, err = reads(ctx, m1.HTTPURL(), addrs, opts); err != nil {
		return nil, err
	}
	progress("GET node %.0f/s p99 %.2f ms; list page %.0f/s p99 %.2f ms", rep.GetNode.PerSecond, rep.GetNode.P99Millis, rep.ListNodes.PerSecond, rep.ListNodes.P99Millis)

	// Epoch close and Merkle tree.
	if err := closeEpoch(ctx, c, rep); err != nil {
		return nil, err
	}
	progress("epoch closed in %.0f ms (all members %.0f ms), %d leaves, record %s; Merkle tree alone %.0f ms",
		rep.EpochCloseMillis, rep.EpochAllMillis, rep.EpochLeaves, mib(int64(rep.EpochRecordBytes)), rep.MerkleMillis)

	// Snapshot on the leader, installed on a wiped follower.
	if err := snapshotRestore(ctx, c, dir, rep, progress); err != nil {
		return nil, err
	}
	progress("snapshot %s in %.0f ms; %s restored in %.0f ms", mib(rep.SnapshotBytes), rep.SnapshotMillis, rep.RestoredMember, rep.RestoreMillis)

	rep.HeapInUse = heapInUse()
	rep.RSS, rep.PeakRSS = procMemory()
	rep.GoroutinesEnd = runtime.NumGoroutine()
	rep.TotalMillis = ms(time.Since(t0))
	return rep, nil
}

// decide gives a share of the nodes one challenge each, decided through
// the commands the leader's scheduler and pipeline propose: issue, the
// node's signed commitment, then a verdict carrying the node's signed proof
// submission (four in five accepted, the rest rejected as invalid). The
// proofs are placeholders of the real proof size: Apply does not verify
// proofs (the leader's pipeline does, and every member's audit does again,
// so members do not sign an epoch holding these verdicts).
func decide(ctx context.Context, c *devcluster.Cluster, fl fleet, addrs []ethcrypto.Address, opts Options, rep *Report) error {
	l := c.Leader()
	if l == nil {
		return errors.New("the cluster has no leader")
	}
	r := rand.New(rand.NewPCG(opts.Seed, 0x6465636964656421))
	var chosen []int
	for i := range addrs {
		if r.Float64() < opts.Decided {
			chosen = append(chosen, i)
		}
	}
	if len(chosen) == 0 {
		chosen = []int{0}
	}
	propose := func(cmds []*truegpuv1.Command) error {
		var wg sync.WaitGroup
		errs := make([]error, len(cmds))
		sem := make(chan struct{}, opts.Workers)
		for i, cmd := range cmds {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, errs[i] = l.Member.Propose(ctx, cmd)
			}()
		}
		wg.Wait()
		rep.ChallengeCommand += len(cmds)
		return errors.Join(errs...)
	}
	const step = 20_000
	for from := 0; from < len(chosen); from += step {
		part := chosen[from:min(from+step, len(chosen))]
		now := time.Now()
		type pending struct {
			i      int
			ch     *truegpuv1.IssuedChallenge
			root   [32]byte
			accept bool
		}
		ps := make([]pending, len(part))
		var issues []*truegpuv1.Command
		batch := &truegpuv1.IssueChallengesCommand{}
		for j, i := range part {
			rr := fl.rng(i, 0x6368616c6c656e67)
			var nonce [32]byte
			for k := range nonce {
				nonce[k] = byte(rr.Uint32())
			}
			ch := devcluster.SyntheticChallenge(addrs[i], nonce, now, c.Profile, fl.devices(i)[0].ClaimedClass)
			ps[j] = pending{i: i, ch: ch, accept: rr.IntN(5) != 0}
			for k := range ps[j].root {
				ps[j].root[k] = byte(rr.Uint32())
			}
			batch.Challenges = append(batch.Challenges, ch)
			if len(batch.Challenges) == 64 { // the scheduler issues a tick's challenges together
				issues = append(issues, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: batch}})
				batch = &truegpuv1.IssueChallengesCommand{}
			}
		}
		if len(batch.Challenges) > 0 {
			issues = append(issues, &truegpuv1.Command{Body: &truegpuv1.Command_IssueChallenges{IssueChallenges: batch}})
		}
		if err := propose(issues); err != nil {
			return fmt.Errorf("issue challenges: %w", err)
		}
		commits := make([]*truegpuv1.Command, len(ps))
		verdicts := make([]*truegpuv1.Command, len(ps))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var signErr error
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := w; j < len(ps); j += 4 {
					p := ps[j]
					key := fl.key(p.i)
					addr := addrs[p.i].String()
					id := truegpuv1.FormatChallengeID(p.ch.Id)
					creq := &truegpuv1.SubmitCommitmentRequest{ChallengeId: id, Address: addr, Root: p.root[:]}
					proof := make([]byte, verifier.ProofSize)
					for k := range proof {
						proof[k] = p.root[k%32] ^ byte(k)
					}
					preq := &truegpuv1.SubmitProofRequest{ChallengeId: id, Address: addr, Proof: proof}
					var cs, ps2 []byte
					err := key.Sign(creq)
					if err == nil {
						err = key.Sign(preq)
					}
					if err == nil {
						cs, err = proto.MarshalOptions{Deterministic: true}.Marshal(creq)
					}
					if err == nil {
						ps2, err = proto.MarshalOptions{Deterministic: true}.Marshal(preq)
					}
					if err != nil {
						mu.Lock()
						signErr = err
						mu.Unlock()
						return
					}
					commits[j] = &truegpuv1.Command{Body: &truegpuv1.Command_RecordCommitment{RecordCommitment: &truegpuv1.RecordCommitmentCommand{
						ChallengeId: p.ch.Id, Root: p.root[:], ReceivedAtUnixMs: now.UnixMilli() + 1, SampleSeed: p.root[:fsm.SampleSeedSize], SignedRequest: cs}}}
					v := &truegpuv1.VerdictRecord{ChallengeId: p.ch.Id, Accepted: p.accept, Proof: proof, SignedRequest: ps2}
					if !p.accept {
						v.Reason = string(reputation.ReasonProofInvalid)
					}
					verdicts[j] = &truegpuv1.Command{Body: &truegpuv1.Command_RecordVerdicts{RecordVerdicts: &truegpuv1.RecordVerdictsCommand{Verdicts: []*truegpuv1.VerdictRecord{v}}}}
				}
			}()
		}
		wg.Wait()
		if signErr != nil {
			return signErr
		}
		if err := propose(commits); err != nil {
			return fmt.Errorf("record commitments: %w", err)
		}
		now2 := time.Now().UnixMilli()
		for _, v := range verdicts {
			v.GetRecordVerdicts().Verdicts[0].DecidedAtUnixMs = now2
		}
		if err := propose(verdicts); err != nil {
			return fmt.Errorf("record verdicts: %w", err)
		}
		for _, p := range ps {
			rep.Decided++
			if p.accept {
				rep.Accepted++
			}
		}
	}
	return nil
}

// waitApplied waits until every member has applied the leader's last
// applied index.
func waitApplied(ctx context.Context, c *devcluster.Cluster, timeout time.Duration) error {
	l := c.Leader()
	if l == nil {
		return errors.New("the cluster has no leader")
	}
	target := l.Member.FSM().AppliedIndex()
	deadline := time.Now().Add(timeout)
	for _, n := range c.Nodes {
		for n.Member.FSM().AppliedIndex() < target {
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not apply index %d within %v", n.ID, target, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// logicalSize counts the state's keys and the bytes of its keys and
// values, and the mean encoded node record.
func logicalSize(f *fsm.FSM, rep *Report) error {
	var recBytes, recs int64
	err := f.Nodes(func(r *truegpuv1.NodeRecord) bool {
		recBytes += int64(proto.Size(r))
		recs++
		return true
	})
	if err != nil {
		return err
	}
	if recs > 0 {
		rep.NodeRecordBytes = float64(recBytes) / float64(recs)
	}
	snap, err := f.Snapshot()
	if err != nil {
		return err
	}
	defer snap.Release()
	cs := &countSink{}
	if err := snap.Persist(cs); err != nil {
		return err
	}
	rep.LogicalStateBytes = cs.n
	rep.LogicalBytesPerNode = float64(cs.n) / float64(rep.Nodes)
	return nil
}

// countSink is a raft.SnapshotSink that counts the bytes written.
type countSink struct{ n int64 }

func (s *countSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return len(p), nil }
func (s *countSink) Close() error                { return nil }
func (s *countSink) ID() string                  { return "count" }
func (s *countSink) Cancel() error               { return nil }

// reads drives member 1's REST gateway: GET /v1/nodes/{address} for random
// registered addresses, then first pages of GET /v1/nodes filtered by
// class and status in score order, from opts.Clients keep-alive
// connections; each response must be 200 with a JSON body.
func reads(ctx context.Context, base string, addrs []ethcrypto.Address, opts Options) (get, list ReadStats, err error) {
	r := rand.New(rand.NewPCG(opts.Seed, 0x7265616473))
	urls := make([]string, opts.Reads)
	for i := range urls {
		urls[i] = base + "/v1/nodes/" + addrs[r.IntN(len(addrs))].String()
	}
	// A warm-up request of each kind checks the answers' shape.
	tr := &http.Transport{MaxIdleConnsPerHost: opts.Clients, MaxConnsPerHost: opts.Clients, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	body, err := fetch(ctx, hc, urls[0])
	if err != nil {
		return get, list, err
	}
	if !bytes.Contains(body, []byte(`"address"`)) {
		return get, list, fmt.Errorf("GET %s: no node in the answer", urls[0])
	}
	if get, err = load(ctx, hc, urls, opts.Clients); err != nil {
		return get, list, err
	}
	statuses := []string{"NODE_STATUS_PROBATION", "NODE_STATUS_TRUSTED", "NODE_STATUS_SUSPECT", ""}
	lurls := make([]string, listPages(opts.Reads))
	for i := range lurls {
		q := "pageSize=100&orderBy=score%20desc&class=" + classes[r.IntN(len(classes))].class
		if s := statuses[r.IntN(len(statuses))]; s != "" {
			q += "&status=" + s
		}
		lurls[i] = base + "/v1/nodes?" + q
	}
	body, err = fetch(ctx, hc, base+"/v1/nodes?pageSize=100&orderBy=score%20desc&class="+classes[0].class)
	if err != nil {
		return get, list, err
	}
	if !bytes.Contains(body, []byte(`"nodes"`)) {
		return get, list, errors.New("GET /v1/nodes: no nodes in the answer")
	}
	list, err = load(ctx, hc, lurls, opts.Clients)
	return get, list, err
}

func fetch(ctx context.Context, hc *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(bufio.NewReader(resp.Body))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	return body, nil
}

// load sends every url once from clients concurrent connections and
// returns the rate and latency quantiles.
func load(ctx context.Context, hc *http.Client, urls []string, clients int) (ReadStats, error) {
	lat := make([]time.Duration, len(urls))
	sizes := make([]int, len(urls))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int, len(urls))
	for i := range urls {
		next <- i
	}
	close(next)
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				body, err := fetch(ctx, hc, urls[i])
				if err != nil {
					mu.Lock()
					first = cmpErr(first, err)
					mu.Unlock()
					return
				}
				lat[i], sizes[i] = time.Since(t), len(body)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if first != nil {
		return ReadStats{}, first
	}
	total := 0
	for _, s := range sizes {
		total += s
	}
	slices.Sort(lat)
	return ReadStats{Requests: len(urls), Clients: clients, PerSecond: float64(len(urls)) / el.Seconds(),
		P50Millis: ms(lat[len(lat)/2]), P99Millis: ms(lat[len(lat)*99/100]), Bytes: float64(total) / float64(len(urls))}, nil
}

// listPages is the number of list requests for reads node requests.
func listPages(reads int) int { return max(reads/10, 10) }

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// closeEpoch proposes the open epoch's close on the leader as its epoch
// closer does, then rebuilds the Merkle tree from the recorded leaves.
func closeEpoch(ctx context.Context, c *devcluster.Cluster, rep *Report) error {
	l := c.Leader()
	if l == nil {
		return errors.New("the cluster has no leader")
	}
	f := l.Member.FSM()
	// Each member enters the member table itself shortly after start; a
	// report is signed by the members listed when it closes.
	for deadline := time.Now().Add(time.Minute); ; {
		ms, err := f.Members()
		if err != nil {
			return err
		}
		if len(ms) >= len(c.Nodes) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d members in the member table after a minute", len(ms), len(c.Nodes))
		}
		time.Sleep(50 * time.Millisecond)
	}
	meta, err := f.Meta()
	if err != nil {
		return err
	}
	start := time.Now()
	_, err = l.Member.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_CloseEpoch{CloseEpoch: &truegpuv1.CloseEpochCommand{Epoch: meta.CurrentEpoch}}})
	if err != nil {
		return fmt.Errorf("close epoch %d: %w", meta.CurrentEpoch, err)
	}
	rep.EpochCloseMillis = ms(time.Since(start))
	if err := waitApplied(ctx, c, 5*time.Minute); err != nil {
		return err
	}
	rep.EpochAllMillis = ms(time.Since(start))
	es, err := f.Epoch(meta.CurrentEpoch)
	if err != nil {
		return fmt.Errorf("read epoch %d: %w", meta.CurrentEpoch, err)
	}
	for range 3 {
		t := time.Now()
		if _, err := f.Epoch(meta.CurrentEpoch); err != nil {
			return err
		}
		if d := ms(time.Since(t)); rep.EpochReadMillis == 0 || d < rep.EpochReadMillis {
			rep.EpochReadMillis = d
		}
	}
	rep.EpochLeaves = len(es.Leaves)
	rep.EpochRecordBytes = proto.Size(es)
	entries := make([]reputation.Entry, len(es.Leaves))
	for i, lf := range es.Leaves {
		entries[i] = reputation.Entry{Address: ethcrypto.Address(lf.Address), Score: lf.ScoreBp, Status: reputation.Status(lf.Status)}
	}
	// Every member audits the epoch as soon as it is closed, rebuilding
	// the same tree: measure once they are done, best of three.
	if err := waitAudits(ctx, c, es.Report.GetSigners(), 10*time.Minute); err != nil {
		return err
	}
	for range 3 {
		start = time.Now()
		tree, err := reputation.BuildTree(entries)
		if err != nil {
			return fmt.Errorf("build the epoch's Merkle tree: %w", err)
		}
		root := tree.Root()
		if d := ms(time.Since(start)); rep.MerkleMillis == 0 || d < rep.MerkleMillis {
			rep.MerkleMillis = d
		}
		rep.EpochRoot, rep.MerkleRoot = fmt.Sprintf("%x", es.Report.Root), fmt.Sprintf("%x", root[:])
	}
	return nil
}

// waitAudits waits until every member among the report's signers has
// audited an epoch (passed or refused), as its audits_total metric counts.
func waitAudits(ctx context.Context, c *devcluster.Cluster, signers []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range c.Nodes {
		if !slices.Contains(signers, n.Member.Signer().String()) {
			continue
		}
		for {
			mfs, err := n.Member.Metrics().Gather()
			if err != nil {
				return err
			}
			var done float64
			for _, mf := range mfs {
				if strings.HasSuffix(mf.GetName(), "_audits_total") {
					for _, m := range mf.GetMetric() {
						done += m.GetCounter().GetValue()
					}
				}
			}
			if done > 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s did not audit the epoch within %v", n.ID, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// snapshotRestore takes a user snapshot on the leader with a short log
// tail kept, so that a follower that lost its data must install the
// snapshot; then stops a follower, deletes its data directory, restarts
// it and waits until it has applied the leader's index, and compares the
// two states' hashes at one index.
func snapshotRestore(ctx context.Context, c *devcluster.Cluster, dir string, rep *Report, progress func(string, ...any)) error {
	l := c.Leader()
	if l == nil {
		return errors.New("the cluster has no leader")
	}
	r := l.Member.Raft()
	rc := r.ReloadableConfig()
	rc.TrailingLogs = 16
	if err := r.ReloadConfig(rc); err != nil {
		return fmt.Errorf("raft configuration: %w", err)
	}
	progress("snapshot on %s", l.ID)
	start := time.Now()
	fut := r.Snapshot()
	err := fut.Error()
	if errors.Is(err, raft.ErrNothingNewToSnapshot) {
		// An automatic snapshot took the last entry: commit one that
		// changes nothing (the current shadow mode) and snapshot again.
		if _, err := l.Member.Propose(ctx, &truegpuv1.Command{Body: &truegpuv1.Command_SetShadowMode{SetShadowMode: &truegpuv1.SetShadowModeCommand{}}}); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
		start = time.Now()
		fut = r.Snapshot()
		err = fut.Error()
	}
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	rep.SnapshotMillis = ms(time.Since(start))
	meta, rd, err := fut.Open()
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	rd.Close()
	rep.SnapshotBytes, rep.SnapshotIndex = meta.Size, meta.Index

	fi := -1
	for i, n := range c.Nodes {
		if n != l {
			fi = i
			break
		}
	}
	if fi < 0 {
		return errors.New("no follower to restore")
	}
	fn := c.Nodes[fi]
	rep.RestoredMember = fn.ID
	progress("stopping %s, deleting its data and restarting it", fn.ID)
	if err := c.StopMember(fi); err != nil {
		return fmt.Errorf("stop %s: %w", fn.ID, err)
	}
	if err := os.RemoveAll(filepath.Join(dir, fn.ID)); err != nil {
		return err
	}
	target := l.Member.FSM().AppliedIndex()
	start = time.Now()
	if err := c.RestartMember(fi); err != nil {
		return fmt.Errorf("restart %s: %w", fn.ID, err)
	}
	deadline := time.Now().Add(15 * time.Minute)
	for fn.Member.FSM().AppliedIndex() < target {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not catch up within 15 minutes", fn.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	rep.RestoreMillis = ms(time.Since(start))
	// Raft records the installed snapshot just after the state machine
	// has restored it.
	for range 600 {
		idx, _ := strconv.ParseUint(fn.Member.Raft().Stats()["last_snapshot_index"], 10, 64)
		if rep.RestoredFromSnapshot = idx >= rep.SnapshotIndex; rep.RestoredFromSnapshot {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Both states at one index: retry while entries arrive in between.
	for range 20 {
		if err := waitApplied(ctx, c, time.Minute); err != nil {
			return err
		}
		i1 := l.Member.FSM().AppliedIndex()
		h1, err := l.Member.FSM().StateHash()
		if err != nil {
			return err
		}
		i2 := fn.Member.FSM().AppliedIndex()
		h2, err := fn.Member.FSM().StateHash()
		if err != nil {
			return err
		}
		if i1 == i2 && i2 == fn.Member.FSM().AppliedIndex() && i1 == l.Member.FSM().AppliedIndex() {
			rep.SourceStateHash, rep.RestoredStateHash, rep.HashIndex = fmt.Sprintf("%x", h1), fmt.Sprintf("%x", h2), i1
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the states kept moving; no common index to compare")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// procMemory reads the resident set and its peak from /proc/self/status;
// zero where it cannot.
func procMemory() (rss, peak int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak
}
