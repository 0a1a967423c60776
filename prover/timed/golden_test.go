package timed

import (
	"context"
	"encoding/hex"
	"testing"
)

// Pinned values of GoldenSpec under GoldenNonce.
const (
	goldenTreeRootHex = "db1bb1835928b73cba62331df61534f182520c2cf499579c179a9aa93655ae8c"
	goldenC00         = -28537
	goldenC1x255      = 19650
)

var (
	goldenA0 = [8]int8{20, -105, 98, 18, -41, 120, 83, -88} // A[0][0..7]
	goldenB0 = [8]int8{46, 68, -8, 18, -71, -56, 102, -8}   // B[0..7][0]
)

func TestGolden(t *testing.T) {
	s, keys := GoldenSpec, Key(GoldenNonce)
	a := make([]int8, s.K)
	RowA(s, keys, 0, a)
	if [8]int8(a[:8]) != goldenA0 {
		t.Fatalf("A[0][0..7] = %v, want %v", a[:8], goldenA0)
	}
	b := make([]int8, s.K)
	ColB(s, keys, 0, b)
	if [8]int8(b[:8]) != goldenB0 {
		t.Fatalf("B[0..7][0] = %v, want %v", b[:8], goldenB0)
	}
	if c := Cell(s, keys, 0, 0); c != goldenC00 {
		t.Fatalf("C[0][0] = %d, want %d", c, goldenC00)
	}
	if c := Cell(s, keys, 1, 255); c != goldenC1x255 {
		t.Fatalf("C[1][255] = %d, want %d", c, goldenC1x255)
	}
	res, err := Compute(context.Background(), s, GoldenNonce, 1)
	if err != nil {
		t.Fatal(err)
	}
	if tr := res.TreeRoot(); hex.EncodeToString(tr[:]) != goldenTreeRootHex {
		t.Fatalf("tree root %x, want %s", tr, goldenTreeRootHex)
	}
	if root := res.Root(); hex.EncodeToString(root[:]) != GoldenRootHex {
		t.Fatalf("root %x, want %s", root, GoldenRootHex)
	}
}
