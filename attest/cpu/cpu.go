// Package cpu is the CPU reference backend of the attestor: a Device that
// runs the challenge workload with the reference implementation of package
// prover. Honest CPU-only nodes, tests and the demo use it; it claims the
// "cpu" class of package gpuclass, whose deadlines are set for it. It is
// also the Executor behind an NVML-identified device when no CUDA driver is
// used.
//
// Its fingerprint identifies the host, not a GPU: the UUID is derived from
// /etc/machine-id (or the host name), the name from /proc/cpuinfo and the
// memory from /proc/meminfo; GPU-only fields are listed as unsupported.
package cpu

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/gpuclass"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Options configure a CPU device. The zero value reads the host.
type Options struct {
	// Seed, when non-empty, derives the UUID from it instead of from the
	// host's machine id (tests and several reference nodes on one host).
	Seed []byte
	// HeldResults is how many runs' results are kept for proving; at least
	// attest.MinHeldResults (the default).
	HeldResults int
	// Workers is how many cores the timed phase uses; 0 means all
	// (runtime.GOMAXPROCS).
	Workers int
}

// Device runs workloads with the reference implementation. It implements
// attest.Device and attest.ClassClaimer and follows the Device concurrency
// contract; runs are serialized, one at a time.
type Device struct {
	fp      attest.Fingerprint
	results *attest.ResultStore
	slot    chan struct{} // one run at a time
	workers int

	closed attest.CloseState
}

// New returns a CPU device.
func New(opts Options) *Device {
	seed := opts.Seed
	if len(seed) == 0 {
		seed = hostSeed()
	}
	fp := attest.Fingerprint{
		UUID:             attest.UUIDFromSeed("CPU-", seed),
		Name:             "CPU " + cpuModel(),
		MemoryTotalBytes: memTotal(),
		Unsupported: []string{
			attest.FieldSerial, attest.FieldBoardPartNumber, attest.FieldBoardID, attest.FieldPCIInfo,
			attest.FieldVBIOSVersion, attest.FieldDriverVersion, attest.FieldCUDADriverVersion,
			attest.FieldComputeCapability, attest.FieldMaxSMClock, attest.FieldMaxMemoryClock,
			attest.FieldPowerLimit, attest.FieldMIGMode, attest.FieldCCMode,
		},
	}
	if fp.MemoryTotalBytes == 0 {
		fp.Unsupported = append(fp.Unsupported, attest.FieldMemoryTotal)
	}
	return &Device{fp: fp, results: attest.NewResultStore(opts.HeldResults), slot: make(chan struct{}, 1), workers: opts.Workers}
}

// ClaimedClass returns gpuclass.CPU.
func (d *Device) ClaimedClass() string { return gpuclass.CPU }

func (d *Device) check() error {
	if d.closed.Closed() {
		return fmt.Errorf("cpu device %s: %w", d.fp.UUID, attest.ErrClosed)
	}
	return nil
}

// Fingerprint returns the host's fingerprint.
func (d *Device) Fingerprint(ctx context.Context) (attest.Fingerprint, error) {
	if err := d.check(); err != nil {
		return attest.Fingerprint{}, err
	}
	return d.fp.Clone(), nil
}

// Telemetry reports no sensors: every reading is listed as unsupported.
func (d *Device) Telemetry(ctx context.Context) (attest.Telemetry, error) {
	if err := d.check(); err != nil {
		return attest.Telemetry{}, err
	}
	return attest.Telemetry{Unsupported: []string{
		attest.FieldTemperature, attest.FieldPower, attest.FieldSMClock,
		attest.FieldMemoryClock, attest.FieldUtilization, attest.FieldMemoryUsed,
	}}, nil
}

