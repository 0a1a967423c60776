// Package cuda is the CUDA backend of the attestor: it runs the challenge
// workload (Poseidon2 PRG, int8 GEMM with exact int32 accumulation,
// Poseidon2 Merkle commitment) on an NVIDIA GPU through the CUDA driver
// API, without the CUDA toolkit at build time.
//
// The driver (libcuda.so.1) is loaded at run time with purego, so the
// package builds everywhere, with or without cgo; without the driver, Open
// fails with an error wrapping ErrNoDriver that says to use the CPU
// backend. The kernels are PTX generated from kernels/truegpu.cu by
// kernels/gen.sh (clang, no toolkit) and embedded in the binary.
//
// The GEMM kernel of the Poseidon2 workload uses CUDA cores (one thread
// per cell), not int8 tensor cores: enough for the published profiles,
// whose time is dominated by hashing.
//
// The timed phase (package prover/timed: a class-sized int8 GEMM committed
// by a SHA-256 Merkle tree over the low bytes of its cells) runs in tiles
// of up to 4096 rows: a keyed PRG kernel fills B once and each row panel
// of A, an int8 tensor-core kernel (mma.sync m16n8k32, sm_80+) writes the
// low bytes of the tile's cells, and a SHA-256 kernel hashes its leaves;
// only the 32-byte leaf hashes are copied back. The host builds the tree
// (timed.NewResultFromLeaves) and, for openings, recomputes the few opened
// leaves natively. The tensor-core kernel is straightforward - 64x64 block
// tiles staged through shared memory, no double buffering, ldmatrix or
// asynchronous copies - so it should reach only a fraction of the
// tensor-core peak; its throughput has not been measured.
//
// The memory phase (package prover/memwalk, the Walker interface) keeps
// its table in device memory from Run to the walk's openings. Its bytes
// are the low bytes of the timed GEMM {M: Blocks, N: 1024, K: 2048}, so
// the timed phase's PRG and tensor-core kernels fill it tile by tile,
// writing straight into the table; a SHA-256 kernel hashes each block into
// its table-tree leaf on the GPU and only the leaf hashes are copied back;
// the host builds the table tree (memwalk.NewTable) and keeps every level
// (64 bytes of host memory per block). The walk runs one warp per lane -
// each thread folds one 32-byte chunk of the 1 KB block, the warp sums the
// chunks with shuffles - in chunks of steps that keep every lane's state
// after each step; SHA-256 kernels hash those states into walk-tree leaves
// and reduce each step's leaves to its subtree root on the GPU, so only
// the step roots and, every few steps, a checkpoint of the lane states are
// copied back. Openings replay the walk on the GPU from the nearest
// checkpoint and answer byte for byte as memwalk.Walk.Open does (through
// memwalk.Walk.OpenReplay). A run releases the tables of earlier runs that
// would not fit beside its own, so with a production table (most of the
// device's memory) only the latest run's walk can be opened.
//
// Validation status: the kernel arithmetic and kernel bodies (field.h,
// work.h, timed.h, memwalk.h) are compiled as host C by the tests and
// checked bit for bit against gnark-crypto and the reference
// implementations of packages prover, prover/timed and prover/memwalk; the
// host side runs the conformance suite, the timed phase and the memory
// phase against kernels/fakecuda.c, a stand-in driver that executes
// launches on the CPU with the same kernel bodies (the walk's warp
// shuffles replaced by a loop over the warp's chunks). For the
// tensor-core GEMM the host runs the kernel's own shared-memory staging,
// fragment loads and stores, with the mma.sync instruction replaced by a
// host model written from the PTX ISA's fragment layout; that checks the
// kernel's indexing against the documented layout, not the hardware's
// behaviour, nor barriers and shared-memory races. The PTX itself needs a
// GPU, and the PTX of the timed and memory-phase kernels has not yet been
// executed on one: the conformance test on the real driver runs when a
// driver and device are present and is skipped otherwise, as is
// TestMemwalkOnDevice for the memory phase.
package cuda

import (
	"context"
	_ "embed"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/timed"
)

//go:embed kernels/truegpu.ptx
var ptx string

// Kernel entry points in truegpu.ptx.
const (
	kernelPRG    = "truegpu_prg"
	kernelGEMM   = "truegpu_gemm"
	kernelLeaves = "truegpu_leaves"
	kernelMerkle = "truegpu_merkle"
)

