package contracts

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/reputation"
)

// clusterReport runs an in-process oracle cluster of n members whose
// reports are for domain, and returns its first complete report signed by
// all n members' signer rows.
func clusterReport(t *testing.T, n int, domain reputation.Domain) *truegpuv1.EpochReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := devcluster.Start(ctx, devcluster.Options{
		Members: n, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", EpochInterval: time.Second,
		Domain: domain, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for ctx.Err() == nil {
		if l := c.Leader(); l != nil {
			if es, err := l.Member.FSM().LatestEpoch(true); err == nil && len(es.Report.Signers) == n {
				return es.Report
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no complete report signed under all %d members within the deadline", n)
	return nil
}

func reportArgs(r *truegpuv1.EpochReport) (abiReport, [][]byte) {
	var sigs [][]byte
	for _, s := range r.Signatures {
		sigs = append(sigs, s.Signature)
	}
	return abiReport{[32]byte(r.ConfigDigest), r.Epoch, r.Round, r.Timestamp, [32]byte(r.Root), r.Count, r.ValidFrom, r.ExpiresAt}, sigs
}

// TestFeedAcceptsClusterReport: a report a running oracle cluster closed
// and its members signed is accepted by a feed contract deployed for that
// cluster's members, threshold, profile and reputation parameters on that
// chain; a report of a cluster configured for another chain, and one of
// another cluster, are refused.
func TestFeedAcceptsClusterReport(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three in-process oracle clusters")
	}
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	const n = 3
	var members []ethcrypto.Address
	for i := range n {
		members = append(members, devcluster.MemberKey(i).Address())
	}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(members) {
		sorted = append(sorted, addr(m))
	}
	ch := newChain(t)
	feed, _ := ch.deploy("TrueGPUFeed", sorted, big.NewInt(n/2+1), oracle.FeedParamsDigest(p, nil))
	here := reputation.NewDomain(chainID, ethcrypto.Address(feed.addr))

	// Another chain: the members' signatures recover to other addresses
	// (checked at the chain time of the cluster's reports).
	ch.time = uint64(time.Now().Unix())
	r, sigs := reportArgs(clusterReport(t, n, reputation.NewDomain(chainID+1, ethcrypto.Address(feed.addr))))
	_, _, err = feed.call(nil, "submit", r, sigs)
	wantRevert(t, err, "NotMember")
	// Another cluster (four members): another config digest.
	r, sigs = reportArgs(clusterReport(t, n+1, here))
	_, _, err = feed.call(nil, "submit", r, sigs)
	wantRevert(t, err, "WrongConfigDigest")

	report := clusterReport(t, n, here)
	r, sigs = reportArgs(report)
	// The cluster's window: the report is refused before and after it.
	if report.ValidFrom >= report.Timestamp || report.ExpiresAt <= report.Timestamp {
		t.Fatalf("the cluster's report is valid from %d until %d, timestamp %d", report.ValidFrom, report.ExpiresAt, report.Timestamp)
	}
	ch.time = report.ValidFrom - 1
	_, _, err = feed.call(nil, "submit", r, sigs)
	wantRevert(t, err, "ReportNotYetValid")
	ch.time = report.ExpiresAt + 1
	_, _, err = feed.call(nil, "submit", r, sigs)
	wantRevert(t, err, "ReportExpired")
	ch.time = report.Timestamp
	if _, _, err := feed.call(nil, "submit", r, sigs); err != nil {
		t.Fatalf("the cluster's own report was refused: %v", err)
	}
	out, _ := feed.mustCall("latestEpoch")
	if out[0].(uint64) != report.Epoch {
		t.Fatalf("latestEpoch = %v, want %d", out[0], report.Epoch)
	}
}
