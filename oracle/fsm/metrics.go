package fsm

import "github.com/cockroachdb/pebble/v2"

// Metrics returns the state database's Pebble metrics (WAL fsync latency,
// compaction debt, levels). Do not call it after Close.
func (f *FSM) Metrics() *pebble.Metrics { return f.db.Metrics() }
