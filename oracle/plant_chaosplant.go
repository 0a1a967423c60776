//go:build chaosplant

package oracle

// plantedStaleReads, in a build with the chaosplant tag, is a planted
// defect: every member answers linearizable reads from its own state, as
// stale reads, without handing them to the leader, VerifyLeader or
// Barrier. It exists so the fault campaign can show that its
// linearizability checker catches a real defect in the real binary
// (oracle/chaos TestCheckersCatchPlantedStaleReads); never ship a build
// with the tag.
const plantedStaleReads = true