// roundKeys returns the Poseidon2 round keys in the kernels' flat layout
// (Montgomery form, as gnark-crypto stores them).
func roundKeys() []fr.Element {
	params := poseidon2.NewParameters(prover.Poseidon2Width, prover.Poseidon2FullRounds, prover.Poseidon2PartialRounds)
	var out []fr.Element
	for _, r := range params.RoundKeys {
		out = append(out, r...)
	}
	return out
}

// Options configure Open.
type Options struct {
	// LibraryPath overrides the driver library; empty means libcuda.so.1.
	LibraryPath string
	// Ordinal selects the GPU (CUDA's enumeration order).
	Ordinal int
	// HeldResults is how many runs' results are kept for proving; at
	// least attest.MinHeldResults.
	HeldResults int
}

// Count returns the number of CUDA devices.
func Count(opts Options) (int, error) {
	d, err := loadDriver(opts.LibraryPath)
	if err != nil {
		return 0, err
	}
	var n int32
	if err := d.check("cuDeviceGetCount", d.cuDeviceGetCount(&n)); err != nil {
		return 0, err
	}
	return int(n), nil
}

// Device is one GPU driven through the CUDA driver API. It implements
// attest.Device. A single OS thread owns the device's context; every call
// is executed there, so runs are serialized.
type Device struct {
	drv     *driver
	dev     int32
	fp      attest.Fingerprint
	results *attest.ResultStore
	rk      []fr.Element

	calls chan func()
	quit  chan struct{} // closed by Close: the worker stops
	done  chan struct{} // closed by the worker when it has stopped

	closed  attest.CloseState
	heldCap int // runs whose results (and memory-phase tables) are kept

	// owned by the worker thread
	ctx    uintptr
	mod    uintptr
	funcs  map[string]uintptr
	tables []*memTable // memory-phase tables in device memory, oldest first
}

// Open initializes the driver, creates a context on the selected GPU and
// loads the kernels.
func Open(opts Options) (*Device, error) {
	drv, err := loadDriver(opts.LibraryPath)
	if err != nil {
		return nil, err
	}
	d := &Device{drv: drv, results: attest.NewResultStore(opts.HeldResults), rk: roundKeys(),
		calls: make(chan func()), quit: make(chan struct{}), done: make(chan struct{}), funcs: map[string]uintptr{},
		heldCap: max(opts.HeldResults, attest.MinHeldResults)}
	var n int32
	if err := drv.check("cuDeviceGetCount", drv.cuDeviceGetCount(&n)); err != nil {
		return nil, err
	}
	if opts.Ordinal < 0 || opts.Ordinal >= int(n) {
		return nil, fmt.Errorf("%w: CUDA device %d, the driver reports %d", attest.ErrNoDevice, opts.Ordinal, n)
	}
	if err := drv.check("cuDeviceGet", drv.cuDeviceGet(&d.dev, int32(opts.Ordinal))); err != nil {
		return nil, err
	}
	if d.fp, err = d.readFingerprint(); err != nil {
		return nil, err
	}
	started := make(chan error, 1)
	go d.worker(started)
	if err := <-started; err != nil {
		return nil, err
	}
	return d, nil
}

// worker owns the context on a locked OS thread and runs calls.
func (d *Device) worker(started chan<- error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(d.done)
	if err := d.drv.check("cuCtxCreate", d.drv.cuCtxCreate(&d.ctx, 0, d.dev)); err != nil {
		started <- err
		return
	}
	defer d.drv.cuCtxDestroy(d.ctx)
	img := cString(ptx)
	if err := d.drv.check("cuModuleLoadData", d.drv.cuModuleLoadData(&d.mod, img)); err != nil {
		started <- err
		return
	}
	runtime.KeepAlive(img)
	defer d.drv.cuModuleUnload(d.mod)
	defer d.releaseAllTables()
	for _, name := range []string{kernelPRG, kernelGEMM, kernelLeaves, kernelMerkle,
		kernelTimedFill, kernelTimedGEMM, kernelTimedLeaves,
		kernelMWBlockLeaves, kernelMWInit, kernelMWStateLeaves, kernelMWNodes, kernelMWWalk} {
		var f uintptr
		if err := d.drv.check("cuModuleGetFunction("+name+")", d.drv.cuModuleGetFunction(&f, d.mod, cString(name))); err != nil {
			started <- err
			return
		}
		d.funcs[name] = f
	}
	started <- nil
	for {
		select {
		case f := <-d.calls:
			f()
		case <-d.quit:
			return
		}
	}
}

