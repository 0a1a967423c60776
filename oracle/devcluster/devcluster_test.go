package devcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/truegpu/truegpu/attest"
	"github.com/truegpu/truegpu/internal/testlog"
	"github.com/truegpu/truegpu/oracle"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func startTest(t *testing.T, fleet FleetOptions) *Cluster {
	t.Helper()
	c, err := Start(context.Background(), Options{HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", EpochInterval: time.Second,
		ChallengeInterval: time.Second, Fleet: fleet, Logger: testlog.New(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func getJSON(t *testing.T, url string, into any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

// TestDevClusterREST registers a node through a follower (which forwards to
// the leader) and reads it back over REST from every member.
func TestDevClusterREST(t *testing.T) {
	c := startTest(t, FleetOptions{})
	var follower *Node
	for _, n := range c.Nodes {
		if !n.Member.IsLeader() {
			follower = n
		}
	}
	cc, err := grpc.NewClient(follower.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	key := attest.NodeKeyFromSeed([]byte("rest test node"))
	req := &truegpuv1.RegisterNodeRequest{Address: key.Address().String(), TimestampUnixMs: time.Now().UnixMilli(), Cluster: oracle.DefaultClusterID, Devices: []*truegpuv1.Device{
		{ClaimedClass: "H100-SXM", Fingerprint: &truegpuv1.DeviceFingerprint{Uuid: "GPU-rest-1", Name: "NVIDIA H100 80GB HBM3"}}}}
	if err := key.Sign(req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The follower may not know the leader's gRPC address for a moment.
	var resp *truegpuv1.RegisterNodeResponse
	for {
		resp, err = truegpuv1.NewNodeServiceClient(cc).RegisterNode(ctx, req)
		if status.Code(err) != codes.Unavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("register through a follower: %v", err)
	}
	if resp.Address != key.Address().String() || resp.AppliedIndex == 0 {
		t.Fatalf("register response %v", resp)
	}

	for _, n := range c.Nodes {
		var node struct {
			Node struct {
				Address string `json:"address"`
				Status  string `json:"status"`
			} `json:"node"`
			Read struct {
				Linearizable bool   `json:"linearizable"`
				ServedBy     string `json:"servedBy"`
			} `json:"read"`
		}
		url := fmt.Sprintf("%s/v1/nodes/%s?consistency=READ_CONSISTENCY_LINEARIZABLE", n.HTTPURL(), strings.ToLower(key.Address().String()))
		// A follower answers 503 until it knows the leader's gRPC address
		// (member metadata it may not have applied yet); then it forwards.
		code := getJSON(t, url, &node)
		for deadline := time.Now().Add(10 * time.Second); code == http.StatusServiceUnavailable && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			code = getJSON(t, url, &node)
		}
		if code != 200 || node.Node.Address != key.Address().String() || !node.Read.Linearizable {
			t.Fatalf("%s: GET node: %d %+v", n.ID, code, node)
		}
		var cluster struct {
			Members   []struct{ ID string } `json:"members"`
			LeaderID  string                `json:"leaderId"`
			NodeCount int                   `json:"nodeCount"`
		}
		if code := getJSON(t, n.HTTPURL()+"/v1/cluster", &cluster); code != 200 || len(cluster.Members) != 3 || cluster.LeaderID == "" {
			t.Fatalf("%s: GET cluster: %d %+v", n.ID, code, cluster)
		}
	}
	var list struct {
		Nodes     []struct{ Address string } `json:"nodes"`
		TotalSize int                        `json:"totalSize"`
	}
	if code := getJSON(t, c.Nodes[0].HTTPURL()+"/v1/nodes", &list); code != 200 {
		t.Fatalf("GET nodes: %d", code)
	}
	tests := []struct {
		path string
		want int
	}{
		{"/v1/nodes/not-an-address", http.StatusBadRequest},
		{"/v1/nodes/0x0000000000000000000000000000000000000001", http.StatusNotFound},
		{"/v1/nodes?orderBy=nonsense", http.StatusBadRequest},
		{"/v1/feed/epochs/999999", http.StatusNotFound},
	}
	for _, tc := range tests {
		if code := getJSON(t, c.Nodes[0].HTTPURL()+tc.path, nil); code != tc.want {
			t.Errorf("GET %s: %d, want %d", tc.path, code, tc.want)
		}
	}
	// An oversized gRPC request is refused before any handler runs.
	big := &truegpuv1.RegisterNodeRequest{Address: key.Address().String(), Signature: make([]byte, 512<<10)}
	if _, err := truegpuv1.NewNodeServiceClient(cc).RegisterNode(ctx, big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("oversized request: %v", err)
	}
}

// TestDevFleet runs a small fleet and waits for an honest verdict, a
// rejected adversary and a signed report.
func TestDevFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("proves with Groth16")
	}
	c := startTest(t, FleetOptions{Honest: 1, Adversaries: []string{"garbage-h100"}})
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		st := &c.Fleet.Stats
		l := c.Leader()
		if l != nil && st.Accepted.Load() > 0 && st.Rejected.Load() > 0 {
			if es, err := l.Member.FSM().LatestEpoch(true); err == nil && len(es.Report.Signatures) >= int(es.Report.Threshold) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	st := &c.Fleet.Stats
	t.Fatalf("fleet made no progress: registered %d, challenges %d, accepted %d, rejected %d, errors %d",
		st.Registered.Load(), st.Challenges.Load(), st.Accepted.Load(), st.Rejected.Load(), st.Errors.Load())
}

// TestStreamChallenges opens a challenge stream on a follower and receives
// a challenge the leader's scheduler issues.
func TestStreamChallenges(t *testing.T) {
	c := startTest(t, FleetOptions{})
	key := attest.NodeKeyFromSeed([]byte("stream test node"))
	var follower, leader *Node
	for _, n := range c.Nodes {
		if n.Member.IsLeader() {
			leader = n
		} else {
			follower = n
		}
	}
	lc, err := grpc.NewClient(leader.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := &truegpuv1.RegisterNodeRequest{Address: key.Address().String(), TimestampUnixMs: time.Now().UnixMilli(), Cluster: oracle.DefaultClusterID, Devices: []*truegpuv1.Device{
		{ClaimedClass: "RTX-4090", Fingerprint: &truegpuv1.DeviceFingerprint{Uuid: "GPU-stream-1"}}}}
	if err := key.Sign(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := truegpuv1.NewNodeServiceClient(lc).RegisterNode(ctx, reg); err != nil {
		t.Fatal(err)
	}
	fc, err := grpc.NewClient(follower.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Close()
	sreq := &truegpuv1.StreamChallengesRequest{Address: key.Address().String(), TimestampUnixMs: time.Now().UnixMilli(), Cluster: oracle.DefaultClusterID}
	if err := key.Sign(sreq); err != nil {
		t.Fatal(err)
	}
	var stream truegpuv1.NodeService_StreamChallengesClient
	for {
		stream, err = truegpuv1.NewNodeServiceClient(fc).StreamChallenges(ctx, sreq)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := stream.Recv()
		if status.Code(err) == codes.PermissionDenied { // registration not applied on the follower yet
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ch := resp.Challenge
		if ch.Address != key.Address().String() || ch.DeviceUuid != "GPU-stream-1" || len(ch.Nonce) != 32 || ch.Params.GetM() == 0 ||
			ch.CommitDeadlineUnixMs <= ch.IssuedAtUnixMs {
			t.Fatalf("challenge %v", ch)
		}
		return
	}
}
