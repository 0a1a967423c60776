// Package verifier owns everything a checker of work proofs needs: strict,
// bounded decoding of proofs and verifying keys (with subgroup checks), single
// and batch Groth16 verification, the verifying-key registry keyed by
// (profile, version), and export of the Solidity verifier.
//
// It never proves and never runs workloads; those belong to packages prover
// and attest.
package verifier
