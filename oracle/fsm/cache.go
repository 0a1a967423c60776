package fsm

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/cockroachdb/pebble/v2"
)

// The apply cache holds what the commonest command, a challenge issue,
// would otherwise read from Pebble for every challenge: the device count of
// the node and whether the challenge id already exists. Point reads into a
// large memtable cost more than the rest of an issue together.
//
// Neither structure decides an outcome on its own, so replicas stay
// deterministic whatever the cache holds:
//   - device counts are an exact copy of the k/ keys, written through when
//     a command's writes are staged and rebuilt from Pebble on Open and
//     Restore;
//   - the id filter only answers "certainly absent" or "maybe present"; a
//     maybe is settled by reading Pebble.
//
// Both are touched only by Open, Apply and Restore, which Raft calls from a
// single goroutine, so they take no lock.
type applyCache struct {
	devices map[[20]byte]uint32
	ids     idFilter
}

// load rebuilds the cache from the committed state.
func (c *applyCache) load(db *pebble.DB) error {
	c.devices = map[[20]byte]uint32{}
	c.ids = idFilter{}
	err := each(db, &pebble.IterOptions{LowerBound: prefixDevCount, UpperBound: prefixEnd(prefixDevCount)}, func(k, v []byte) error {
		if len(k) != len(prefixDevCount)+20 {
			return fmt.Errorf("fsm: corrupt device-count key %x", k)
		}
		n, used := binary.Uvarint(v)
		if used <= 0 || n > 1<<31 {
			return fmt.Errorf("fsm: corrupt device count for %x", k[len(prefixDevCount):])
		}
		c.devices[[20]byte(k[len(prefixDevCount):])] = uint32(n)
		return nil
	})
	if err != nil {
		return err
	}
	return each(db, &pebble.IterOptions{LowerBound: prefixChallenge, UpperBound: prefixEnd(prefixChallenge)}, func(k, _ []byte) error {
		c.ids.add(k[len(prefixChallenge):])
		return nil
	})
}

// staged is called for every key a successful command writes to the
// batch (v nil for a delete).
func (c *applyCache) staged(k string, v []byte) {
	switch {
	case len(k) == len(prefixDevCount)+20 && k[:len(prefixDevCount)] == string(prefixDevCount):
		a := [20]byte([]byte(k[len(prefixDevCount):]))
		if v == nil {
			delete(c.devices, a)
			return
		}
		n, _ := binary.Uvarint(v)
		c.devices[a] = uint32(n)
	case v != nil && len(k) > len(prefixChallenge) && k[:len(prefixChallenge)] == string(prefixChallenge):
		c.ids.add([]byte(k[len(prefixChallenge):]))
	}
}

// idFilter is a scalable Bloom filter (a chain of Bloom filters, each twice
// the capacity of the one before) over challenge ids. Ids are Keccak-256
// outputs, uniform already, so their bytes serve as the hashes. It never
// reports a present id as absent; about one absent id in two thousand is
// reported as maybe present. Memory is about two bytes per id.
type idFilter struct {
	parts []bloomPart
}

type bloomPart struct {
	words []uint64
	mask  uint64 // bit count - 1 (a power of two)
	cap   int
	n     int
}

const (
	bloomFirstCap   = 1 << 14
	bloomBitsPerID  = 16
	bloomProbes     = 8
	bloomMinIDBytes = 16
)

func (f *idFilter) add(id []byte) {
	if len(id) < bloomMinIDBytes {
		return // not a challenge id; never looked up through the filter
	}
	if len(f.parts) == 0 || f.parts[len(f.parts)-1].n >= f.parts[len(f.parts)-1].cap {
		c := bloomFirstCap << len(f.parts)
		nbits := uint64(1) << bits.Len64(uint64(c*bloomBitsPerID-1))
		f.parts = append(f.parts, bloomPart{words: make([]uint64, nbits/64), mask: nbits - 1, cap: c})
	}
	p := &f.parts[len(f.parts)-1]
	h1, h2 := bloomHashes(id, len(f.parts)-1)
	for i := range uint64(bloomProbes) {
		b := (h1 + i*h2) & p.mask
		p.words[b>>6] |= 1 << (b & 63)
	}
	p.n++
}

// mayContain reports whether id may have been added.
func (f *idFilter) mayContain(id []byte) bool {
	if len(id) < bloomMinIDBytes {
		return true
	}
	for j := range f.parts {
		p := &f.parts[j]
		h1, h2 := bloomHashes(id, j)
		hit := true
		for i := range uint64(bloomProbes) {
			b := (h1 + i*h2) & p.mask
			if p.words[b>>6]&(1<<(b&63)) == 0 {
				hit = false
				break
			}
		}
		if hit {
			return true
		}
	}
	return false
}

// bloomHashes derives the double-hashing pair for part j from the id's
// first 16 bytes; parts use different rotations so their false positives
// are independent.
func bloomHashes(id []byte, j int) (uint64, uint64) {
	a := binary.LittleEndian.Uint64(id[0:8])
	b := binary.LittleEndian.Uint64(id[8:16])
	r := (j * 13) & 63
	return bits.RotateLeft64(a, r), bits.RotateLeft64(b, r) | 1
}
