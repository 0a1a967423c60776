package relay

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/reputation"
)

// FeedConfig is a feed contract's current configuration.
type FeedConfig struct {
	// Digest is reputation.ConfigDigest of the members, the threshold and
	// the parameters digest.
	Digest [32]byte
	// Version is 1 after deployment and one more after each update.
	Version   uint64
	Members   []common.Address
	Threshold int
	Paused    bool
}

// ReadFeedConfig reads the configuration of the feed at addr.
func ReadFeedConfig(ctx context.Context, chain Chain, addr common.Address) (*FeedConfig, error) {
	call := func(method string) (any, error) {
		data, err := FeedABI.Pack(method)
		if err != nil {
			return nil, err
		}
		raw, err := chain.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: data}, nil)
		if err != nil {
			return nil, fmt.Errorf("call %s() on %s: %w", method, addr, err)
		}
		out, err := FeedABI.Unpack(method, raw)
		if err != nil || len(out) != 1 {
			return nil, fmt.Errorf("%w: %s on the feed %s: %v (is it a TrueGPUFeed with rotation?)", ErrConfig, method, addr, err)
		}
		return out[0], nil
	}
	var c FeedConfig
	var ok [5]bool
	v, err := call("configDigest")
	if err != nil {
		return nil, err
	}
	c.Digest, ok[0] = v.([32]byte)
	if v, err = call("configVersion"); err != nil {
		return nil, err
	}
	c.Version, ok[1] = v.(uint64)
	if v, err = call("getMembers"); err != nil {
		return nil, err
	}
	c.Members, ok[2] = v.([]common.Address)
	if v, err = call("threshold"); err != nil {
		return nil, err
	}
	var k *big.Int
	if k, ok[3] = v.(*big.Int); ok[3] {
		ok[3] = k.IsInt64() && k.Int64() <= int64(len(c.Members))
	}
	if v, err = call("paused"); err != nil {
		return nil, err
	}
	c.Paused, ok[4] = v.(bool)
	for _, o := range ok {
		if !o {
			return nil, fmt.Errorf("%w: the feed %s answered its configuration with unexpected values", ErrConfig, addr)
		}
	}
	c.Threshold = int(k.Int64())
	return &c, nil
}

// ConfigUpdate is a configuration change for a feed: the new members,
// threshold and parameters digest, and the current members' signatures
// of reputation.ConfigUpdateDigest.
type ConfigUpdate struct {
	Members      []common.Address
	Threshold    int
	ParamsDigest [32]byte
	Signatures   [][]byte
}

// NewDigest is the configuration digest the feed has after u.
func (u ConfigUpdate) NewDigest() [32]byte {
	return reputation.ConfigDigest(toEth(u.Members), u.Threshold, u.ParamsDigest)
}

func toEth(as []common.Address) []ethcrypto.Address {
	out := make([]ethcrypto.Address, len(as))
	for i, a := range as {
		out[i] = ethcrypto.Address(a)
	}
	return out
}

// UpdateConfigData is the calldata of updateConfig for u, members sorted
// ascending as the contract requires.
func UpdateConfigData(u ConfigUpdate) ([]byte, error) {
	if err := reputation.ValidateConfig(toEth(u.Members), u.Threshold); err != nil {
		return nil, err
	}
	sorted := reputation.SortedMembers(toEth(u.Members))
	members := make([]common.Address, len(sorted))
	for i, m := range sorted {
		members[i] = common.Address(m)
	}
	return FeedABI.Pack("updateConfig", members, big.NewInt(int64(u.Threshold)), u.ParamsDigest, u.Signatures)
}

// TxOptions are the gas settings and the waiting time of a transaction.
type TxOptions struct {
	// GasLimit: default the node's estimate plus a quarter.
	GasLimit uint64
	// MaxFeePerGas caps the fee per gas; default twice the base fee plus
	// the tip.
	MaxFeePerGas *big.Int
	// MaxPriorityFeePerGas is the tip; default the node's suggestion.
	MaxPriorityFeePerGas *big.Int
	// ReceiptTimeout bounds the wait for the receipt. Default 2 minutes.
	ReceiptTimeout time.Duration
}

