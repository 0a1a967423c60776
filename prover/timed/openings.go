package timed

import (
	"encoding/binary"
	"fmt"
)

const (
	openingsMagic   = "TGTO"
	openingsVersion = 1
	headerSize      = len(openingsMagic) + 1 + 32 + 2
)

// Opening is one opened leaf: its index, its LeafCells bytes and the
// sibling hashes of its Merkle path, bottom-up.
type Opening struct {
	Leaf  uint64
	Bytes [LeafCells]byte
	Path  [][32]byte
}

// Openings is the node's answer to a sample seed.
type Openings struct {
	TreeRoot [32]byte
	Leaves   []Opening
}

// Encode returns the wire form: "TGTO", version 1, tree root, be16 count,
// then per opening be64 leaf index, LeafCells bytes, u8 depth and depth
// sibling hashes.
func (o *Openings) Encode() []byte {
	size := headerSize
	for i := range o.Leaves {
		size += 8 + LeafCells + 1 + 32*len(o.Leaves[i].Path)
	}
	out := make([]byte, 0, size)
	out = append(out, openingsMagic...)
	out = append(out, openingsVersion)
	out = append(out, o.TreeRoot[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(o.Leaves)))
	for i := range o.Leaves {
		op := &o.Leaves[i]
		out = binary.BigEndian.AppendUint64(out, op.Leaf)
		out = append(out, op.Bytes[:]...)
		out = append(out, byte(len(op.Path)))
		for _, h := range op.Path {
			out = append(out, h[:]...)
		}
	}
	return out
}

// DecodeOpenings parses untrusted openings. It accepts at most Samples
// openings with strictly ascending leaf indices and paths of at most
// MaxDepth hashes, and rejects trailing bytes; errors wrap ErrMalformed.
func DecodeOpenings(b []byte) (*Openings, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes is shorter than the %d-byte header", ErrMalformed, len(b), headerSize)
	}
	if string(b[:4]) != openingsMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != openingsVersion {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, b[4])
	}
	o := &Openings{}
	copy(o.TreeRoot[:], b[5:37])
	count := int(binary.BigEndian.Uint16(b[37:39]))
	if count > Samples {
		return nil, fmt.Errorf("%w: %d openings exceed the limit of %d", ErrMalformed, count, Samples)
	}
	b = b[headerSize:]
	o.Leaves = make([]Opening, count)
	for i := 0; i < count; i++ {
		if len(b) < 8+LeafCells+1 {
			return nil, fmt.Errorf("%w: opening %d is truncated", ErrMalformed, i)
		}
		op := &o.Leaves[i]
		op.Leaf = binary.BigEndian.Uint64(b[:8])
		if i > 0 && op.Leaf <= o.Leaves[i-1].Leaf {
			return nil, fmt.Errorf("%w: leaf indices are not strictly ascending at opening %d", ErrMalformed, i)
		}
		copy(op.Bytes[:], b[8:8+LeafCells])
		depth := int(b[8+LeafCells])
		if depth > MaxDepth {
			return nil, fmt.Errorf("%w: opening %d has path depth %d, limit %d", ErrMalformed, i, depth, MaxDepth)
		}
		b = b[8+LeafCells+1:]
		if len(b) < 32*depth {
			return nil, fmt.Errorf("%w: path of opening %d is truncated", ErrMalformed, i)
		}
		op.Path = make([][32]byte, depth)
		for d := range op.Path {
			copy(op.Path[d][:], b[32*d:])
		}
		b = b[32*depth:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return o, nil
}
