// Package sim provides simulated devices for tests, the demo fleet and the
// fleet evaluation: honest devices of every GPU class in package gpuclass,
// and adversarial devices, each a documented type that says what it does
// and what should catch it.
//
// Simulated devices are deterministic (identities derive from a seed) and
// cheap: they compute the real reference result of package prover (so
// their commitments and proofs are genuine), then sleep until the time
// their hardware class would have taken, as estimated by
// gpuclass.Class.ExpectedMicros and multiplied by Options.TimeScale. The
// oracle measures the commitment's arrival on its own clock, so the sleep
// is what it sees. When the reference computation on the host takes longer
// than the modelled time, the device is simply late, as real hardware would
// be; keep simulated workloads small (the "test" and "demo" profiles).
//
// Honest devices pass the conformance suite of package devicetest;
// adversarial ones fail it by design.
package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Options configure a simulated device. The zero value is usable.
type Options struct {
	// Seed derives the device's identity (UUID, serial, PCI slot). Devices
	// with different seeds have different identities.
	Seed []byte
	// TimeScale multiplies the modelled run time; 0 means 1. Use it to
	// slow a fleet down (or speed it up) together with the deadlines the
	// oracle issues.
	TimeScale float64
	// Fingerprint, when set, replaces the synthesized fingerprint: a
	// spoofer presenting a copied identity, for example.
	Fingerprint *attest.Fingerprint
	// Percent parameterizes the adversarial types that take a rate: the
	// share of rows Partial, Grinder and Abandoner compute (default 50)
	// and the share of runs Flaky fails (default 30).
	Percent int
	// Tries is how many roots a Grinder tries per challenge (default 64).
	Tries int
	// Answers is how many challenges a Silent device answers before it
	// falls silent (default 2).
	Answers int
	// Node is the address of the node the device answers for; a Grinder
	// needs it to predict sample positions.
	Node prover.Address
	// HeldResults is how many runs' results are kept; at least
	// attest.MinHeldResults.
	HeldResults int
}

func (o Options) scale() float64 {
	if o.TimeScale <= 0 {
		return 1
	}
	return o.TimeScale
}

// classInfo is what a synthesized fingerprint needs per class.
type classInfo struct {
	name         string
	pciDevice    uint32
	ccMajor      uint32
	ccMinor      uint32
	maxSM        uint32
	maxMem       uint32
	powerLimitMW uint32
	memoryMiB    uint64
	vbios        string
	partNumber   string
}

var classInfos = map[string]classInfo{
	gpuclass.H100SXM:  {"NVIDIA H100 80GB HBM3", 0x233010DE, 9, 0, 1980, 2619, 700000, 81559, "96.00.74.00.1C", "692-2G520-0200-000"},
	gpuclass.H100PCIe: {"NVIDIA H100 PCIe", 0x233110DE, 9, 0, 1755, 1593, 350000, 81559, "96.00.30.00.01", "900-21010-0000-000"},
	gpuclass.H200:     {"NVIDIA H200", 0x233510DE, 9, 0, 1980, 3201, 700000, 143771, "96.00.A5.00.01", "692-2G520-0280-000"},
	gpuclass.A100_80:  {"NVIDIA A100-SXM4-80GB", 0x20B210DE, 8, 0, 1410, 1593, 400000, 81920, "92.00.36.00.02", "692-2G506-0210-002"},
	gpuclass.A100_40:  {"NVIDIA A100-SXM4-40GB", 0x20B010DE, 8, 0, 1410, 1215, 400000, 40960, "92.00.19.00.01", "692-2G506-0200-003"},
	gpuclass.L40S:     {"NVIDIA L40S", 0x26B910DE, 8, 9, 2520, 9001, 350000, 46068, "95.02.66.00.02", "900-2G133-0080-000"},
	gpuclass.RTX4090:  {"NVIDIA GeForce RTX 4090", 0x268410DE, 8, 9, 3120, 10501, 450000, 24564, "95.02.18.80.5F", ""},
	gpuclass.RTX3090:  {"NVIDIA GeForce RTX 3090", 0x220410DE, 8, 6, 2100, 9751, 350000, 24576, "94.02.42.00.A9", ""},
	gpuclass.CPU:      {"CPU (simulated reference node)", 0, 0, 0, 0, 0, 0, 16384, "", ""},
}

