package attest

import (
	"fmt"
	"sync"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/prover/memwalk"
	"github.com/truegpu/truegpu/prover/timed"
)

// ResultStore holds the results of the most recent runs of a device,
// keyed by nonce, so that the attestor can prove after committing. It
// keeps at most its capacity; the oldest entry is evicted first. A
// ResultStore is safe for concurrent use. The zero value holds
// MinHeldResults entries.
type ResultStore struct {
	mu    sync.Mutex
	cap   int
	order []prover.Nonce
	cells map[prover.Nonce]held
}

// held is one run's results: the profile workload's cells and, for a
// challenge with a timed phase, its result.
type held struct {
	cells []int32
	timed *timed.Result
	table *memwalk.Table
	walk  *memwalk.Walk
}

// NewResultStore returns a store that keeps the results of the last n runs
// (at least MinHeldResults).
func NewResultStore(n int) *ResultStore {
	return &ResultStore{cap: max(n, MinHeldResults)}
}

// Put records the results of a run, replacing an earlier run with the same
// nonce and evicting the oldest entry when full. The store keeps cells;
// the caller must not modify them afterwards.
func (s *ResultStore) Put(nonce prover.Nonce, cells []int32) {
	s.PutRun(nonce, cells, nil)
}

// PutRun records a run's cells together with its timed phase's result
// (nil for a workload without one); otherwise as Put.
func (s *ResultStore) PutRun(nonce prover.Nonce, cells []int32, tr *timed.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cells == nil {
		s.cells = make(map[prover.Nonce]held)
		if s.cap == 0 {
			s.cap = MinHeldResults
		}
	}
	if _, ok := s.cells[nonce]; ok {
		for i, n := range s.order {
			if n == nonce {
				s.order = append(s.order[:i], s.order[i+1:]...)
				break
			}
		}
	}
	s.cells[nonce] = held{cells: cells, timed: tr}
	s.order = append(s.order, nonce)
	for len(s.order) > s.cap {
		delete(s.cells, s.order[0])
		s.order = s.order[1:]
	}
}

// Get returns the results held for nonce, or an error wrapping
// ErrNoResults.
func (s *ResultStore) Get(nonce prover.Nonce) ([]int32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cells[nonce]
	if !ok {
		return nil, fmt.Errorf("%w %x (the device keeps the last %d runs)", ErrNoResults, nonce[:8], max(s.cap, MinHeldResults))
	}
	return c.cells, nil
}

// OpenTimed returns the encoded openings of the timed phase held for nonce
// at the cells seed selects (timed.Result.Open), or an error wrapping
// ErrNoResults when no timed result is held for nonce.
func (s *ResultStore) OpenTimed(nonce prover.Nonce, seed [timed.SeedSize]byte) ([]byte, error) {
	c, ok := s.lookup(nonce)
	if !ok || c.timed == nil {
		return nil, s.missing(nonce, "timed phase")
	}
	return c.timed.Open(seed)
}

// PutTable records the memory phase's table of the run held for nonce
// (after PutRun); it returns an error wrapping ErrNoResults when no run is
// held for nonce.
func (s *ResultStore) PutTable(nonce prover.Nonce, t *memwalk.Table) error {
	return s.update(nonce, func(c *held) { c.table = t })
}

// Table returns the memory phase's table held for nonce, or an error
// wrapping ErrNoResults.
func (s *ResultStore) Table(nonce prover.Nonce) (*memwalk.Table, error) {
	c, ok := s.lookup(nonce)
	if !ok || c.table == nil {
		return nil, s.missing(nonce, "memory-phase table")
	}
	return c.table, nil
}

// PutWalk records the walk of the table held for nonce.
func (s *ResultStore) PutWalk(nonce prover.Nonce, w *memwalk.Walk) error {
	return s.update(nonce, func(c *held) { c.walk = w })
}

// OpenWalk returns the encoded walk openings held for nonce at the checks
// checkSeed selects (memwalk.Walk.Open), or an error wrapping
// ErrNoResults.
func (s *ResultStore) OpenWalk(nonce prover.Nonce, checkSeed [memwalk.SeedSize]byte) ([]byte, error) {
	c, ok := s.lookup(nonce)
	if !ok || c.walk == nil {
		return nil, s.missing(nonce, "walk")
	}
	return c.walk.Open(checkSeed)
}

// lookup returns the run held for nonce.
func (s *ResultStore) lookup(nonce prover.Nonce) (held, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cells[nonce]
	return c, ok
}

// update changes the run held for nonce in place, or returns an error
// wrapping ErrNoResults when none is held.
func (s *ResultStore) update(nonce prover.Nonce, f func(*held)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cells[nonce]
	if !ok {
		return fmt.Errorf("%w %x", ErrNoResults, nonce[:8])
	}
	f(&c)
	s.cells[nonce] = c
	return nil
}

// missing is the error for a part of a run (what) not held for nonce.
func (s *ResultStore) missing(nonce prover.Nonce, what string) error {
	return fmt.Errorf("%w %x: no %s held (the device keeps the last %d runs)", ErrNoResults, nonce[:8], what, max(s.cap, MinHeldResults))
}

// Len returns the number of runs held.
func (s *ResultStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}
