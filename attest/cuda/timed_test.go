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
	"github.com/truegpu/truegpu/prover/timed"
)

// Small specs covering one and several leaves per row, K not a multiple of
// the GEMM's k-step (32), partial row blocks and several row tiles.
var timedSpecs = []struct {
	s    timed.Spec
	tile uint32 // rows per tile in the host harness
}{
	{timed.Spec{M: 1, N: 256, K: 8}, 1},
	{timed.Spec{M: 3, N: 512, K: 24}, 2},
	{timed.Spec{M: 70, N: 256, K: 40}, 64},
	{timed.Spec{M: 5, N: 768, K: 96}, 5},
	{timed.Spec{M: 17, N: 256, K: 264}, 16},
}

// reference returns the CPU reference's leaf hashes and result.
func timedReference(t *testing.T, s timed.Spec, nonce [32]byte) ([][32]byte, *timed.Result) {
	t.Helper()
	ref, err := timed.Compute(context.Background(), s, nonce, 0)
	if err != nil {
		t.Fatal(err)
	}
	hashes := make([][32]byte, s.Leaves())
	for l := range hashes {
		b, err := ref.LeafBytes(uint64(l))
		if err != nil {
			t.Fatal(err)
		}
		hashes[l] = timed.LeafHash(uint64(l), b)
	}
	return hashes, ref
}

// The timed kernels' bodies (timed.h: key derivation from the nonce in the
// harness, PRG fill, GEMM block tiles, SHA-256 leaf hashing), run as host C
// tile by tile as the device runs them, reproduce the leaf hashes and the
// commitment of package timed's reference.
func TestKernelTimedMatchesReference(t *testing.T) {
	bin := buildHarness(t)
	for si, tc := range timedSpecs {
		s := tc.s
		t.Run(fmt.Sprintf("%dx%dx%d", s.M, s.N, s.K), func(t *testing.T) {
			nonce := [32]byte(devicetest.Nonce(si))
			in := harnessInput(fmt.Sprintf("timed %d %d %d %d %s", s.M, s.N, s.K, tc.tile, hex.EncodeToString(nonce[:])))
			lines := runHarness(t, bin, in)
			want, ref := timedReference(t, s, nonce)
			if uint64(len(lines)) != s.Leaves() {
				t.Fatalf("harness printed %d leaf hashes, want %d", len(lines), s.Leaves())
			}
			got := make([][32]byte, len(lines))
			for l, line := range lines {
				b, err := hex.DecodeString(line)
				if err != nil || len(b) != 32 {
					t.Fatalf("leaf %d: bad line %q", l, line)
				}
				got[l] = [32]byte(b)
				if got[l] != want[l] {
					t.Fatalf("leaf %d: kernel hash %x, reference %x", l, got[l], want[l])
				}
			}
			res, err := timed.NewResultFromLeaves(s, nonce, got, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Root() != ref.Root() {
				t.Fatalf("root %x, reference %x", res.Root(), ref.Root())
			}
		})
	}
}

func TestTimedTileRows(t *testing.T) {
	tests := []struct {
		s    timed.Spec
		want uint32
	}{
		{timed.Spec{M: 380000, N: 380000, K: 16384}, 4096},
		{timed.Spec{M: 100, N: 256, K: 8}, 100},
		{timed.Spec{M: 10000, N: 4096 * 1024, K: 65536}, 448},
	}
	for _, tc := range tests {
		if got := timedTileRows(tc.s); got != tc.want {
			t.Errorf("timedTileRows(%+v) = %d, want %d", tc.s, got, tc.want)
		}
		if got := timedTileRows(tc.s); uint64(got)*(uint64(tc.s.K)+uint64(tc.s.N)*9/8) > timedTileBudget {
			t.Errorf("tile of %d rows for %+v exceeds the budget", got, tc.s)
		}
	}
}

// The host side of the timed phase - kernel arguments, grids, tiles,
// buffers and the copy of the leaf hashes - run through the fake driver
// (same kernel bodies on the CPU) commits to the reference root, answers
// openings that verify, and frees its allocations.
func TestFakeDriverTimed(t *testing.T) {
	lib := fakeDriver(t)
	live := fakeCounter(t, lib, "fakecuda_live_allocations")
	d, err := Open(Options{LibraryPath: lib})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	run := func(ctx context.Context, s timed.Spec, nonce prover.Nonce) (attest.Commitment, error) {
		return d.Run(ctx, attest.Workload{Profile: p, Nonce: nonce, Timed: s, TimedModel: s})
	}
	for _, tile := range []uint64{4096, 64} {
		timedMaxTileRows = tile
		for si, tc := range timedSpecs {
			s := tc.s
			nonce := devicetest.Nonce(100 + si)
			_, ref := timedReference(t, s, nonce)
			c, err := run(context.Background(), s, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if c.TimedRoot != ref.Root() {
				t.Fatalf("tile %d, %+v: timed root %x, reference %x", tile, s, c.TimedRoot, ref.Root())
			}
			seed := [16]byte{byte(si), 7}
			got, err := d.OpenTimed(nonce, seed)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Open(seed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%+v: openings differ from the reference's", s)
			}
			if err := timed.Verify(s, nonce, c.TimedRoot, seed, got); err != nil {
				t.Fatalf("%+v: openings do not verify: %v", s, err)
			}
		}
	}
	timedMaxTileRows = 4096
	if n := live(); n != 0 {
		t.Errorf("%d device allocations leaked", n)
	}
	// Only the last runs are held.
	if _, err := d.OpenTimed(devicetest.Nonce(100), [16]byte{}); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("OpenTimed of an evicted run: %v, want ErrNoResults", err)
	}
	if _, err := d.OpenTimed(devicetest.Nonce(999), [16]byte{}); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("OpenTimed of a nonce never run: %v, want ErrNoResults", err)
	}
	if _, err := run(context.Background(), timed.Spec{M: 1, N: 100, K: 8}, devicetest.Nonce(1)); !errors.Is(err, attest.ErrBadWorkload) {
		t.Errorf("invalid spec: %v, want ErrBadWorkload", err)
	}
	// A run without a timed phase holds none.
	c, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: devicetest.Nonce(2)})
	if err != nil {
		t.Fatal(err)
	}
	if c.TimedRoot != ([32]byte{}) {
		t.Errorf("timed root %x for a workload without a timed phase", c.TimedRoot)
	}
	if _, err := d.OpenTimed(devicetest.Nonce(2), [16]byte{}); !errors.Is(err, attest.ErrNoResults) {
		t.Errorf("OpenTimed of a run without a timed phase: %v, want ErrNoResults", err)
	}
	d.Close()
	if _, err := d.OpenTimed(devicetest.Nonce(104), [16]byte{}); !errors.Is(err, attest.ErrClosed) {
		t.Errorf("OpenTimed after Close: %v, want ErrClosed", err)
	}
}

