package timed

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// Version is the domain-separation prefix of every hash in this package.
const Version = "truegpu/timed/v1"

const (
	// LeafCells is the number of committed cells (low bytes) per leaf.
	LeafCells = 256
	// Samples is the number of distinct cells the oracle opens per challenge.
	Samples = 24
	// SeedSize is the size in bytes of the oracle's sample seed.
	SeedSize = 16
	// MaxDepth is the largest Merkle path length the decoder accepts.
	MaxDepth = 48

	maxM      = 1 << 24
	maxN      = 1 << 24
	maxK      = 65536
	maxLeaves = 1 << 40
)

var (
	// ErrBadSpec reports a Spec outside the valid range.
	ErrBadSpec = errors.New("timed: invalid spec")
	// ErrMalformed reports openings that cannot be decoded or do not answer
	// the sampled cells.
	ErrMalformed = errors.New("timed: malformed openings")
	// ErrRootMismatch reports a commitment that does not bind the opened
	// tree root to the spec and nonce.
	ErrRootMismatch = errors.New("timed: commitment does not match tree root, spec and nonce")
	// ErrPath reports a Merkle path that does not lead to the tree root.
	ErrPath = errors.New("timed: merkle path does not lead to the tree root")
	// ErrWrongCell reports an opened cell whose value differs from the
	// native recomputation.
	ErrWrongCell = errors.New("timed: wrong cell value")
)

// Nonce is a challenge nonce; it seeds the generator and is bound into the
// commitment root.
type Nonce = [32]byte

// Spec is the shape of a timed GEMM: C (M×N) = A (M×K) · B (K×N).
type Spec struct {
	M, N, K uint32
}

// IsZero reports whether s is the zero Spec.
func (s Spec) IsZero() bool { return s == Spec{} }

// Validate reports whether s is inside the valid range; the error wraps
// ErrBadSpec.
func (s Spec) Validate() error {
	switch {
	case s.M < 1:
		return fmt.Errorf("%w: M must be at least 1", ErrBadSpec)
	case s.M > maxM:
		return fmt.Errorf("%w: M %d exceeds %d", ErrBadSpec, s.M, maxM)
	case s.N < LeafCells || s.N%LeafCells != 0:
		return fmt.Errorf("%w: N %d must be a positive multiple of %d", ErrBadSpec, s.N, LeafCells)
	case s.N > maxN:
		return fmt.Errorf("%w: N %d exceeds %d", ErrBadSpec, s.N, maxN)
	case s.K < 8 || s.K%8 != 0:
		return fmt.Errorf("%w: K %d must be a positive multiple of 8", ErrBadSpec, s.K)
	case s.K > maxK:
		return fmt.Errorf("%w: K %d exceeds %d", ErrBadSpec, s.K, maxK)
	case s.Leaves() > maxLeaves:
		return fmt.Errorf("%w: %d leaves exceed %d", ErrBadSpec, s.Leaves(), uint64(maxLeaves))
	}
	return nil
}

// Cells returns M·N, the number of result cells.
func (s Spec) Cells() uint64 { return uint64(s.M) * uint64(s.N) }

// Leaves returns M·N/256, the number of Merkle leaves.
func (s Spec) Leaves() uint64 { return s.Cells() / LeafCells }

// Ops returns 2·M·N·K (one multiply and one add per term), saturating at
// the largest uint64.
func (s Spec) Ops() uint64 {
	hi, lo := bits.Mul64(s.Cells(), 2*uint64(s.K))
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}

// Depth returns the Merkle path length log2(P), where P is the leaf count
// rounded up to a power of two.
func (s Spec) Depth() int { return sha256tree.Depth(s.Leaves()) }

// Key derives the four generator keys from a challenge nonce:
// h = SHA-256("truegpu/timed/v1/key" ‖ nonce), k_t = LE64(h[8t:8t+8]).
func Key(nonce [32]byte) [4]uint64 {
	var buf [len(Version) + len("/key") + 32]byte
	n := copy(buf[:], Version+"/key")
	copy(buf[n:], nonce[:])
	h := sha256.Sum256(buf[:])
	return [4]uint64{
		binary.LittleEndian.Uint64(h[0:8]),
		binary.LittleEndian.Uint64(h[8:16]),
		binary.LittleEndian.Uint64(h[16:24]),
		binary.LittleEndian.Uint64(h[24:32]),
	}
}

func fmix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

func word(ctr, ka, kb uint64) uint64 { return fmix(fmix(ctr^ka) ^ kb) }

// Fmix is the SplitMix64 finalizer of the specification ("Generator" in
// the package comment), for packages whose specifications build on it
// (prover/memwalk).
func Fmix(z uint64) uint64 { return fmix(z) }

// Word is the generator word of the specification: Fmix(Fmix(ctr ^ ka) ^ kb).
func Word(ctr, ka, kb uint64) uint64 { return word(ctr, ka, kb) }

// RowA writes row i of A (K entries) into out[:K].
func RowA(s Spec, keys [4]uint64, i uint32, out []int8) {
	fill(out[:s.K], uint64(i)*uint64(s.K/8), keys[0], keys[1])
}

// ColB writes column j of B (K entries) into out[:K].
func ColB(s Spec, keys [4]uint64, j uint32, out []int8) {
	fill(out[:s.K], uint64(j)*uint64(s.K/8), keys[2], keys[3])
}

func fill(out []int8, base, ka, kb uint64) {
	for g := 0; g+8 <= len(out); g += 8 {
		w := word(base+uint64(g/8), ka, kb)
		o := out[g : g+8 : g+8]
		o[0] = int8(w)
		o[1] = int8(w >> 8)
		o[2] = int8(w >> 16)
		o[3] = int8(w >> 24)
		o[4] = int8(w >> 32)
		o[5] = int8(w >> 40)
		o[6] = int8(w >> 48)
		o[7] = int8(w >> 56)
	}
}

// Cell returns C[i][j], recomputed natively from the generator without
// materialising A or B and without allocating. It is what the oracle runs
// for every sampled cell.
func Cell(s Spec, keys [4]uint64, i, j uint32) int32 {
	groups := uint64(s.K / 8)
	ra := uint64(i) * groups
	cb := uint64(j) * groups
	k0, k1, k2, k3 := keys[0], keys[1], keys[2], keys[3]
	var acc, acc2 int64
	g := uint64(0)
	for ; g+2 <= groups; g += 2 {
		a := word(ra+g, k0, k1)
		b := word(cb+g, k2, k3)
		c := word(ra+g+1, k0, k1)
		d := word(cb+g+1, k2, k3)
		acc += dot8(a, b)
		acc2 += dot8(c, d)
	}
	if g < groups {
		acc += dot8(word(ra+g, k0, k1), word(cb+g, k2, k3))
	}
	acc += acc2
	return int32(acc)
}

// dot8 returns the dot product of the eight signed bytes of a and b.
func dot8(a, b uint64) int64 {
	return int64(int8(a))*int64(int8(b)) +
		int64(int8(a>>8))*int64(int8(b>>8)) +
		int64(int8(a>>16))*int64(int8(b>>16)) +
		int64(int8(a>>24))*int64(int8(b>>24)) +
		int64(int8(a>>32))*int64(int8(b>>32)) +
		int64(int8(a>>40))*int64(int8(b>>40)) +
		int64(int8(a>>48))*int64(int8(b>>48)) +
		int64(int8(a>>56))*int64(int8(b>>56))
}
