package chaos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/sim"
	"github.com/truegpu/truegpu/internal/gpuclass"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
)

// WorkloadConfig sizes the workload.
type WorkloadConfig struct {
	// Attestors run attest.Agent over simulated honest devices. Default 3.
	Attestors int
	// Keys is the number of nodes the register clients rewrite. Default 8
	// (more keys keep each key's history short for the checker).
	Keys int
	// Writers and Readers are register client goroutines. Defaults 2 and 2.
	Writers, Readers int
	// Pause is the wait between two operations of one client. Default 40ms.
	Pause time.Duration
	// OpTimeout bounds one operation. Default 3s.
	OpTimeout time.Duration
	// Seed drives the clients' choices.
	Seed uint64
	// ProvingKey proves for the attestors (the dev key of the test
	// profile).
	ProvingKey *prover.ProvingKey
	// Logger receives the attestors' logs; nil discards them.
	Logger *slog.Logger
}

// Workload drives the cluster's public API while faults come and go.
type Workload struct {
	cfg     WorkloadConfig
	c       *Cluster
	History *History
	Acks    *Acks

	value   atomic.Int64
	probes  atomic.Int64 // clock probes (ClockSkew)
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	devices []attest.Device

	// Attestor statistics.
	Challenges, Verdicts atomic.Int64
	// Keys are the addresses of the register clients' nodes, by key.
	Keys []string
}

// StartWorkload starts the attestors, register clients, readers and the
// report watcher. Stop ends them.
func StartWorkload(c *Cluster, cfg WorkloadConfig) (*Workload, error) {
	if cfg.Attestors == 0 {
		cfg.Attestors = 3
	}
	if cfg.Keys == 0 {
		cfg.Keys = 8
	}
	if cfg.Writers == 0 {
		cfg.Writers = 2
	}
	if cfg.Readers == 0 {
		cfg.Readers = 2
	}
	if cfg.Pause == 0 {
		cfg.Pause = 40 * time.Millisecond
	}
	if cfg.OpTimeout == 0 {
		cfg.OpTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ProvingKey == nil {
		return nil, errors.New("chaos: WorkloadConfig.ProvingKey is required")
	}
	w := &Workload{cfg: cfg, c: c, History: NewHistory(), Acks: NewAcks()}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	pk := cfg.ProvingKey
	keys := func(p *prover.Profile) (*prover.ProvingKey, error) {
		if p.Digest() != pk.Profile().Digest() {
			return nil, fmt.Errorf("chaos: attestors prove only %s", pk.Profile().ID())
		}
		return pk, nil
	}
	slots := make(chan struct{}, 1)
	classes := []string{"h100", "a100", "rtx4090", "l40s"}
	for i := range cfg.Attestors {
		seed := []byte(fmt.Sprintf("truegpu chaos attestor %d seed %d", i, cfg.Seed))
		key := attest.NodeKeyFromSeed(seed)
		dev, err := sim.New(classes[i%len(classes)], sim.Options{Seed: seed, Node: key.ProverAddress()})
		if err != nil {
			w.Stop()
			return nil, err
		}
		w.devices = append(w.devices, dev)
		a, err := attest.NewAgent(ctx, attest.AgentConfig{
			Client: truegpuv1.NewNodeServiceClient(c.Route(i % len(c.Active()))), Key: key, Cluster: ClusterID,
			Devices: []attest.AgentDevice{{Device: dev}}, Keys: keys, ProveSlots: slots,
			PollInterval: 250 * time.Millisecond, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second,
			ShutdownGrace: time.Second,
			Logger:        cfg.Logger.With("attestor", i),
			OnRegistered:  func(r *truegpuv1.RegisterNodeResponse) { w.Acks.Registered(r.Address) },
			OnVerdict: func(v *truegpuv1.Verdict) {
				w.Verdicts.Add(1)
				w.Acks.Verdict(v.ChallengeId, v.Accepted)
			},
			OnOutcome: func(*attest.Outcome, error) { w.Challenges.Add(1) },
		})
		if err != nil {
			w.Stop()
			return nil, fmt.Errorf("chaos: attestor %d: %w", i, err)
		}
		w.wg.Go(func() { a.Run(ctx) })
	}
	nodeKeys := make([]*attest.NodeKey, cfg.Keys)
	for k := range nodeKeys {
		nodeKeys[k] = attest.NodeKeyFromSeed([]byte(fmt.Sprintf("truegpu chaos register key %d seed %d", k, cfg.Seed)))
		w.Keys = append(w.Keys, nodeKeys[k].Address().String())
	}
	client := 0
	for range cfg.Writers {
		id := client
		client++
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(id)))
		w.wg.Go(func() { w.writer(ctx, id, rng, nodeKeys) })
	}
	for range cfg.Readers {
		id := client
		client++
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(id)))
		w.wg.Go(func() { w.reader(ctx, id, rng, nodeKeys) })
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7265706f7274))
	w.wg.Go(func() { w.reports(ctx, rng) })
	return w, nil
}

// Stop ends the workload and waits for it.
func (w *Workload) Stop() {
	if w.cancel != nil {
		w.cancel()
	}
	w.wg.Wait()
	for _, d := range w.devices {
		d.Close()
	}
	w.devices = nil
}

