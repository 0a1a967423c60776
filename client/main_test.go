package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/truegpu/truegpu/client"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/reputation"
)

// The examples and tests run against one in-process development cluster:
// three members, three honest H100 nodes, one honest A100 node and two
// nodes sharing one L40S identity. The reputation model needs little
// evidence here, so the honest nodes become trusted within seconds.
var (
	dev *devcluster.Cluster
	// server is the gRPC address of a member that follows.
	server string
	// trustedSigners are the members' report-signing addresses.
	trustedSigners []string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "client tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Little evidence makes a node trusted, and a few late answers on a
	// loaded machine do not make an honest node suspect or rejected. The
	// garbage node never proves anything, so it is never trusted, whatever
	// the timing.
	params := reputation.DefaultParams()
	params.ConfidenceK = reputation.Unit / 10
	params.SuspectMinNeg = 100 * reputation.Unit
	params.RejectMinNeg = 100 * reputation.Unit
	c, err := devcluster.Start(ctx, devcluster.Options{
		HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		EpochInterval: 3 * time.Second, ChallengeInterval: 4 * time.Second, ProofWindow: time.Minute,
		Reputation: &params,
		Fleet: devcluster.FleetOptions{Honest: 4, HonestClasses: []string{"h100", "h100", "h100", "a100"},
			Adversaries: []string{"garbage-h100"}, TimeScale: devcluster.DefaultTimeScale},
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	dev = c
	leader := c.Leader()
	for i, n := range c.Nodes {
		if n != leader && server == "" {
			server = n.GRPCAddr
		}
		trustedSigners = append(trustedSigners, devcluster.MemberKey(i).Address().String())
	}
	if err := waitReady(ctx); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// waitReady waits until the follower's replica shows the four honest
// nodes trusted (the garbage node cannot be) and a complete report in
// which they are trusted.
func waitReady(ctx context.Context) error {
	c, err := client.Dial(server, client.Options{Insecure: true})
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		trusted, _ := c.ListNodes(ctx, client.NodeQuery{Status: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED}, 0)
		if len(trusted) == 4 {
			if r, err := c.LatestReport(ctx, false); err == nil && reportHas(ctx, c, r, trusted) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the dev cluster's fleet did not settle in time: %d of 4 honest nodes trusted", len(trusted))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func reportHas(ctx context.Context, c *client.Client, r *truegpuv1.EpochReport, nodes []*truegpuv1.NodeSummary) bool {
	for _, n := range nodes {
		p, err := c.NodeProof(ctx, r.Epoch, n.Address)
		if err != nil || p.Status != truegpuv1.NodeStatus_NODE_STATUS_TRUSTED {
			return false
		}
	}
	return true
}
