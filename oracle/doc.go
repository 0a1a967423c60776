// Package oracle owns a TrueGPU cluster member: Raft replication
// (hashicorp/raft) with the log, stable store and state machine on Pebble,
// challenge scheduling, the verification pipeline, and the gRPC, REST and
// dashboard servers.
//
// Scoring rules belong to package reputation and proof checking to package
// verifier; the oracle sequences them and replicates the outcome.
package oracle
