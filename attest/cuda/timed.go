package cuda

import (
	"context"
	"unsafe"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/timed"
)

// Kernel entry points of the timed phase in truegpu.ptx (timed.h and
// truegpu.cu).
const (
	kernelTimedFill   = "truegpu_timed_fill"
	kernelTimedGEMM   = "truegpu_timed_gemm"
	kernelTimedLeaves = "truegpu_timed_leaves"
)

// Launch geometry of truegpu_timed_gemm (TM_BM, TM_BN, TM_THREADS in
// kernels/timed.h).
const (
	timedBlockRows = 64
	timedBlockCols = 64
	timedThreads   = 128
)

// timedMaxTileRows caps the rows of A processed per tile (a variable so
// that tests can force several tiles on small specs).
var timedMaxTileRows uint64 = 4096

const (
	// timedTileBudget bounds the device memory of one tile (A panel,
	// low-byte results and leaf hashes); B is allocated once besides.
	timedTileBudget = 2 << 30
	// timedFillChunk bounds the words one PRG launch writes, keeping
	// the grid within the driver's limits.
	timedFillChunk = 1 << 28
)

// timedTileRows is the number of rows of C computed per tile: at most
// timedMaxTileRows, fewer when a tile would exceed timedTileBudget, a
// multiple of the GEMM block height unless M itself is smaller.
func timedTileRows(s timed.Spec) uint32 {
	perRow := uint64(s.K) + uint64(s.N) + 32*uint64(s.N)/timed.LeafCells
	t := min(timedMaxTileRows, max(timedTileBudget/perRow, 1))
	if t >= timedBlockRows {
		t -= t % timedBlockRows
	}
	return uint32(min(t, uint64(s.M)))
}

// OpenTimed answers the oracle's sample seed for the timed phase of a
// previous run: the encoded openings of timed.Result.Open. Leaf bytes are
// recomputed on the host (package timed), so only the leaf hashes were
// copied back from the device.
func (d *Device) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	return d.results.OpenTimed(nonce, seed)
}

// timedFill launches the PRG over nwords 8-byte words at dst, with counters
// from ctr0, in chunks that keep each grid small.
func (d *Device) timedFill(dst, ctr0, nwords, ka, kb uint64) error {
	for off := uint64(0); off < nwords; off += timedFillChunk {
		n := min(nwords-off, timedFillChunk)
		if err := d.launch(kernelTimedFill, [3]uint32{ceilDiv(n, 256), 1, 1}, [3]uint32{256, 1, 1},
			dst+8*off, ctr0+off, n, ka, kb); err != nil {
			return err
		}
	}
	return nil
}

// runTimed executes on the worker thread: B once, then per tile of rows
// the A panel, the GEMM (low bytes only) and the leaf hashes, of which
// only the hashes are copied back. It returns the hashes of every leaf in
// leaf order; cancellation takes effect between tiles.
func (d *Device) runTimed(ctx context.Context, s timed.Spec, nonce prover.Nonce) ([][32]byte, error) {
	drv := d.drv
	keys := timed.Key(nonce)
	M, N, K := uint64(s.M), uint64(s.N), uint64(s.K)
	T := uint64(timedTileRows(s))
	bufs := &buffers{drv: drv}
	defer bufs.free()
	dB, err := bufs.alloc(N * K)
	if err != nil {
		return nil, err
	}
	dA, err := bufs.alloc(T * K)
	if err != nil {
		return nil, err
	}
	dOut, err := bufs.alloc(T * N)
	if err != nil {
		return nil, err
	}
	tileLeaves := T * N / timed.LeafCells
	dH, err := bufs.alloc(32 * tileLeaves)
	if err != nil {
		return nil, err
	}
	if err := d.timedFill(dB, 0, N*K/8, keys[2], keys[3]); err != nil {
		return nil, err
	}
	hashes := make([][32]byte, s.Leaves())
	for r0 := uint64(0); r0 < M; r0 += T {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := min(T, M-r0)
		if err := d.timedFill(dA, r0*(K/8), rows*K/8, keys[0], keys[1]); err != nil {
			return nil, err
		}
		if err := d.launch(kernelTimedGEMM, [3]uint32{uint32(N / timedBlockCols), ceilDiv(rows, timedBlockRows), 1},
			[3]uint32{timedThreads, 1, 1}, dA, dB, dOut, uint32(rows), uint32(N), uint32(K)); err != nil {
			return nil, err
		}
		n := rows * N / timed.LeafCells
		l0 := r0 * N / timed.LeafCells
		if err := d.launch(kernelTimedLeaves, [3]uint32{ceilDiv(n, 256), 1, 1}, [3]uint32{256, 1, 1},
			dOut, dH, l0, n); err != nil {
			return nil, err
		}
		if err := drv.check("cuMemcpyDtoH(leaf hashes)", drv.cuMemcpyDtoH(unsafe.Pointer(&hashes[l0][0]), dH, 32*n)); err != nil {
			return nil, err
		}
	}
	return hashes, nil
}
