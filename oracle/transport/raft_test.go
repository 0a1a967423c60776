package transport_test

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/truegpu/truegpu/internal/devpki"
	"github.com/truegpu/truegpu/oracle/raftstore"
	"github.com/truegpu/truegpu/oracle/transport"
)

func rafAddr(l *transport.StreamLayer) raft.ServerAddress {
	return raft.ServerAddress(l.Addr().String())
}

// recordingFSM records every applied command in order.
type recordingFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *recordingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return len(f.applied)
}

func (f *recordingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nil, fmt.Errorf("recordingFSM: snapshots are not used in this test")
}

func (f *recordingFSM) Restore(io.ReadCloser) error {
	return fmt.Errorf("recordingFSM: snapshots are not used in this test")
}

func (f *recordingFSM) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.applied)
}

type node struct {
	id    raft.ServerID
	raft  *raft.Raft
	fsm   *recordingFSM
	trans *raft.NetworkTransport
	store *raftstore.Store
}

// waitFor polls cond until it holds or the deadline passes. The deadline
// only bounds a broken test; it is not a performance assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRaftClusterOverTLS runs a three-member Raft cluster on 127.0.0.1 with
// the Pebble log store and this TLS transport: a leader is elected, entries
// reach every member in the same order, and after the leader stops the
// other two elect a new one and keep committing.
func TestRaftClusterOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-member Raft cluster")
	}
	ca, err := devpki.NewCA("cluster-ca")
	if err != nil {
		t.Fatal(err)
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: os.Stderr})

	var nodes []*node
	var servers []raft.Server
	for i := range 3 {
		id := fmt.Sprintf("node-%d", i+1)
		cert, err := ca.Issue(id)
		if err != nil {
			t.Fatal(err)
		}
		layer, err := transport.Listen("127.0.0.1:0", nil, devpki.ServerConfig(ca, cert), devpki.ClientConfig(ca, cert))
		if err != nil {
			t.Fatal(err)
		}
		trans := raft.NewNetworkTransportWithLogger(layer, 3, 10*time.Second, logger)
		store, err := raftstore.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		n := &node{id: raft.ServerID(id), fsm: &recordingFSM{}, trans: trans, store: store}
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: trans.LocalAddr()})
	}
	for _, n := range nodes {
		conf := raft.DefaultConfig()
		conf.LocalID = n.id
		conf.HeartbeatTimeout = 300 * time.Millisecond
		conf.ElectionTimeout = 300 * time.Millisecond
		conf.LeaderLeaseTimeout = 200 * time.Millisecond
		conf.CommitTimeout = 10 * time.Millisecond
		conf.Logger = logger
		r, err := raft.NewRaft(conf, n.fsm, n.store, n.store, raft.NewInmemSnapshotStore(), n.trans)
		if err != nil {
			t.Fatalf("NewRaft(%s): %v", n.id, err)
		}
		n.raft = r
	}
	stopped := map[raft.ServerID]bool{}
	t.Cleanup(func() {
		for _, n := range nodes {
			if !stopped[n.id] {
				n.raft.Shutdown().Error()
				n.trans.Close()
			}
			n.store.Close()
		}
	})
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	leaderOf := func(live []*node) *node {
		for _, n := range live {
			if n.raft.State() == raft.Leader {
				return n
			}
		}
		return nil
	}
	var leader *node
	waitFor(t, "a leader", func() bool { leader = leaderOf(nodes); return leader != nil })

	apply := func(leader *node, from, to int) {
		for i := from; i < to; i++ {
			if err := leader.raft.Apply(fmt.Appendf(nil, "cmd-%d", i), 10*time.Second).Error(); err != nil {
				t.Fatalf("Apply cmd-%d on %s: %v", i, leader.id, err)
			}
		}
	}
	want := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("cmd-%d", i))
		}
		return out
	}
	apply(leader, 0, 10)
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("%s to apply 10 entries", n.id), func() bool { return len(n.fsm.list()) >= 10 })
		if got := n.fsm.list(); !slices.Equal(got, want(10)) {
			t.Fatalf("%s applied %v, want %v", n.id, got, want(10))
		}
	}

	// Stop the leader; the remaining two elect a new one over TLS.
	if err := leader.raft.Shutdown().Error(); err != nil {
		t.Fatal(err)
	}
	leader.trans.Close()
	stopped[leader.id] = true
	var live []*node
	for _, n := range nodes {
		if n != leader {
			live = append(live, n)
		}
	}
	var next *node
	waitFor(t, "a new leader", func() bool { next = leaderOf(live); return next != nil })
	apply(next, 10, 15)
	for _, n := range live {
		waitFor(t, fmt.Sprintf("%s to apply 15 entries", n.id), func() bool { return len(n.fsm.list()) >= 15 })
		if got := n.fsm.list(); !slices.Equal(got, want(15)) {
			t.Fatalf("%s applied %v, want %v", n.id, got, want(15))
		}
		last, err := n.store.LastIndex()
		if err != nil || last < 15 {
			t.Fatalf("%s raftstore LastIndex = %d, %v; want at least 15 entries on disk", n.id, last, err)
		}
	}
}
