package cuda

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/sha256tree"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// Kernel entry points of the memory phase in truegpu.ptx (memwalk.h and
// truegpu.cu). The table itself is filled by the timed phase's kernels.
const (
	kernelMWBlockLeaves = "truegpu_mw_block_leaves"
	kernelMWInit        = "truegpu_mw_init"
	kernelMWStateLeaves = "truegpu_mw_state_leaves"
	kernelMWNodes       = "truegpu_mw_nodes"
	kernelMWWalk        = "truegpu_mw_walk"
)

// Sizes of the memory phase's working sets. Variables so that tests can
// force several tiles, chunks and checkpoints on small specs.
var (
	// memFillTileRows is the number of blocks filled per tile: the A
	// panel takes 1 KiB and the leaf hashes 32 bytes per block (16 MiB
	// and 512 KiB), B 1 MiB besides.
	memFillTileRows uint64 = 16384
	// walkCheckpointEvery is the smallest number of steps between kept
	// state checkpoints (the reference's interval).
	walkCheckpointEvery uint32 = 64
	// walkMaxCheckpointBytes bounds the host memory of the checkpoints;
	// the interval doubles until they fit. It is larger than the
	// reference's 256 MiB so that openings replay fewer steps on the
	// device (at most 128 for the production walk instead of 512).
	walkMaxCheckpointBytes uint64 = 1 << 30
	// walkBufferBudget bounds the device memory of the walk's per-chunk
	// buffers: the states after each step of a chunk (8 bytes per lane
	// and step) and the leaf and first inner-level hashes of the walk
	// tree (4 + 2 bytes per lane and step).
	walkBufferBudget uint64 = 256 << 20
)

// tableHeadroom is the device memory a new run keeps free besides the
// tables it holds: tables of earlier runs are released, oldest first,
// while the held tables and the new one would leave less than this.
const tableHeadroom = 2 << 30

// walkBytesPerLaneStep is the device memory of one lane-step in a walk
// chunk: its state (8 bytes), its share of a leaf hash (4) and of the
// first inner level (2).
const walkBytesPerLaneStep = 8 + 32/memwalk.LeafLanes + 32/memwalk.LeafLanes/2

// memTable is the memory phase of one run, held on the device until a
// later run evicts it: the table in device memory (which the walk and its
// openings read) and, on the host, its commitment with every level of the
// table tree (a memwalk.Table that reads its blocks from the device).
type memTable struct {
	spec  memwalk.Spec
	nonce prover.Nonce
	dev   uint64 // device pointer of the Blocks·1024-byte table
	table *memwalk.Table
	walk  *memWalk // the last walk, nil before one
}

// memWalk is a committed walk over a held table: the memwalk.Walk built
// from the root of every step's subtree, and the states of all lanes every
// few steps. Like the reference, openings rebuild the subtrees they need
// by replaying the walk, here on the device from the nearest checkpoint.
type memWalk struct {
	walk        *memwalk.Walk
	stepRoots   [][32]byte
	every       uint32
	checkpoints [][]uint64
}

