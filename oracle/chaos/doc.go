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
// Other faults act inside one member's process through oracled's hidden
// development hooks (each refused without -unsafe-dev-keys): the leader's
// clock is offset or drifts (-unsafe-clock-file), a member's Raft log
// fails its writes (-unsafe-disk-fault-file, Pebble's errorfs). A full
// disk is a file size limit of 0 set on the running process (prlimit(2),
// no hook). With frequent snapshots (-unsafe-snapshot-every) a follower
// that lost its data directory or fell behind is sent a snapshot and is
// killed while its restore is held at a drawn stage
// (-unsafe-restore-hold-file). A spare member
// joins and an old one is removed with the admin API.
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
// (ScanLogs), except the crash a disk fault should cause; and each fault
// kind's own promises hold (RunResult.FaultViolations: a member with a
// failing disk stops, the others keep acknowledging writes, a membership
// change takes effect in the configuration and in the member table). Each
// checker has a test that feeds it a planted bug.
//
// Linux only: the proxy reads /proc/net/tcp and /proc/<pid>/fd.
package chaos
