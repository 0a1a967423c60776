package memwalk

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/truegpu/truegpu/internal/sha256tree"
	"github.com/truegpu/truegpu/prover/timed"
)

// Version is the domain-separation prefix of every hash in this package.
const Version = "truegpu/memwalk/v1"

const (
	// BlockBytes is the size of one table block.
	BlockBytes = 1024
	// FillK is the inner dimension of the GEMM that generates the table.
	FillK = 2048
	// Checks is the number of (lane, step) transitions the oracle opens.
	Checks = 16
	// FillChecks is the number of table bytes the oracle regenerates per
	// check.
	FillChecks = 4
	// SeedSize is the size in bytes of the oracle's walk and check seeds.
	SeedSize = 16
	// MaxDepth is the largest Merkle path length the decoder accepts.
	MaxDepth = 48

	// LeafLanes is the number of lane states in one walk-tree leaf.
	LeafLanes = 8

	minBlocks = 16
	maxBlocks = 1 << 32
	minLanes  = LeafLanes
	maxLanes  = 1 << 24
	maxSteps  = 1 << 24
	maxLeaves = 1 << 40

	blockWords = BlockBytes / 8
	foldChunks = blockWords / 4
	foldGamma  = 0x9E3779B97F4A7C15
	foldMul    = 0xD6E8FEB86659FD93
	foldRot    = 23
)

var (
	// ErrBadSpec reports a Spec outside the valid range.
	ErrBadSpec = errors.New("memwalk: invalid spec")
	// ErrMalformed reports openings that cannot be decoded or do not answer
	// the drawn checks.
	ErrMalformed = errors.New("memwalk: malformed openings")
	// ErrRootMismatch reports a table or walk commitment that does not bind
	// the opened tree root to the spec, nonce and seeds.
	ErrRootMismatch = errors.New("memwalk: commitment does not match tree root, spec, nonce and seeds")
	// ErrPath reports a Merkle path that does not lead to its tree root.
	ErrPath = errors.New("memwalk: merkle path does not lead to the tree root")
	// ErrWrongBlock reports an opened table byte that differs from its
	// native regeneration.
	ErrWrongBlock = errors.New("memwalk: table block differs from its regeneration")
	// ErrWrongState reports a fold of an opened block that does not give the
	// committed state after the step.
	ErrWrongState = errors.New("memwalk: fold does not give the committed state")
)

// fillSpec is the timed GEMM shape the table generator uses; timed.Cell,
// timed.RowA and timed.ColB read only K.
var fillSpec = timed.Spec{K: FillK}

// Spec is the shape of a memory phase: a table of Blocks blocks of
// BlockBytes and a walk of Lanes lanes of Steps steps each.
type Spec struct {
	Blocks uint64
	Lanes  uint32
	Steps  uint32
}

// IsZero reports whether s is the zero Spec.
func (s Spec) IsZero() bool { return s == Spec{} }

// Validate reports whether s is inside the valid range; the error wraps
// ErrBadSpec.
func (s Spec) Validate() error {
	switch {
	case s.Blocks < minBlocks:
		return fmt.Errorf("%w: %d blocks, at least %d required", ErrBadSpec, s.Blocks, minBlocks)
	case s.Blocks > maxBlocks:
		return fmt.Errorf("%w: %d blocks exceed %d", ErrBadSpec, s.Blocks, uint64(maxBlocks))
	case s.Lanes < minLanes || s.Lanes&(s.Lanes-1) != 0:
		return fmt.Errorf("%w: lanes %d must be a power of two of at least %d", ErrBadSpec, s.Lanes, minLanes)
	case s.Lanes > maxLanes:
		return fmt.Errorf("%w: lanes %d exceed %d", ErrBadSpec, s.Lanes, maxLanes)
	case s.Steps < 1:
		return fmt.Errorf("%w: steps must be at least 1", ErrBadSpec)
	case s.Steps > maxSteps:
		return fmt.Errorf("%w: steps %d exceed %d", ErrBadSpec, s.Steps, maxSteps)
	case s.walkLeaves() > maxLeaves:
		return fmt.Errorf("%w: %d walk leaves exceed %d", ErrBadSpec, s.walkLeaves(), uint64(maxLeaves))
	}
	return nil
}