// The embedded PTX has the timed kernels and the GEMM issues int8
// tensor-core MMAs.
func TestEmbeddedTimedPTX(t *testing.T) {
	for _, name := range []string{kernelTimedFill, kernelTimedGEMM, kernelTimedLeaves} {
		if !strings.Contains(ptx, ".entry "+name+"(") {
			t.Errorf("embedded PTX has no entry %s", name)
		}
	}
	_, gemm, _ := strings.Cut(ptx, ".entry "+kernelTimedGEMM+"(")
	if n := strings.Count(gemm, "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32"); n != timedBlockCols/8 {
		t.Errorf("timed GEMM issues %d m16n8k32 s8 MMAs per k-step, want %d", n, timedBlockCols/8)
	}
}

// The host-C kernel bodies and the fake-driver run both reproduce the
// pinned golden commitment of package timed.
func TestTimedGolden(t *testing.T) {
	s, nonce := timed.GoldenSpec, timed.GoldenNonce
	bin := buildHarness(t)
	lines := runHarness(t, bin, harnessInput(fmt.Sprintf("timed %d %d %d %d %s", s.M, s.N, s.K, s.M, hex.EncodeToString(nonce[:]))))
	hashes := make([][32]byte, len(lines))
	for l, line := range lines {
		b, err := hex.DecodeString(line)
		if err != nil || len(b) != 32 {
			t.Fatalf("leaf %d: bad line %q", l, line)
		}
		hashes[l] = [32]byte(b)
	}
	res, err := timed.NewResultFromLeaves(s, nonce, hashes, nil)
	if err != nil {
		t.Fatal(err)
	}
	if root := res.Root(); hex.EncodeToString(root[:]) != timed.GoldenRootHex {
		t.Fatalf("host kernels: root %x, golden %s", root, timed.GoldenRootHex)
	}

	d, err := Open(Options{LibraryPath: fakeDriver(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Run(context.Background(), attest.Workload{Profile: p, Nonce: nonce, Timed: s, TimedModel: s})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(c.TimedRoot[:]) != timed.GoldenRootHex {
		t.Fatalf("fake driver: timed root %x, golden %s", c.TimedRoot, timed.GoldenRootHex)
	}
}
