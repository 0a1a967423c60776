package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

var (
	feedAddr = common.HexToAddress("0x00000000000000000000000000000000000fEED0")
	testID   = big.NewInt(1337)
)

// fakeChain is a feed contract that accepts any strictly newer epoch.
type fakeChain struct {
	mu        sync.Mutex
	epoch     uint64
	failSends int    // the next failSends sends fail
	revert    []byte // EstimateGas reverts with this data when set
	receipts  map[common.Hash]*types.Receipt
	sent      []*types.Transaction
	paused    bool
	now       uint64 // the latest block's time; 0 means 1000
	// The feed's configuration, for ReadFeedConfig and UpdateConfig.
	cfgDigest  [32]byte
	cfgVersion uint64
	members    []common.Address
	threshold  int64
	updates    [][]any // decoded updateConfig arguments
}

type dataErr struct{ data string }

func (e dataErr) Error() string  { return "execution reverted" }
func (e dataErr) ErrorData() any { return e.data }

func (c *fakeChain) ChainID(context.Context) (*big.Int, error) { return testID, nil }
func (c *fakeChain) CodeAt(_ context.Context, a common.Address, _ *big.Int) ([]byte, error) {
	if a == feedAddr {
		return []byte{1}, nil
	}
	return nil, nil
}
func (c *fakeChain) CallContract(_ context.Context, msg ethereum.CallMsg, _ *big.Int) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, err := FeedABI.MethodById(msg.Data)
	if err != nil {
		return nil, errors.New("unexpected call")
	}
	switch m.Name {
	case "latestEpoch":
		return m.Outputs.Pack(c.epoch)
	case "paused":
		return m.Outputs.Pack(c.paused)
	case "configDigest":
		return m.Outputs.Pack(c.cfgDigest)
	case "configVersion":
		return m.Outputs.Pack(c.cfgVersion)
	case "getMembers":
		return m.Outputs.Pack(c.members)
	case "threshold":
		return m.Outputs.Pack(big.NewInt(c.threshold))
	}
	return nil, errors.New("unexpected call of " + m.Name)
}
func (c *fakeChain) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now
	if now == 0 {
		now = 1000
	}
	return &types.Header{BaseFee: big.NewInt(1000), Time: now}, nil
}
func (c *fakeChain) SuggestGasTipCap(context.Context) (*big.Int, error) { return big.NewInt(10), nil }
func (c *fakeChain) EstimateGas(_ context.Context, msg ethereum.CallMsg) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revert != nil {
		return 0, dataErr{"0x" + common.Bytes2Hex(c.revert)}
	}
	return 100_000, nil
}
func (c *fakeChain) PendingNonceAt(context.Context, common.Address) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return uint64(len(c.sent)), nil
}
func (c *fakeChain) SendTransaction(_ context.Context, tx *types.Transaction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failSends > 0 {
		c.failSends--
		return errors.New("connection refused")
	}
	if c.receipts == nil {
		c.receipts = map[common.Hash]*types.Receipt{}
	}
	if m, err := FeedABI.MethodById(tx.Data()); err == nil && m.Name == "updateConfig" {
		args, err := m.Inputs.Unpack(tx.Data()[4:])
		if err != nil {
			return err
		}
		c.updates = append(c.updates, args)
		c.receipts[tx.Hash()] = &types.Receipt{Status: types.ReceiptStatusSuccessful, TxHash: tx.Hash(), BlockNumber: big.NewInt(int64(len(c.sent) + 1))}
		c.sent = append(c.sent, tx)
		return nil
	}
	args, err := FeedABI.Methods["submit"].Inputs.Unpack(tx.Data()[4:])
	if err != nil {
		return err
	}
	e := args[0].(struct {
		ConfigDigest [32]uint8 `json:"configDigest"`
		Epoch        uint64    `json:"epoch"`
		Round        uint64    `json:"round"`
		Timestamp    uint64    `json:"timestamp"`
		Root         [32]uint8 `json:"root"`
		Count        uint64    `json:"count"`
		ValidFrom    uint64    `json:"validFrom"`
		ExpiresAt    uint64    `json:"expiresAt"`
	}).Epoch
	st := types.ReceiptStatusFailed
	if e > c.epoch {
		c.epoch, st = e, types.ReceiptStatusSuccessful
	}
	c.receipts[tx.Hash()] = &types.Receipt{Status: st, TxHash: tx.Hash(), GasUsed: 50_000, BlockNumber: big.NewInt(int64(len(c.sent) + 1))}
	c.sent = append(c.sent, tx)
	return nil
}
func (c *fakeChain) TransactionReceipt(_ context.Context, h common.Hash) (*types.Receipt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.receipts[h]; ok {
		return r, nil
	}
	return nil, ethereum.NotFound
}

