// Package attest owns the node side of TrueGPU: the Device interface that
// every backend implements, device fingerprints, node keys and request
// signing, and the attestor loop (Agent) that registers a node, answers
// challenges before their deadline and submits proofs.
//
// The backends live in subpackages: attest/nvml (NVML identity; the only
// importer of go-nvml), attest/cuda (CUDA driver API through purego with
// embedded PTX kernels), attest/cpu (the reference implementation of
// package prover) and attest/sim (simulated honest and adversarial
// devices). attest/devicetest is the conformance suite every honest
// backend passes. Verification of what an attestor sends belongs to
// package oracle; the workload itself is specified by package prover.
package attest