// UpdateConfig checks u against the feed's current configuration (the
// signatures must be by at least its threshold of its members, over the
// update at the next version) and sends it with key, returning the
// receipt of the mined transaction. Afterwards the feed accepts only
// reports under u's configuration.
func UpdateConfig(ctx context.Context, chain Chain, feed common.Address, key *ecdsa.PrivateKey, u ConfigUpdate, opt TxOptions) (*types.Receipt, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: no transmitter key", ErrConfig)
	}
	data, err := UpdateConfigData(u)
	if err != nil {
		return nil, fmt.Errorf("relay: the new configuration: %w", err)
	}
	id, err := chain.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("relay: read the chain id: %w", err)
	}
	cur, err := ReadFeedConfig(ctx, chain, feed)
	if err != nil {
		return nil, err
	}
	dom := reputation.NewDomain(id.Uint64(), ethcrypto.Address(feed))
	digest := reputation.ConfigUpdateDigest(dom, cur.Digest, u.NewDigest(), cur.Version+1)
	if err := reputation.VerifyDigestSignatures(digest, u.Signatures, toEth(cur.Members), cur.Threshold); err != nil {
		return nil, fmt.Errorf("%w: the signatures are not %d of the feed's %d current members' over the update to version %d (config %x -> %x): %w",
			ErrReverted, cur.Threshold, len(cur.Members), cur.Version+1, cur.Digest, u.NewDigest(), err)
	}
	return sendTx(ctx, chain, id, feed, key, data, opt)
}

// sendTx signs and sends one dynamic-fee transaction to `to` and waits
// for its receipt; a revert is an error naming the feed's custom error.
func sendTx(ctx context.Context, chain Chain, id *big.Int, to common.Address, key *ecdsa.PrivateKey, data []byte, opt TxOptions) (*types.Receipt, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	msg := ethereum.CallMsg{From: from, To: &to, Data: data}
	gas := opt.GasLimit
	if gas == 0 {
		est, err := chain.EstimateGas(ctx, msg)
		if err != nil {
			if reason, ok := revertReason(err); ok {
				return nil, fmt.Errorf("%w: %s", ErrReverted, reason)
			}
			return nil, fmt.Errorf("relay: estimate gas: %w", err)
		}
		gas = est + est/4
	}
	tip := opt.MaxPriorityFeePerGas
	if tip == nil {
		var err error
		if tip, err = chain.SuggestGasTipCap(ctx); err != nil {
			return nil, fmt.Errorf("relay: read the suggested tip: %w", err)
		}
	}
	head, err := chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("relay: read the latest block header: %w", err)
	}
	base := head.BaseFee
	if base == nil {
		base = new(big.Int)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	if c := opt.MaxFeePerGas; c != nil && feeCap.Cmp(c) > 0 {
		if c.Cmp(base) < 0 {
			return nil, fmt.Errorf("relay: the base fee %v wei exceeds the fee cap %v wei", base, c)
		}
		feeCap = new(big.Int).Set(c)
		if tip.Cmp(feeCap) > 0 {
			tip = feeCap
		}
	}
	nonce, err := chain.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, fmt.Errorf("relay: read the nonce: %w", err)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(id), &types.DynamicFeeTx{
		ChainID: id, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas, To: &to, Data: data,
	})
	if err != nil {
		return nil, fmt.Errorf("relay: sign the transaction: %w", err)
	}
	if err := chain.SendTransaction(ctx, tx); err != nil && !strings.Contains(strings.ToLower(err.Error()), "already known") {
		return nil, fmt.Errorf("relay: send the transaction: %w", err)
	}
	timeout := opt.ReceiptTimeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		rc, err := chain.TransactionReceipt(wctx, tx.Hash())
		if err == nil {
			if rc.Status != types.ReceiptStatusSuccessful {
				return rc, fmt.Errorf("%w: transaction %s reverted in block %v", ErrReverted, rc.TxHash, rc.BlockNumber)
			}
			return rc, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, fmt.Errorf("relay: read the receipt of %s: %w", tx.Hash(), err)
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("relay: transaction %s not mined within %v: %w", tx.Hash(), timeout, wctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
