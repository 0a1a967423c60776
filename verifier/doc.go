// Package verifier owns everything a checker of work proofs needs: strict,
// bounded decoding of proofs and verifying keys (with subgroup checks), single
// and batch Groth16 verification, and export of the Solidity verifier.
//
// It keeps no registry of keys: a verifying key carries the digest of its
// profile, verification refuses public inputs of another digest
// (ErrDigestMismatch), and each caller holds the one key of the profile it
// runs (an oracle member its Config.VerifyingKey).
//
// It never proves and never runs workloads; those belong to packages prover
// and attest.
package verifier
