package ethcrypto

import "sync"

// RecoverCache remembers successful signature recoveries so that one
// process recovers each (hash, signature) pair once: an oracle member
// checks a node's signature when the request arrives and again when the
// replicated command that carries it is applied. A hit returns exactly
// what RecoverAddress returned for the same bytes, so replicas that use a
// cache and replicas that do not reach the same result. Failed recoveries
// are not kept. Safe for concurrent use; the zero value is not usable (use
// NewRecoverCache).
type RecoverCache struct {
	mu   sync.Mutex
	max  int
	last map[recoverKey]Address // the generation being filled
	prev map[recoverKey]Address // the previous generation, still served
}

type recoverKey struct {
	hash [32]byte
	sig  [SignatureLen]byte
}

// NewRecoverCache returns a cache that keeps at least the last max
// recoveries (at most 2·max).
func NewRecoverCache(max int) *RecoverCache {
	if max < 1 {
		max = 1
	}
	return &RecoverCache{max: max, last: make(map[recoverKey]Address, max)}
}

// Recover is RecoverAddress, answered from the cache when the same hash
// and signature were recovered before.
func (c *RecoverCache) Recover(hash [32]byte, sig []byte) (Address, error) {
	if len(sig) != SignatureLen {
		return RecoverAddress(hash, sig)
	}
	k := recoverKey{hash: hash, sig: [SignatureLen]byte(sig)}
	c.mu.Lock()
	a, ok := c.last[k]
	if !ok {
		a, ok = c.prev[k]
	}
	c.mu.Unlock()
	if ok {
		return a, nil
	}
	a, err := RecoverAddress(hash, sig)
	if err != nil {
		return a, err
	}
	c.mu.Lock()
	if len(c.last) >= c.max {
		c.prev, c.last = c.last, make(map[recoverKey]Address, c.max)
	}
	c.last[k] = a
	c.mu.Unlock()
	return a, nil
}
