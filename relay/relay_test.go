package relay

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
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
	if err != nil || m.Name != "latestEpoch" {
		return nil, errors.New("unexpected call")
	}
	return m.Outputs.Pack(c.epoch)
}
func (c *fakeChain) HeaderByNumber(context.Context, *big.Int) (*types.Header, error) {
	return &types.Header{BaseFee: big.NewInt(1000)}, nil
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
	}).Epoch
	st := types.ReceiptStatusFailed
	if e > c.epoch {
		c.epoch, st = e, types.ReceiptStatusSuccessful
	}
	if c.receipts == nil {
		c.receipts = map[common.Hash]*types.Receipt{}
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
}

func (s *fakeSource) report(e uint64) *truegpuv1.EpochReport {
	d := s.domain
	if d == nil {
		d = &truegpuv1.Eip712Domain{Name: "TrueGPU Epoch Feed", Version: "1", ChainId: testID.Uint64(), VerifyingContract: feedAddr.Hex()}
	}
	return &truegpuv1.EpochReport{Epoch: e, ConfigDigest: make([]byte, 32), Root: make([]byte, 32), Complete: !s.incomplete[e], Domain: d,
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
	} {
		if !got[want] {
			t.Errorf("metric %s is not exported", want)
		}
	}
}
