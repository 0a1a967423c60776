// Package attest owns the node side of TrueGPU: the Device interface that
// every GPU backend implements (NVML-backed hardware, CPU reference, CUDA,
// simulated honest and adversarial devices), device fingerprints, node keys,
// and the attestor loop that registers a node, answers challenges before
// their deadline and submits proofs.
//
// Only the subpackage attest/nvml imports go-nvml. Verification of what an
// attestor sends belongs to package oracle.
package attest
