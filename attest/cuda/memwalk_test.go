package cuda

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/attest/devicetest"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
)

// The device implements the memory phase.
var _ attest.Walker = (*Device)(nil)

// memSizes sets the memory phase's working-set sizes for one test and
// restores the defaults afterwards.
func memSizes(t *testing.T, tileRows uint64, every uint32, ckptBytes, bufBudget uint64) {
	t.Helper()
	oldTile, oldEvery, oldCkpt, oldBuf := memFillTileRows, walkCheckpointEvery, walkMaxCheckpointBytes, walkBufferBudget
	memFillTileRows, walkCheckpointEvery, walkMaxCheckpointBytes, walkBufferBudget = tileRows, every, ckptBytes, bufBudget
	t.Cleanup(func() {
		memFillTileRows, walkCheckpointEvery, walkMaxCheckpointBytes, walkBufferBudget = oldTile, oldEvery, oldCkpt, oldBuf
	})
}

// memRun runs a workload with only a memory phase besides the test
// profile.
func memRun(t *testing.T, d *Device, s memwalk.Spec, nonce prover.Nonce) attest.Commitment {
	t.Helper()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: nonce, Memory: s, MemoryModel: s})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// memwalkSpecs cover several fill tiles (partial last tiles), walk chunks
// and checkpoints, non-power-of-two Blocks, one leaf per step and several.
var memwalkSpecs = []memwalk.Spec{
	{Blocks: 16, Lanes: 8, Steps: 1},
	{Blocks: 37, Lanes: 8, Steps: 9},
	{Blocks: 100, Lanes: 16, Steps: 5},
	{Blocks: 64, Lanes: 64, Steps: 13},
	{Blocks: 131, Lanes: 32, Steps: 40},
}

// checkMemwalk runs each spec's memory phase on d and checks the table
// root, the walk roots and the openings (byte for byte) against the
// reference, and that the openings verify.
func checkMemwalk(t *testing.T, d *Device, specs []memwalk.Spec, nonce0 int) {
	t.Helper()
	for si, s := range specs {
		nonce := devicetest.Nonce(nonce0 + si)
		ref, err := memwalk.Fill(context.Background(), s, nonce, 0)
		if err != nil {
			t.Fatal(err)
		}
		c := memRun(t, d, s, nonce)
		if c.TableRoot != ref.Root() {
			t.Fatalf("%+v: table root %x, reference %x", s, c.TableRoot, ref.Root())
		}
		for k := range 2 {
			seed := [memwalk.SeedSize]byte{byte(si), byte(k), 0x5a}
			refWalk, err := ref.Walk(context.Background(), seed, 0)
			if err != nil {
				t.Fatal(err)
			}
			root, err := d.Walk(context.Background(), attest.Workload{Nonce: nonce, Memory: s}, seed)
			if err != nil {
				t.Fatal(err)
			}
			if root != refWalk.Root() {
				t.Fatalf("%+v, seed %d: walk root %x, reference %x", s, k, root, refWalk.Root())
			}
			for q := range 3 {
				check := [memwalk.SeedSize]byte{0xc0, byte(si), byte(k), byte(q)}
				got, err := d.OpenWalk(nonce, check)
				if err != nil {
					t.Fatal(err)
				}
				want, err := refWalk.Open(check)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("%+v, seed %d, check seed %d: openings differ from the reference's", s, k, q)
				}
				if err := memwalk.Verify(s, nonce, c.TableRoot, seed, root, check, got); err != nil {
					t.Fatalf("%+v: openings do not verify: %v", s, err)
				}
			}
		}
	}
}

// The memory phase run through the fake driver (the kernel bodies on the
// CPU: the timed phase's PRG and GEMM filling the table, SHA-256 of the
// blocks, the warp fold, the walk-tree hashing) gives the reference's
// table root, walk root and openings byte for byte, and the openings
// verify, with the default working-set sizes and with small ones.
func TestFakeDriverMemwalk(t *testing.T) {
	lib := fakeDriver(t)
	live := fakeCounter(t, lib, "fakecuda_live_allocations")
	sizes := []struct {
		name      string
		tile      uint64
		every     uint32
		ckpt, buf uint64
	}{
		{"defaults", memFillTileRows, walkCheckpointEvery, walkMaxCheckpointBytes, walkBufferBudget},
		// Tiles of 24 blocks, checkpoints every 2 steps (doubling when
		// they exceed 3 KiB) and chunks of 1 or 2 steps.
		{"small", 24, 2, 3 << 10, 2 * 64 * walkBytesPerLaneStep},
	}
	for _, sz := range sizes {
		t.Run(sz.name, func(t *testing.T) {
			memSizes(t, sz.tile, sz.every, sz.ckpt, sz.buf)
			d, err := Open(Options{LibraryPath: lib})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkMemwalk(t, d, memwalkSpecs, 200)
			d.Close()
		})
	}
	if n := live(); n != 0 {
		t.Errorf("%d device allocations leaked", n)
	}
}