// fakeSource is a cluster with complete reports up to latest, except
// those listed incomplete.
type fakeSource struct {
	latest     uint64
	incomplete map[uint64]bool
	domain     *truegpuv1.Eip712Domain
	// validFrom and expiresAt are every report's window; expiresAt 0
	// means 2000.
	validFrom, expiresAt uint64
	// configs holds the configuration digest of the epochs signed under
	// another configuration than the zero digest.
	configs map[uint64][32]byte
}

func (s *fakeSource) report(e uint64) *truegpuv1.EpochReport {
	d := s.domain
	if d == nil {
		d = &truegpuv1.Eip712Domain{Name: "TrueGPU Epoch Feed", Version: "1", ChainId: testID.Uint64(), VerifyingContract: feedAddr.Hex()}
	}
	until := s.expiresAt
	if until == 0 {
		until = 2000
	}
	cfg := s.configs[e]
	return &truegpuv1.EpochReport{Epoch: e, ConfigDigest: cfg[:], Root: make([]byte, 32), Complete: !s.incomplete[e], Domain: d,
		ValidFrom: s.validFrom, ExpiresAt: until,
		Signatures: []*truegpuv1.MemberSignature{{Signature: make([]byte, 65)}}}
}

func (s *fakeSource) LatestReport(_ context.Context, inc bool) (*truegpuv1.EpochReport, error) {
	if s.latest == 0 {
		return nil, status.Error(codes.NotFound, "no report")
	}
	return s.report(s.latest), nil
}

func (s *fakeSource) Report(_ context.Context, e uint64) (*truegpuv1.EpochReport, error) {
	if e == 0 || e > s.latest {
		return nil, status.Error(codes.NotFound, "no report")
	}
	return s.report(e), nil
}

