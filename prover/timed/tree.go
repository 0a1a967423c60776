package timed

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// LeafHash returns SHA-256(0x00 ‖ be64(l) ‖ leaf) for leaf index l and its
// LeafCells bytes (a shorter leaf is zero-padded, a longer one cut).
func LeafHash(l uint64, leaf []byte) [32]byte {
	if len(leaf) < LeafCells {
		var b [LeafCells]byte
		copy(b[:], leaf)
		leaf = b[:]
	}
	return sha256tree.LeafHash(l, leaf[:LeafCells])
}

// Commit returns the commitment root
// SHA-256("truegpu/timed/v1/root" ‖ be32(M) ‖ be32(N) ‖ be32(K) ‖ nonce ‖ treeRoot).
func Commit(s Spec, nonce [32]byte, treeRoot [32]byte) [32]byte {
	var buf [len(Version) + len("/root") + 12 + 32 + 32]byte
	n := copy(buf[:], Version+"/root")
	binary.BigEndian.PutUint32(buf[n:], s.M)
	binary.BigEndian.PutUint32(buf[n+4:], s.N)
	binary.BigEndian.PutUint32(buf[n+8:], s.K)
	copy(buf[n+12:], nonce[:])
	copy(buf[n+44:], treeRoot[:])
	return sha256.Sum256(buf[:])
}

// SampleCells returns the cells the oracle opens for a commitment root and
// sample seed: for q = 0, 1, 2, …,
// cell = be64(SHA-256("truegpu/timed/v1/sample" ‖ root ‖ seed ‖ be32(q))[0:8]) mod M·N,
// duplicates skipped, until min(Samples, M·N) distinct cells are drawn;
// the result is sorted ascending. An invalid spec yields nil.
func SampleCells(s Spec, root [32]byte, seed [SeedSize]byte) []uint64 {
	if s.Validate() != nil {
		return nil
	}
	cells := s.Cells()
	want := uint64(Samples)
	if cells < want {
		want = cells
	}
	var buf [len(Version) + len("/sample") + 32 + SeedSize + 4]byte
	n := copy(buf[:], Version+"/sample")
	copy(buf[n:], root[:])
	copy(buf[n+32:], seed[:])
	out := make([]uint64, 0, want)
	for q := uint32(0); uint64(len(out)) < want; q++ {
		binary.BigEndian.PutUint32(buf[n+32+SeedSize:], q)
		h := sha256.Sum256(buf[:])
		c := binary.BigEndian.Uint64(h[0:8]) % cells
		dup := false
		for _, x := range out {
			if x == c {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a] < out[b] })
	return out
}

// sampledLeaves returns the distinct leaves holding the given sorted cells.
func sampledLeaves(cells []uint64) []uint64 {
	var out []uint64
	for _, c := range cells {
		l := c / LeafCells
		if len(out) == 0 || out[len(out)-1] != l {
			out = append(out, l)
		}
	}
	return out
}