// Walk walks the table of the most recent run with w's nonce on the GPU
// for the oracle's walk seed and returns the walk commitment
// (memwalk.Walk.Root). The table must still be held in device memory:
// otherwise the error wraps attest.ErrNoResults. Cancellation takes effect
// between chunks of steps.
func (d *Device) Walk(ctx context.Context, w attest.Workload, seed [memwalk.SeedSize]byte) ([32]byte, error) {
	if err := d.check(); err != nil {
		return [32]byte{}, err
	}
	var root [32]byte
	err := d.do(ctx, func() error {
		t, err := d.heldTable(w.Nonce)
		if err != nil {
			return err
		}
		if !w.Memory.IsZero() && w.Memory != t.spec {
			return fmt.Errorf("%w: walk of a %+v memory phase, the run held filled %+v", attest.ErrBadWorkload, w.Memory, t.spec)
		}
		t.walk = nil
		wk, err := d.walkTable(ctx, t, seed)
		if err != nil {
			return err
		}
		t.walk = wk
		root = wk.walk.Root()
		return nil
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("cuda device %s: walk: %w", d.fp.UUID, err)
	}
	return root, nil
}

// OpenWalk answers the oracle's check seed for the walk of a previous run:
// the encoded openings of memwalk.Walk.Open, byte for byte. The states
// of the opened steps are recomputed on the GPU from the nearest
// checkpoint; the blocks are copied from the table in device memory.
func (d *Device) OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	if err := d.check(); err != nil {
		return nil, err
	}
	var out []byte
	err := d.do(context.Background(), func() error {
		t, err := d.heldTable(nonce)
		if err != nil {
			return err
		}
		if t.walk == nil {
			return fmt.Errorf("%w %x: the memory phase has not been walked", attest.ErrNoResults, nonce[:8])
		}
		out, err = d.openWalk(t, checkSeed)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cuda device %s: open walk: %w", d.fp.UUID, err)
	}
	return out, nil
}

// heldTable returns the table held for nonce (worker thread). A table
// whose run the result store no longer holds counts as evicted.
func (d *Device) heldTable(nonce prover.Nonce) (*memTable, error) {
	if _, err := d.results.Get(nonce); err == nil {
		for _, t := range d.tables {
			if t.nonce == nonce {
				return t, nil
			}
		}
	}
	return nil, fmt.Errorf("%w %x: no memory-phase table held on the device (a device holds the tables of its last %d runs that fit in its memory)",
		attest.ErrNoResults, nonce[:8], d.heldCap)
}

// releaseTable frees t's device memory and forgets it (worker thread).
func (d *Device) releaseTable(t *memTable) {
	d.drv.cuMemFree(t.dev)
	d.tables = slices.DeleteFunc(d.tables, func(o *memTable) bool { return o == t })
}

// releaseAllTables frees every held table (worker thread).
func (d *Device) releaseAllTables() {
	for len(d.tables) > 0 {
		d.releaseTable(d.tables[0])
	}
}

// makeRoom runs before a run allocates anything (worker thread): it
// releases the table of an earlier run with the same nonce, tables whose
// runs the result store has evicted, and then the oldest tables while the
// held ones, the new run's table and tableHeadroom would exceed the
// device's memory. A production table fills most of the device, so a new
// run with a memory phase releases the previous run's table and the
// previous walk can no longer be opened.
func (d *Device) makeRoom(w attest.Workload) {
	for _, t := range slices.Clone(d.tables) {
		if _, err := d.results.Get(t.nonce); t.nonce == w.Nonce || err != nil {
			d.releaseTable(t)
		}
	}
	held := func() uint64 {
		var n uint64
		for _, t := range d.tables {
			n += t.spec.TableBytes()
		}
		return n
	}
	for len(d.tables) > 0 && held()+w.Memory.TableBytes()+tableHeadroom > d.fp.MemoryTotalBytes {
		d.releaseTable(d.tables[0])
	}
}

// holdTable keeps t, releasing the oldest tables beyond the device's
// held-results capacity (worker thread).
func (d *Device) holdTable(t *memTable) {
	d.tables = append(d.tables, t)
	for len(d.tables) > d.heldCap {
		d.releaseTable(d.tables[0])
	}
}

// fillTable fills and commits the table of s for nonce on the worker
// thread. The table is the low bytes of the timed GEMM {M: Blocks,
// N: 1024, K: 2048} under the keys of memwalk.TableNonce(nonce), so the
// timed phase's kernels fill it: B once, then per tile of rows the A panel
// and the tensor-core GEMM, which writes its low bytes straight into the
// table in device memory. A SHA-256 kernel hashes the tile's blocks into
// table-tree leaves on the GPU; only the 32-byte leaf hashes are copied
// back (32 bytes per block), and the host builds the tree over them
// (memwalk.NewTable) and keeps every level to answer openings (64 bytes of
// host memory per block). Cancellation takes effect between tiles.
func (d *Device) fillTable(ctx context.Context, s memwalk.Spec, nonce prover.Nonce) (*memTable, error) {
	drv := d.drv
	var dTable uint64
	alloc := func() error {
		return drv.check("cuMemAlloc(table)", drv.cuMemAlloc(&dTable, s.TableBytes()))
	}
	err := alloc()
	if errors.Is(err, ErrOutOfMemory) && len(d.tables) > 0 {
		d.releaseAllTables()
		err = alloc()
	}
	if err != nil {
		return nil, fmt.Errorf("allocate the %d-byte table: %w", s.TableBytes(), err)
	}
	kept := false
	defer func() {
		if !kept {
			drv.cuMemFree(dTable)
		}
	}()
	const (
		n = memwalk.BlockBytes
		k = memwalk.FillK
	)
	keys := timed.Key(memwalk.TableNonce(nonce))
	T := min(memFillTileRows, s.Blocks)
	bufs := &buffers{drv: drv}
	defer bufs.free()
	dB, err := bufs.alloc(n * k)
	if err != nil {
		return nil, err
	}
	dA, err := bufs.alloc(T * k)
	if err != nil {
		return nil, err
	}
	dH, err := bufs.alloc(32 * T)
	if err != nil {
		return nil, err
	}
	if err := d.timedFill(dB, 0, n*k/8, keys[2], keys[3]); err != nil {
		return nil, err
	}
	leaves := make([][32]byte, s.Blocks)
	for r0 := uint64(0); r0 < s.Blocks; r0 += T {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rows := min(T, s.Blocks-r0)
		tile := dTable + r0*n
		if err := d.timedFill(dA, r0*(k/8), rows*k/8, keys[0], keys[1]); err != nil {
			return nil, err
		}
		if err := d.launch(kernelTimedGEMM, [3]uint32{n / timedBlockCols, ceilDiv(rows, timedBlockRows), 1},
			[3]uint32{timedThreads, 1, 1}, dA, dB, tile, uint32(rows), uint32(n), uint32(k)); err != nil {
			return nil, err
		}
		if err := d.launch(kernelMWBlockLeaves, [3]uint32{ceilDiv(rows, 256), 1, 1}, [3]uint32{256, 1, 1},
			tile, dH, r0, rows); err != nil {
			return nil, err
		}
		if err := drv.check("cuMemcpyDtoH(table leaf hashes)", drv.cuMemcpyDtoH(unsafe.Pointer(&leaves[r0][0]), dH, 32*rows)); err != nil {
			return nil, err
		}
	}
	table, err := memwalk.NewTable(s, nonce, leaves, func(i uint64) ([]byte, error) {
		return d.readBlock(dTable, i)
	})
	if err != nil {
		return nil, err
	}
	kept = true
	return &memTable{spec: s, nonce: nonce, dev: dTable, table: table}, nil
}

// readBlock copies block i of the table at dTable from the device (worker
// thread).
func (d *Device) readBlock(dTable, i uint64) ([]byte, error) {
	b := make([]byte, memwalk.BlockBytes)
	if err := d.drv.check("cuMemcpyDtoH(block)", d.drv.cuMemcpyDtoH(unsafe.Pointer(&b[0]), dTable+i*memwalk.BlockBytes, memwalk.BlockBytes)); err != nil {
		return nil, err
	}
	return b, nil
}

// walkSchedule returns the checkpoint interval (walkCheckpointEvery,
// doubled until the checkpoints fit in walkMaxCheckpointBytes, as the
// reference does) and the steps per chunk: the largest power of two that
// divides the interval and whose buffers fit in walkBufferBudget, at
// least 1, at most Steps.
func walkSchedule(s memwalk.Spec) (every, chunk uint32) {
	lanes := uint64(s.Lanes)
	every = walkCheckpointEvery
	for uint64((s.Steps+every-1)/every)*lanes*8 > walkMaxCheckpointBytes && every < s.Steps {
		every *= 2
	}
	chunk = 1
	for every%(chunk*2) == 0 && uint64(chunk*2)*lanes*walkBytesPerLaneStep <= walkBufferBudget {
		chunk *= 2
	}
	return every, min(chunk, s.Steps)
}

// launchWalk runs nsteps steps of every lane (one warp per lane), from
// the states at cur, which receive the states after the last step; out,
// when not 0, receives the states after each step.
func (d *Device) launchWalk(t *memTable, cur, out uint64, nsteps uint32) error {
	lanes := uint64(t.spec.Lanes)
	return d.launch(kernelMWWalk, [3]uint32{uint32(lanes * 32 / 256), 1, 1}, [3]uint32{256, 1, 1},
		t.dev, t.spec.Blocks, cur, out, uint32(lanes), nsteps)
}

// launchNodes hashes nout inner nodes from the 2·nout hashes at in into
// out.
func (d *Device) launchNodes(in, out, nout uint64) error {
	return d.launch(kernelMWNodes, [3]uint32{ceilDiv(nout, 256), 1, 1}, [3]uint32{256, 1, 1}, in, out, nout)
}

// walkTable runs the walk on the worker thread in chunks of steps: per
// chunk one launch walks every lane through the chunk's steps keeping the
// states after each step, a second hashes those states into walk-tree
// leaves and log2(Lanes/8) more reduce each step's leaves to its subtree
// root, of which only the roots (32 bytes per step) are copied back. At
// every checkpoint the lane states (8 bytes per lane) are copied to the
// host. The host builds the tree over the step roots (memwalk.NewWalk).
func (d *Device) walkTable(ctx context.Context, t *memTable, seed [memwalk.SeedSize]byte) (*memWalk, error) {
	drv := d.drv
	s := t.spec
	lanes := uint64(s.Lanes)
	groups := lanes / memwalk.LeafLanes
	w0, w1 := memwalk.WalkKeys(t.table.Root(), seed)
	wk := &memWalk{}
	every, chunk := walkSchedule(s)
	wk.every = every
	wk.checkpoints = make([][]uint64, (s.Steps+every-1)/every)
	C := uint64(chunk)
	bufs := &buffers{drv: drv}
	defer bufs.free()
	dCur, err := bufs.alloc(8 * lanes)
	if err != nil {
		return nil, err
	}
	dStates, err := bufs.alloc(8 * C * lanes)
	if err != nil {
		return nil, err
	}
	dH0, err := bufs.alloc(32 * C * groups)
	if err != nil {
		return nil, err
	}
	dH1, err := bufs.alloc(32 * max(C*groups/2, 1))
	if err != nil {
		return nil, err
	}
	if err := d.launch(kernelMWInit, [3]uint32{ceilDiv(lanes, 256), 1, 1}, [3]uint32{256, 1, 1},
		dCur, lanes, w0, w1); err != nil {
		return nil, err
	}
	stepRoots := make([][32]byte, s.Steps)
	for t0 := uint32(0); t0 < s.Steps; t0 += chunk {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		n := min(chunk, s.Steps-t0)
		if t0%every == 0 {
			ck := make([]uint64, lanes)
			if err := drv.check("cuMemcpyDtoH(checkpoint)", drv.cuMemcpyDtoH(unsafe.Pointer(&ck[0]), dCur, 8*lanes)); err != nil {
				return nil, err
			}
			wk.checkpoints[t0/every] = ck
		}
		if err := d.launchWalk(t, dCur, dStates, n); err != nil {
			return nil, err
		}
		count := uint64(n) * groups
		if err := d.launch(kernelMWStateLeaves, [3]uint32{ceilDiv(count, 256), 1, 1}, [3]uint32{256, 1, 1},
			dStates, dH0, uint64(t0)*groups, count); err != nil {
			return nil, err
		}
		// Each step's leaves are a power-of-two run, so pairing
		// neighbours level by level never mixes two steps and ends
		// with the n step roots in order.
		in, out := dH0, dH1
		for ; count > uint64(n); count /= 2 {
			if err := d.launchNodes(in, out, count/2); err != nil {
				return nil, err
			}
			in, out = out, in
		}
		if err := drv.check("cuMemcpyDtoH(step roots)", drv.cuMemcpyDtoH(unsafe.Pointer(&stepRoots[t0][0]), in, 32*uint64(n))); err != nil {
			return nil, err
		}
	}
	if wk.walk, err = memwalk.NewWalk(t.table, seed, stepRoots); err != nil {
		return nil, err
	}
	wk.stepRoots = stepRoots
	return wk, nil
}

// openWalk builds the openings of t's walk for checkSeed on the worker
// thread with memwalk.Walk.OpenReplay: for each step whose states a check
// needs (in increasing order) the lane states are restored from the
// nearest checkpoint when needed and advanced on the GPU, the step's
// leaves and subtree levels are hashed on the GPU and copied back
// (2·Lanes/8 hashes) with the opened leaves' states, and the subtree root
// is checked against the committed one; the blocks read are copied from
// the table.
func (d *Device) openWalk(t *memTable, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	drv := d.drv
	wk := t.walk
	lanes := uint64(t.spec.Lanes)
	groups := lanes / memwalk.LeafLanes
	bufs := &buffers{drv: drv}
	defer bufs.free()
	dCur, err := bufs.alloc(8 * lanes)
	if err != nil {
		return nil, err
	}
	// The step's subtree, level by level: groups leaves, then groups/2
	// nodes, ..., then its root.
	nodes := 2*groups - 1
	dH, err := bufs.alloc(32 * nodes)
	if err != nil {
		return nil, err
	}
	flat := make([][32]byte, nodes)
	var levels [][][32]byte
	for off, cnt := uint64(0), groups; cnt > 0; off, cnt = off+cnt, cnt/2 {
		levels = append(levels, flat[off:off+cnt])
	}
	curStep := ^uint32(0)
	replay := func(st uint32, opened []uint64) ([32]byte, []memwalk.StateLeaf, error) {
		k := min(st/wk.every, uint32(len(wk.checkpoints)-1))
		if curStep == ^uint32(0) || curStep < k*wk.every || curStep > st {
			if err := drv.check("cuMemcpyHtoD(checkpoint)", drv.cuMemcpyHtoD(dCur, unsafe.Pointer(&wk.checkpoints[k][0]), 8*lanes)); err != nil {
				return [32]byte{}, nil, err
			}
			curStep = k * wk.every
		}
		if st > curStep {
			if err := d.launchWalk(t, dCur, 0, st-curStep); err != nil {
				return [32]byte{}, nil, err
			}
		}
		curStep = st
		if err := d.launch(kernelMWStateLeaves, [3]uint32{ceilDiv(groups, 256), 1, 1}, [3]uint32{256, 1, 1},
			dCur, dH, uint64(st-1)*groups, groups); err != nil {
			return [32]byte{}, nil, err
		}
		for off, cnt := uint64(0), groups; cnt > 1; off, cnt = off+cnt, cnt/2 {
			if err := d.launchNodes(dH+32*off, dH+32*(off+cnt), cnt/2); err != nil {
				return [32]byte{}, nil, err
			}
		}
		if err := drv.check("cuMemcpyDtoH(step subtree)", drv.cuMemcpyDtoH(unsafe.Pointer(&flat[0][0]), dH, 32*nodes)); err != nil {
			return [32]byte{}, nil, err
		}
		sub, err := sha256tree.FromLevels(levels)
		if err != nil {
			return [32]byte{}, nil, err
		}
		if sub.Root() != wk.stepRoots[st-1] {
			return [32]byte{}, nil, fmt.Errorf("%w: replayed step %d does not match its committed subtree", ErrDeviceFault, st)
		}
		leaves := make([]memwalk.StateLeaf, len(opened))
		for i, g := range opened {
			if err := drv.check("cuMemcpyDtoH(states)", drv.cuMemcpyDtoH(unsafe.Pointer(&leaves[i].States[0]), dCur+64*g, 64)); err != nil {
				return [32]byte{}, nil, err
			}
			leaves[i].Path = sub.Path(g)
		}
		return sub.Root(), leaves, nil
	}
	return wk.walk.OpenReplay(checkSeed, replay)
}
