package memwalk

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// Pinned values of the golden instance.
const (
	goldenTableTreeRootHex = "bdd5bc85f66de403c01e3ccbd11091a8c6a7bb445c61d5007a173b8147e70fe3"
	goldenWalkTreeRootHex  = "545b840228e1632b29b7af13941ef6a4b1e05ebe057f72662f52e6c0e74694e0"
	goldenOpeningsSHA256   = "9ecb65a581c1818c1418cba3c100f998a43fd1678853d0060ee296de0c10dbc9"
	goldenOpeningsLen      = 25861
	goldenX00              = 0x1d758821cda2a278 // x(0, 0)
	goldenX15x5            = 0xe41a646b0b533f5a // x(15, 5)
)

var goldenBlock0 = [8]byte{0x8d, 0x67, 0x8a, 0x6e, 0x87, 0xe6, 0x87, 0xe6} // block 0, bytes 0…7

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