func newTest(t *testing.T, src Source, ch Chain, backlog int) (*Relayer, *Metrics) {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(prometheus.NewRegistry())
	r, err := New(context.Background(), src, ch, Config{
		Feed: feedAddr, Key: key, Backoff: time.Millisecond, ReceiptTimeout: time.Second, Attempts: 3,
		MaxBacklog: backlog, Metrics: m, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, m
}

func TestStepRelaysSkipsAndResumes(t *testing.T) {
	ch := &fakeChain{epoch: 2}
	src := &fakeSource{latest: 6, incomplete: map[uint64]bool{4: true}}
	r, m := newTest(t, src, ch, 8)
	got, err := r.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]Outcome{1: SkippedOnChain, 2: SkippedOnChain, 3: Relayed, 4: SkippedIncomplete, 5: Relayed, 6: Relayed}
	for e, o := range want {
		if got[e] != o {
			t.Errorf("epoch %d: %q, want %q", e, got[e], o)
		}
	}
	if ch.epoch != 6 || len(ch.sent) != 3 {
		t.Fatalf("chain at epoch %d after %d transactions, want 6 after 3", ch.epoch, len(ch.sent))
	}
	if v := testutil.ToFloat64(m.Relayed); v != 3 {
		t.Fatalf("relayed = %v", v)
	}
	if v := testutil.ToFloat64(m.LastRelayed); v != 6 {
		t.Fatalf("last relayed = %v", v)
	}
	if v := testutil.ToFloat64(m.Skipped.WithLabelValues("on_chain")); v != 2 {
		t.Fatalf("skipped on chain = %v", v)
	}
	// Nothing new: nothing is sent again.
	if got, err := r.Step(context.Background()); err != nil || len(got) != 0 {
		t.Fatalf("second pass: %v, %v", got, err)
	}
	// Another relayer got epoch 7 there first.
	src.latest, ch.epoch = 8, 7
	got, err = r.Step(context.Background())
	if err != nil || got[7] != SkippedOnChain || got[8] != Relayed {
		t.Fatalf("third pass: %v, %v", got, err)
	}
	// A fresh relayer (a restart) sends nothing the chain has.
	r2, m2 := newTest(t, src, ch, 8)
	if got, err := r2.Step(context.Background()); err != nil || len(ch.sent) != 4 {
		t.Fatalf("restart: %v, %v, %d transactions", got, err, len(ch.sent))
	}
	if v := testutil.ToFloat64(m2.Relayed); v != 0 {
		t.Fatalf("restarted relayer relayed %v", v)
	}
}

// TestStepConfigurations: reports signed under a configuration other than
// the feed's are never sent. Older ones, superseded by a newer report
// under the feed's configuration, are skipped; a newest one fails the
// pass and is relayed once the feed holds its configuration.
func TestStepConfigurations(t *testing.T) {
	other := [32]byte{7}
	ch := &fakeChain{}
	src := &fakeSource{latest: 3, configs: map[uint64][32]byte{1: other}}
	r, m := newTest(t, src, ch, 8)
	got, err := r.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != SkippedSuperseded || got[2] != Relayed || got[3] != Relayed || len(ch.sent) != 2 {
		t.Fatalf("outcomes %v after %d transactions, want epoch 1 %s and 2, 3 relayed in 2", got, len(ch.sent), SkippedSuperseded)
	}
	if v := testutil.ToFloat64(m.Skipped.WithLabelValues(string(SkippedSuperseded))); v != 1 {
		t.Fatalf("superseded skips = %v", v)
	}

	// The cluster's members change; the feed is not updated yet.
	src.latest = 5
	src.configs[4], src.configs[5] = other, other
	got, err = r.Step(context.Background())
	if err == nil || !strings.Contains(err.Error(), "update-config") || got[4] != FailedConfig {
		t.Fatalf("a newest report under another configuration: outcomes %v, error %v", got, err)
	}
	if len(ch.sent) != 2 {
		t.Fatalf("%d transactions, want none sent under another configuration", len(ch.sent))
	}
	if v := testutil.ToFloat64(m.Failed.WithLabelValues(string(FailedConfig))); v != 1 {
		t.Fatalf("wrong_config failures = %v", v)
	}
	// The feed's configuration is updated: the same epochs are relayed.
	ch.mu.Lock()
	ch.cfgDigest = other
	ch.mu.Unlock()
	got, err = r.Step(context.Background())
	if err != nil || got[4] != Relayed || got[5] != Relayed || ch.epoch != 5 {
		t.Fatalf("after the update: outcomes %v, error %v, chain at %d", got, err, ch.epoch)
	}
}

func TestStepBacklog(t *testing.T) {
	ch := &fakeChain{}
	r, m := newTest(t, &fakeSource{latest: 20}, ch, 3)
	got, err := r.Step(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[18] != Relayed || got[20] != Relayed || len(ch.sent) != 3 {
		t.Fatalf("outcomes %v after %d transactions; want the 3 newest relayed", got, len(ch.sent))
	}
	if v := testutil.ToFloat64(m.Relayed); v != 3 {
		t.Fatalf("relayed = %v", v)
	}
}

func TestRetriesThenResumes(t *testing.T) {
	ch := &fakeChain{failSends: 3}
	r, m := newTest(t, &fakeSource{latest: 1}, ch, 8)
	got, err := r.Step(context.Background())
	if err == nil || got[1] != FailedRetries || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("after 3 failed sends: %v, %v", got, err)
	}
	if v := testutil.ToFloat64(m.Failed.WithLabelValues("retries_exhausted")); v != 1 {
		t.Fatalf("failed = %v", v)
	}
	if v := testutil.ToFloat64(m.Attempts); v != 3 {
		t.Fatalf("attempts = %v", v)
	}
	// The next pass tries the same epoch again and gets it through.
	got, err = r.Step(context.Background())
	if err != nil || got[1] != Relayed || ch.epoch != 1 {
		t.Fatalf("next pass: %v, %v (chain epoch %d)", got, err, ch.epoch)
	}
	// Retries raise the tip.
	ch2 := &fakeChain{failSends: 1}
	r2, _ := newTest(t, &fakeSource{latest: 1}, ch2, 8)
	if got, err := r2.Step(context.Background()); err != nil || got[1] != Relayed {
		t.Fatalf("%v, %v", got, err)
	}
	if tip := ch2.sent[0].GasTipCap(); tip.Cmp(big.NewInt(10)) <= 0 {
		t.Fatalf("second attempt's tip %v, want above the suggested 10", tip)
	}
}

func TestWrongDomainAndRevertReason(t *testing.T) {
	ch := &fakeChain{}
	src := &fakeSource{latest: 1, domain: &truegpuv1.Eip712Domain{ChainId: 1, VerifyingContract: feedAddr.Hex()}}
	r, m := newTest(t, src, ch, 8)
	got, err := r.Step(context.Background())
	if err != nil || got[1] != FailedDomain || len(ch.sent) != 0 {
		t.Fatalf("report for chain 1: %v, %v", got, err)
	}
	if v := testutil.ToFloat64(m.Failed.WithLabelValues("wrong_domain")); v != 1 {
		t.Fatalf("failed wrong_domain = %v", v)
	}

	e := FeedABI.Errors["NotMember"]
	data, err := e.Inputs.Pack(big.NewInt(0), common.HexToAddress("0x00000000000000000000000000000000000000aa"))
	if err != nil {
		t.Fatal(err)
	}
	ch2 := &fakeChain{revert: append(e.ID[:4:4], data...)}
	r2, _ := newTest(t, &fakeSource{latest: 1}, ch2, 8)
	out, err := r2.Submit(context.Background(), (&fakeSource{}).report(1))
	if out != FailedReverted || !errors.Is(err, ErrReverted) || !strings.Contains(strings.ToLower(err.Error()), "notmember(0, 0x00000000000000000000000000000000000000aa)") {
		t.Fatalf("reverting submission: %q, %v", out, err)
	}
	stale := FeedABI.Errors["StaleEpoch"]
	data, _ = stale.Inputs.Pack(uint64(1), uint64(1))
	ch2.revert = append(stale.ID[:4:4], data...)
	if out, err := r2.Submit(context.Background(), (&fakeSource{}).report(1)); out != SkippedOnChain || err != nil {
		t.Fatalf("stale submission: %q, %v", out, err)
	}
}

func TestNewRefuses(t *testing.T) {
	key, _ := crypto.GenerateKey()
	ctx := context.Background()
	if _, err := New(ctx, &fakeSource{}, &fakeChain{}, Config{Feed: common.HexToAddress("0x01"), Key: key}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "no contract") {
		t.Fatalf("no code at the address: %v", err)
	}
	if _, err := New(ctx, &fakeSource{}, &fakeChain{}, Config{Feed: feedAddr, Key: key, ChainID: big.NewInt(1)}); !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "not chain 1") {
		t.Fatalf("another chain: %v", err)
	}
	if _, err := New(ctx, &fakeSource{}, &fakeChain{}, Config{Feed: feedAddr}); !errors.Is(err, ErrConfig) {
		t.Fatalf("no key: %v", err)
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	key, _ := crypto.GenerateKey()
	acct, err := keystore.NewKeyStore(dir, keystore.LightScryptN, keystore.LightScryptP).ImportECDSA(key, "secret")
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("secret\n"), 0o600)
	got, err := LoadKey(acct.URL.Path, pw)
	if err != nil || !got.Equal(key) {
		t.Fatalf("LoadKey: %v", err)
	}
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	if _, err := LoadKey(acct.URL.Path, pw); err == nil || !strings.Contains(err.Error(), "password file") {
		t.Fatalf("wrong passphrase: %v", err)
	}
}

func TestMetricNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	NewMetrics(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
	}
	for _, want := range []string{
		"truegpu_relay_reports_relayed_total", "truegpu_relay_reports_skipped_total", "truegpu_relay_reports_failed_total",
		"truegpu_relay_last_relayed_epoch", "truegpu_relay_chain_epoch", "truegpu_relay_submit_attempts_total", "truegpu_relay_gas_used_total",
		"truegpu_relay_feed_paused",
	} {
		if !got[want] {
			t.Errorf("metric %s is not exported", want)
		}
	}
}

// TestValidityWindow: a report the chain's latest block is past is skipped
// as expired and not sent; one not valid yet is left to a later pass;
// inside its window it is relayed.
func TestValidityWindow(t *testing.T) {
	ch := &fakeChain{now: 5000}
	src := &fakeSource{latest: 1, validFrom: 100, expiresAt: 4999}
	r, m := newTest(t, src, ch, 8)
	got, err := r.Step(context.Background())
	if err != nil || got[1] != SkippedExpired || len(ch.sent) != 0 {
		t.Fatalf("expired report: %v, %v, %d transactions", got, err, len(ch.sent))
	}
	if v := testutil.ToFloat64(m.Skipped.WithLabelValues("expired")); v != 1 {
		t.Fatalf("skipped expired = %v", v)
	}

	ch = &fakeChain{now: 99}
	src = &fakeSource{latest: 1, validFrom: 100, expiresAt: 200}
	r, _ = newTest(t, src, ch, 8)
	got, err = r.Step(context.Background())
	if err == nil || !strings.Contains(err.Error(), "valid from 100") || got[1] != "" || len(ch.sent) != 0 {
		t.Fatalf("report not yet valid: %v, %v, %d transactions", got, err, len(ch.sent))
	}
	ch.now = 100 // the chain catches up: the same relayer relays it
	if got, err := r.Step(context.Background()); err != nil || got[1] != Relayed || ch.epoch != 1 {
		t.Fatalf("report in its window: %v, %v", got, err)
	}

	// An empty window is refused without a transaction.
	out, err := r.Submit(context.Background(), &truegpuv1.EpochReport{Epoch: 2, ValidFrom: 10, ExpiresAt: 9, ConfigDigest: make([]byte, 32), Root: make([]byte, 32),
		Domain: src.report(2).Domain})
	if out != FailedReverted || !errors.Is(err, ErrReverted) || len(ch.sent) != 1 {
		t.Fatalf("empty window: %q, %v", out, err)
	}
}

