//go:build !cgo

package ethcrypto

// recoverPubkey recovers the uncompressed public key of the validated
// signature r||s (rs) with recovery id v (0 or 1), in pure Go when cgo is
// off.
func recoverPubkey(hash [32]byte, rs []byte, v byte) ([]byte, error) {
	return recoverPubkeyGo(hash, rs, v)
}