// SynthesizeFingerprint returns the fingerprint a device of the class with
// the given seed reports: the class's NVML product name, memory, compute
// capability, clocks and power limit, and a UUID, serial, board id and PCI
// slot derived from the seed.
func SynthesizeFingerprint(class string, seed []byte) (attest.Fingerprint, error) {
	c, err := gpuclass.Lookup(class)
	if err != nil {
		return attest.Fingerprint{}, err
	}
	info := classInfos[c.Name]
	sum := sha256.Sum256(append([]byte("truegpu/sim/v1/"), seed...))
	if c.Name == gpuclass.CPU {
		return attest.Fingerprint{
			UUID:             attest.UUIDFromSeed("CPU-", seed),
			Name:             info.name,
			MemoryTotalBytes: info.memoryMiB << 20,
			Unsupported: []string{
				attest.FieldSerial, attest.FieldBoardPartNumber, attest.FieldBoardID, attest.FieldPCIInfo,
				attest.FieldVBIOSVersion, attest.FieldDriverVersion, attest.FieldCUDADriverVersion,
				attest.FieldComputeCapability, attest.FieldMaxSMClock, attest.FieldMaxMemoryClock,
				attest.FieldPowerLimit, attest.FieldMIGMode, attest.FieldCCMode,
			},
		}, nil
	}
	fp := attest.Fingerprint{
		UUID:                   attest.UUIDFromSeed("GPU-", seed),
		Serial:                 fmt.Sprintf("1652%09d", binary.BigEndian.Uint64(sum[:8])%1_000_000_000),
		BoardPartNumber:        info.partNumber,
		BoardID:                uint64(binary.BigEndian.Uint16(sum[8:10])) << 8,
		PCIBusID:               fmt.Sprintf("00000000:%02X:00.0", 0x10+sum[10]%0xE0),
		PCIDeviceID:            info.pciDevice,
		PCISubsystemID:         0x16C110DE,
		Name:                   info.name,
		MemoryTotalBytes:       info.memoryMiB << 20,
		VBIOSVersion:           info.vbios,
		DriverVersion:          "550.54.15",
		CUDADriverVersion:      12040,
		ComputeCapabilityMajor: info.ccMajor,
		ComputeCapabilityMinor: info.ccMinor,
		MaxSMClockMHz:          info.maxSM,
		MaxMemoryClockMHz:      info.maxMem,
		PowerLimitMilliwatts:   info.powerLimitMW,
		CCMode:                 "off",
	}
	if info.partNumber == "" {
		fp.BoardPartNumber = ""
		fp.Serial = ""
		fp.Unsupported = []string{attest.FieldSerial, attest.FieldBoardPartNumber, attest.FieldCCMode}
		fp.CCMode = ""
	}
	return fp, nil
}

// gpu is one simulated physical accelerator: it runs one workload at a
// time. Clones share one.
type gpu struct {
	slot chan struct{}
}

func newGPU() *gpu { return &gpu{slot: make(chan struct{}, 1)} }

// base implements the parts every simulated device shares.
type base struct {
	claimed      string // class the device claims
	claimedClass gpuclass.Class
	timing       gpuclass.Class
	fp           attest.Fingerprint
	opts         Options
	gpu          *gpu
	results      *attest.ResultStore

	closed attest.CloseState
}

func newBase(claimed, actual string, opts Options, g *gpu) (*base, error) {
	timing, err := gpuclass.LookupHardware(actual)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	claimedClass, err := gpuclass.Lookup(claimed)
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	var fp attest.Fingerprint
	if opts.Fingerprint != nil {
		fp = opts.Fingerprint.Clone()
	} else if fp, err = SynthesizeFingerprint(claimedClass.Name, opts.Seed); err != nil {
		return nil, err
	}
	if g == nil {
		g = newGPU()
	}
	return &base{
		claimed:      claimedClass.Name,
		claimedClass: claimedClass,
		timing:       timing,
		fp:           fp,
		opts:         opts,
		gpu:          g,
		results:      attest.NewResultStore(opts.HeldResults),
	}, nil
}

// ClaimedClass returns the class the device claims.
func (b *base) ClaimedClass() string { return b.claimed }

func (b *base) check() error {
	if b.closed.Closed() {
		return fmt.Errorf("sim device %s: %w", b.fp.UUID, attest.ErrClosed)
	}
	return nil
}

// Fingerprint returns the device's (possibly spoofed) fingerprint.
func (b *base) Fingerprint(ctx context.Context) (attest.Fingerprint, error) {
	if err := b.check(); err != nil {
		return attest.Fingerprint{}, err
	}
	return b.fp.Clone(), nil
}

// Telemetry returns plausible idle readings for the claimed class.
func (b *base) Telemetry(ctx context.Context) (attest.Telemetry, error) {
	if err := b.check(); err != nil {
		return attest.Telemetry{}, err
	}
	return attest.Telemetry{
		TemperatureC:    35,
		PowerMilliwatts: b.fp.PowerLimitMilliwatts / 10,
		SMClockMHz:      b.fp.MaxSMClockMHz / 5,
		MemoryClockMHz:  b.fp.MaxMemoryClockMHz,
		MemoryUsedBytes: 1 << 20,
	}, nil
}

