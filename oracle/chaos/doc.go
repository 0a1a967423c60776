// Package chaos runs fault-injection campaigns against real oracled
// member processes and checks that nothing acknowledged is ever lost.
//
// A run builds oracled once, starts a cluster of member processes on
// loopback with mutual TLS (certificates from internal/devpki), and routes
// every member-to-member connection (Raft and the members' gRPC calls to one
// another) through a pure-Go TCP proxy per member (Network). The proxy
// learns which member opened a connection from the kernel's socket table
// (/proc), so it can cut, delay or reset the traffic of each directed link:
// partitions of a minority, of the leader alone, asymmetric partitions,
// latency and connection drops. Processes are killed with SIGKILL and
// restarted from their data directories, or paused with SIGSTOP longer
// than the election timeout.
//
// While faults come and go, a workload drives the public gRPC API: real
// attestors (attest.Agent over simulated devices) register, commit and
// prove; register clients rewrite the devices of a few nodes and readers
// read them back linearizably and stale; a watcher reads the epoch reports
// the members sign by themselves. Every operation is recorded with its call
// and return times (History).
//
// After the faults heal, the checkers decide the run: every acknowledged
// registration, verdict and observed report signature must be on every
// member (CheckAcknowledged); every member must reach the same state hash at
// the same applied index (CheckConverged); the register history must be
// linearizable (CheckLinearizable, porcupine); stale reads must return
// values that were written (CheckStaleReads); reports must keep completing
// once the cluster is whole (the run's epoch check); and no member may panic
// (ScanLogs). Each checker has a test that feeds it a planted bug.
//
// Linux only: the proxy reads /proc/net/tcp and /proc/<pid>/fd.
package chaos