// Reads returns Lanes·Steps, the number of block reads (and transitions)
// of the walk.
func (s Spec) Reads() uint64 { return uint64(s.Lanes) * uint64(s.Steps) }

// TableBytes returns Blocks·BlockBytes, the size of the table.
func (s Spec) TableBytes() uint64 { return s.Blocks * BlockBytes }

// groups returns Lanes/8, the number of walk-tree leaves per step.
func (s Spec) groups() uint64 { return uint64(s.Lanes) / LeafLanes }

// walkLeaves returns Steps·Lanes/8, the number of walk-tree leaves.
func (s Spec) walkLeaves() uint64 { return uint64(s.Steps) * s.groups() }

// tableDepth returns log2(P), the table tree's path length.
func (s Spec) tableDepth() int { return sha256tree.Depth(s.Blocks) }

// walkDepth returns log2(P'), the walk tree's path length.
func (s Spec) walkDepth() int { return sha256tree.Depth(s.walkLeaves()) }

// TableNonce returns SHA-256("truegpu/memwalk/v1/table" ‖ nonce), the nonce
// that keys the table generator: keys = timed.Key(TableNonce(nonce)).
func TableNonce(nonce [32]byte) [32]byte {
	var buf [len(Version) + len("/table") + 32]byte
	n := copy(buf[:], Version+"/table")
	copy(buf[n:], nonce[:])
	return sha256.Sum256(buf[:])
}

// tableKeys returns the generator keys of a challenge nonce.
func tableKeys(nonce [32]byte) [4]uint64 { return timed.Key(TableNonce(nonce)) }

// FillByte returns byte j (j < BlockBytes) of block i, regenerated
// natively: the low byte of timed.Cell(K = FillK) at row i, column j. It is
// what the oracle runs for every regenerated byte.
func FillByte(keys [4]uint64, i uint64, j uint32) byte {
	return uint8(timed.Cell(fillSpec, keys, uint32(i), j))
}

// Block writes block i (i < s.Blocks) into out[:BlockBytes]. keys is
// timed.Key(TableNonce(nonce)). A block's bytes do not depend on the other
// fields of s.
func Block(s Spec, keys [4]uint64, i uint64, out []byte) {
	_ = s
	out = out[:BlockBytes]
	a := make([]int8, FillK)
	b := make([]int8, FillK)
	timed.RowA(fillSpec, keys, uint32(i), a)
	for j := range out {
		timed.ColB(fillSpec, keys, uint32(j), b)
		var acc int32
		for k := range a {
			acc += int32(a[k]) * int32(b[k])
		}
		out[j] = uint8(acc)
	}
}

// Fold returns the state after folding block (BlockBytes bytes) into
// state x: x' = timed.Fmix(acc ^ x), acc the sum over the 32 chunks of four
// words described in the package documentation.
func Fold(x uint64, block []byte) uint64 {
	block = block[:BlockBytes]
	var acc uint64
	for c := 0; c < foldChunks; c++ {
		w := block[32*c : 32*c+32 : 32*c+32]
		h := x ^ (uint64(c) * foldGamma)
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(w[0:8]), foldRot) * foldMul
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(w[8:16]), foldRot) * foldMul
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(w[16:24]), foldRot) * foldMul
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(w[24:32]), foldRot) * foldMul
		acc += h
	}
	return timed.Fmix(acc ^ x)
}

// Address returns mulhi(x, blocks), the index of the block a lane in
// state x reads.
func Address(x uint64, blocks uint64) uint64 {
	hi, _ := bits.Mul64(x, blocks)
	return hi
}

// WalkKeys returns the walk keys w0, w1: the le64 halves of the first 16
// bytes of SHA-256("truegpu/memwalk/v1/walk" ‖ tableRoot ‖ walkSeed).
// x(lane, 0) = timed.Word(lane, w0, w1) (LaneStart).
func WalkKeys(tableRoot [32]byte, walkSeed [SeedSize]byte) (w0, w1 uint64) {
	var buf [len(Version) + len("/walk") + 32 + SeedSize]byte
	n := copy(buf[:], Version+"/walk")
	copy(buf[n:], tableRoot[:])
	copy(buf[n+32:], walkSeed[:])
	h := sha256.Sum256(buf[:])
	return binary.LittleEndian.Uint64(h[0:8]), binary.LittleEndian.Uint64(h[8:16])
}

