// Package relay carries a TrueGPU cluster's signed epoch reports to the
// feed contract (contracts/sol/TrueGPUFeed.sol) on an EVM chain over
// JSON-RPC.
//
// A Relayer follows the cluster's complete reports (those with the
// threshold of member signatures) and submits each one the chain does not
// have yet. It is idempotent: before every submission it reads the feed's
// latestEpoch and skips any report at or below it, so several relayers, or
// one restarted, never submit a report twice to success (a duplicate can
// only revert with StaleEpoch, which counts as skipped). Failed RPC calls
// and unconfirmed transactions are retried with exponential backoff; a
// transaction retried for the same report reuses its nonce with higher fees,
// so it replaces the earlier one instead of queuing behind it. The
// transmitter key pays gas and should be used by the relayer only.
package relay

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	truegpuv1 "github.com/truegpu/truegpu/proto/truegpu/v1"
)

// FeedABIJSON is the ABI of TrueGPUFeed, as compiled into
// contracts/build/TrueGPUFeed.json (a test in contracts/ keeps them equal).
//
//go:embed feed_abi.json
var FeedABIJSON string

// FeedABI is FeedABIJSON parsed.
var FeedABI = func() abi.ABI {
	a, err := abi.JSON(strings.NewReader(FeedABIJSON))
	if err != nil {
		panic("relay: feed ABI: " + err.Error())
	}
	return a
}()

// Source is where reports come from; *client.Client is one.
type Source interface {
	// LatestReport returns the newest report with the threshold of
	// signatures (includeIncomplete false).
	LatestReport(ctx context.Context, includeIncomplete bool) (*truegpuv1.EpochReport, error)
	// Report returns one epoch's report.
	Report(ctx context.Context, epoch uint64) (*truegpuv1.EpochReport, error)
}