// outcome classifies a write's error: refused before anything was proposed
// (Failed) or unknown (Indeterminate). A member that is not the leader or
// knows none proposes nothing (raft.Apply refuses on a follower), and a call
// whose connection could not be dialled was never delivered; a timeout, a
// lost leadership ("outcome unknown") or a connection cut mid-call may have
// been applied.
func outcome(err error) Outcome {
	if err == nil {
		return OK
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.InvalidArgument, codes.FailedPrecondition, codes.PermissionDenied, codes.Unauthenticated,
		codes.ResourceExhausted, codes.AlreadyExists, codes.NotFound, codes.OutOfRange, codes.Unimplemented:
		return Failed
	case codes.Unavailable:
		msg := st.Message()
		if strings.Contains(msg, "outcome unknown") {
			return Indeterminate
		}
		for _, refused := range []string{"oracle: not the leader", "oracle: no leader", "Error while dialing", "connection refused"} {
			if strings.Contains(msg, refused) {
				return Failed
			}
		}
	}
	return Indeterminate
}

// deviceUUID is the UUID of a register node's device for one value (a new
// identity per value).
func deviceUUID(key, value int) string { return fmt.Sprintf("GPU-chaos-%d-%d", key, value) }

// registerValue encodes a register value in the device's VBIOS version, a
// field public node views show as it is (they show digests of the UUID and
// the serial).
func registerValue(key, value int) string { return fmt.Sprintf("chaos-%d-%d", key, value) }

// parseRegisterValue decodes registerValue for node key.
func parseRegisterValue(key int, s string) (int, bool) {
	var k, v int
	if _, err := fmt.Sscanf(s, "chaos-%d-%d", &k, &v); err != nil || k != key {
		return 0, false
	}
	return v, true
}

func (w *Workload) sleep(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(w.cfg.Pause):
		return true
	}
}

func (w *Workload) writer(ctx context.Context, id int, rng *rand.Rand, keys []*attest.NodeKey) {
	for w.sleep(ctx) {
		k := rng.IntN(len(keys))
		member := w.c.Pick(rng)
		v := int(w.value.Add(1))
		req := &truegpuv1.RegisterNodeRequest{
			Address:         keys[k].Address().String(),
			TimestampUnixMs: time.Now().UnixMilli(),
			Cluster:         ClusterID,
			Devices: []*truegpuv1.Device{{Index: 0, ClaimedClass: gpuclass.H100SXM, Fingerprint: &truegpuv1.DeviceFingerprint{
				Uuid: deviceUUID(k, v), Serial: fmt.Sprintf("chaos-serial-%d-%d", k, v), Name: "NVIDIA H100 80GB HBM3",
				VbiosVersion: registerValue(k, v),
			}}},
		}
		if err := keys[k].Sign(req); err != nil {
			return
		}
		op := Op{Client: id, Kind: OpWrite, Key: k, Value: v, Member: member, Call: w.History.Now()}
		cctx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		resp, err := truegpuv1.NewNodeServiceClient(w.c.Conn(member)).RegisterNode(cctx, req)
		cancel()
		op.Return = w.History.Now()
		op.Outcome = outcome(err)
		if err != nil {
			op.Err = err.Error()
		}
		if ctx.Err() != nil && err != nil {
			op.Outcome = Indeterminate
		}
		w.History.Add(op)
		if err == nil {
			w.Acks.Registered(resp.Address)
		}
	}
}

func (w *Workload) reader(ctx context.Context, id int, rng *rand.Rand, keys []*attest.NodeKey) {
	for w.sleep(ctx) {
		k := rng.IntN(len(keys))
		member := w.c.Pick(rng)
		kind, cons := OpReadLinear, truegpuv1.ReadConsistency_READ_CONSISTENCY_LINEARIZABLE
		if rng.IntN(2) == 0 {
			kind, cons = OpReadStale, truegpuv1.ReadConsistency_READ_CONSISTENCY_STALE
		}
		op := Op{Client: id, Kind: kind, Key: k, Member: member, Call: w.History.Now()}
		cctx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		resp, err := truegpuv1.NewReputationServiceClient(w.c.Conn(member)).GetNode(cctx,
			&truegpuv1.GetNodeRequest{Address: keys[k].Address().String(), Consistency: cons})
		cancel()
		op.Return = w.History.Now()
		switch {
		case err == nil:
			op.Outcome = OK
			if d := resp.GetNode().GetDevices(); len(d) > 0 {
				vbios := d[0].GetFingerprint().GetVbiosVersion()
				v, ok := parseRegisterValue(k, vbios)
				if !ok {
					v = -1 // no write produced it: the checkers flag it
					op.Err = fmt.Sprintf("unexpected device VBIOS version %q", vbios)
				}
				op.Value = v
			}
		case status.Code(err) == codes.NotFound:
			op.Outcome = OK // not registered: value 0
		default:
			op.Outcome, op.Err = Failed, err.Error()
		}
		w.History.Add(op)
	}
}

// reports reads the latest report from a random member every 500ms and
// records the signatures it carries.
func (w *Workload) reports(ctx context.Context, rng *rand.Rand) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		member := w.c.Pick(rng)
		cctx, cancel := context.WithTimeout(ctx, w.cfg.OpTimeout)
		resp, err := truegpuv1.NewFeedServiceClient(w.c.Conn(member)).GetLatestReport(cctx, &truegpuv1.GetLatestReportRequest{IncludeIncomplete: true})
		cancel()
		if err != nil {
			continue
		}
		for _, s := range resp.GetReport().GetSignatures() {
			w.Acks.Signed(resp.GetReport().GetEpoch(), s.SignerAddress)
		}
	}
}
