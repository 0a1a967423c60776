package cuda

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	"github.com/truegpu/truegpu/attest"
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
// openings read) and, on the host, every level of the table tree.
type memTable struct {
	spec     memwalk.Spec
	nonce    prover.Nonce
	dev      uint64 // device pointer of the Blocks·1024-byte table
	tree     *hashTree
	treeRoot [32]byte
	root     [32]byte
	walk     *memWalk // the last walk, nil before one
}

// memWalk is a committed walk over a held table. Like the reference
// (memwalk.Walk) it keeps the root of every step's subtree and the states
// of all lanes every few steps; openings rebuild the subtrees they need by
// replaying the walk on the device from the nearest checkpoint.
type memWalk struct {
	seed        [memwalk.SeedSize]byte
	w0, w1      uint64
	every       uint32
	checkpoints [][]uint64
	top         *hashTree
	treeRoot    [32]byte
	root        [32]byte
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
		root = wk.root
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
// N: 1024, K: 1024} under the keys of memwalk.TableNonce(nonce), so the
// timed phase's kernels fill it: B once, then per tile of rows the A panel
// and the tensor-core GEMM, which writes its low bytes straight into the
// table in device memory. A SHA-256 kernel hashes the tile's blocks into
// table-tree leaves on the GPU; only the 32-byte leaf hashes are copied
// back (32 bytes per block), and the host builds the tree over them and
// keeps every level to answer openings (64 bytes of host memory per
// block). Cancellation takes effect between tiles.
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
	t := &memTable{spec: s, nonce: nonce, dev: dTable, tree: buildHashTree(leaves, 0)}
	t.treeRoot = t.tree.root()
	t.root = memwalk.TableCommit(s, nonce, t.treeRoot)
	kept = true
	return t, nil
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
// host. The host builds the tree over the step roots.
func (d *Device) walkTable(ctx context.Context, t *memTable, seed [memwalk.SeedSize]byte) (*memWalk, error) {
	drv := d.drv
	s := t.spec
	lanes := uint64(s.Lanes)
	groups := lanes / memwalk.LeafLanes
	wk := &memWalk{seed: seed}
	wk.w0, wk.w1 = walkKeys(t.root, seed)
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
		dCur, lanes, wk.w0, wk.w1); err != nil {
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
	wk.top = buildHashTree(stepRoots, bits.Len64(groups)-1)
	wk.treeRoot = wk.top.root()
	wk.root = memwalk.WalkCommit(s, t.nonce, t.root, seed, wk.treeRoot)
	return wk, nil
}

// openWalk builds the openings of t's walk for checkSeed on the worker
// thread, as memwalk.Walk.Open does: for each step whose states a check
// needs (in increasing order) the lane states are restored from the
// nearest checkpoint when needed and advanced on the GPU, the step's
// leaves and subtree levels are hashed on the GPU and copied back
// (2·Lanes/8 hashes), and the subtree root is checked against the
// committed one; the blocks read are copied from the table.
func (d *Device) openWalk(t *memTable, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	drv := d.drv
	s := t.spec
	wk := t.walk
	lanes := uint64(s.Lanes)
	groups := lanes / memwalk.LeafLanes
	checks := memwalk.DrawChecks(s, wk.root, checkSeed)
	var need []uint32
	type key struct {
		step uint32
		g    uint64
	}
	wanted := make(map[key]bool)
	for _, c := range checks {
		g := uint64(c.Lane / memwalk.LeafLanes)
		if c.Step > 0 {
			need = append(need, c.Step)
			wanted[key{c.Step, g}] = true
		}
		need = append(need, c.Step+1)
		wanted[key{c.Step + 1, g}] = true
	}
	slices.Sort(need)
	need = slices.Compact(need)

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
	leaves := make(map[key]memwalk.StateLeaf)
	curStep := ^uint32(0)
	for _, st := range need {
		k := min(st/wk.every, uint32(len(wk.checkpoints)-1))
		if curStep == ^uint32(0) || curStep < k*wk.every || curStep > st {
			if err := drv.check("cuMemcpyHtoD(checkpoint)", drv.cuMemcpyHtoD(dCur, unsafe.Pointer(&wk.checkpoints[k][0]), 8*lanes)); err != nil {
				return nil, err
			}
			curStep = k * wk.every
		}
		if st > curStep {
			if err := d.launchWalk(t, dCur, 0, st-curStep); err != nil {
				return nil, err
			}
		}
		curStep = st
		if err := d.launch(kernelMWStateLeaves, [3]uint32{ceilDiv(groups, 256), 1, 1}, [3]uint32{256, 1, 1},
			dCur, dH, uint64(st-1)*groups, groups); err != nil {
			return nil, err
		}
		sub := &hashTree{depth: bits.Len64(groups) - 1}
		off := uint64(0)
		for cnt := groups; ; cnt /= 2 {
			sub.levels = append(sub.levels, flat[off:off+cnt])
			if cnt == 1 {
				break
			}
			if err := d.launchNodes(dH+32*off, dH+32*(off+cnt), cnt/2); err != nil {
				return nil, err
			}
			off += cnt
		}
		if err := drv.check("cuMemcpyDtoH(step subtree)", drv.cuMemcpyDtoH(unsafe.Pointer(&flat[0][0]), dH, 32*nodes)); err != nil {
			return nil, err
		}
		if sub.root() != wk.top.levels[0][st-1] {
			return nil, fmt.Errorf("%w: replayed step %d does not match its committed subtree", ErrDeviceFault, st)
		}
		top := wk.top.path(uint64(st - 1))
		for g := uint64(0); g < groups; g++ {
			if !wanted[key{st, g}] {
				continue
			}
			var leaf memwalk.StateLeaf
			if err := drv.check("cuMemcpyDtoH(states)", drv.cuMemcpyDtoH(unsafe.Pointer(&leaf.States[0]), dCur+64*g, 64)); err != nil {
				return nil, err
			}
			leaf.Path = append(sub.path(g), top...)
			leaves[key{st, g}] = leaf
		}
	}

	o := &memwalk.Openings{TableTreeRoot: t.treeRoot, WalkTreeRoot: wk.treeRoot}
	for _, c := range checks {
		g := uint64(c.Lane / memwalk.LeafLanes)
		var op memwalk.CheckOpening
		var x uint64
		if c.Step == 0 {
			x = walkWord(uint64(c.Lane), wk.w0, wk.w1)
		} else {
			before := leaves[key{c.Step, g}]
			before.Path = slices.Clone(before.Path)
			op.Before = &before
			x = before.States[c.Lane%memwalk.LeafLanes]
		}
		after := leaves[key{c.Step + 1, g}]
		after.Path = slices.Clone(after.Path)
		op.After = &after
		a := memwalk.Address(x, s.Blocks)
		op.Block = make([]byte, memwalk.BlockBytes)
		if err := drv.check("cuMemcpyDtoH(block)", drv.cuMemcpyDtoH(unsafe.Pointer(&op.Block[0]), t.dev+a*memwalk.BlockBytes, memwalk.BlockBytes)); err != nil {
			return nil, err
		}
		op.BlockPath = t.tree.path(a)
		o.Checks = append(o.Checks, op)
	}
	return o.Encode(), nil
}

// walkKeys returns w0, w1: the le64 halves of the first 16 bytes of
// SHA-256("truegpu/memwalk/v1/walk" ‖ tableRoot ‖ walkSeed).
func walkKeys(tableRoot [32]byte, seed [memwalk.SeedSize]byte) (w0, w1 uint64) {
	buf := make([]byte, 0, len(memwalk.Version)+len("/walk")+32+memwalk.SeedSize)
	buf = append(buf, memwalk.Version+"/walk"...)
	buf = append(buf, tableRoot[:]...)
	buf = append(buf, seed[:]...)
	h := sha256.Sum256(buf)
	return binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint64(h[8:16])
}

// walkWord is x(lane, 0): timed's generator word fmix(fmix(lane ^ w0) ^ w1).
func walkWord(lane, w0, w1 uint64) uint64 { return fmix(fmix(lane^w0) ^ w1) }

func fmix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// ---- the SHA-256 Merkle trees of "truegpu/memwalk/v1" on the host ----

// nodeHash is SHA-256(0x01 ‖ left ‖ right).
func nodeHash(left, right *[32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 0x01
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// padHashes[d] is the root of a height-d subtree of padding leaves
// (SHA-256(0x02) at height 0).
var padHashes = func() [memwalk.MaxDepth + 1][32]byte {
	var p [memwalk.MaxDepth + 1][32]byte
	p[0] = sha256.Sum256([]byte{0x02})
	for d := 1; d <= memwalk.MaxDepth; d++ {
		p[d] = nodeHash(&p[d-1], &p[d-1])
	}
	return p
}()

// hashTree holds every level of a Merkle tree whose leaves are roots of
// subtrees of height base: levels[0] are those roots, levels[d] has
// ceil(len(levels[d-1])/2) nodes, and nodes past the end of a level are
// padding subtrees (padHashes[base+d]). The table tree has base 0; the
// walk's tree over step roots has base log2(Lanes/8).
type hashTree struct {
	levels [][][32]byte
	depth  int
	base   int
}

func (t *hashTree) node(d int, n uint64) [32]byte {
	if n < uint64(len(t.levels[d])) {
		return t.levels[d][n]
	}
	return padHashes[t.base+d]
}

func (t *hashTree) root() [32]byte { return t.node(t.depth, 0) }

// path returns the sibling hashes of leaf l, bottom-up.
func (t *hashTree) path(l uint64) [][32]byte {
	p := make([][32]byte, t.depth)
	for d := range p {
		p[d] = t.node(d, (l>>d)^1)
	}
	return p
}

// buildHashTree hashes the levels above leaves on all cores.
func buildHashTree(leaves [][32]byte, base int) *hashTree {
	depth := 0
	if n := uint64(len(leaves)); n > 1 {
		depth = bits.Len64(n - 1)
	}
	t := &hashTree{levels: make([][][32]byte, depth+1), depth: depth, base: base}
	t.levels[0] = leaves
	for d := 1; d <= depth; d++ {
		below := t.levels[d-1]
		cur := make([][32]byte, (len(below)+1)/2)
		pad := padHashes[base+d-1]
		parallelFor(len(cur), func(lo, hi int) {
			for n := lo; n < hi; n++ {
				right := &pad
				if 2*n+1 < len(below) {
					right = &below[2*n+1]
				}
				cur[n] = nodeHash(&below[2*n], right)
			}
		})
		t.levels[d] = cur
	}
	return t
}

// parallelFor runs fn over [0, n) in parts of at least 4096 items on up
// to GOMAXPROCS goroutines.
func parallelFor(n int, fn func(lo, hi int)) {
	workers := min(runtime.GOMAXPROCS(0), n/4096)
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += step {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, min(lo+step, n))
	}
	wg.Wait()
}