// On a machine with an NVIDIA driver and GPU, the memory phase's PTX gives
// the reference's roots and openings, with small working sets (several
// tiles, chunks and checkpoints) and with a spec whose walk has several
// chunks at the default sizes; elsewhere the test is skipped.
func TestMemwalkOnDevice(t *testing.T) {
	if n, err := Count(Options{}); err != nil || n == 0 {
		t.Skipf("no CUDA device (%v, %d devices)", err, n)
	}
	d, err := Open(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Run("small", func(t *testing.T) {
		memSizes(t, 24, 2, 3<<10, 2*64*walkBytesPerLaneStep)
		checkMemwalk(t, d, memwalkSpecs, 600)
	})
	t.Run("defaults", func(t *testing.T) {
		checkMemwalk(t, d, []memwalk.Spec{{Blocks: 20_000, Lanes: 1 << 12, Steps: 300}}, 700)
	})
}

func TestWalkSchedule(t *testing.T) {
	tests := []struct {
		s            memwalk.Spec
		every, chunk uint32
	}{
		// The production walk: 2^20 lanes (8 MiB a checkpoint), ~9,000
		// steps: checkpoints every 128 steps (71 of them, 568 MiB),
		// chunks of 16 steps (224 MiB of device buffers).
		{memwalk.Spec{Blocks: 71_000_000, Lanes: 1 << 20, Steps: 9000}, 128, 16},
		{memwalk.Spec{Blocks: 100, Lanes: 16, Steps: 5}, 64, 5},
		{memwalk.Spec{Blocks: 1 << 20, Lanes: 1 << 16, Steps: 1000}, 64, 64},
		{memwalk.Spec{Blocks: 1 << 32, Lanes: 1 << 24, Steps: 100}, 64, 1},
	}
	for _, tc := range tests {
		every, chunk := walkSchedule(tc.s)
		if every != tc.every || chunk != tc.chunk {
			t.Errorf("walkSchedule(%+v) = %d, %d, want %d, %d", tc.s, every, chunk, tc.every, tc.chunk)
		}
		if every%chunk != 0 && chunk != tc.s.Steps {
			t.Errorf("%+v: chunk %d does not divide the checkpoint interval %d", tc.s, chunk, every)
		}
	}
}

// The fake-driver run reproduces the pinned golden commitments of package
// memwalk, and its openings of the golden check seed verify.
func TestMemwalkGolden(t *testing.T) {
	d, err := Open(Options{LibraryPath: fakeDriver(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s, nonce := memwalk.GoldenSpec, memwalk.GoldenNonce
	c := memRun(t, d, s, nonce)
	if hex.EncodeToString(c.TableRoot[:]) != memwalk.GoldenTableRootHex {
		t.Fatalf("table root %x, golden %s", c.TableRoot, memwalk.GoldenTableRootHex)
	}
	root, err := d.Walk(context.Background(), attest.Workload{Nonce: nonce, Memory: s}, memwalk.GoldenWalkSeed)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(root[:]) != memwalk.GoldenWalkRootHex {
		t.Fatalf("walk root %x, golden %s", root, memwalk.GoldenWalkRootHex)
	}
	o, err := d.OpenWalk(nonce, memwalk.GoldenCheckSeed)
	if err != nil {
		t.Fatal(err)
	}
	if err := memwalk.Verify(s, nonce, c.TableRoot, memwalk.GoldenWalkSeed, root, memwalk.GoldenCheckSeed, o); err != nil {
		t.Fatal(err)
	}
}

// Walks and openings of runs the device no longer holds, or never ran,
// fail with ErrNoResults, and with ErrClosed after Close; tables are
// released with the runs that held them.
func TestFakeDriverMemwalkErrors(t *testing.T) {
	lib := fakeDriver(t)
	live := fakeCounter(t, lib, "fakecuda_live_allocations")
	d, err := Open(Options{LibraryPath: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := memwalk.Spec{Blocks: 16, Lanes: 8, Steps: 3}
	seed := [memwalk.SeedSize]byte{1}
	walk := func(n prover.Nonce) error {
		_, err := d.Walk(context.Background(), attest.Workload{Nonce: n, Memory: s}, seed)
		return err
	}
	open := func(n prover.Nonce) error {
		_, err := d.OpenWalk(n, [memwalk.SeedSize]byte{2})
		return err
	}

	first := devicetest.Nonce(300)
	memRun(t, d, s, first)
	if err := open(first); !errors.Is(err, attest.ErrNoResults) || !strings.Contains(err.Error(), "not been walked") {
		t.Errorf("OpenWalk before Walk: %v, want ErrNoResults", err)
	}
	if err := walk(first); err != nil {
		t.Fatal(err)
	}
	if err := open(first); err != nil {
		t.Fatal(err)
	}
	if err := walk(devicetest.Nonce(999)); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("Walk of a nonce never run: %v, want ErrNoResults", err)
	}
	if err := open(devicetest.Nonce(999)); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("OpenWalk of a nonce never run: %v, want ErrNoResults", err)
	}
	if _, err := d.Walk(context.Background(), attest.Workload{Nonce: first, Memory: memwalk.Spec{Blocks: 17, Lanes: 8, Steps: 3}}, seed); !errors.Is(err, attest.ErrBadWorkload) {
		t.Errorf("Walk with another spec than the run's: %v, want ErrBadWorkload", err)
	}
	// A run without a memory phase holds no table.
	p, _ := prover.ProfileByName("test")
	plain := devicetest.Nonce(301)
	if _, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: plain}); err != nil {
		t.Fatal(err)
	}
	if err := walk(plain); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("Walk of a run without a memory phase: %v, want ErrNoResults", err)
	}
	// Later runs evict the first (the device keeps the last
	// MinHeldResults), and its table with it.
	for i := range attest.MinHeldResults {
		memRun(t, d, s, devicetest.Nonce(310+i))
	}
	if err := open(first); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("OpenWalk of an evicted run: %v, want ErrNoResults", err)
	}
	if err := walk(first); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("Walk of an evicted run: %v, want ErrNoResults", err)
	}
	if n := len(d.tables); n != attest.MinHeldResults {
		t.Errorf("%d tables held, want %d", n, attest.MinHeldResults)
	}
	last := devicetest.Nonce(310 + attest.MinHeldResults - 1)
	if err := walk(last); err != nil {
		t.Fatal(err)
	}
	// A cancelled walk returns the context's error.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Walk(ctx, attest.Workload{Nonce: last, Memory: s}, seed); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Walk: %v, want context.Canceled", err)
	}
	d.Close()
	if err := walk(last); !errors.Is(err, attest.ErrClosed) {
		t.Errorf("Walk after Close: %v, want ErrClosed", err)
	}
	if err := open(last); !errors.Is(err, attest.ErrClosed) {
		t.Errorf("OpenWalk after Close: %v, want ErrClosed", err)
	}
	if n := live(); n != 0 {
		t.Errorf("%d device allocations leaked", n)
	}
}

