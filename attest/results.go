package attest

import (
	"fmt"
	"sync"

	"github.com/truegpu/truegpu/prover"
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
	cells map[prover.Nonce][]int32
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cells == nil {
		s.cells = make(map[prover.Nonce][]int32)
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
	s.cells[nonce] = cells
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
	return c, nil
}

// Len returns the number of runs held.
func (s *ResultStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.order)
}
