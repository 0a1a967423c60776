//go:build cgo

package ethcrypto

import "github.com/ethereum/go-ethereum/crypto/secp256k1"

// recoverPubkey recovers the uncompressed public key of the validated
// signature r||s (rs) with recovery id v (0 or 1). With cgo it runs
// libsecp256k1 (through go-ethereum's binding), about four times faster
// than the pure-Go recovery; the oracle recovers a signer for every
// request a node makes, so this sits on the hot path of proof submission.
// Both give the same key or both fail (TestRecoverBackendsAgree).
func recoverPubkey(hash [32]byte, rs []byte, v byte) ([]byte, error) {
	var sig [65]byte
	copy(sig[:], rs)
	sig[64] = v
	return secp256k1.RecoverPubkey(hash[:], sig[:])
}