// A new run releases the tables that, with its own, would not fit in the
// device's memory: a production-sized table holds the device alone.
func TestMakeRoom(t *testing.T) {
	d, err := Open(Options{LibraryPath: fakeDriver(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := memwalk.Spec{Blocks: 16, Lanes: 8, Steps: 1}
	for i := range 3 {
		memRun(t, d, s, devicetest.Nonce(400+i))
	}
	err = d.do(context.Background(), func() error {
		if len(d.tables) != 3 {
			return fmt.Errorf("%d tables held, want 3", len(d.tables))
		}
		// Re-running a nonce replaces its table.
		d.makeRoom(attest.Workload{Nonce: devicetest.Nonce(401)})
		if len(d.tables) != 2 || d.tables[0].nonce != devicetest.Nonce(400) {
			return fmt.Errorf("after re-running a nonce: %d tables held", len(d.tables))
		}
		// Two H100-sized tables (72.7 GB each) do not fit in the fake
		// device's 85.5 GB: the older is released, the small one stays.
		prod := memwalk.Spec{Blocks: 71_000_000, Lanes: 1 << 20, Steps: 9000}
		d.tables[0].spec = prod // as if it had filled a production table
		d.makeRoom(attest.Workload{Nonce: devicetest.Nonce(500), Memory: prod})
		if len(d.tables) != 1 || d.tables[0].nonce != devicetest.Nonce(402) {
			return fmt.Errorf("%d tables held next to a production table, want the small one", len(d.tables))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The embedded PTX has the memory phase's kernels, and the walk sums a
// warp's chunks with shuffles and reads its block with 16-byte loads.
func TestEmbeddedMemwalkPTX(t *testing.T) {
	for _, name := range []string{kernelMWBlockLeaves, kernelMWInit, kernelMWStateLeaves, kernelMWNodes, kernelMWWalk} {
		if !strings.Contains(ptx, ".entry "+name+"(") {
			t.Errorf("embedded PTX has no entry %s", name)
		}
	}
	_, walk, _ := strings.Cut(ptx, ".entry "+kernelMWWalk+"(")
	walk, _, _ = strings.Cut(walk, "\n}\n")
	if n := strings.Count(walk, "shfl.sync.bfly.b32"); n != 10 {
		t.Errorf("walk kernel has %d butterfly shuffles, want 10 (5 rounds on two halves)", n)
	}
	if n := strings.Count(walk, "ld.global.v2.u64"); n != 2 {
		t.Errorf("walk kernel has %d 16-byte loads, want 2", n)
	}
	if !strings.Contains(walk, "mul.hi.u64") {
		t.Error("walk kernel computes no mulhi address")
	}
}
