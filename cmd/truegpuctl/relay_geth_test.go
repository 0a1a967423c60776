package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/internal/gethdev"
	"github.com/truegpu/truegpu/oracle"
	"github.com/truegpu/truegpu/oracle/devcluster"
	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
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
	// The relayer reads member 0, which may apply the leader's complete
	// report a moment after the leader: wait for it there. An epoch that
	// closed before every member had registered its signing key carries
	// another configuration digest, which the feed rightly refuses: wait
	// for a report under the configuration the feed was deployed with.
	want := reputation.ConfigDigest(members, n/2+1, oracle.FeedParamsDigest(p, nil))
	for {
		if es, err := dc.Nodes[0].Member.FSM().LatestEpoch(true); err == nil && es.Report.Epoch > 0 && bytes.Equal(es.Report.ConfigDigest, want[:]) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the cluster closed no complete report under the feed's configuration before the deadline")
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

	// The long-running relayer serves its metrics at --metrics-addr: a
	// scrape shows the feed's epoch it read and the pause flag; SIGINT
	// stops it with status 0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	var runOut, runErr bytes.Buffer
	exited := make(chan int, 1)
	go func() {
		exited <- run([]string{"feed", "relay", "--server", dc.Nodes[0].GRPCAddr, "--rpc", ch.URL,
			"--feed-contract", feed.Hex(), "--keystore", ch.KeyFile, "--password", ch.PasswordFile,
			"--max-fee-per-gas", "100gwei", "--poll", "200ms", "--metrics-addr", metricsAddr}, &runOut, &runErr)
	}()
	var scraped string
	for {
		if body, err := httpGet("http://" + metricsAddr + "/metrics"); err == nil {
			scraped = body
			if v, ok := metricValue(body, "truegpu_relay_chain_epoch"); ok && v >= float64(e) {
				break
			}
		}
		select {
		case code := <-exited:
			t.Fatalf("feed relay exited with %d before its metrics showed the feed's epoch %d:\n%s", code, e, runErr.String())
		default:
		}
		if ctx.Err() != nil {
			t.Fatalf("the relayer's metrics never showed the feed's epoch %d; last scrape:\n%s\n%s", e, scraped, runErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, ok := metricValue(scraped, "truegpu_relay_feed_paused"); !ok || v != 0 {
		t.Fatalf("truegpu_relay_feed_paused = %v (present %v), want 0", v, ok)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := <-exited; code != 0 {
		t.Fatalf("feed relay after SIGINT: exit %d\n%s", code, runErr.String())
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

// httpGet returns the body of a 200 response.
func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// metricValue reads an unlabelled sample from a Prometheus text exposition.
func metricValue(body, name string) (float64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestFeedUpdateConfigOnGeth rotates a deployed feed's members with the
// commands: two of three current members sign with feed
// sign-config-update (reading the feed's configuration at --rpc), feed
// update-config sends the change; the feed then has the new digest and
// version, accepts a report of the new members and refuses one of the old
// configuration; the same signatures sent again are refused before any
// transaction.
func TestFeedUpdateConfigOnGeth(t *testing.T) {
	if testing.Short() {
		t.Skip("runs geth")
	}
	ch := gethdev.Start(t, 3*time.Minute)
	feedABI, code := loadArtifactFile(t, "TrueGPUFeed")
	dir := t.TempDir()
	var keys []*ethcrypto.PrivateKey
	var old []ethcrypto.Address
	for i := range 3 {
		keys = append(keys, devcluster.MemberKey(i))
		old = append(old, keys[i].Address())
	}
	params := [32]byte{0x42}
	var sorted []common.Address
	for _, m := range reputation.SortedMembers(old) {
		sorted = append(sorted, common.Address(m))
	}
	args, err := feedABI.Pack("", sorted, big.NewInt(2), params)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ch.Send(ch.Key, nil, nil, append(code, args...))
	if err != nil {
		t.Fatalf("deploy the feed: %v", err)
	}
	feed := rc.ContractAddress
	dom := reputation.NewDomain(ch.ID.Uint64(), ethcrypto.Address(feed))

	newKey := ethcrypto.KeyFromSeed([]byte("new member"))
	next := []ethcrypto.Address{keys[1].Address(), keys[2].Address(), newKey.Address()}
	var nextFlag []string
	for _, m := range next {
		nextFlag = append(nextFlag, m.Hex())
	}
	cfgFlags := []string{"--rpc", ch.URL, "--feed-contract", feed.Hex(), "--members", strings.Join(nextFlag, ","),
		"--threshold", "2", "--params-digest", hex.EncodeToString(params[:])}
	var sigs []string
	for i := range 2 {
		kf := filepath.Join(dir, fmt.Sprint("member-", i, ".key"))
		if err := ethcrypto.SaveKeyFile(kf, keys[i]); err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if c := run(append([]string{"feed", "sign-config-update", "--signer-key", kf}, cfgFlags...), &out, &errOut); c != 0 {
			t.Fatalf("sign-config-update: exit %d\n%s", c, errOut.String())
		}
		sigs = append(sigs, strings.TrimSpace(out.String()))
	}
	update := func() (int, string, string) {
		var out, errOut bytes.Buffer
		c := run(append([]string{"feed", "update-config", "--keystore", ch.KeyFile, "--password", ch.PasswordFile,
			"--chain-id", ch.ID.String(), "--signature", strings.Join(sigs, ",")}, cfgFlags...), &out, &errOut)
		return c, out.String(), errOut.String()
	}
	newDigest := reputation.ConfigDigest(next, 2, params)
	if c, out, errOut := update(); c != 0 || !strings.Contains(out, "config version 2") || !strings.Contains(out, fmt.Sprintf("%x", newDigest)) {
		t.Fatalf("update-config: exit %d\n%s%s", c, out, errOut)
	}
	// Replayed: the signatures are over version 2, the feed is at 2 now.
	if c, out, errOut := update(); c != 1 || !strings.Contains(errOut, "current members") {
		t.Fatalf("update-config again: exit %d\n%s%s", c, out, errOut)
	}

	// A report under the old configuration is refused, one of the new
	// members accepted (read-only calls at the latest block).
	head, err := ch.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	submit := func(cfg [32]byte, signers ...*ethcrypto.PrivateKey) error {
		r, _, err := reputation.CloseEpoch(cfg, 1, 1, head.Time, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ss [][]byte
		for _, k := range signers {
			s, err := reputation.SignReport(k, dom, r)
			if err != nil {
				t.Fatal(err)
			}
			ss = append(ss, s[:])
		}
		data, err := relay.SubmitData(&truegpuv1.EpochReport{ConfigDigest: cfg[:], Epoch: r.Epoch, Round: r.Round, Timestamp: r.Timestamp,
			Root: r.Root[:], Count: r.Count, ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt, Signatures: []*truegpuv1.MemberSignature{{Signature: ss[0]}, {Signature: ss[1]}}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ch.Call(feed, data)
		return err
	}
	if err := submit(reputation.ConfigDigest(old, 2, params), keys[0], keys[1]); err == nil {
		t.Fatal("the feed accepts a report of the old configuration")
	}
	if err := submit(newDigest, keys[0], keys[1]); err == nil {
		t.Fatal("the feed accepts a report of the new configuration signed by a removed member")
	}
	if err := submit(newDigest, newKey, keys[2]); err != nil {
		t.Fatalf("the new members' report is refused: %v", err)
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
