package oracle

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// ErrReplayed reports a signed node request that was already received
// within its timestamp window.
var ErrReplayed = errors.New("oracle: replayed request")

// DefaultClusterID is Config.ClusterID when unset: development clusters.
const DefaultClusterID = "dev"

// maxSeenRequests bounds the replay cache. Beyond it (after dropping
// expired entries) signed requests are refused as overload rather than
// admitted unchecked.
const maxSeenRequests = 1 << 20

// replayCache remembers the signing digests of the signed node requests a
// member accepted (registrations, challenge polls and streams) until their
// timestamp leaves the clock-skew window, after which the timestamp check
// refuses them anyway. A request seen again within the window is a replay.
type replayCache struct {
	mu      sync.Mutex
	seen    map[[32]byte]int64 // digest -> unix ms after which it is forgotten
	inserts int
}

// admit records digest until expiresMs, or reports a replay.
func (c *replayCache) admit(digest [32]byte, expiresMs, nowMs int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = map[[32]byte]int64{}
	}
	if exp, ok := c.seen[digest]; ok && exp >= nowMs {
		return fmt.Errorf("%w: this signed request was already received; sign a new one (with the current time)", ErrReplayed)
	}
	c.inserts++
	if len(c.seen) >= maxSeenRequests || c.inserts%4096 == 0 {
		for d, exp := range c.seen {
			if exp < nowMs {
				delete(c.seen, d)
			}
		}
	}
	if len(c.seen) >= maxSeenRequests {
		return fmt.Errorf("%w: too many signed requests in the replay window", ErrOverloaded)
	}
	c.seen[digest] = expiresMs
	return nil
}

// checkCluster refuses a signed node request made for another cluster.
func (m *Member) checkCluster(cluster string) error {
	if cluster != m.cfg.ClusterID {
		return fmt.Errorf("%w: the request is signed for cluster %q; this is cluster %q", ErrInvalidRequest, cluster, m.cfg.ClusterID)
	}
	return nil
}

// checkReplay refuses a signed node request (checked signature and
// timestamp) this member has accepted before.
func (m *Member) checkReplay(req proto.Message, timestampMs int64) error {
	digest, err := truegpuv1.SigningDigest(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	expires := time.UnixMilli(timestampMs).Add(m.cfg.Pipeline.MaxClockSkew).UnixMilli()
	return m.replay.admit(digest, expires, m.cfg.Now().UnixMilli())
}
