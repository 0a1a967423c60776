// Package contracts holds TrueGPU's Solidity consumers and their tests in
// go-ethereum's EVM: the epoch feed (k-of-n EIP-712 signed reputation reports,
// freshness, Merkle proofs of a node's score), the Groth16 work-proof verifier
// exported from package verifier, and an example reward contract that pays pro
// rata by verified score.
//
// It is a separate Go module so that the main module does not depend on
// go-ethereum. Sources are under sol/, compiled artifacts under build/
// (regenerate with build.sh).
package contracts