// Results returns the cells of a previous run.
func (b *base) Results(nonce prover.Nonce) ([]int32, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.results.Get(nonce)
}

// Close marks the device closed; it is idempotent.
func (b *base) Close() error {
	b.closed.Close()
	return nil
}

// modelled returns how long the timing class takes for w, scaled, times
// percent/100.
func (b *base) modelled(w attest.Workload, percent int) time.Duration {
	us := b.timing.ExpectedMicros(w.Profile.M, w.Profile.N, w.Profile.K)
	if m := w.TimedModel; !m.IsZero() {
		// The timed phase the deadline was sized from, on the timing
		// class: what the real hardware would take, whatever stand-in
		// the device computes.
		ms := b.timing.TimedExpectedMillis(m.M, m.N, m.K)
		if ms > math.MaxInt64/1_000_000 {
			return time.Duration(math.MaxInt64)
		}
		us += ms * 1000
	}
	if m := w.MemoryModel; !m.IsZero() {
		// The table fill of the memory phase the deadline was sized
		// from, on the actual hardware.
		ms := b.timing.FillActualMillis(m.Blocks)
		if ms > math.MaxInt64/1_000_000 {
			return time.Duration(math.MaxInt64)
		}
		us += ms * 1000
	}
	d := time.Duration(float64(us)*b.opts.scale()*float64(percent)/100) * time.Microsecond
	if d < 0 {
		return time.Duration(1<<63 - 1)
	}
	return d
}

// run is the common Run: validate, take the GPU, compute cells and a
// root with work, hold the results, then wait until the modelled time has
// passed since the start.
func (b *base) run(ctx context.Context, w attest.Workload, percent int, work func() ([]int32, [32]byte, error)) (attest.Commitment, error) {
	if err := b.check(); err != nil {
		return attest.Commitment{}, err
	}
	if err := w.Validate(); err != nil {
		return attest.Commitment{}, err
	}
	if err := ctx.Err(); err != nil {
		return attest.Commitment{}, fmt.Errorf("sim device %s: %w", b.fp.UUID, err)
	}
	select {
	case b.gpu.slot <- struct{}{}:
	case <-ctx.Done():
		return attest.Commitment{}, fmt.Errorf("sim device %s: waiting for the GPU: %w", b.fp.UUID, ctx.Err())
	}
	defer func() { <-b.gpu.slot }()
	start := time.Now()
	cells, root, err := work()
	if err != nil {
		return attest.Commitment{}, err
	}
	var tr *timed.Result
	if !w.Timed.IsZero() {
		// One core: a fleet of simulated devices shares the machine.
		if tr, err = timed.Compute(ctx, w.Timed, w.Nonce, 1); err != nil {
			return attest.Commitment{}, fmt.Errorf("sim device %s: timed phase: %w", b.fp.UUID, err)
		}
	}
	var table *memwalk.Table
	if !w.Memory.IsZero() {
		if table, err = memwalk.Fill(ctx, w.Memory, w.Nonce, 1); err != nil {
			return attest.Commitment{}, fmt.Errorf("sim device %s: memory phase: %w", b.fp.UUID, err)
		}
	}
	if cells != nil {
		b.results.PutRun(w.Nonce, cells, tr)
		if table != nil {
			if err := b.results.PutTable(w.Nonce, table); err != nil {
				return attest.Commitment{}, err
			}
		}
	}
	if err := sleepUntil(ctx, start.Add(b.modelled(w, percent))); err != nil {
		return attest.Commitment{}, fmt.Errorf("sim device %s: run %s: %w", b.fp.UUID, w.Profile.ID(), err)
	}
	c := attest.Commitment{Root: root, Elapsed: time.Since(start)}
	if tr != nil {
		c.TimedRoot = tr.Root()
	}
	if table != nil {
		c.TableRoot = table.Root()
	}
	return c, nil
}

// Walk walks the memory phase's table of a previous run: it takes the
// GPU (a device answering for several identities walks one table at a
// time), computes the walk of the table it holds, and returns once the
// walk of the production phase (w.MemoryModel) would have ended on the
// actual hardware: its bandwidth for the share of the claimed table it can
// hold, regeneration or its host link for the rest
// (gpuclass.Class.WalkActualMillis).
func (b *base) Walk(ctx context.Context, w attest.Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	return b.walk(ctx, w, func(t *memwalk.Table) (*memwalk.Walk, error) { return t.Walk(ctx, seed, 1) },
		func(m memwalk.Spec) uint64 {
			return b.timing.WalkActualMillis(b.claimedClass, m.Blocks, m.Lanes, m.Steps)
		})
}

