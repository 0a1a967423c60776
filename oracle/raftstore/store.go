package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Errors returned by the store. Compare with errors.Is.
var (
	// ErrKeyNotFound is returned by Get and GetUint64 (with value 0) for a
	// key that was never set. Its text is exactly "not found", without the
	// package prefix, because hashicorp/raft v1.8.0 recognises a missing
	// CurrentTerm, LastVoteTerm or LastVoteCand by comparing err.Error()
	// with "not found" (api.go HasExistingState and NewRaft, raft.go
	// requestVote); raft-boltdb's error has the same text.
	ErrKeyNotFound = errors.New("not found")

	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("raftstore: store is closed")

	// ErrCorrupt is returned when bytes on disk do not decode: an entry in
	// an unknown format, truncated, with trailing bytes, stored under the
	// wrong index, or a uint64 value that is not 8 bytes. The store cannot
	// repair it; restore the member from a snapshot or a healthy peer.
	ErrCorrupt = errors.New("raftstore: corrupt data")

	// ErrEntryTooLarge is returned by StoreLog and StoreLogs when an entry's
	// encoding exceeds Options.MaxEntrySize. Nothing of the batch is written.
	ErrEntryTooLarge = errors.New("raftstore: log entry too large")

	// ErrInvalidOptions is wrapped by every problem Options.Validate reports.
	ErrInvalidOptions = errors.New("raftstore: invalid options")

	// ErrIncompatible is returned by Open when the directory holds a Pebble
	// database that is not a raftstore, or one with a newer key layout.
	ErrIncompatible = errors.New("raftstore: incompatible database")
)

// Key layout. Every key starts with a one-byte namespace:
//
//	0x00 "layout"            -> uint64 key-layout version (1)
//	0x01 <index, 8 bytes BE> -> encoded raft.Log (see codec.go)
//	0x02 <stable key>        -> StableStore value (SetUint64: 8 bytes BE)
//
// Big-endian indices make Pebble's byte order the log's index order, so
// the first and last entries are the first and last keys of namespace 0x01.
const (
	nsMeta   byte = 0x00
	nsLog    byte = 0x01
	nsStable byte = 0x02

	layoutVersion uint64 = 1
)

var (
	layoutKey   = []byte{nsMeta, 'l', 'a', 'y', 'o', 'u', 't'}
	logKeyLower = []byte{nsLog}
	logKeyUpper = []byte{nsLog + 1}
)

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = nsLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

func stableKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = nsStable
	copy(k[1:], key)
	return k
}

// Store is a raft.LogStore and raft.StableStore on its own Pebble database.
// It is safe for concurrent use. Every write is synced to stable storage
// before the method returns.
type Store struct {
	// mu guards db against Close: readers and writers hold it shared,
	// Close holds it exclusively.
	mu     sync.RWMutex
	db     *pebble.DB
	closed bool

	// writeMu orders writes so that first and last follow the database.
	writeMu sync.Mutex
	// first and last cache the smallest and largest stored log index (0 when
	// the log is empty). They are updated after each write commits.
	first atomic.Uint64
	last  atomic.Uint64

	maxEntrySize int
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens or creates a store in dir. opts may be nil for defaults;
// invalid options fail with errors wrapping ErrInvalidOptions. The
// directory must be used by one Store at a time (Pebble locks it).
func Open(dir string, opts *Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	o := opts.EnsureDefaults()
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref()
	db, err := pebble.Open(dir, &pebble.Options{
		FS:           o.FS,
		Cache:        cache,
		MemTableSize: o.MemTableSize,
		Logger:       pebbleLogger(o.Logger),
	})
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s := &Store{db: db, maxEntrySize: o.MaxEntrySize}
	if err := s.checkLayout(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	if err := s.reloadBounds(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	return s, nil
}

// checkLayout writes the layout version into a new database and checks it
// in an existing one.
func (s *Store) checkLayout() error {
	v, closer, err := s.db.Get(layoutKey)
	if errors.Is(err, pebble.ErrNotFound) {
		it, err := s.db.NewIter(nil)
		if err != nil {
			return err
		}
		nonEmpty := it.First()
		if err := errors.Join(it.Error(), it.Close()); err != nil {
			return err
		}
		if nonEmpty {
			return fmt.Errorf("%w: the directory holds a Pebble database without a raftstore layout marker; point the store at its own directory", ErrIncompatible)
		}
		return s.db.Set(layoutKey, binary.BigEndian.AppendUint64(nil, layoutVersion), pebble.Sync)
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 8 {
		return fmt.Errorf("%w: layout marker is %d bytes, want 8", ErrCorrupt, len(v))
	}
	if got := binary.BigEndian.Uint64(v); got != layoutVersion {
		return fmt.Errorf("%w: key layout version %d, this build reads version %d", ErrIncompatible, got, layoutVersion)
	}
	return nil
}

// reloadBounds reads the first and last log index from the database.
// Callers hold writeMu or own the store exclusively.
func (s *Store) reloadBounds() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: logKeyLower, UpperBound: logKeyUpper})
	if err != nil {
		return err
	}
	var first, last uint64
	if it.First() {
		first = indexOfKey(it.Key())
		if it.Last() {
			last = indexOfKey(it.Key())
		}
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return err
	}
	s.first.Store(first)
	s.last.Store(last)
	return nil
}

func indexOfKey(k []byte) uint64 {
	if len(k) != 9 {
		// Keys in the log namespace are written only by logKey.
		return 0
	}
	return binary.BigEndian.Uint64(k[1:])
}

// acquire takes the shared lifecycle lock, failing after Close.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Close flushes nothing (every write is already synced) and releases the
// database. Calls after the first return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftstore: close: %w", err)
	}
	return nil
}

