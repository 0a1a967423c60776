package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/truegpu/truegpu/client"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

func dial(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.Dial(addr, client.Options{Insecure: true, Backoff: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestDialRefusesPlaintextToRemote(t *testing.T) {
	if _, err := client.Dial("10.1.2.3:9090", client.Options{Insecure: true}); !errors.Is(err, client.ErrInsecureRemote) {
		t.Errorf("plaintext to 10.1.2.3: %v, want ErrInsecureRemote", err)
	}
	if _, err := client.Dial("127.0.0.1:9090", client.Options{}); !errors.Is(err, client.ErrNoTransportSecurity) {
		t.Errorf("no TLS and no Insecure: %v, want ErrNoTransportSecurity", err)
	}
	for _, addr := range []string{"127.0.0.1:1", "localhost:1", "[::1]:1"} {
		c, err := client.Dial(addr, client.Options{Insecure: true})
		if err != nil {
			t.Errorf("plaintext to %s: %v", addr, err)
			continue
		}
		c.Close()
	}
}

// TestNodesPaging pages one node at a time and gets what one large page
// gets, in address order; filters and orderings run on the server.
func TestNodesPaging(t *testing.T) {
	c := dial(t, server)
	ctx := t.Context()
	all, err := c.ListNodes(ctx, client.NodeQuery{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var paged []string
	for n, err := range c.Nodes(ctx, client.NodeQuery{PageSize: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, n.Address)
	}
	var want []string
	for _, n := range all {
		want = append(want, n.Address)
	}
	if len(want) != 5 || !slices.Equal(paged, want) || !slices.IsSorted(paged) {
		t.Errorf("paged %v, one page %v; want the same 5 addresses in order", paged, want)
	}

	best, err := c.ListNodes(ctx, client.NodeQuery{Status: truegpuv1.NodeStatus_NODE_STATUS_TRUSTED, Class: "H100-SXM", OrderBy: client.OrderByScoreDesc, PageSize: 1}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(best) != 2 || best[0].ScoreBp < best[1].ScoreBp {
		t.Errorf("two best trusted H100 nodes: %v", best)
	}
	for _, n := range best {
		if n.Status != truegpuv1.NodeStatus_NODE_STATUS_TRUSTED || !slices.Contains(n.Classes, "H100-SXM") {
			t.Errorf("filter let through %v", n)
		}
	}

	// Breaking out of the loop stops paging.
	calls := 0
	for range c.Nodes(ctx, client.NodeQuery{PageSize: 1}) {
		calls++
		break
	}
	if calls != 1 {
		t.Errorf("loop ran %d times after break", calls)
	}

	node, err := c.Node(ctx, all[0].Address, true)
	if err != nil || node.Address != all[0].Address {
		t.Errorf("Node(%s, linearizable): %v, %v", all[0].Address, node, err)
	}
}

// redirector answers every ListNodes as a member that does not lead and
// names the leader, as a member answers a forwarded call.
type redirector struct {
	truegpuv1.UnimplementedReputationServiceServer
	leader string
	calls  atomic.Int32
}

func (r *redirector) ListNodes(context.Context, *truegpuv1.ListNodesRequest) (*truegpuv1.ListNodesResponse, error) {
	r.calls.Add(1)
	return nil, status.Error(codes.Unavailable, "oracle: not the leader; the leader is member-1 at "+r.leader)
}

// TestLeaderRedirect follows a member's "the leader is X at ADDR" answer
// to the leader.
func TestLeaderRedirect(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	leader := dev.Leader()
	if leader == nil {
		t.Fatal("no leader")
	}
	r := &redirector{leader: leader.GRPCAddr}
	srv := grpc.NewServer()
	truegpuv1.RegisterReputationServiceServer(srv, r)
	go srv.Serve(lis)
	defer srv.Stop()

	c := dial(t, lis.Addr().String())
	nodes, err := c.ListNodes(t.Context(), client.NodeQuery{}, 0)
	if err != nil || len(nodes) != 5 {
		t.Fatalf("ListNodes through a redirecting member: %d nodes, %v", len(nodes), err)
	}
	if r.calls.Load() != 1 {
		t.Errorf("the redirecting member was called %d times, want 1", r.calls.Load())
	}
	id, addr, ok := client.LeaderHint(status.Error(codes.Unavailable, "oracle: not the leader; the leader is member-1 at "+leader.GRPCAddr))
	if !ok || id != "member-1" || addr != leader.GRPCAddr {
		t.Errorf("LeaderHint: %q %q %v", id, addr, ok)
	}
	if _, _, ok := client.LeaderHint(status.Error(codes.NotFound, "the leader is x at y")); ok {
		t.Error("LeaderHint accepted a NotFound error")
	}
}

// TestVerifyFeedRejectsTampering checks the offline checks catch a changed
// report, untrusted signers, a short threshold, and a changed leaf.
func TestVerifyFeedRejectsTampering(t *testing.T) {
	c := dial(t, server)
	ctx := t.Context()
	r, err := c.LatestReport(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	trust := client.Trust{Signers: trustedSigners}
	if err := client.VerifyReport(r, trust); err != nil {
		t.Fatalf("genuine report: %v", err)
	}
	tampered := proto.Clone(r).(*truegpuv1.EpochReport)
	tampered.Root[0] ^= 1
	if err := client.VerifyReport(tampered, trust); !errors.Is(err, client.ErrReportInvalid) {
		t.Errorf("report with another root: %v", err)
	}
	tampered = proto.Clone(r).(*truegpuv1.EpochReport)
	tampered.Digest = nil // recomputed from the fields: the signatures no longer match
	tampered.Count++
	if err := client.VerifyReport(tampered, trust); !errors.Is(err, client.ErrReportInvalid) {
		t.Errorf("report with another count: %v", err)
	}
	if err := client.VerifyReport(r, client.Trust{Signers: trustedSigners[:1], Threshold: 1}); !errors.Is(err, client.ErrReportInvalid) {
		t.Errorf("signatures by members outside the trusted set: %v", err)
	}
	if err := client.VerifyReport(r, client.Trust{Signers: trustedSigners, Threshold: len(r.Signatures) + 1}); !errors.Is(err, client.ErrReportInvalid) {
		t.Errorf("threshold above the signatures: %v", err)
	}

	nodes, err := c.ListNodes(ctx, client.NodeQuery{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		p, err := c.NodeProof(ctx, r.Epoch, n.Address)
		if err != nil {
			t.Fatal(err)
		}
		if err := client.VerifyNodeProof(r, p); err != nil {
			t.Errorf("%s: %v", n.Address, err)
		}
		forged := proto.Clone(p).(*truegpuv1.GetNodeProofResponse)
		forged.ScoreBp = 10000
		forged.Status = truegpuv1.NodeStatus_NODE_STATUS_TRUSTED
		forged.Leaf = nil
		if forged.ScoreBp != p.ScoreBp || forged.Status != p.Status {
			if err := client.VerifyNodeProof(r, forged); !errors.Is(err, client.ErrProofInvalid) {
				t.Errorf("%s with a forged score: %v", n.Address, err)
			}
		}
	}
}

// TestWatchReconnects watches through a proxy whose connections are cut
// while the stream is open, as a member restart or a network failure
// would: the watch reports the broken stream, reopens it and keeps
// delivering changes.
func TestWatchReconnects(t *testing.T) {
	p := newProxy(t, server)
	c := dial(t, p.addr())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var reconnects, after atomic.Int32
	var cut atomic.Bool
	first := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() {
		done <- c.WatchScores(ctx, client.WatchOptions{OnReconnect: func(error) { reconnects.Add(1) }}, func(ch *truegpuv1.ScoreChange) error {
			select {
			case first <- struct{}{}:
			default:
			}
			if cut.Load() && reconnects.Load() > 0 && after.Add(1) == 3 {
				return errStop
			}
			return nil
		})
	}()
	select {
	case <-first:
	case <-ctx.Done():
		t.Fatal("no score change arrived")
	}
	cut.Store(true)
	p.cut()
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("watch ended with %v after %d reconnects and %d changes since", err, reconnects.Load(), after.Load())
	}
}

var errStop = errors.New("enough changes")

// proxy forwards TCP connections to a member; cut closes the open ones.
type proxy struct {
	lis   net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{lis: lis}
	t.Cleanup(func() { lis.Close(); p.cut() })
	go func() {
		for {
			in, err := lis.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