// LaneStart returns x(lane, 0), the state of a lane before its first step.
func LaneStart(tableRoot [32]byte, walkSeed [SeedSize]byte, lane uint32) uint64 {
	w0, w1 := WalkKeys(tableRoot, walkSeed)
	return timed.Word(uint64(lane), w0, w1)
}

// TableCommit returns the table commitment
// SHA-256("truegpu/memwalk/v1/table-root" ‖ be64(Blocks) ‖ nonce ‖ tableTreeRoot).
func TableCommit(s Spec, nonce [32]byte, tableTreeRoot [32]byte) [32]byte {
	var buf [len(Version) + len("/table-root") + 8 + 32 + 32]byte
	n := copy(buf[:], Version+"/table-root")
	binary.BigEndian.PutUint64(buf[n:], s.Blocks)
	copy(buf[n+8:], nonce[:])
	copy(buf[n+40:], tableTreeRoot[:])
	return sha256.Sum256(buf[:])
}

// WalkCommit returns the walk commitment
// SHA-256("truegpu/memwalk/v1/walk-root" ‖ be64(Blocks) ‖ be32(Lanes) ‖
// be32(Steps) ‖ nonce ‖ tableRoot ‖ walkSeed ‖ walkTreeRoot).
func WalkCommit(s Spec, nonce [32]byte, tableRoot [32]byte, walkSeed [SeedSize]byte, walkTreeRoot [32]byte) [32]byte {
	var buf [len(Version) + len("/walk-root") + 16 + 32 + 32 + SeedSize + 32]byte
	n := copy(buf[:], Version+"/walk-root")
	binary.BigEndian.PutUint64(buf[n:], s.Blocks)
	binary.BigEndian.PutUint32(buf[n+8:], s.Lanes)
	binary.BigEndian.PutUint32(buf[n+12:], s.Steps)
	n += 16
	n += copy(buf[n:], nonce[:])
	n += copy(buf[n:], tableRoot[:])
	n += copy(buf[n:], walkSeed[:])
	copy(buf[n:], walkTreeRoot[:])
	return sha256.Sum256(buf[:])
}

// Check is one transition the oracle opens: lane Lane's step Step (from
// x(Lane, Step) to x(Lane, Step+1)), and the positions within the block
// read of the FillChecks bytes it regenerates.
type Check struct {
	Lane, Step uint32
	FillBytes  [FillChecks]uint16
}

// DrawChecks returns the checks for a walk commitment and check seed, in
// the order drawn: for q = 0, 1, 2, …,
// h = SHA-256("truegpu/memwalk/v1/check" ‖ walkRoot ‖ checkSeed ‖ be32(q)),
// lane = be64(h[0:8]) mod Lanes, step = be64(h[8:16]) mod Steps, byte
// positions be16(h[16+2r:18+2r]) mod 1024; duplicate (lane, step) pairs
// are skipped until min(Checks, Lanes·Steps) are drawn. An invalid spec
// yields nil.
func DrawChecks(s Spec, walkRoot [32]byte, checkSeed [SeedSize]byte) []Check {
	if s.Validate() != nil {
		return nil
	}
	want := min(uint64(Checks), s.Reads())
	var buf [len(Version) + len("/check") + 32 + SeedSize + 4]byte
	n := copy(buf[:], Version+"/check")
	copy(buf[n:], walkRoot[:])
	copy(buf[n+32:], checkSeed[:])
	out := make([]Check, 0, want)
	for q := uint32(0); uint64(len(out)) < want; q++ {
		binary.BigEndian.PutUint32(buf[n+32+SeedSize:], q)
		h := sha256.Sum256(buf[:])
		c := Check{
			Lane: uint32(binary.BigEndian.Uint64(h[0:8]) % uint64(s.Lanes)),
			Step: uint32(binary.BigEndian.Uint64(h[8:16]) % uint64(s.Steps)),
		}
		dup := false
		for _, o := range out {
			if o.Lane == c.Lane && o.Step == c.Step {
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		for r := range c.FillBytes {
			c.FillBytes[r] = binary.BigEndian.Uint16(h[16+2*r:]) % BlockBytes
		}
		out = append(out, c)
	}
	return out
}