// walk is the common Walk: take the GPU, walk the held table with
// walkTable, hold the walk, then wait until millis of the production
// phase (w.MemoryModel), scaled, have passed since the start.
func (b *base) walk(ctx context.Context, w attest.Workload, walkTable func(*memwalk.Table) (*memwalk.Walk, error), millis func(memwalk.Spec) uint64) ([32]byte, error) {
	if err := b.check(); err != nil {
		return [32]byte{}, err
	}
	table, err := b.results.Table(w.Nonce)
	if err != nil {
		return [32]byte{}, err
	}
	select {
	case b.gpu.slot <- struct{}{}:
	case <-ctx.Done():
		return [32]byte{}, fmt.Errorf("sim device %s: waiting for the GPU: %w", b.fp.UUID, ctx.Err())
	}
	defer func() { <-b.gpu.slot }()
	start := time.Now()
	walk, err := walkTable(table)
	if err != nil {
		return [32]byte{}, fmt.Errorf("sim device %s: walk: %w", b.fp.UUID, err)
	}
	if err := b.results.PutWalk(w.Nonce, walk); err != nil {
		return [32]byte{}, err
	}
	m := w.MemoryModel
	if m.IsZero() {
		m = w.Memory
	}
	ms := millis(m)
	d := time.Duration(math.MaxInt64)
	if ms < math.MaxInt64/1_000_000 {
		d = time.Duration(float64(ms)*b.opts.scale()) * time.Millisecond
	}
	if d < 0 {
		d = time.Duration(math.MaxInt64)
	}
	if err := sleepUntil(ctx, start.Add(d)); err != nil {
		return [32]byte{}, fmt.Errorf("sim device %s: walk: %w", b.fp.UUID, err)
	}
	return walk.Root(), nil
}

// OpenWalk opens the walk of a previous run at the oracle's checks.
func (b *base) OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.results.OpenWalk(nonce, checkSeed)
}

// OpenTimed opens the timed phase of a previous run.
func (b *base) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	return b.results.OpenTimed(nonce, seed)
}

func sleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// honestWork computes the reference result and its root.
func honestWork(w attest.Workload) func() ([]int32, [32]byte, error) {
	return func() ([]int32, [32]byte, error) {
		cells := prover.Compute(w.Profile, w.Nonce)
		tree, err := prover.NewTree(w.Profile, cells)
		if err != nil {
			return nil, [32]byte{}, fmt.Errorf("sim: commit to %s results: %w", w.Profile.ID(), err)
		}
		return cells, tree.Root(), nil
	}
}

// Honest is a genuine device of its class: it computes the reference
// result and takes the class's modelled time. It passes the conformance
// suite and every oracle check.
type Honest struct{ *base }

// NewHonest returns an honest device of the class (a gpuclass name).
func NewHonest(class string, opts Options) (*Honest, error) {
	b, err := newBase(class, class, opts, nil)
	if err != nil {
		return nil, err
	}
	return &Honest{b}, nil
}

// Run computes the workload honestly.
func (d *Honest) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	return d.run(ctx, w, 100, honestWork(w))
}

// CanonicalClass maps a class name or alias as device profiles write it
// ("h100", "a100-40gb", "4090", "cpu-128-amx") to its gpuclass name.
func CanonicalClass(s string) (string, error) {
	aliases := map[string]string{
		"h100": gpuclass.H100SXM, "h100-sxm": gpuclass.H100SXM, "h100-pcie": gpuclass.H100PCIe,
		"h200": gpuclass.H200, "a100": gpuclass.A100_80, "a100-80gb": gpuclass.A100_80,
		"a100-40gb": gpuclass.A100_40, "l40s": gpuclass.L40S, "rtx4090": gpuclass.RTX4090,
		"rtx-4090": gpuclass.RTX4090, "4090": gpuclass.RTX4090, "rtx3090": gpuclass.RTX3090,
		"rtx-3090": gpuclass.RTX3090, "3090": gpuclass.RTX3090, "cpu": gpuclass.CPU,
		"cpu128": gpuclass.CPU128, "cpu128amx": gpuclass.CPU128AMX, "cpu-128-amx": gpuclass.CPU128AMX,
	}
	if c, ok := aliases[strings.ToLower(s)]; ok {
		return c, nil
	}
	c, err := gpuclass.LookupHardware(s)
	if err != nil {
		return "", fmt.Errorf("sim: %w", err)
	}
	return c.Name, nil
}
