package contracts

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/truegpu/truegpu/client"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gethdev"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/relay"
	"github.com/truegpu/truegpu/reputation"
)

// devChain is a geth --dev chain (internal/gethdev) with the test's
// contract helpers.
type devChain struct {
	*gethdev.Chain
	t *testing.T
}

func startGeth(t *testing.T, lifetime time.Duration) *devChain {
	return &devChain{Chain: gethdev.Start(t, lifetime), t: t}
}

// send is Send, with the custom error of a refused transaction named.
func (c *devChain) send(key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	rc, err := c.Send(key, to, value, data)
	if err != nil {
		return rc, fmt.Errorf("%w%s", err, revertData(err))
	}
	return rc, nil
}

// revertData names the custom error of a reverted eth_call or estimate.
func revertData(err error) string {
	var de interface{ ErrorData() any }
	if !errors.As(err, &de) {
		return ""
	}
	s, _ := de.ErrorData().(string)
	data := common.FromHex(s)
	for _, name := range []string{"TrueGPUFeed", "RewardPool"} {
		art, lerr := LoadArtifact(name)
		if lerr != nil {
			continue
		}
		if r := decodeRevert(data, art); r != nil && r.Name != "" {
			return " (" + r.Error() + ")"
		}
	}
	return " (revert data " + s + ")"
}

