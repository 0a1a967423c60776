// Package raftstore owns the durable Raft log and stable store of an oracle
// member: a hashicorp/raft LogStore and StableStore on a Pebble database in
// a directory of its own.
//
// It does not own the FSM's state (that is a separate Pebble database owned
// by the oracle FSM), snapshots (raft's SnapshotStore), or log caching:
// wrap the store with raft.NewLogCache for hot reads of recent entries.
//
// # Why a separate directory
//
// The log and the FSM state have opposite shapes: the log is append at the
// tail and delete at the head, the state is random updates. Keeping the log
// in its own Pebble instance gives it its own WAL, memtable and compactions,
// so truncating the log after a snapshot never competes with state writes,
// and either can be wiped or restored without touching the other.
//
// # Durability and crash consistency
//
// Every write (StoreLog, StoreLogs, DeleteRange, Set, SetUint64) is
// committed with pebble.Sync: when the method returns nil the change is in
// Pebble's write-ahead log and fsynced. StoreLogs writes all its entries in
// one Pebble batch and DeleteRange is one range deletion, so after a crash
// each call is either fully applied or not at all; Pebble replays its WAL on
// Open. This is what raft needs: it persists entries and the vote before
// acknowledging them to a leader or a candidate.
//
// A failed WAL write or sync is fatal: Pebble reports it through its
// logger's Fatalf, and the store panics instead of returning an error
// (crash-stop). After a failed fsync the state of earlier writes in the
// page cache is unknown, so no later acknowledgement could be trusted; a
// restarted member recovers from its WAL and catches up from its peers.
// TestWALWriteFailureIsFatal checks this policy, and TestCrashConsistency
// simulates power loss at random points (Pebble's crashable in-memory file
// system) and checks that exactly the acknowledged writes survive.
//
// FirstIndex and LastIndex are served from memory. Open reads them from the
// first and last keys of the log namespace, and each successful write
// updates them; a failed write re-reads them from the database.
//
// # Gaps and optional interfaces
//
// Entries are keyed by index, so the store tolerates gaps (raft may leave one
// after installing a snapshot). It therefore does not implement
// raft.MonotonicLogStore: claiming monotonicity would only make raft delete
// the whole log after a snapshot restore, which the store does not need. It
// does not implement raft.CommitTrackingLogStore.
//
// # Missing keys
//
// hashicorp/raft v1.8.0 recognises "never set" in a StableStore by comparing
// err.Error() with "not found". Get and GetUint64 of a missing key return
// ErrKeyNotFound, whose text is exactly that (GetUint64 also returns 0), as
// raft-boltdb does. GetLog of a missing index returns raft.ErrLogNotFound.
//
// # Conformance
//
// Package storetest holds a conformance suite for raft log and stable
// stores; this package passes it, and so does raft.NewInmemStore.
package raftstore