// Run computes the workload with prover.Compute and commits with
// prover.NewTree. The computation itself cannot be interrupted: when ctx
// is done first, Run returns at once with ctx's error and the computation
// finishes in the background, holding the run slot until it does.
func (d *Device) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	if err := d.check(); err != nil {
		return attest.Commitment{}, err
	}
	if err := w.Validate(); err != nil {
		return attest.Commitment{}, err
	}
	if err := ctx.Err(); err != nil {
		return attest.Commitment{}, fmt.Errorf("cpu device: run %s: %w", w.Profile.ID(), err)
	}
	select {
	case d.slot <- struct{}{}:
	case <-ctx.Done():
		return attest.Commitment{}, fmt.Errorf("cpu device: waiting for the previous run: %w", ctx.Err())
	}
	start := time.Now()
	type result struct {
		root, timed, table [32]byte
		err                error
	}
	done := make(chan result, 1)
	go func() {
		defer func() { <-d.slot }()
		cells := prover.Compute(w.Profile, w.Nonce)
		tree, err := prover.NewTree(w.Profile, cells)
		if err != nil {
			done <- result{err: fmt.Errorf("cpu device: commit to %s results: %w", w.Profile.ID(), err)}
			return
		}
		var tr *timed.Result
		var troot [32]byte
		if !w.Timed.IsZero() {
			// The timed phase stops when ctx ends: past the deadline its
			// result is worth nothing.
			if tr, err = timed.Compute(ctx, w.Timed, w.Nonce, d.workers); err != nil {
				done <- result{err: fmt.Errorf("cpu device: timed phase: %w", err)}
				return
			}
			troot = tr.Root()
		}
		var table *memwalk.Table
		var tabroot [32]byte
		if !w.Memory.IsZero() {
			if table, err = memwalk.Fill(ctx, w.Memory, w.Nonce, d.workers); err != nil {
				done <- result{err: fmt.Errorf("cpu device: memory phase: %w", err)}
				return
			}
			tabroot = table.Root()
		}
		d.results.PutRun(w.Nonce, cells, tr)
		if table != nil {
			if err := d.results.PutTable(w.Nonce, table); err != nil {
				done <- result{err: err}
				return
			}
		}
		done <- result{root: tree.Root(), timed: troot, table: tabroot}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return attest.Commitment{}, r.err
		}
		return attest.Commitment{Root: r.root, TimedRoot: r.timed, TableRoot: r.table, Elapsed: time.Since(start)}, nil
	case <-ctx.Done():
		return attest.Commitment{}, fmt.Errorf("cpu device: run %s: %w", w.Profile.ID(), ctx.Err())
	}
}

// Walk walks the memory phase's table of a previous run with the
// reference implementation (memwalk.Table.Walk) on the device's workers.
func (d *Device) Walk(ctx context.Context, w attest.Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	if err := d.check(); err != nil {
		return [32]byte{}, err
	}
	table, err := d.results.Table(w.Nonce)
	if err != nil {
		return [32]byte{}, err
	}
	select {
	case d.slot <- struct{}{}:
	case <-ctx.Done():
		return [32]byte{}, fmt.Errorf("cpu device: waiting for the previous run: %w", ctx.Err())
	}
	defer func() { <-d.slot }()
	walk, err := table.Walk(ctx, seed, d.workers)
	if err != nil {
		return [32]byte{}, fmt.Errorf("cpu device: walk: %w", err)
	}
	if err := d.results.PutWalk(w.Nonce, walk); err != nil {
		return [32]byte{}, err
	}
	return walk.Root(), nil
}

// OpenWalk opens the walk of a previous run at the oracle's checks.
func (d *Device) OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.results.OpenWalk(nonce, checkSeed)
}

// OpenTimed opens the timed phase of a previous run.
func (d *Device) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.results.OpenTimed(nonce, seed)
}

// Results returns the cells of a previous run.
func (d *Device) Results(nonce prover.Nonce) ([]int32, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.results.Get(nonce)
}

// Close marks the device closed. It is idempotent.
func (d *Device) Close() error {
	d.closed.Close()
	return nil
}

func hostSeed() []byte {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			return []byte(strings.TrimSpace(string(b)))
		}
	}
	h, _ := os.Hostname()
	return []byte("host:" + h)
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "(unknown model)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "(unknown model)"
}

func memTotal() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