// do runs f on the worker thread. A call that the worker has not taken
// when the device closes fails with ErrClosed.
func (d *Device) do(ctx context.Context, f func() error) error {
	errc := make(chan error, 1)
	select {
	case d.calls <- func() { errc <- f() }:
	case <-d.done:
		return fmt.Errorf("cuda device %s: %w", d.fp.UUID, attest.ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-errc
}

func (d *Device) check() error {
	if d.closed.Closed() {
		return fmt.Errorf("cuda device %s: %w", d.fp.UUID, attest.ErrClosed)
	}
	return nil
}

func (d *Device) readFingerprint() (attest.Fingerprint, error) {
	drv := d.drv
	var fp attest.Fingerprint
	name := make([]byte, 256)
	if err := drv.check("cuDeviceGetName", drv.cuDeviceGetName(&name[0], int32(len(name)), d.dev)); err != nil {
		return fp, err
	}
	fp.Name = cBuf(name)
	var uuid [16]byte
	if err := drv.check("cuDeviceGetUuid", drv.cuDeviceGetUuid(&uuid, d.dev)); err != nil {
		return fp, err
	}
	fp.UUID = formatUUID(uuid)
	if err := drv.check("cuDeviceTotalMem", drv.cuDeviceTotalMem(&fp.MemoryTotalBytes, d.dev)); err != nil {
		return fp, err
	}
	bus := make([]byte, 32)
	if drv.cuDeviceGetPCIBusId(&bus[0], int32(len(bus)), d.dev) == cudaSuccess {
		fp.PCIBusID = cBuf(bus)
	} else {
		fp.Unsupported = append(fp.Unsupported, attest.FieldPCIInfo)
	}
	attr := func(a int32) (int32, bool) {
		var v int32
		return v, drv.cuDeviceGetAttribute(&v, a, d.dev) == cudaSuccess
	}
	maj, ok1 := attr(attrComputeCapabilityMajor)
	min, ok2 := attr(attrComputeCapabilityMinor)
	if ok1 && ok2 {
		fp.ComputeCapabilityMajor, fp.ComputeCapabilityMinor = uint32(maj), uint32(min)
	} else {
		fp.Unsupported = append(fp.Unsupported, attest.FieldComputeCapability)
	}
	if v, ok := attr(attrClockRate); ok {
		fp.MaxSMClockMHz = uint32(v / 1000)
	} else {
		fp.Unsupported = append(fp.Unsupported, attest.FieldMaxSMClock)
	}
	if v, ok := attr(attrMemoryClockRate); ok {
		fp.MaxMemoryClockMHz = uint32(v / 1000)
	} else {
		fp.Unsupported = append(fp.Unsupported, attest.FieldMaxMemoryClock)
	}
	var ver int32
	if drv.cuDriverGetVersion(&ver) == cudaSuccess {
		fp.CUDADriverVersion = ver
	} else {
		fp.Unsupported = append(fp.Unsupported, attest.FieldCUDADriverVersion)
	}
	// The driver API does not report these; NVML does (see attest/nvml).
	fp.Unsupported = append(fp.Unsupported, attest.FieldSerial, attest.FieldBoardPartNumber, attest.FieldBoardID,
		attest.FieldVBIOSVersion, attest.FieldDriverVersion, attest.FieldPowerLimit, attest.FieldMIGMode, attest.FieldCCMode)
	return fp, nil
}

func formatUUID(u [16]byte) string {
	const hexd = "0123456789abcdef"
	b := []byte("GPU-")
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexd[c>>4], hexd[c&15])
	}
	return string(b)
}

// Fingerprint returns what the driver API reports about the GPU.
func (d *Device) Fingerprint(ctx context.Context) (attest.Fingerprint, error) {
	if err := d.check(); err != nil {
		return attest.Fingerprint{}, err
	}
	return d.fp.Clone(), nil
}

// Telemetry is not available through the driver API; combine the device
// with its NVML identity (attest.Combine) for sensors.
func (d *Device) Telemetry(ctx context.Context) (attest.Telemetry, error) {
	if err := d.check(); err != nil {
		return attest.Telemetry{}, err
	}
	return attest.Telemetry{Unsupported: []string{attest.FieldTemperature, attest.FieldPower, attest.FieldSMClock,
		attest.FieldMemoryClock, attest.FieldUtilization, attest.FieldMemoryUsed}}, nil
}

