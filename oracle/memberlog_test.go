package oracle

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMemberLoggerReachesStores: the member's logger, with its member
// attribute, is the logger of Raft and of both Pebble stores (the state's
// and the Raft log's).
func TestMemberLoggerReachesStores(t *testing.T) {
	var out lockedBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newCluster(t, 1, func(cfg *Config) { cfg.Logger = log })
	c.leader(30 * time.Second)
	c.stop(0)
	lines := strings.Split(out.String(), "\n")
	for _, component := range []string{"component=raft", "component=fsm/pebble", "component=raftstore/pebble"} {
		found := false
		for _, l := range lines {
			if strings.Contains(l, component+" ") || strings.HasSuffix(l, component) {
				found = true
				if !strings.Contains(l, "member=m0") {
					t.Errorf("%s line without the member attribute: %s", component, l)
				}
				break
			}
		}
		if !found {
			t.Errorf("nothing logged with %s", component)
		}
	}
}
