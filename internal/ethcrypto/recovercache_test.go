package ethcrypto

import (
	"errors"
	"testing"
)

func TestRecoverCache(t *testing.T) {
	k := KeyFromSeed([]byte("cache"))
	c := NewRecoverCache(2)
	var hashes [][32]byte
	var sigs [][65]byte
	for i := range 5 {
		h := Keccak256([]byte{byte(i)})
		s, err := k.SignHash(h)
		if err != nil {
			t.Fatal(err)
		}
		hashes, sigs = append(hashes, h), append(sigs, s)
	}
	for round := range 2 {
		for i := range hashes {
			got, err := c.Recover(hashes[i], sigs[i][:])
			if err != nil || got != k.Address() {
				t.Fatalf("round %d, signature %d: %s, %v; want %s", round, i, got, err, k.Address())
			}
		}
	}
	if n := len(c.last) + len(c.prev); n > 4 {
		t.Fatalf("cache holds %d entries, more than 2·max", n)
	}
	// A signature over another hash recovers another address, cached or
	// not; a malformed one fails the same way as RecoverAddress.
	if got, _ := c.Recover(hashes[1], sigs[0][:]); got == k.Address() {
		t.Fatal("a signature over one hash recovered the signer for another hash")
	}
	bad := sigs[0]
	bad[64] = 1
	if _, err := c.Recover(hashes[0], bad[:]); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("v = 1: %v, want ErrInvalidSignature", err)
	}
	if _, err := c.Recover(hashes[0], sigs[0][:10]); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("short signature: %v, want ErrInvalidSignature", err)
	}
}