func (c *devChain) deploy(name string, args ...any) (common.Address, *abi.ABI) {
	c.t.Helper()
	art, err := LoadArtifact(name)
	if err != nil {
		c.t.Fatal(err)
	}
	data, err := art.DeployData(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	rc, err := c.send(c.Key, nil, nil, data)
	if err != nil {
		c.t.Fatalf("deploy %s: %v", name, err)
	}
	return rc.ContractAddress, &art.ABI
}

func (c *devChain) view(to common.Address, a *abi.ABI, method string, args ...any) []any {
	c.t.Helper()
	data, err := a.Pack(method, args...)
	if err != nil {
		c.t.Fatal(err)
	}
	raw, err := c.Call(to, data)
	if err != nil {
		c.t.Fatalf("%s: %v%s", method, err, revertData(err))
	}
	out, err := a.Unpack(method, raw)
	if err != nil {
		c.t.Fatal(err)
	}
	return out
}

func (c *devChain) balance(a common.Address) *big.Int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := c.Client.BalanceAt(ctx, a, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// TestRelayToGethAndClaim is the feed's path end to end: a geth dev
// chain, TrueGPUFeed and RewardPool deployed on it, an oracle cluster
// signing for that chain and feed, the relayer carrying its reports there,
// and a trusted node recording its score with its Merkle proof and then
// claiming its reward once a newer report closes the epoch.
func TestRelayToGethAndClaim(t *testing.T) {
	if testing.Short() {
		t.Skip("runs geth and an oracle cluster with a simulated fleet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	ch := startGeth(t, 5*time.Minute)
	transmitter := crypto.PubkeyToAddress(ch.Key.PublicKey)

	// The feed: the dev cluster's three members, threshold 2, the test
	// profile and the reputation parameters the cluster runs.
	const n = 3
	params := reputation.DefaultParams()
	params.ConfidenceK = reputation.Unit / 10
	params.SuspectMinNeg = 100 * reputation.Unit
	params.RejectMinNeg = 100 * reputation.Unit
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	var members []ethcrypto.Address
	for i := range n {
		members = append(members, devcluster.MemberKey(i).Address())
	}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(members) {
		sorted = append(sorted, common.Address(m))
	}
	feed, feedABI := ch.deploy("TrueGPUFeed", sorted, big.NewInt(n/2+1), reputation.FeedParamsDigest([][32]byte{p.Digest()}, params))
	budget := new(big.Int).Set(ether)
	pool, poolABI := ch.deploy("RewardPool", feed, budget, big.NewInt(3600))
	if _, err := ch.send(ch.Key, &pool, new(big.Int).Mul(ether, big.NewInt(10)), nil); err != nil {
		t.Fatalf("fund the pool: %v", err)
	}

	// The cluster signs for this chain and this feed.
	dc, err := devcluster.Start(ctx, devcluster.Options{
		Members: n, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		EpochInterval: 3 * time.Second, ChallengeInterval: 4 * time.Second, ProofWindow: time.Minute,
		Reputation: &params, Domain: reputation.NewDomain(ch.ID.Uint64(), ethcrypto.Address(feed)),
		Fleet:  devcluster.FleetOptions{Honest: 2, HonestClasses: []string{"h100"}, TimeScale: devcluster.DefaultTimeScale},
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	src, err := client.Dial(dc.Nodes[0].GRPCAddr, client.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()

	// The relayer, with the transmitter key from its keystore file.
	key, err := relay.LoadKey(ch.KeyFile, ch.PasswordFile)
	if err != nil {
		t.Fatal(err)
	}
	newRelayer := func(backlog int) (*relay.Relayer, *relay.Metrics) {
		m := relay.NewMetrics(prometheus.NewRegistry())
		r, err := relay.New(ctx, src, ch.Client, relay.Config{
			Feed: feed, Key: key, ChainID: ch.ID, Poll: 500 * time.Millisecond, Backoff: 200 * time.Millisecond,
			ReceiptTimeout: 30 * time.Second, MaxBacklog: backlog, Metrics: m,
			Logger: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		})
		if err != nil {
			t.Fatal(err)
		}
		if r.From() != transmitter {
			t.Fatalf("relayer transmits from %s, want %s", r.From(), transmitter)
		}
		return r, m
	}
	runRelayer := func(r *relay.Relayer) (stop func()) {
		rctx, rcancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.Run(rctx) }()
		return func() { rcancel(); <-done }
	}
	chainEpoch := func() uint64 { return ch.view(feed, feedABI, "latestEpoch")[0].(uint64) }

	// Relay until the chain holds a report in which a node is trusted
	// (or on probation with a positive score).
	r1, m1 := newRelayer(8)
	stop1 := runRelayer(r1)
	var (
		nodeAddr common.Address
		eligible = func(pr *truegpuv1.GetNodeProofResponse) bool {
			return pr.ScoreBp > 0 && (pr.Status == truegpuv1.NodeStatus_NODE_STATUS_TRUSTED || pr.Status == truegpuv1.NodeStatus_NODE_STATUS_PROBATION)
		}
	)
	node := dc.Fleet.Nodes[0]
	nodeAddr = common.Address(node.Key.Address())
	for {
		// The relayer has seen its own submission of the chain's epoch
		// mined, and the node is eligible in that epoch.
		if e := chainEpoch(); e > 0 && uint64(testutil.ToFloat64(m1.LastRelayed)) == e {
			if pr, err := src.NodeProof(ctx, e, nodeAddr.Hex()); err == nil && eligible(pr) {
				break
			}
		}
		if ctx.Err() != nil {
			stop1()
			t.Fatalf("no report on chain with node %s trusted or on probation before the deadline (chain epoch %d, relayed %v)",
				nodeAddr, chainEpoch(), testutil.ToFloat64(m1.Relayed))
		}
		time.Sleep(300 * time.Millisecond)
	}
	stop1()
	if got := testutil.ToFloat64(m1.Relayed); got < 1 {
		t.Fatalf("relayed counter = %v with a report on chain", got)
	}
	// The node records its score with its Merkle proof, from its own
	// account (funded by the transmitter). The relayer is stopped, so the
	// feed's latest report stays the one the proof is for, unless a
	// transaction it sent before it stopped is mined after the proof was
	// read: then the record is refused (InvalidProof) and tried again
	// against the newer report.
	nodeKey := exportNodeKey(t, node)
	if _, err := ch.send(ch.Key, &nodeAddr, ether, nil); err != nil {
		t.Fatalf("fund the node: %v", err)
	}
	var e uint64
	for try := 1; ; try++ {
		e = chainEpoch()
		rep, err := src.Report(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		// What is on chain is the cluster's report of that epoch, and
		// the relayer does not submit it again.
		onChain := ch.view(feed, feedABI, "latestReport")[0]
		if got := fmt.Sprint(onChain); !strings.Contains(got, fmt.Sprint([32]byte(rep.Root))) {
			t.Fatalf("on-chain report %v does not carry the root of the cluster's epoch %d", got, e)
		}
		if out, err := r1.Submit(ctx, rep); err != nil || out != relay.SkippedOnChain {
			t.Fatalf("submitting epoch %d again: %q, %v; want it skipped as on chain", e, out, err)
		}
		pr, err := src.NodeProof(ctx, e, nodeAddr.Hex())
		if err != nil {
			t.Fatal(err)
		}
		if err := client.VerifyNodeProof(rep, pr); err != nil {
			t.Fatal(err)
		}
		if !eligible(pr) {
			t.Fatalf("node %s is %v with score %d in epoch %d", nodeAddr, pr.Status, pr.ScoreBp, e)
		}
		proof := make([][32]byte, len(pr.Proof))
		for i, h := range pr.Proof {
			proof[i] = [32]byte(h)
		}
		data, err := poolABI.Pack("record", nodeAddr, big.NewInt(int64(pr.ScoreBp)), uint8(pr.Status), proof)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.send(nodeKey, &pool, nil, data)
		if err == nil {
			break
		}
		if try == 3 || chainEpoch() == e {
			t.Fatalf("record node %s's score %d in epoch %d: %v", nodeAddr, pr.ScoreBp, e, err)
		}
	}

	// A restarted relayer skips what the chain has and relays the next
	// report, which closes epoch e.
	r2, m2 := newRelayer(1 << 20)
	stop2 := runRelayer(r2)
	for chainEpoch() <= e {
		if ctx.Err() != nil {
			stop2()
			t.Fatalf("no report after epoch %d reached the chain before the deadline", e)
		}
		time.Sleep(300 * time.Millisecond)
	}
	stop2()
	if got := testutil.ToFloat64(m2.Skipped.WithLabelValues(string(relay.SkippedOnChain))); got < float64(e) {
		t.Fatalf("the restarted relayer skipped %v epochs as on chain, want at least %d", got, e)
	}

	// The node claims its share: it is the only one recorded, so the
	// whole budget.
	before := ch.balance(nodeAddr)
	data, err := poolABI.Pack("claim", e, nodeAddr)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ch.send(nodeKey, &pool, nil, data)
	if err != nil {
		t.Fatalf("claim epoch %d for %s: %v", e, nodeAddr, err)
	}
	fee := new(big.Int).Mul(new(big.Int).SetUint64(rc.GasUsed), rc.EffectiveGasPrice)
	got := new(big.Int).Add(new(big.Int).Sub(ch.balance(nodeAddr), before), fee)
	if got.Cmp(budget) != 0 {
		t.Fatalf("node %s received %v wei for epoch %d, want the budget %v", nodeAddr, got, e, budget)
	}
	if claimed := ch.view(pool, poolABI, "claimed", e, nodeAddr)[0].(bool); !claimed {
		t.Fatal("the pool does not record the claim")
	}
}

// exportNodeKey returns a simulated node's private key (through its key
// file, as an operator would move it to a wallet).
func exportNodeKey(t *testing.T, n *devcluster.SimNode) *ecdsa.PrivateKey {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.key")
	if err := n.Key.Save(path); err != nil {
		t.Fatal(err)
	}
	k, err := ethcrypto.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := crypto.ToECDSA(k.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if crypto.PubkeyToAddress(ek.PublicKey) != common.Address(n.Key.Address()) {
		t.Fatal("the exported node key does not match the node's address")
	}
	return ek
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRelayABIMatchesArtifact: the relayer's embedded feed ABI is the
// compiled contract's.
func TestRelayABIMatchesArtifact(t *testing.T) {
	art, err := LoadArtifact("TrueGPUFeed")
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range art.ABI.Methods {
		if rm, ok := relay.FeedABI.Methods[name]; !ok || rm.Sig != m.Sig || rm.String() != m.String() {
			t.Errorf("method %s: relay has %v, artifact %v", name, rm, m)
		}
	}
	for name, e := range art.ABI.Errors {
		if re, ok := relay.FeedABI.Errors[name]; !ok || re.ID != e.ID {
			t.Errorf("error %s: relay's differs from the artifact's", name)
		}
	}
	if len(relay.FeedABI.Methods) != len(art.ABI.Methods) || len(relay.FeedABI.Errors) != len(art.ABI.Errors) {
		t.Errorf("relay's ABI has %d methods and %d errors, the artifact %d and %d (copy contracts/build/TrueGPUFeed.json's abi to relay/feed_abi.json)",
			len(relay.FeedABI.Methods), len(relay.FeedABI.Errors), len(art.ABI.Methods), len(art.ABI.Errors))
	}
}
