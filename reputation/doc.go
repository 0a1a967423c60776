// Package reputation owns the score model: a pure, deterministic function of
// verdict history in fixed-point integer arithmetic, with reason codes and
// evidence references, and the signed epoch reports (Merkle trees of scores,
// EIP-712 signatures) that reward contracts consume.
//
// It performs no I/O and reads no clock: every input, including time, arrives
// as an argument, so every oracle replica computes identical scores.
package reputation