// TestPausedFeed: while the feed is paused the relayer sends nothing and
// exports the flag; after unpausing it relays what is missing.
func TestPausedFeed(t *testing.T) {
	ch := &fakeChain{paused: true}
	r, m := newTest(t, &fakeSource{latest: 3}, ch, 8)
	got, err := r.Step(context.Background())
	if err != nil || len(got) != 0 || len(ch.sent) != 0 {
		t.Fatalf("paused feed: %v, %v, %d transactions", got, err, len(ch.sent))
	}
	if v := testutil.ToFloat64(m.Paused); v != 1 {
		t.Fatalf("paused gauge = %v", v)
	}
	ch.paused = false
	got, err = r.Step(context.Background())
	if err != nil || got[1] != Relayed || got[3] != Relayed || ch.epoch != 3 {
		t.Fatalf("unpaused feed: %v, %v", got, err)
	}
	if v := testutil.ToFloat64(m.Paused); v != 0 {
		t.Fatalf("paused gauge = %v after unpausing", v)
	}
	// A pause between the check and the submission: the revert is not a
	// verdict on the report, which is left to a later pass.
	e := FeedABI.Errors["FeedPaused"]
	ch.revert = e.ID[:4]
	out, err := r.Submit(context.Background(), (&fakeSource{}).report(4))
	if out != "" || err == nil || !strings.Contains(err.Error(), "paused") {
		t.Fatalf("paused at submission: %q, %v", out, err)
	}
}

// TestMetricsEndpoint scrapes the endpoint the command serves with
// --metrics-addr after a pass and reads the relayer's counters back.
func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	key, _ := crypto.GenerateKey()
	ch := &fakeChain{epoch: 1}
	r, err := New(context.Background(), &fakeSource{latest: 4, incomplete: map[uint64]bool{3: true}}, ch, Config{
		Feed: feedAddr, Key: key, Backoff: time.Millisecond, ReceiptTimeout: time.Second, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServeMetrics("127.0.0.1:0", reg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	before := scrape(t, srv.URL())
	if _, err := r.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, srv.URL())
	for name, want := range map[string][2]float64{
		"truegpu_relay_reports_relayed_total":                      {0, 2},
		`truegpu_relay_reports_skipped_total{reason="on_chain"}`:   {0, 1},
		`truegpu_relay_reports_skipped_total{reason="incomplete"}`: {0, 1},
		`truegpu_relay_reports_failed_total{reason="reverted"}`:    {0, 0},
		"truegpu_relay_last_relayed_epoch":                         {0, 4},
		"truegpu_relay_chain_epoch":                                {1, 4},
		"truegpu_relay_gas_used_total":                             {0, 100_000},
		"truegpu_relay_feed_paused":                                {0, 0},
	} {
		b, okB := before[name]
		a, okA := after[name]
		if !okB || !okA || b != want[0] || a != want[1] {
			t.Errorf("%s: scraped %v (present %v) before the pass and %v (present %v) after; want %v and %v", name, b, okB, a, okA, want[0], want[1])
		}
	}
	if _, err := ServeMetrics("127.0.0.1:-1", reg); err == nil {
		t.Fatal("ServeMetrics on port -1 succeeded")
	}
}

// scrape reads a Prometheus text exposition into name{labels} -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("malformed line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("malformed value in %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}