// Chain is the part of go-ethereum's *ethclient.Client the relayer uses
// (the simulated backend's client is one too).
type Chain interface {
	ChainID(ctx context.Context) (*big.Int, error)
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	EstimateGas(ctx context.Context, msg ethereum.CallMsg) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

// Config configures a Relayer. Zero values take the defaults.
type Config struct {
	// Feed is the TrueGPUFeed contract's address. Required.
	Feed common.Address
	// Key is the transmitter's key: it signs and pays for submissions.
	// Required.
	Key *ecdsa.PrivateKey
	// ChainID, when set, is the chain the relayer must find at the
	// endpoint; another one is refused.
	ChainID *big.Int
	// Poll is the time between looks at the cluster. Default 5s.
	Poll time.Duration
	// GasLimit is every submission's gas limit. Default: the node's
	// estimate plus a quarter.
	GasLimit uint64
	// MaxFeePerGas caps the fee per gas (wei). Default: no cap beyond
	// twice the latest base fee plus the tip.
	MaxFeePerGas *big.Int
	// MaxPriorityFeePerGas is the tip per gas (wei). Default: the
	// node's suggestion. Retries of a report raise it by a quarter
	// each time (within MaxFeePerGas).
	MaxPriorityFeePerGas *big.Int
	// Attempts is how often one report's submission is tried before the
	// relayer gives up on this pass (it tries again on the next). Default 5.
	Attempts int
	// Backoff is the pause before a report's second attempt; it doubles
	// up to 32 times its value. Default 1s.
	Backoff time.Duration
	// ReceiptTimeout is how long a sent transaction may stay unmined
	// before it is sent again with higher fees. Default 2 minutes.
	ReceiptTimeout time.Duration
	// MaxBacklog is how many of the newest complete epochs are submitted
	// when the chain is behind by more (older ones are skipped: the
	// contract keeps only the latest report). Default 8.
	MaxBacklog int
	// Metrics, when set, is updated as reports are relayed.
	Metrics *Metrics
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) defaults() {
	if c.Poll <= 0 {
		c.Poll = 5 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	if c.ReceiptTimeout <= 0 {
		c.ReceiptTimeout = 2 * time.Minute
	}
	if c.MaxBacklog <= 0 {
		c.MaxBacklog = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Relayer submits a cluster's reports to a feed contract.
type Relayer struct {
	src     Source
	chain   Chain
	cfg     Config
	from    common.Address
	chainID *big.Int
	log     *slog.Logger
	// next is the next epoch to consider; 0 before the first pass.
	next uint64
}

// Outcome is what became of one epoch's report.
type Outcome string

// Outcomes, also the reason labels of the skipped and failed metrics.
const (
	Relayed Outcome = "relayed"
	// SkippedOnChain: the feed already has this epoch or a newer one.
	SkippedOnChain Outcome = "on_chain"
	// SkippedIncomplete: the report lacks the threshold of signatures
	// and a newer complete one exists.
	SkippedIncomplete Outcome = "incomplete"
	// SkippedBacklog: older than the MaxBacklog newest epochs.
	SkippedBacklog Outcome = "backlog"
	// SkippedMissing: the cluster has no report of this epoch.
	SkippedMissing Outcome = "missing"
	// SkippedExpired: the chain's latest block is past the report's
	// expires-at, so the feed would refuse it.
	SkippedExpired Outcome = "expired"
	// FailedDomain: signed for another chain or contract.
	FailedDomain Outcome = "wrong_domain"
	// SkippedSuperseded: the report is signed under a configuration
	// (members, threshold, parameters) other than the feed's, so the feed
	// can never accept it, and a newer complete report is under the
	// feed's configuration. The first epochs of a cluster whose members
	// had not all registered their keys yet end here.
	SkippedSuperseded Outcome = "superseded_config"
	// FailedReverted: the contract refuses the report.
	FailedReverted Outcome = "reverted"
	// FailedConfig: the newest report is signed under a configuration
	// other than the feed's. It is tried again on the next pass: once the
	// feed's configuration is updated (truegpuctl feed update-config) the
	// reports are relayed.
	FailedConfig Outcome = "wrong_config"
	// FailedRetries: every attempt failed to get a transaction mined.
	FailedRetries Outcome = "retries_exhausted"
)

// Errors. Compare with errors.Is.
var (
	// ErrConfig reports a Config the relayer cannot work with, or a chain
	// or contract that does not match it.
	ErrConfig = errors.New("relay: configuration")
	// ErrReverted reports a submission the feed contract refuses.
	ErrReverted = errors.New("relay: the feed contract refused the report")
)

// New checks the chain (its id, the feed's code and configuration) and
// returns a relayer.
func New(ctx context.Context, src Source, chain Chain, cfg Config) (*Relayer, error) {
	cfg.defaults()
	if cfg.Key == nil {
		return nil, fmt.Errorf("%w: no transmitter key", ErrConfig)
	}
	if cfg.Feed == (common.Address{}) {
		return nil, fmt.Errorf("%w: no feed contract address", ErrConfig)
	}
	id, err := chain.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay: read the chain id: %w", err)
	}
	if cfg.ChainID != nil && cfg.ChainID.Cmp(id) != 0 {
		return nil, fmt.Errorf("%w: the endpoint serves chain %v, not chain %v", ErrConfig, id, cfg.ChainID)
	}
	code, err := chain.CodeAt(ctx, cfg.Feed, nil)
	if err != nil {
		return nil, fmt.Errorf("relay: read the feed contract's code: %w", err)
	}
	if len(code) == 0 {
		return nil, fmt.Errorf("%w: no contract at %s on chain %v", ErrConfig, cfg.Feed, id)
	}
	r := &Relayer{src: src, chain: chain, cfg: cfg, from: crypto.PubkeyToAddress(cfg.Key.PublicKey), chainID: id, log: cfg.Logger}
	if _, err := r.ChainEpoch(ctx); err != nil {
		return nil, fmt.Errorf("%w: %s on chain %v does not answer latestEpoch() as a TrueGPU feed: %v", ErrConfig, cfg.Feed, id, err)
	}
	return r, nil
}

// From is the transmitter's address.
func (r *Relayer) From() common.Address { return r.from }

// ChainID is the chain's id.
func (r *Relayer) ChainID() *big.Int { return new(big.Int).Set(r.chainID) }

// ChainEpoch reads the feed's latest accepted epoch (0 before the first).
func (r *Relayer) ChainEpoch(ctx context.Context) (uint64, error) {
	out, err := r.view(ctx, "latestEpoch")
	if err != nil {
		return 0, err
	}
	e, ok := out[0].(uint64)
	if !ok {
		return 0, fmt.Errorf("latestEpoch returned %T", out[0])
	}
	if m := r.cfg.Metrics; m != nil {
		m.ChainEpoch.Set(float64(e))
	}
	return e, nil
}

// feedConfigDigest reads the digest of the configuration the feed
// verifies reports under.
func (r *Relayer) feedConfigDigest(ctx context.Context) ([32]byte, error) {
	out, err := r.view(ctx, "configDigest")
	if err != nil {
		return [32]byte{}, err
	}
	d, ok := out[0].([32]byte)
	if !ok {
		return [32]byte{}, fmt.Errorf("configDigest returned %T", out[0])
	}
	return d, nil
}

func (r *Relayer) view(ctx context.Context, method string, args ...any) ([]any, error) {
	data, err := FeedABI.Pack(method, args...)
	if err != nil {
		return nil, err
	}
	raw, err := r.chain.CallContract(ctx, ethereum.CallMsg{From: r.from, To: &r.cfg.Feed, Data: data}, nil)
	if err != nil {
		return nil, err
	}
	return FeedABI.Unpack(method, raw)
}

// Paused reads the feed's pause flag. While it is set the relayer
// submits nothing (the contract would refuse every report).
func (r *Relayer) Paused(ctx context.Context) (bool, error) {
	out, err := r.view(ctx, "paused")
	if err != nil {
		return false, err
	}
	p, ok := out[0].(bool)
	if !ok {
		return false, fmt.Errorf("paused returned %T", out[0])
	}
	if m := r.cfg.Metrics; m != nil {
		v := 0.0
		if p {
			v = 1
		}
		m.Paused.Set(v)
	}
	return p, nil
}

// Run relays until ctx ends: a pass at once, then one every Poll. Errors
// of a pass are logged and the pass is tried again later; Run returns
// ctx's error.
func (r *Relayer) Run(ctx context.Context) error {
	for {
		if _, err := r.Step(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("relay pass failed; trying again", "in", r.cfg.Poll, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.cfg.Poll):
		}
	}
}

// Step is one pass: it reads the cluster's newest complete report and the
// feed's latest epoch, and submits, oldest first, the complete reports of
// the epochs in between (at most MaxBacklog of them). It returns what
// became of each epoch it considered. An error leaves the epoch it stopped
// at to the next pass.
func (r *Relayer) Step(ctx context.Context) (map[uint64]Outcome, error) {
	paused, err := r.Paused(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the feed's pause flag: %w", err)
	}
	if paused {
		r.log.Info("the feed is paused; submitting nothing until it is unpaused")
		return nil, nil
	}
	latest, err := r.src.LatestReport(ctx, false)
	if err != nil {
		if status.Code(err) == codes.NotFound {
			return nil, nil // no complete report yet
		}
		return nil, fmt.Errorf("read the cluster's latest report: %w", err)
	}
	if latest == nil || latest.Epoch == 0 {
		return nil, nil
	}
	onChain, err := r.ChainEpoch(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the feed's latest epoch: %w", err)
	}
	feedDigest, err := r.feedConfigDigest(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the feed's configuration digest: %w", err)
	}
	latestFits := bytes.Equal(latest.ConfigDigest, feedDigest[:])
	oldest := uint64(1)
	if latest.Epoch > uint64(r.cfg.MaxBacklog) {
		oldest = latest.Epoch - uint64(r.cfg.MaxBacklog) + 1
	}
	start := r.next
	if start == 0 {
		start = max(oldest, 1)
	}
	done := map[uint64]Outcome{}
	for e := start; e <= latest.Epoch; e++ {
		var out Outcome
		switch {
		case e <= onChain:
			out = SkippedOnChain
		case e < oldest:
			out = SkippedBacklog
		default:
			rep := latest
			if e != latest.Epoch {
				if rep, err = r.src.Report(ctx, e); status.Code(err) == codes.NotFound {
					out = SkippedMissing
					break
				} else if err != nil {
					return done, fmt.Errorf("read the report of epoch %d: %w", e, err)
				}
			}
			if !rep.Complete {
				out = SkippedIncomplete
				break
			}
			if !bytes.Equal(rep.ConfigDigest, feedDigest[:]) {
				if latestFits && e < latest.Epoch {
					out = SkippedSuperseded
					break
				}
				// Not given up: the feed's configuration may be updated.
				out = FailedConfig
				r.count(e, out)
				done[e] = out
				return done, fmt.Errorf("epoch %d is signed under configuration %x but the feed holds %x: if the cluster's members or parameters changed, update the feed's configuration (truegpuctl feed update-config)",
					e, rep.ConfigDigest, feedDigest)
			}
			out, err = r.Submit(ctx, rep)
			if err != nil && out == "" {
				return done, err
			}
			if out == FailedRetries {
				// Not given up: the next pass starts at this epoch again.
				r.count(e, out)
				done[e] = out
				return done, err
			}
			if err != nil {
				r.log.Error("report not relayed", "epoch", e, "outcome", string(out), "err", err)
			}
		}
		r.count(e, out)
		done[e] = out
		r.next = e + 1
	}
	return done, nil
}

func (r *Relayer) count(epoch uint64, out Outcome) {
	m := r.cfg.Metrics
	switch out {
	case Relayed:
		if m != nil {
			m.Relayed.Inc()
			m.LastRelayed.Set(float64(epoch))
		}
	case SkippedOnChain, SkippedIncomplete, SkippedBacklog, SkippedMissing, SkippedExpired, SkippedSuperseded:
		r.log.Debug("report skipped", "epoch", epoch, "reason", string(out))
		if m != nil {
			m.Skipped.WithLabelValues(string(out)).Inc()
		}
	default:
		if m != nil {
			m.Failed.WithLabelValues(string(out)).Inc()
		}
	}
}

// reportArg is the contract's Report struct.
type reportArg struct {
	ConfigDigest [32]byte
	Epoch        uint64
	Round        uint64
	Timestamp    uint64
	Root         [32]byte
	Count        uint64
	ValidFrom    uint64
	ExpiresAt    uint64
}

// SubmitData is the calldata of submit(report, signatures) for r.
func SubmitData(r *truegpuv1.EpochReport) ([]byte, error) {
	if len(r.ConfigDigest) != 32 || len(r.Root) != 32 {
		return nil, fmt.Errorf("epoch %d: the config digest and root must be 32 bytes", r.Epoch)
	}
	sigs := make([][]byte, 0, len(r.Signatures))
	for _, s := range r.Signatures {
		sigs = append(sigs, s.Signature)
	}
	return FeedABI.Pack("submit", reportArg{
		ConfigDigest: [32]byte(r.ConfigDigest), Epoch: r.Epoch, Round: r.Round,
		Timestamp: r.Timestamp, Root: [32]byte(r.Root), Count: r.Count,
		ValidFrom: r.ValidFrom, ExpiresAt: r.ExpiresAt,
	}, sigs)
}

// Submit sends rep to the feed unless the chain already has its epoch,
// and waits until the transaction is mined. The outcome is Relayed,
// SkippedOnChain or a failure (with an error); an error with no outcome
// is a failure to read the chain, to be tried again later.
func (r *Relayer) Submit(ctx context.Context, rep *truegpuv1.EpochReport) (Outcome, error) {
	d := rep.GetDomain()
	if d.GetChainId() != r.chainID.Uint64() || !strings.EqualFold(d.GetVerifyingContract(), r.cfg.Feed.Hex()) {
		return FailedDomain, fmt.Errorf("%w: epoch %d is signed for chain %d and contract %s, not chain %v and contract %s; start the members with -chain-id and -feed-contract naming this feed",
			ErrReverted, rep.Epoch, d.GetChainId(), orNone(d.GetVerifyingContract()), r.chainID, r.cfg.Feed)
	}
	if rep.ValidFrom > rep.ExpiresAt {
		return FailedReverted, fmt.Errorf("%w: epoch %d is valid from %d but expires at %d", ErrReverted, rep.Epoch, rep.ValidFrom, rep.ExpiresAt)
	}
	head, err := r.chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("read the latest block header: %w", err)
	}
	if head.Time > rep.ExpiresAt {
		return SkippedExpired, nil
	}
	if head.Time < rep.ValidFrom {
		// Left to a later pass, when the chain has caught up.
		return "", fmt.Errorf("epoch %d is valid from %d, the chain's latest block is at %d: check the clocks", rep.Epoch, rep.ValidFrom, head.Time)
	}
	data, err := SubmitData(rep)
	if err != nil {
		return FailedReverted, fmt.Errorf("%w: %v", ErrReverted, err)
	}
	var (
		nonce   uint64
		haveNon bool
		sent    []common.Hash
		lastErr error
		wait    = r.cfg.Backoff
	)
	for attempt := 1; attempt <= r.cfg.Attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 32*r.cfg.Backoff)
		}
		if m := r.cfg.Metrics; m != nil {
			m.Attempts.Inc()
		}
		// A transaction of an earlier attempt may have been mined since.
		if ok, err := r.minedAny(ctx, sent); err != nil {
			lastErr = err
			continue
		} else if ok {
			return Relayed, nil
		}
		onChain, err := r.ChainEpoch(ctx)
		if err != nil {
			lastErr = fmt.Errorf("read the feed's latest epoch: %w", err)
			continue
		}
		if onChain >= rep.Epoch {
			return SkippedOnChain, nil
		}
		msg := ethereum.CallMsg{From: r.from, To: &r.cfg.Feed, Data: data}
		gas := r.cfg.GasLimit
		if gas == 0 {
			est, err := r.chain.EstimateGas(ctx, msg)
			if err != nil {
				if reason, ok := revertReason(err); ok {
					switch {
					case strings.HasPrefix(reason, "StaleEpoch("):
						return SkippedOnChain, nil
					case strings.HasPrefix(reason, "ReportExpired("):
						return SkippedExpired, nil
					case reason == "FeedPaused()":
						return "", fmt.Errorf("epoch %d: the feed was paused", rep.Epoch)
					}
					return FailedReverted, fmt.Errorf("%w: epoch %d: %s", ErrReverted, rep.Epoch, reason)
				}
				lastErr = fmt.Errorf("estimate gas: %w", err)
				continue
			}
			gas = est + est/4
		}
		tip, feeCap, err := r.fees(ctx, attempt)
		if err != nil {
			lastErr = err
			continue
		}
		if !haveNon {
			if nonce, err = r.chain.PendingNonceAt(ctx, r.from); err != nil {
				lastErr = fmt.Errorf("read the transmitter's nonce: %w", err)
				continue
			}
			haveNon = true
		}
		tx, err := types.SignNewTx(r.cfg.Key, types.LatestSignerForChainID(r.chainID), &types.DynamicFeeTx{
			ChainID: r.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &r.cfg.Feed, Data: data,
		})
		if err != nil {
			return FailedReverted, fmt.Errorf("sign the transaction: %w", err)
		}
		if err := r.chain.SendTransaction(ctx, tx); err != nil {
			msg := strings.ToLower(err.Error())
			switch {
			case strings.Contains(msg, "nonce too low"):
				// Mined already (ours or another transaction of this key):
				// the next attempt looks at the receipts and the chain.
				haveNon = false
			case strings.Contains(msg, "already known"):
				sent = append(sent, tx.Hash())
			default:
				lastErr = fmt.Errorf("send the transaction: %w", err)
				continue
			}
		} else {
			sent = append(sent, tx.Hash())
			r.log.Info("report submitted", "epoch", rep.Epoch, "tx", tx.Hash(), "nonce", nonce, "gas", gas, "tip", tip, "fee_cap", feeCap)
		}
		rcpt, err := r.waitMined(ctx, sent)
		if err != nil {
			lastErr = err
			continue
		}
		if rcpt.Status == types.ReceiptStatusSuccessful {
			if m := r.cfg.Metrics; m != nil {
				m.GasUsed.Add(float64(rcpt.GasUsed))
				m.ChainEpoch.Set(float64(rep.Epoch)) // the feed's latest now
			}
			r.log.Info("report relayed", "epoch", rep.Epoch, "tx", rcpt.TxHash, "block", rcpt.BlockNumber, "gas_used", rcpt.GasUsed)
			return Relayed, nil
		}
		if onChain, err := r.ChainEpoch(ctx); err == nil && onChain >= rep.Epoch {
			return SkippedOnChain, nil
		}
		return FailedReverted, fmt.Errorf("%w: epoch %d: transaction %s reverted in block %v (gas limit %d, used %d)",
			ErrReverted, rep.Epoch, rcpt.TxHash, rcpt.BlockNumber, gas, rcpt.GasUsed)
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	return FailedRetries, fmt.Errorf("relay: epoch %d not relayed after %d attempts: %w", rep.Epoch, r.cfg.Attempts, lastErr)
}

