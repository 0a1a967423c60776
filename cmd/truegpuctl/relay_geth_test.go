package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gethdev"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/devcluster"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/relay"
	"github.com/truegpu/truegpu/reputation"
)

// TestFeedRelayOnceToGeth runs the command itself (flags, keystore file,
// JSON-RPC dial) against geth --dev: it relays a dev cluster's report to a
// feed deployed from contracts/build, and a second run finds nothing to do.
func TestFeedRelayOnceToGeth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs geth and an oracle cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ch := gethdev.Start(t, 4*time.Minute)

	feedABI, code := loadArtifactFile(t, "TrueGPUFeed")
	const n = 3
	var members []ethcrypto.Address
	for i := range n {
		members = append(members, devcluster.MemberKey(i).Address())
	}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(members) {
		sorted = append(sorted, common.Address(m))
	}
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	args, err := feedABI.Pack("", sorted, big.NewInt(n/2+1), oracle.FeedParamsDigest(p, nil))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ch.Send(ch.Key, nil, nil, append(code, args...))
	if err != nil {
		t.Fatalf("deploy the feed: %v", err)
	}
	feed := rc.ContractAddress

	dc, err := devcluster.Start(ctx, devcluster.Options{
		Members: n, HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", EpochInterval: time.Second,
		Domain: reputation.NewDomain(ch.ID.Uint64(), ethcrypto.Address(feed)),
		Logger: slog.New(slog.DiscardHandler), RaftLog: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	for {
		if l := dc.Leader(); l != nil {
			if es, err := l.Member.FSM().LatestEpoch(true); err == nil && es.Report.Epoch > 0 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatal("the cluster closed no complete report before the deadline")
		}
		time.Sleep(100 * time.Millisecond)
	}

	relayOnce := func() string {
		t.Helper()
		var out, errOut bytes.Buffer
		code := run([]string{"feed", "relay", "--once", "--server", dc.Nodes[0].GRPCAddr, "--rpc", ch.URL,
			"--feed-contract", feed.Hex(), "--keystore", ch.KeyFile, "--password", ch.PasswordFile,
			"--chain-id", ch.ID.String(), "--max-fee-per-gas", "100gwei", "--backoff", "200ms"}, &out, &errOut)
		if code != 0 {
			t.Fatalf("feed relay --once: exit %d\n%s%s", code, out.String(), errOut.String())
		}
		return out.String()
	}
	chainEpoch := func() uint64 {
		data, _ := feedABI.Pack("latestEpoch")
		raw, err := ch.Call(feed, data)
		if err != nil {
			t.Fatal(err)
		}
		v, err := feedABI.Unpack("latestEpoch", raw)
		if err != nil {
			t.Fatal(err)
		}
		return v[0].(uint64)
	}

	out := relayOnce()
	e := chainEpoch()
	if e == 0 || !strings.Contains(out, "epoch "+strconv.FormatUint(e, 10)+": "+string(relay.Relayed)) {
		t.Fatalf("after feed relay --once the chain is at epoch %d; the command printed:\n%s", e, out)
	}
	// Again: what the chain has is skipped, newer reports are relayed.
	out = relayOnce()
	if !strings.Contains(out, "epoch "+strconv.FormatUint(e, 10)+": "+string(relay.SkippedOnChain)) {
		t.Fatalf("a second run did not skip epoch %d as on chain:\n%s", e, out)
	}

	// A feed the members do not sign for: every report fails its domain
	// check and nothing is sent.
	args, _ = feedABI.Pack("", sorted, big.NewInt(n/2+1), oracle.FeedParamsDigest(p, nil))
	rc, err = ch.Send(ch.Key, nil, nil, append(code, args...))
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	c := run([]string{"feed", "relay", "--once", "--server", dc.Nodes[0].GRPCAddr, "--rpc", ch.URL,
		"--feed-contract", rc.ContractAddress.Hex(), "--keystore", ch.KeyFile, "--password", ch.PasswordFile, "--max-backlog", "1"}, &stdout, &stderr)
	if c != 1 || !strings.Contains(stdout.String(), string(relay.FailedDomain)) || !strings.Contains(stderr.String(), "-feed-contract") {
		t.Fatalf("relaying to another feed: exit %d\n%s%s", c, stdout.String(), stderr.String())
	}
}

// loadArtifactFile reads a compiled contract of contracts/build (a separate
// module, so the file rather than its package): its ABI and creation code.
func loadArtifactFile(t *testing.T, name string) (*abi.ABI, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "contracts", "build", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(raw, &art); err != nil {
		t.Fatal(err)
	}
	a, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		t.Fatal(err)
	}
	code, err := hex.DecodeString(strings.TrimPrefix(art.Bytecode, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return &a, code
}
