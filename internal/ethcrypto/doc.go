// Package ethcrypto owns Ethereum-compatible key material for TrueGPU: secp256k1
// private keys, 20-byte addresses with EIP-55 checksums, Keccak-256, recoverable
// signatures in the r||s||v layout that Solidity's ecrecover accepts, EIP-191
// personal-message hashing, and key files on disk.
//
// It does not own what is signed: EIP-712 typed data for epoch reports lives in
// package reputation, and node registration messages live with the attestor.
package ethcrypto
