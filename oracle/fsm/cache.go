package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
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
// Both are changed only by Open, Apply and Restore, which Raft calls from a
// single goroutine, so that goroutine reads them without a lock. The device
// counts are also read by other goroutines (Registered, the leader's cheap
// admission check); they take mu for reading, and changes take it for
// writing.
type applyCache struct {
	mu      sync.RWMutex
	devices map[[20]byte]uint32
	ids     idFilter
	nonces  idFilter // over challenge nonces (uniform random bytes)
	// changes lists the nodes whose device count was written, in order,
	// for the leader's scheduler (DeviceChanges); changes[0] has sequence
	// number changeBase. Guarded by mu. Reloading the state starts a new
	// base, so a reader's older cursor asks it to rebuild.
	changes    []DeviceCount
	changeBase uint64
}

// maxDeviceChanges bounds the change log; a reader that falls further
// behind rebuilds from DeviceCounts.
const maxDeviceChanges = 1 << 18

// DeviceCount is a registered node's device count (0: no longer
// registered).
type DeviceCount struct {
	Address [20]byte
	Devices uint32
}

// note appends a device-count change; mu is held.
func (c *applyCache) note(a [20]byte, n uint32) {
	if len(c.changes) >= maxDeviceChanges {
		drop := len(c.changes) / 2
		c.changes = append(c.changes[:0], c.changes[drop:]...)
		c.changeBase += uint64(drop)
	}
	c.changes = append(c.changes, DeviceCount{a, n})
}

// load rebuilds the cache from the committed state.
func (c *applyCache) load(db *pebble.DB) error {
	devices := map[[20]byte]uint32{}
	c.ids = idFilter{}
	c.nonces = idFilter{}
	defer func() {
		c.mu.Lock()
		c.devices = devices
		c.changeBase += uint64(len(c.changes)) + 1
		c.changes = nil
		c.mu.Unlock()
	}()
	err := each(db, &pebble.IterOptions{LowerBound: prefixDevCount, UpperBound: prefixEnd(prefixDevCount)}, func(k, v []byte) error {
		if len(k) != len(prefixDevCount)+20 {
			return fmt.Errorf("fsm: corrupt device-count key %x", k)
		}
		n, used := binary.Uvarint(v)
		if used <= 0 || n > 1<<31 {
			return fmt.Errorf("fsm: corrupt device count for %x", k[len(prefixDevCount):])
		}
		devices[[20]byte(k[len(prefixDevCount):])] = uint32(n)
		return nil
	})
	if err != nil {
		return err
	}
	if err := each(db, &pebble.IterOptions{LowerBound: prefixNonce, UpperBound: prefixEnd(prefixNonce)}, func(k, _ []byte) error {
		c.nonces.add(k[len(prefixNonce):])
		return nil
	}); err != nil {
		return err
	}
	return each(db, &pebble.IterOptions{LowerBound: prefixChallenge, UpperBound: prefixEnd(prefixChallenge)}, func(k, _ []byte) error {
		c.ids.add(k[len(prefixChallenge):])
		return nil
	})
}

// registered reports whether a node is registered; safe from any goroutine.
func (c *applyCache) registered(addr [20]byte) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	_, ok := c.devices[addr]
	return ok
}

// deviceCounts copies every registered node's device count, with the
// cursor that DeviceChanges continues from.
func (c *applyCache) deviceCounts() ([]DeviceCount, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]DeviceCount, 0, len(c.devices))
	for a, n := range c.devices {
		out = append(out, DeviceCount{a, n})
	}
	return out, c.changeBase + uint64(len(c.changes))
}

// deviceChanges returns up to max changes from cursor on and the next
// cursor; ok is false when cursor is older than the log (or from before a
// reload).
func (c *applyCache) deviceChanges(cursor uint64, max int) ([]DeviceCount, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	end := c.changeBase + uint64(len(c.changes))
	if cursor < c.changeBase || cursor > end {
		return nil, end, false
	}
	from := int(cursor - c.changeBase)
	to := min(len(c.changes), from+max)
	return slices.Clone(c.changes[from:to]), c.changeBase + uint64(to), true
}