// Results returns the cells of a previous run.
func (d *Device) Results(nonce prover.Nonce) ([]int32, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.results.Get(nonce)
}

// Close waits for the call in progress, frees the memory-phase tables and
// destroys the context. It is idempotent.
func (d *Device) Close() error {
	if !d.closed.Close() {
		return nil
	}
	close(d.quit)
	<-d.done
	return nil
}

// Run computes the workload on the GPU: PRG for A and B, the GEMM, the
// leaf words and the Merkle levels, then copies the root and the cells
// back; then, when the workload has them, the timed phase (runTimed),
// whose leaf hashes are copied back and committed on the host, and the
// memory phase's table (fillTable), which stays in device memory for the
// walk. The kernels cannot be interrupted: cancellation takes effect
// between launches.
func (d *Device) Run(ctx context.Context, w attest.Workload) (attest.Commitment, error) {
	if err := d.check(); err != nil {
		return attest.Commitment{}, err
	}
	if err := w.Validate(); err != nil {
		return attest.Commitment{}, err
	}
	if err := ctx.Err(); err != nil {
		return attest.Commitment{}, err
	}
	start := time.Now()
	var root, troot, tableRoot [32]byte
	err := d.do(ctx, func() error {
		d.makeRoom(w)
		var cells []int32
		var err error
		if root, cells, err = d.run(ctx, w); err != nil {
			return err
		}
		var tr *timed.Result
		if !w.Timed.IsZero() {
			leafHashes, err := d.runTimed(ctx, w.Timed, w.Nonce)
			if err != nil {
				return fmt.Errorf("timed phase %dx%dx%d: %w", w.Timed.M, w.Timed.N, w.Timed.K, err)
			}
			// Openings recompute their few leaves natively (leafBytes nil).
			if tr, err = timed.NewResultFromLeaves(w.Timed, w.Nonce, leafHashes, nil); err != nil {
				return fmt.Errorf("timed phase: %w", err)
			}
			troot = tr.Root()
		}
		var t *memTable
		if !w.Memory.IsZero() {
			if t, err = d.fillTable(ctx, w.Memory, w.Nonce); err != nil {
				return fmt.Errorf("memory phase %+v: %w", w.Memory, err)
			}
			tableRoot = t.table.Root()
		}
		// Recorded on the worker thread, so that the next run's
		// makeRoom sees this run as held.
		d.results.PutRun(w.Nonce, cells, tr)
		if t != nil {
			d.holdTable(t)
		}
		return nil
	})
	if err != nil {
		return attest.Commitment{}, fmt.Errorf("cuda device %s: run %s: %w", d.fp.UUID, w.Profile.ID(), err)
	}
	return attest.Commitment{Root: root, TimedRoot: troot, TableRoot: tableRoot, Elapsed: time.Since(start)}, nil
}

// buffers tracks device allocations for one run.
type buffers struct {
	drv  *driver
	ptrs []uint64
}

func (b *buffers) alloc(n uint64) (uint64, error) {
	var p uint64
	if err := b.drv.check("cuMemAlloc", b.drv.cuMemAlloc(&p, n)); err != nil {
		return 0, fmt.Errorf("allocate %d bytes: %w", n, err)
	}
	b.ptrs = append(b.ptrs, p)
	return p, nil
}

func (b *buffers) free() {
	for _, p := range b.ptrs {
		b.drv.cuMemFree(p)
	}
}

// launch starts a kernel with the given argument values (each a fixed-size
// value: uint64, uint32 or a device pointer as uint64).
func (d *Device) launch(name string, grid, block [3]uint32, args ...any) error {
	var pin runtime.Pinner
	defer pin.Unpin()
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		var p unsafe.Pointer
		switch v := a.(type) {
		case uint64:
			x := new(uint64)
			*x = v
			p = unsafe.Pointer(x)
		case uint32:
			x := new(uint32)
			*x = v
			p = unsafe.Pointer(x)
		default:
			return fmt.Errorf("cuda: kernel %s argument %d has unsupported type %T", name, i, a)
		}
		pin.Pin(p)
		params[i] = p
	}
	pin.Pin(&params[0])
	code := d.drv.cuLaunchKernel(d.funcs[name], grid[0], grid[1], grid[2], block[0], block[1], block[2], 0, 0, &params[0], nil)
	return d.drv.check("cuLaunchKernel("+name+")", code)
}

