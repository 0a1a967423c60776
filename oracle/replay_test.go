package oracle

import (
	"context"
	"errors"
	"testing"
	"time"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// TestSignedRequestsBoundToClusterAndFresh: signed node requests name the
// cluster they are for, and one the member has already accepted is
// refused until its timestamp leaves the window (after which the
// timestamp check refuses it).
func TestSignedRequestsBoundToClusterAndFresh(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	c := newCluster(t, 1, func(cfg *Config) { cfg.Now = clock.Now; cfg.ClusterID = "cluster-a" })
	l := c.leader(5 * time.Second)
	ctx := context.Background()
	svc := &nodeService{m: l}
	n := newTestNode(1)
	sign := func(req interface{ GetAddress() string }) {
		t.Helper()
		var err error
		switch r := req.(type) {
		case *truegpuv1.RegisterNodeRequest:
			err = n.key.Sign(r)
		case *truegpuv1.PollChallengesRequest:
			err = n.key.Sign(r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	reg := &truegpuv1.RegisterNodeRequest{Address: n.addr(), Devices: []*truegpuv1.Device{n.dev}, TimestampUnixMs: clock.Now().UnixMilli(), Cluster: "cluster-b"}
	sign(reg)
	if _, err := svc.RegisterNode(ctx, reg); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("registration signed for another cluster: %v, want ErrInvalidRequest", err)
	}
	reg.Cluster = "cluster-a"
	sign(reg)
	if _, err := svc.RegisterNode(ctx, reg); err != nil {
		t.Fatalf("registration: %v", err)
	}
	if _, err := svc.RegisterNode(ctx, reg); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed registration: %v, want ErrReplayed", err)
	}

	poll := &truegpuv1.PollChallengesRequest{Address: n.addr(), TimestampUnixMs: clock.Now().UnixMilli(), Cluster: "cluster-a"}
	sign(poll)
	if _, err := svc.PollChallenges(ctx, poll); err != nil {
		t.Fatalf("poll: %v", err)
	}
	if _, err := svc.PollChallenges(ctx, poll); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed poll: %v, want ErrReplayed", err)
	}
	// The same request signed anew (here: a millisecond later) is fresh.
	poll.TimestampUnixMs++
	sign(poll)
	if _, err := svc.PollChallenges(ctx, poll); err != nil {
		t.Fatalf("new poll: %v", err)
	}
	for _, cluster := range []string{"", "cluster-b"} {
		other := &truegpuv1.PollChallengesRequest{Address: n.addr(), TimestampUnixMs: clock.Now().UnixMilli() + 2, Cluster: cluster}
		sign(other)
		if _, err := svc.PollChallenges(ctx, other); !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("poll for cluster %q: %v, want ErrInvalidRequest", cluster, err)
		}
	}
	// Past the window the timestamp check refuses the old request.
	clock.Advance(l.cfg.Pipeline.MaxClockSkew + time.Second)
	if _, err := svc.PollChallenges(ctx, poll); !errors.Is(err, ErrClockSkew) {
		t.Fatalf("old poll: %v, want ErrClockSkew", err)
	}
}

func TestReplayCacheForgets(t *testing.T) {
	var c replayCache
	d := [32]byte{1}
	if err := c.admit(d, 100, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.admit(d, 100, 100); !errors.Is(err, ErrReplayed) {
		t.Fatalf("within the window: %v", err)
	}
	if err := c.admit(d, 200, 101); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}
