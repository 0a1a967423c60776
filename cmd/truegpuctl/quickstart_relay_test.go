package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/truegpu/truegpu/client"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gethdev"
	"github.com/truegpu/truegpu/oracle"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/relay"
	"github.com/truegpu/truegpu/reputation"
)

var ether = new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)

// TestQuickstartRelayToGeth is the feed's whole path with real processes:
// three oracled members with mutual TLS and an attestor (the quickstart),
// signing for a TrueGPUFeed deployed on geth --dev; the relayer carries
// their reports there, and the attestor's node records its score with its
// Merkle proof in RewardPool and claims its reward once a newer report
// closes the epoch.
func TestQuickstartRelayToGeth(t *testing.T) {
	if os.Getenv("TRUEGPU_QUICKSTART_E2E") != "1" {
		t.Skip("set TRUEGPU_QUICKSTART_E2E=1 to build the binaries and run the multi-process quickstart against geth --dev")
	}
	ch := gethdev.Start(t, 6*time.Minute)
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "../oracled", "../attestor")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	// The members' signing keys exist before the members start (the
	// quickstart reuses them), so the feed can be deployed for them first.
	if err := quickstartPKI(dir); err != nil {
		t.Fatal(err)
	}
	var members []ethcrypto.Address
	for _, id := range quickstartMembers {
		k, err := ethcrypto.LoadKeyFile(filepath.Join(dir, id, "signer.key"))
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, k.Address())
	}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(members) {
		sorted = append(sorted, common.Address(m))
	}
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	feedABI, feed := deployArtifact(t, ch, "TrueGPUFeed", sorted, big.NewInt(int64(len(sorted)/2+1)), oracle.FeedParamsDigest(p, nil))
	poolABI, pool := deployArtifact(t, ch, "RewardPool", feed, ether, big.NewInt(3600))
	if _, err := ch.Send(ch.Key, &pool, new(big.Int).Mul(ether, big.NewInt(10)), nil); err != nil {
		t.Fatalf("fund the pool: %v", err)
	}

	quickstartReached = func(ctx context.Context, o quickstartOptions, node string) error {
		return relayAndClaim(ctx, t, ch, o, node, feed, feedABI, pool, poolABI)
	}
	t.Cleanup(func() { quickstartReached = nil })
	base := fmt.Sprint(20000 + (os.Getpid()+7919)%20000)
	code, stdout, stderr := runCtl(t, "quickstart", "--dir", dir, "--bin", bin, "--base-port", base, "--epoch", "3s",
		"--chain-id", ch.ID.String(), "--feed-contract", feed.Hex(), "--until", "report", "--timeout", "5m")
	if code != 0 || !strings.Contains(stdout, "has accepted verdicts and a leaf in a complete signed report") {
		t.Fatalf("quickstart: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// deployArtifact deploys a compiled contract of contracts/build.
func deployArtifact(t *testing.T, ch *gethdev.Chain, name string, args ...any) (*abi.ABI, common.Address) {
	t.Helper()
	a, code := loadArtifactFile(t, name)
	enc, err := a.Pack("", args...)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ch.Send(ch.Key, nil, nil, append(code, enc...))
	if err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
	return a, rc.ContractAddress
}

func view(ch *gethdev.Chain, a *abi.ABI, to common.Address, method string, args ...any) ([]any, error) {
	data, err := a.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	raw, err := ch.Call(to, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return a.Unpack(method, raw)
}

// relayAndClaim runs while the quickstart's processes run.
func relayAndClaim(ctx context.Context, t *testing.T, ch *gethdev.Chain, o quickstartOptions, node string,
	feed common.Address, feedABI *abi.ABI, pool common.Address, poolABI *abi.ABI) error {
	pem, err := os.ReadFile(filepath.Join(o.dir, "pki", "ca.pem"))
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	src, err := client.Dial(o.grpcAddr(2), client.Options{TLS: &tls.Config{RootCAs: roots}})
	if err != nil {
		return err
	}
	defer src.Close()
	key, err := relay.LoadKey(ch.KeyFile, ch.PasswordFile)
	if err != nil {
		return err
	}
	chainEpoch := func() (uint64, error) {
		out, err := view(ch, feedABI, feed, "latestEpoch")
		if err != nil {
			return 0, err
		}
		return out[0].(uint64), nil
	}
	// relayUntil runs a relayer until done holds for the chain's epoch.
	relayUntil := func(done func(e uint64, m *relay.Metrics) bool) (uint64, error) {
		m := relay.NewMetrics(prometheus.NewRegistry())
		r, err := relay.New(ctx, src, ch.Client, relay.Config{
			Feed: feed, Key: key, ChainID: ch.ID, Poll: 500 * time.Millisecond, Backoff: 200 * time.Millisecond,
			ReceiptTimeout: 30 * time.Second, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return 0, err
		}
		rctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() { defer close(stopped); r.Run(rctx) }()
		defer func() { cancel(); <-stopped }()
		for {
			e, err := chainEpoch()
			if err != nil {
				return 0, err
			}
			if done(e, m) {
				return e, nil
			}
			select {
			case <-ctx.Done():
				return e, fmt.Errorf("relaying: chain at epoch %d when the time ran out", e)
			case <-time.After(300 * time.Millisecond):
			}
		}
	}
	eligible := func(pr *truegpuv1.GetNodeProofResponse) bool {
		return pr.ScoreBp > 0 && (pr.Status == truegpuv1.NodeStatus_NODE_STATUS_TRUSTED || pr.Status == truegpuv1.NodeStatus_NODE_STATUS_PROBATION)
	}
	_, err = relayUntil(func(e uint64, m *relay.Metrics) bool {
		if e == 0 || uint64(testutil.ToFloat64(m.LastRelayed)) != e {
			return false
		}
		pr, err := src.NodeProof(ctx, e, node)
		return err == nil && eligible(pr)
	})
	if err != nil {
		return err
	}

	nk, err := ethcrypto.LoadKeyFile(filepath.Join(o.dir, "attestor", "node.key"))
	if err != nil {
		return err
	}
	nodeKey, err := crypto.ToECDSA(nk.Bytes())
	if err != nil {
		return err
	}
	nodeAddr := crypto.PubkeyToAddress(nodeKey.PublicKey)
	if !strings.EqualFold(nodeAddr.Hex(), node) {
		return fmt.Errorf("attestor/node.key is %s, the node %s", nodeAddr.Hex(), node)
	}
	if _, err := ch.Send(ch.Key, &nodeAddr, ether, nil); err != nil {
		return fmt.Errorf("fund the node: %w", err)
	}
	// Record against the chain's report; again if a transaction the
	// stopped relayer sent was mined after the proof was read.
	var e uint64
	for try := 1; ; try++ {
		if e, err = chainEpoch(); err != nil {
			return err
		}
		rep, err := src.Report(ctx, e)
		if err != nil {
			return err
		}
		pr, err := src.NodeProof(ctx, e, node)
		if err != nil {
			return err
		}
		if err := client.VerifyNodeProof(rep, pr); err != nil {
			return err
		}
		proof := make([][32]byte, len(pr.Proof))
		for i, h := range pr.Proof {
			proof[i] = [32]byte(h)
		}
		data, err := poolABI.Pack("record", nodeAddr, big.NewInt(int64(pr.ScoreBp)), uint8(pr.Status), proof)
		if err != nil {
			return err
		}
		_, err = ch.Send(nodeKey, &pool, nil, data)
		if err == nil {
			break
		}
		if now, _ := chainEpoch(); try == 3 || now == e {
			return fmt.Errorf("record node %s's score %d (%v) in epoch %d: %w", node, pr.ScoreBp, pr.Status, e, err)
		}
	}
	// The next report closes epoch e.
	if _, err := relayUntil(func(now uint64, _ *relay.Metrics) bool { return now > e }); err != nil {
		return err
	}
	before, err := ch.Client.BalanceAt(ctx, nodeAddr, nil)
	if err != nil {
		return err
	}
	data, err := poolABI.Pack("claim", e, nodeAddr)
	if err != nil {
		return err
	}
	rc, err := ch.Send(nodeKey, &pool, nil, data)
	if err != nil {
		return fmt.Errorf("claim epoch %d: %w", e, err)
	}
	after, err := ch.Client.BalanceAt(ctx, nodeAddr, nil)
	if err != nil {
		return err
	}
	fee := new(big.Int).Mul(new(big.Int).SetUint64(rc.GasUsed), rc.EffectiveGasPrice)
	if got := new(big.Int).Add(new(big.Int).Sub(after, before), fee); got.Cmp(ether) != 0 {
		return fmt.Errorf("node %s received %v wei for epoch %d, want the whole budget %v", node, got, e, ether)
	}
	t.Logf("node %s recorded its score in epoch %d and claimed %v wei", node, e, ether)
	return nil
}
