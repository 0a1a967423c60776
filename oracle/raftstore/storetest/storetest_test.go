package storetest_test

import (
	"testing"

	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/oracle/raftstore/storetest"
)

// The suite must pass against raft's reference InmemStore, so that it
// encodes raft's semantics rather than one implementation's.
func TestInmemStore(t *testing.T) {
	t.Run("LogStore", func(t *testing.T) {
		storetest.TestLogStore(t, func(*testing.T) raft.LogStore { return raft.NewInmemStore() })
	})
	t.Run("StableStore", func(t *testing.T) {
		storetest.TestStableStore(t, func(*testing.T) raft.StableStore { return raft.NewInmemStore() })
	})
}
