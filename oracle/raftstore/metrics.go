package raftstore

import "github.com/cockroachdb/pebble/v2"

// Metrics returns the Pebble database's metrics (WAL fsync latency,
// compaction debt, levels), or nil once the store is closed.
func (s *Store) Metrics() *pebble.Metrics {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.db.Metrics()
}
