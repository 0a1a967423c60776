package memwalk

import (
	"encoding/binary"

	"github.com/truegpu/truegpu/internal/sha256tree"
)

// stateLeafBytes is the size of a walk-tree leaf: eight le64 states.
const stateLeafBytes = LeafLanes * 8

// blockHash returns SHA-256(0x00 ‖ be64(i) ‖ block), the table-tree leaf
// hash of block i (the first BlockBytes bytes of block).
func blockHash(i uint64, block []byte) [32]byte {
	return sha256tree.LeafHash(i, block[:BlockBytes])
}

// stateHash returns SHA-256(0x00 ‖ be64(n) ‖ le64 states), the walk-tree
// leaf hash of leaf n.
func stateHash(n uint64, states *[LeafLanes]uint64) [32]byte {
	var buf [stateLeafBytes]byte
	for k, x := range states {
		binary.LittleEndian.PutUint64(buf[8*k:], x)
	}
	return sha256tree.LeafHash(n, buf[:])
}