// FirstIndex returns the smallest stored log index, or 0 when the log is
// empty.
func (s *Store) FirstIndex() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.first.Load(), nil
}

// LastIndex returns the largest stored log index, or 0 when the log is
// empty.
func (s *Store) LastIndex() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.last.Load(), nil
}

// GetLog reads the entry at index into log. A missing index returns
// raft.ErrLogNotFound itself (raft compares it by identity).
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	defer closer.Close()
	if err := decodeLog(v, log); err != nil {
		return fmt.Errorf("raftstore: log %d: %w", index, err)
	}
	if log.Index != index {
		return fmt.Errorf("raftstore: log %d: %w: entry stored under index %d records index %d", index, ErrCorrupt, index, log.Index)
	}
	return nil
}

// StoreLog stores one entry; see StoreLogs.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs writes all entries in one synced Pebble batch: after a crash
// either all of them are present or none. An entry at an index already
// stored replaces it. Entries need not be contiguous with the stored log.
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	size := 0
	for _, l := range logs {
		n := encodedLen(l)
		if n > s.maxEntrySize {
			return fmt.Errorf("%w: entry %d encodes to %d bytes, above MaxEntrySize %d; raise Options.MaxEntrySize or send smaller commands",
				ErrEntryTooLarge, l.Index, n, s.maxEntrySize)
		}
		size += 9 + n
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	b := s.db.NewBatchWithSize(size + len(logs)*16)
	defer b.Close()
	minIdx, maxIdx := uint64(math.MaxUint64), uint64(0)
	for _, l := range logs {
		op := b.SetDeferred(9, encodedLen(l))
		op.Key[0] = nsLog
		binary.BigEndian.PutUint64(op.Key[1:], l.Index)
		appendLog(op.Value[:0], l)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("raftstore: store logs: %w", err)
		}
		minIdx = min(minIdx, l.Index)
		maxIdx = max(maxIdx, l.Index)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return errors.Join(fmt.Errorf("raftstore: store logs %d..%d: %w", minIdx, maxIdx, err), s.reloadBounds())
	}
	if f := s.first.Load(); f == 0 || minIdx < f {
		s.first.Store(minIdx)
	}
	if maxIdx > s.last.Load() {
		s.last.Store(maxIdx)
	}
	return nil
}

// DeleteRange deletes the entries with index in [min, max] with one synced
// Pebble range deletion, so its cost does not grow with the number of
// entries. min > max deletes nothing.
func (s *Store) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	end := logKeyUpper
	if max < math.MaxUint64 {
		end = logKey(max + 1)
	}
	if err := s.db.DeleteRange(logKey(min), end, pebble.Sync); err != nil {
		return errors.Join(fmt.Errorf("raftstore: delete logs %d..%d: %w", min, max, err), s.reloadBounds())
	}
	first, last := s.first.Load(), s.last.Load()
	if first != 0 && (min <= first || max >= last) {
		if err := s.reloadBounds(); err != nil {
			return fmt.Errorf("raftstore: delete logs %d..%d: reading new bounds: %w", min, max, err)
		}
	}
	return nil
}

// Set stores val under key, synced.
func (s *Store) Set(key []byte, val []byte) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value stored under key, or ErrKeyNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	defer closer.Close()
	return append([]byte{}, v...), nil
}

// SetUint64 stores val under key as 8 big-endian bytes, synced. Get on the
// same key returns those bytes.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value SetUint64 stored under key. A missing key
// returns 0 and ErrKeyNotFound, as raft-boltdb does; raft treats that as
// "never set". A value that is not 8 bytes returns ErrCorrupt.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: value of %q is %d bytes, not a uint64 stored by SetUint64", ErrCorrupt, key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}