// fees returns the tip and fee cap of an attempt: the configured or
// suggested tip, raised by a quarter per earlier attempt, and twice the
// base fee plus the tip, both within MaxFeePerGas.
func (r *Relayer) fees(ctx context.Context, attempt int) (tip, feeCap *big.Int, err error) {
	if r.cfg.MaxPriorityFeePerGas != nil {
		tip = new(big.Int).Set(r.cfg.MaxPriorityFeePerGas)
	} else if tip, err = r.chain.SuggestGasTipCap(ctx); err != nil {
		return nil, nil, fmt.Errorf("read the suggested tip: %w", err)
	}
	for range attempt - 1 {
		tip.Add(tip, new(big.Int).Add(new(big.Int).Div(tip, big.NewInt(4)), big.NewInt(1)))
	}
	head, err := r.chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("read the latest block header: %w", err)
	}
	base := head.BaseFee
	if base == nil {
		base = new(big.Int)
	}
	feeCap = new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	if c := r.cfg.MaxFeePerGas; c != nil {
		if c.Cmp(base) < 0 {
			return nil, nil, fmt.Errorf("the base fee %v wei exceeds the fee cap %v wei; waiting for it to fall", base, c)
		}
		if feeCap.Cmp(c) > 0 {
			feeCap = new(big.Int).Set(c)
		}
		if tip.Cmp(feeCap) > 0 {
			tip = new(big.Int).Set(feeCap)
		}
	}
	return tip, feeCap, nil
}