func ceilDiv(a, b uint64) uint32 { return uint32((a + b - 1) / b) }

// run executes on the worker thread.
func (d *Device) run(ctx context.Context, w attest.Workload) ([32]byte, []int32, error) {
	p := w.Profile
	M, N, K := uint64(p.M), uint64(p.N), uint64(p.K)
	chunks := (K + 30) / 31
	words := M * N / prover.CellsPerWord
	bufs := &buffers{drv: d.drv}
	defer bufs.free()
	drv := d.drv

	var seed fr.Element
	sb := prover.Seed(p, w.Nonce)
	seed.SetBytes(sb[:])
	dSeed, err := bufs.alloc(32)
	if err != nil {
		return [32]byte{}, nil, err
	}
	dRK, err := bufs.alloc(uint64(32 * len(d.rk)))
	if err != nil {
		return [32]byte{}, nil, err
	}
	if err := drv.check("cuMemcpyHtoD(seed)", drv.cuMemcpyHtoD(dSeed, unsafe.Pointer(&seed), 32)); err != nil {
		return [32]byte{}, nil, err
	}
	if err := drv.check("cuMemcpyHtoD(round keys)", drv.cuMemcpyHtoD(dRK, unsafe.Pointer(&d.rk[0]), uint64(32*len(d.rk)))); err != nil {
		return [32]byte{}, nil, err
	}
	dA, err := bufs.alloc(M * K)
	if err != nil {
		return [32]byte{}, nil, err
	}
	dB, err := bufs.alloc(K * N)
	if err != nil {
		return [32]byte{}, nil, err
	}
	dC, err := bufs.alloc(4 * M * N)
	if err != nil {
		return [32]byte{}, nil, err
	}
	dW0, err := bufs.alloc(32 * words)
	if err != nil {
		return [32]byte{}, nil, err
	}
	dW1, err := bufs.alloc(32 * max(words/2, 1))
	if err != nil {
		return [32]byte{}, nil, err
	}
	steps := []func() error{
		func() error {
			return d.launch(kernelPRG, [3]uint32{ceilDiv(chunks, 32), ceilDiv(M, 4), 1}, [3]uint32{32, 4, 1},
				dSeed, dRK, uint64(1), dA, uint32(M), uint32(chunks), uint32(K), uint32(N))
		},
		func() error {
			return d.launch(kernelPRG, [3]uint32{ceilDiv(chunks, 32), ceilDiv(N, 4), 1}, [3]uint32{32, 4, 1},
				dSeed, dRK, uint64(2), dB, uint32(N), uint32(chunks), uint32(K), uint32(N))
		},
		func() error {
			return d.launch(kernelGEMM, [3]uint32{ceilDiv(N, 16), ceilDiv(M, 16), 1}, [3]uint32{16, 16, 1},
				dA, dB, dC, uint32(M), uint32(N), uint32(K))
		},
		func() error {
			return d.launch(kernelLeaves, [3]uint32{ceilDiv(words, 256), 1, 1}, [3]uint32{256, 1, 1}, dC, dW0, words)
		},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return [32]byte{}, nil, err
		}
		if err := s(); err != nil {
			return [32]byte{}, nil, err
		}
	}
	in, out := dW0, dW1
	for n := words; n > 1; n /= 2 {
		if err := ctx.Err(); err != nil {
			return [32]byte{}, nil, err
		}
		if err := d.launch(kernelMerkle, [3]uint32{ceilDiv(n/2, 256), 1, 1}, [3]uint32{256, 1, 1}, in, out, dRK, n/2); err != nil {
			return [32]byte{}, nil, err
		}
		in, out = out, in
	}
	if err := drv.check("cuCtxSynchronize", drv.cuCtxSynchronize()); err != nil {
		return [32]byte{}, nil, err
	}
	var rootMont fr.Element
	if err := drv.check("cuMemcpyDtoH(root)", drv.cuMemcpyDtoH(unsafe.Pointer(&rootMont), in, 32)); err != nil {
		return [32]byte{}, nil, err
	}
	cells := make([]int32, M*N)
	if err := drv.check("cuMemcpyDtoH(cells)", drv.cuMemcpyDtoH(unsafe.Pointer(&cells[0]), dC, 4*M*N)); err != nil {
		return [32]byte{}, nil, err
	}
	return rootMont.Bytes(), cells, nil
}
