package oracle

import (
	"sync"
	"time"

	"github.com/truegpu/truegpu/internal/ethcrypto"
)

// rateLimiter is a token bucket per node address.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[ethcrypto.Address]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(rate, burst int) *rateLimiter {
	return &rateLimiter{rate: float64(rate), burst: float64(burst), buckets: map[ethcrypto.Address]*bucket{}}
}

func (r *rateLimiter) allow(a ethcrypto.Address, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.buckets[a]
	if !ok {
		if len(r.buckets) > 1_000_000 {
			clear(r.buckets)
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[a] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