// staged is called for every key a successful command writes to the
// batch (v nil for a delete).
func (c *applyCache) staged(k string, v []byte) {
	switch {
	case len(k) == len(prefixDevCount)+20 && k[:len(prefixDevCount)] == string(prefixDevCount):
		a := [20]byte([]byte(k[len(prefixDevCount):]))
		c.mu.Lock()
		defer c.mu.Unlock()
		if v == nil {
			delete(c.devices, a)
			c.note(a, 0)
			return
		}
		n, _ := binary.Uvarint(v)
		c.devices[a] = uint32(n)
		c.note(a, uint32(n))
	case v != nil && len(k) > len(prefixChallenge) && k[:len(prefixChallenge)] == string(prefixChallenge):
		c.ids.add([]byte(k[len(prefixChallenge):]))
	case v != nil && len(k) > len(prefixNonce) && k[:len(prefixNonce)] == string(prefixNonce):
		c.nonces.add([]byte(k[len(prefixNonce):]))
	}
}

// idFilter is a scalable Bloom filter (a chain of Bloom filters, each twice
// the capacity of the one before) over challenge ids. An id ends in 24 bytes
// of Keccak-256 output, uniform already, so those bytes serve as the hashes
// (its first 8 bytes are the issue time, far from uniform). It never
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
// last 16 bytes; parts use different rotations so their false positives
// are independent.
func bloomHashes(id []byte, j int) (uint64, uint64) {
	id = id[len(id)-16:]
	a := binary.LittleEndian.Uint64(id[0:8])
	b := binary.LittleEndian.Uint64(id[8:16])
	r := (j * 13) & 63
	return bits.RotateLeft64(a, r), bits.RotateLeft64(b, r) | 1
}

// openIndex lists each node's open challenges (pending or committed, no
// verdict yet). It is derived state kept only in memory: the deadline index
// (d/) holds exactly the open challenges, so Open and Restore rebuild it
// from there. A persisted per-node index would cost a randomly placed key
// write at every issue and a delete at every verdict, the dearest writes of
// the commonest commands. Apply changes it after each batch is committed;
// readers take the lock.
type openIndex struct {
	mu     sync.RWMutex
	byNode map[[20]byte][][32]byte // unordered; a node has few open
}

type openOp struct {
	addr [20]byte
	id   [32]byte
	open bool
}

func (o *openIndex) load(f *FSM) error {
	byNode := map[[20]byte][][32]byte{}
	err := each(f.db, &pebble.IterOptions{LowerBound: prefixDeadline, UpperBound: prefixEnd(prefixDeadline)}, func(k, _ []byte) error {
		if len(k) != len(prefixDeadline)+8+32 {
			return fmt.Errorf("fsm: corrupt deadline key %x", k)
		}
		id := [32]byte(k[len(prefixDeadline)+8:])
		cs, err := f.Challenge(id[:])
		if err != nil {
			return fmt.Errorf("fsm: deadline row of challenge %s: %w", truegpuv1.FormatChallengeID(id[:]), err)
		}
		if len(cs.GetChallenge().GetAddress()) != 20 {
			return fmt.Errorf("fsm: corrupt challenge %s: no address", truegpuv1.FormatChallengeID(id[:]))
		}
		a := [20]byte(cs.Challenge.Address)
		byNode[a] = append(byNode[a], id)
		return nil
	})
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.byNode = byNode
	o.mu.Unlock()
	return nil
}

func (o *openIndex) apply(ops []openOp) {
	if len(ops) == 0 {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, op := range ops {
		ids := o.byNode[op.addr]
		if op.open { // apply refuses to issue an id twice
			o.byNode[op.addr] = append(ids, op.id)
			continue
		}
		if i := slices.Index(ids, op.id); i >= 0 {
			ids[i] = ids[len(ids)-1]
			if ids = ids[:len(ids)-1]; len(ids) == 0 {
				delete(o.byNode, op.addr)
			} else {
				o.byNode[op.addr] = ids
			}
		}
	}
}

// ids returns the node's open challenge ids, in id order.
func (o *openIndex) ids(addr [20]byte) [][32]byte {
	o.mu.RLock()
	out := slices.Clone(o.byNode[addr])
	o.mu.RUnlock()
	slices.SortFunc(out, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
	return out
}

func (o *openIndex) count(addr [20]byte) int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.byNode[addr])
}
