package memwalk

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Pinned values of the golden instance.
const (
	goldenTableTreeRootHex = "010c1366a2b28e079aa219658a45adf40942fe553b2ece93fb96bccf7f2dc472"
	goldenWalkTreeRootHex  = "e33a56927cb43809a3bea057f06bedc4d0611b76bae56deb39aeb722d6010e8c"
	goldenOpeningsSHA256   = "9ac80f683ce3d74a68017eb2b2b82768ee59b7d2c84a6e933ece9826c6a0a1dd"
	goldenOpeningsLen      = 25475
	goldenX00              = 0x816ca29cabe3ff1e // x(0, 0)
	goldenX15x5            = 0xc545440ea2d66798 // x(15, 5)
)

var goldenBlock0 = [8]byte{0x3e, 0xa1, 0xa7, 0x6f, 0x7f, 0xd8, 0x3b, 0x4c} // block 0, bytes 0…7

// TestGolden checks the golden instance with the naive reference and with
// the package's Fill, Walk and Open.
func TestGolden(t *testing.T) {
	s := GoldenSpec
	ref := refRun(s, GoldenNonce, GoldenWalkSeed, nil, nil)
	if [8]byte(ref.table[:8]) != goldenBlock0 {
		t.Fatalf("block 0 starts %x, want %x", ref.table[:8], goldenBlock0)
	}
	if ref.states[0][0] != goldenX00 || ref.states[5][15] != goldenX15x5 {
		t.Fatalf("x(0,0) = %#x, x(15,5) = %#x", ref.states[0][0], ref.states[5][15])
	}
	if got := hex.EncodeToString(ref.tableRoot[:]); got != GoldenTableRootHex {
		t.Fatalf("naive table root %s, want %s", got, GoldenTableRootHex)
	}
	if got := hex.EncodeToString(ref.walkRoot[:]); got != GoldenWalkRootHex {
		t.Fatalf("naive walk root %s, want %s", got, GoldenWalkRootHex)
	}
	refOp := refOpenings(s, ref, GoldenCheckSeed)
	if d := sha256.Sum256(refOp); len(refOp) != goldenOpeningsLen || hex.EncodeToString(d[:]) != goldenOpeningsSHA256 {
		t.Fatalf("naive openings: %d bytes, SHA-256 %x", len(refOp), d)
	}

	tab := mustFill(t, s, GoldenNonce, 2)
	if tr := tab.TreeRoot(); hex.EncodeToString(tr[:]) != goldenTableTreeRootHex {
		t.Fatalf("table tree root %x, want %s", tr, goldenTableTreeRootHex)
	}
	if root := tab.Root(); hex.EncodeToString(root[:]) != GoldenTableRootHex {
		t.Fatalf("table root %x, want %s", root, GoldenTableRootHex)
	}
	w := mustWalk(t, tab, GoldenWalkSeed, 2)
	if tr := w.TreeRoot(); hex.EncodeToString(tr[:]) != goldenWalkTreeRootHex {
		t.Fatalf("walk tree root %x, want %s", tr, goldenWalkTreeRootHex)
	}
	if root := w.Root(); hex.EncodeToString(root[:]) != GoldenWalkRootHex {
		t.Fatalf("walk root %x, want %s", root, GoldenWalkRootHex)
	}
	op := mustOpen(t, w, GoldenCheckSeed)
	if d := sha256.Sum256(op); hex.EncodeToString(d[:]) != goldenOpeningsSHA256 {
		t.Fatalf("openings SHA-256 %x, want %s", d, goldenOpeningsSHA256)
	}
	if err := Verify(s, GoldenNonce, tab.Root(), GoldenWalkSeed, w.Root(), GoldenCheckSeed, op); err != nil {
		t.Fatal(err)
	}
}