// minedAny reports whether one of the hashes has a successful receipt.
func (r *Relayer) minedAny(ctx context.Context, hashes []common.Hash) (bool, error) {
	for _, h := range hashes {
		rc, err := r.chain.TransactionReceipt(ctx, h)
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("read the receipt of %s: %w", h, err)
		}
		if rc.Status == types.ReceiptStatusSuccessful {
			return true, nil
		}
	}
	return false, nil
}

// waitMined polls for a receipt of any of the hashes (the same nonce: at
// most one is mined) until ReceiptTimeout.
func (r *Relayer) waitMined(ctx context.Context, hashes []common.Hash) (*types.Receipt, error) {
	if len(hashes) == 0 {
		return nil, errors.New("no transaction to wait for")
	}
	deadline := time.Now().Add(r.cfg.ReceiptTimeout)
	tick := min(500*time.Millisecond, r.cfg.ReceiptTimeout)
	for {
		for _, h := range hashes {
			rc, err := r.chain.TransactionReceipt(ctx, h)
			if err == nil {
				return rc, nil
			}
			if !errors.Is(err, ethereum.NotFound) {
				return nil, fmt.Errorf("read the receipt of %s: %w", h, err)
			}
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("transaction %s not mined within %v", hashes[len(hashes)-1], r.cfg.ReceiptTimeout)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(tick):
		}
	}
}

// revertReason decodes a revert's custom error (e.g. "NotMember(0,
// 0x...)") from an RPC error that carries revert data.
func revertReason(err error) (string, bool) {
	var de interface{ ErrorData() any }
	if !errors.As(err, &de) {
		return "", false
	}
	s, ok := de.ErrorData().(string)
	if !ok {
		return "", false
	}
	data := common.FromHex(s)
	if len(data) < 4 {
		return "reverted without a reason", true
	}
	for _, e := range FeedABI.Errors {
		if string(e.ID[:4]) != string(data[:4]) {
			continue
		}
		vals, uerr := e.Unpack(data)
		if uerr != nil {
			return e.Name + "(?)", true
		}
		parts := make([]string, 0, len(e.Inputs))
		if vs, ok := vals.([]any); ok {
			for _, v := range vs {
				switch x := v.(type) {
				case [32]byte:
					parts = append(parts, common.Hash(x).Hex())
				default:
					parts = append(parts, fmt.Sprint(x))
				}
			}
		}
		return e.Name + "(" + strings.Join(parts, ", ") + ")", true
	}
	if reason, uerr := abi.UnpackRevert(data); uerr == nil {
		return reason, true
	}
	return "reverted with unknown data 0x" + common.Bytes2Hex(data), true
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
