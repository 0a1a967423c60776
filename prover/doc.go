// Package prover owns the work-proof workload and its proofs: the reference
// implementation of the seeded integer GEMM challenge (Poseidon2 PRG, exact
// int8×int8→int32 product, Poseidon2 Merkle commitment, Fiat-Shamir sampling),
// the versioned parameter profiles, the gnark circuit that checks sampled
// cells, Groth16 proving, and key generation (a deterministic, unsafe dev
// setup and an MPC ceremony).
//
// The reference implementation is the specification: every device backend
// in attest must reproduce it bit for bit. Verifying proofs belongs to
// package verifier; running workloads on hardware belongs to package attest.
package prover
