package memwalk

import (
	"encoding/binary"
	"fmt"
)

const (
	openingsMagic   = "TGMW"
	openingsVersion = 1
	headerSize      = len(openingsMagic) + 1 + 32 + 32 + 2
)

// StateLeaf is an opened walk-tree leaf: the states of eight consecutive
// lanes after one step and the sibling hashes of its path, bottom-up.
type StateLeaf struct {
	States [LeafLanes]uint64
	Path   [][32]byte
}

// CheckOpening answers one check: the BlockBytes bytes of the block read
// and its table path, and the walk leaves holding the lane's state before
// the step (nil when the step is 0) and after it.
type CheckOpening struct {
	Block     []byte
	BlockPath [][32]byte
	Before    *StateLeaf
	After     *StateLeaf
}

// Openings is the node's answer to a check seed: the two tree roots and
// one CheckOpening per drawn check, in the order drawn.
type Openings struct {
	TableTreeRoot, WalkTreeRoot [32]byte
	Checks                      []CheckOpening
}

// Encode returns the wire form: "TGMW", version 1, table tree root, walk
// tree root, be16 count, then per check the block bytes, u8 depth and
// depth sibling hashes, a u8 presence flag (0 or 1) followed when 1 by the
// before-leaf, and the after-leaf; a leaf is eight le64 states, u8 depth
// and depth sibling hashes. A nil After is written as an all-zero leaf
// with an empty path. Encode writes the fields as they are; a malformed
// value gives a malformed encoding.
func (o *Openings) Encode() []byte {
	size := headerSize
	for i := range o.Checks {
		c := &o.Checks[i]
		size += len(c.Block) + 1 + 32*len(c.BlockPath) + 1 + leafSize(c.Before) + leafSize(c.After)
	}
	out := make([]byte, 0, size)
	out = append(out, openingsMagic...)
	out = append(out, openingsVersion)
	out = append(out, o.TableTreeRoot[:]...)
	out = append(out, o.WalkTreeRoot[:]...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(o.Checks)))
	for i := range o.Checks {
		c := &o.Checks[i]
		out = append(out, c.Block...)
		out = appendPath(out, c.BlockPath)
		if c.Before == nil {
			out = append(out, 0)
		} else {
			out = append(out, 1)
			out = appendLeaf(out, c.Before)
		}
		after := c.After
		if after == nil {
			after = &StateLeaf{}
		}
		out = appendLeaf(out, after)
	}
	return out
}

func leafSize(l *StateLeaf) int {
	if l == nil {
		return stateLeafBytes + 1
	}
	return stateLeafBytes + 1 + 32*len(l.Path)
}

func appendPath(out []byte, path [][32]byte) []byte {
	out = append(out, byte(len(path)))
	for _, h := range path {
		out = append(out, h[:]...)
	}
	return out
}

func appendLeaf(out []byte, l *StateLeaf) []byte {
	for _, x := range l.States {
		out = binary.LittleEndian.AppendUint64(out, x)
	}
	return appendPath(out, l.Path)
}

// DecodeOpenings parses untrusted openings. It accepts at most Checks
// checks, presence flags of 0 or 1 and paths of at most MaxDepth hashes,
// and rejects trailing bytes; it allocates nothing from a count before
// checking that the remaining bytes can hold it. Errors wrap ErrMalformed.
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
	copy(o.TableTreeRoot[:], b[5:37])
	copy(o.WalkTreeRoot[:], b[37:69])
	count := int(binary.BigEndian.Uint16(b[69:71]))
	if count > Checks {
		return nil, fmt.Errorf("%w: %d checks exceed the limit of %d", ErrMalformed, count, Checks)
	}
	d := decoder{b: b[headerSize:]}
	// Every check takes at least a block, two depths, a flag and a leaf.
	if len(d.b) < count*(BlockBytes+3+stateLeafBytes) {
		return nil, fmt.Errorf("%w: %d bytes cannot hold %d checks", ErrMalformed, len(d.b), count)
	}
	o.Checks = make([]CheckOpening, count)
	for i := range o.Checks {
		c := &o.Checks[i]
		block, ok := d.take(BlockBytes)
		if !ok {
			return nil, fmt.Errorf("%w: block of check %d is truncated", ErrMalformed, i)
		}
		c.Block = append([]byte(nil), block...)
		var err error
		if c.BlockPath, err = d.path(); err != nil {
			return nil, fmt.Errorf("%w: block path of check %d: %s", ErrMalformed, i, err)
		}
		flag, ok := d.take(1)
		if !ok {
			return nil, fmt.Errorf("%w: check %d is truncated", ErrMalformed, i)
		}
		switch flag[0] {
		case 0:
		case 1:
			if c.Before, err = d.leaf(); err != nil {
				return nil, fmt.Errorf("%w: before-leaf of check %d: %s", ErrMalformed, i, err)
			}
		default:
			return nil, fmt.Errorf("%w: check %d has before-leaf flag %d", ErrMalformed, i, flag[0])
		}
		if c.After, err = d.leaf(); err != nil {
			return nil, fmt.Errorf("%w: after-leaf of check %d: %s", ErrMalformed, i, err)
		}
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.b))
	}
	return o, nil
}

type decoder struct{ b []byte }

type decodeError string

func (e decodeError) Error() string { return string(e) }

func (d *decoder) take(n int) ([]byte, bool) {
	if len(d.b) < n {
		return nil, false
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v, true
}

func (d *decoder) path() ([][32]byte, error) {
	dep, ok := d.take(1)
	if !ok {
		return nil, decodeError("depth is truncated")
	}
	depth := int(dep[0])
	if depth > MaxDepth {
		return nil, decodeError(fmt.Sprintf("depth %d exceeds %d", depth, MaxDepth))
	}
	raw, ok := d.take(32 * depth)
	if !ok {
		return nil, decodeError("path is truncated")
	}
	p := make([][32]byte, depth)
	for k := range p {
		copy(p[k][:], raw[32*k:])
	}
	return p, nil
}

func (d *decoder) leaf() (*StateLeaf, error) {
	raw, ok := d.take(stateLeafBytes)
	if !ok {
		return nil, decodeError("states are truncated")
	}
	l := &StateLeaf{}
	for k := range l.States {
		l.States[k] = binary.LittleEndian.Uint64(raw[8*k:])
	}
	var err error
	if l.Path, err = d.path(); err != nil {
		return nil, err
	}
	return l, nil
}
