package main

// truegpuctl feed relay: carries the cluster's complete epoch reports to
// the feed contract on a chain (package relay).

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/truegpu/truegpu/client"
	"github.com/truegpu/truegpu/internal/ethcrypto"
	"github.com/truegpu/truegpu/relay"
	"github.com/truegpu/truegpu/reputation"
)

const relayLong = `
Feed relay follows the cluster's complete epoch reports (those with the
threshold of member signatures) and submits each one to the TrueGPUFeed
contract at --feed-contract over the chain's JSON-RPC endpoint (--rpc).

It is idempotent: before each submission it reads the contract's latest
epoch and skips what the chain already has, so it may be restarted at any
time and several relayers may run side by side. A failed call or an unmined
transaction is retried with exponential backoff; a retried transaction keeps
its nonce and raises its fees, so it replaces the earlier one. When the chain
is far behind, only the --max-backlog newest epochs are submitted (the
contract keeps only the latest report).

The transmitter key, which signs and pays for the transactions, is read from
an encrypted go-ethereum keystore file (--keystore, as written by
'geth account new' or clef) with the passphrase in --password. The members
must sign for this chain and contract (oracled -chain-id and -feed-contract);
a report signed for another domain is counted as failed and not sent.

With --metrics-addr it serves Prometheus metrics at /metrics:
truegpu_relay_reports_relayed_total, truegpu_relay_reports_skipped_total
and truegpu_relay_reports_failed_total (by reason),
truegpu_relay_last_relayed_epoch, truegpu_relay_chain_epoch,
truegpu_relay_submit_attempts_total, truegpu_relay_gas_used_total and
truegpu_relay_feed_paused.

Reports carry a validity window (valid-from, expires-at); one the chain's
latest block is already past is skipped as expired. While the feed is
paused nothing is submitted.

It runs until interrupted (SIGINT, SIGTERM), or with --once relays what is
missing and exits.

Exit status: 0 stopped by a signal or --once succeeded, 1 it could not start
or --once failed, 2 bad usage.`

// relayFlags are the flags of feed relay.
type relayFlags struct {
	cf             clientFlags
	rpc            string
	feed           string
	keystore       string
	password       string
	chainID        uint64
	gasLimit       uint64
	maxFee         string
	maxTip         string
	poll           time.Duration
	attempts       int
	backoff        time.Duration
	receiptTimeout time.Duration
	maxBacklog     int
	metricsAddr    string
	once           bool
	verbose        bool
}

func (f *relayFlags) register(fs *flag.FlagSet) {
	f.cf.register(fs)
	fs.StringVar(&f.rpc, "rpc", "http://127.0.0.1:8545", "the chain's JSON-RPC endpoint `URL` (http, https, ws or wss)")
	fs.StringVar(&f.feed, "feed-contract", "", "the TrueGPUFeed contract's `address` (required)")
	fs.StringVar(&f.keystore, "keystore", "", "encrypted go-ethereum keystore `file` of the transmitter key (required)")
	fs.StringVar(&f.password, "password", "", "`file` holding the keystore's passphrase on its first line (required)")
	fs.Uint64Var(&f.chainID, "chain-id", 0, "refuse to run unless the endpoint serves this chain `id` (0: any)")
	fs.Uint64Var(&f.gasLimit, "gas-limit", 0, "gas limit of each submission (0: the node's estimate plus a quarter)")
	fs.StringVar(&f.maxFee, "max-fee-per-gas", "", "cap on the fee per gas in `wei` (a number, or with a gwei suffix, e.g. 30gwei; default: twice the base fee plus the tip)")
	fs.StringVar(&f.maxTip, "max-priority-fee-per-gas", "", "tip per gas in `wei` (or gwei suffix; default: the node's suggestion); raised by a quarter on each retry")
	fs.DurationVar(&f.poll, "poll", 5*time.Second, "time between looks at the cluster")
	fs.IntVar(&f.attempts, "attempts", 5, "attempts per report before waiting for the next pass")
	fs.DurationVar(&f.backoff, "backoff", time.Second, "pause before a report's second attempt; doubles up to 32 times")
	fs.DurationVar(&f.receiptTimeout, "receipt-timeout", 2*time.Minute, "how long a sent transaction may stay unmined before it is replaced")
	fs.IntVar(&f.maxBacklog, "max-backlog", 8, "how many of the newest epochs to submit when the chain is behind by more")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://`host:port`/metrics (empty: none)")
	fs.BoolVar(&f.once, "once", false, "relay what is missing, then exit")
	fs.BoolVar(&f.verbose, "v", false, "log skipped reports too")
}

// parseWei reads "123", "123wei" or "1.5gwei".
func parseWei(name, s string) (*big.Int, error) {
	if s == "" {
		return nil, nil
	}
	v := strings.ToLower(strings.TrimSpace(s))
	unit := big.NewRat(1, 1)
	switch {
	case strings.HasSuffix(v, "gwei"):
		v, unit = strings.TrimSuffix(v, "gwei"), big.NewRat(1_000_000_000, 1)
	case strings.HasSuffix(v, "wei"):
		v = strings.TrimSuffix(v, "wei")
	}
	r, ok := new(big.Rat).SetString(v)
	if !ok || r.Sign() < 0 {
		return nil, usageError("--%s %q: give a non-negative amount in wei, or with a gwei suffix", name, s)
	}
	r.Mul(r, unit)
	if !r.IsInt() {
		return nil, usageError("--%s %q is not a whole number of wei", name, s)
	}
	return new(big.Int).Set(r.Num()), nil
}

// newFeedFlagSet is the flag set of "truegpuctl feed VERB", writing to the
// command's standard error.
func newFeedFlagSet(ctx *runContext, verb string) *flag.FlagSet {
	fs := flag.NewFlagSet("truegpuctl feed "+verb, flag.ContinueOnError)
	fs.SetOutput(ctx.Stderr)
	return fs
}

// parseFeedFlags parses the flags of "truegpuctl feed VERB": synopsis and
// long make its usage text. It reports help when -h was asked for (the
// usage is then printed and there is nothing to run) and refuses
// positional arguments.
func parseFeedFlags(ctx *runContext, fs *flag.FlagSet, verb, synopsis, long string, args []string) (help bool, err error) {
	fs.Usage = func() {
		fmt.Fprintf(ctx.Stderr, "Usage: truegpuctl feed %s %s [flags]\n\n%s\n\nFlags:\n", verb, synopsis, strings.TrimSpace(long))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return false, usageError("feed %s takes no arguments, got %q", verb, fs.Args())
	}
	return false, nil
}

func runRelay(ctx *runContext, args []string) error {
	var f relayFlags
	fs := newFeedFlagSet(ctx, "relay")
	f.register(fs)
	if help, err := parseFeedFlags(ctx, fs, "relay", "--feed-contract ADDRESS --keystore FILE --password FILE", relayLong, args); help || err != nil {
		return err
	}
	if err := f.cf.validate(); err != nil {
		return err
	}
	switch {
	case f.feed == "":
		return usageError("--feed-contract is required: the TrueGPUFeed contract's address")
	case !common.IsHexAddress(f.feed):
		return usageError("--feed-contract %q is not an address", f.feed)
	case f.keystore == "" || f.password == "":
		return usageError("--keystore and --password are required: the transmitter key's keystore file and its passphrase file")
	case f.poll <= 0 || f.backoff <= 0 || f.receiptTimeout <= 0:
		return usageError("--poll, --backoff and --receipt-timeout must be positive")
	case f.attempts <= 0 || f.maxBacklog <= 0:
		return usageError("--attempts and --max-backlog must be at least 1")
	}
	maxFee, err := parseWei("max-fee-per-gas", f.maxFee)
	if err != nil {
		return err
	}
	maxTip, err := parseWei("max-priority-fee-per-gas", f.maxTip)
	if err != nil {
		return err
	}
	key, err := relay.LoadKey(f.keystore, f.password)
	if err != nil {
		return err
	}

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(ctx.Stderr, &slog.HandlerOptions{Level: level}))

	reg := prometheus.NewRegistry()
	metrics := relay.NewMetrics(reg)
	if f.metricsAddr != "" {
		ms, err := relay.ServeMetrics(f.metricsAddr, reg)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", f.metricsAddr, err)
		}
		defer ms.Close()
		log.Info("metrics", "url", ms.URL())
	}

	tlsCfg, err := f.cf.tlsConfig()
	if err != nil {
		return err
	}
	src, err := client.Dial(f.cf.server, client.Options{TLS: tlsCfg, Insecure: tlsCfg == nil})
	if err != nil {
		return err
	}
	defer src.Close()

	dialCtx, cancel := context.WithTimeout(sigCtx, f.cf.timeout)
	chain, err := ethclient.DialContext(dialCtx, f.rpc)
	cancel()
	if err != nil {
		return fmt.Errorf("connect to the chain at %s: %w", f.rpc, err)
	}
	defer chain.Close()

	cfg := relay.Config{
		Feed: common.HexToAddress(f.feed), Key: key, GasLimit: f.gasLimit,
		MaxFeePerGas: maxFee, MaxPriorityFeePerGas: maxTip,
		Poll: f.poll, Attempts: f.attempts, Backoff: f.backoff, ReceiptTimeout: f.receiptTimeout,
		MaxBacklog: f.maxBacklog, Metrics: metrics, Logger: log,
	}
	if f.chainID != 0 {
		cfg.ChainID = new(big.Int).SetUint64(f.chainID)
	}
	checkCtx, cancel := context.WithTimeout(sigCtx, f.cf.timeout)
	r, err := relay.New(checkCtx, src, chain, cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("%w (chain endpoint %s)", err, f.rpc)
	}

	log.Info("relaying", "server", f.cf.server, "chain", r.ChainID(), "feed", cfg.Feed, "transmitter", r.From())

	if f.once {
		done, err := r.Step(sigCtx)
		for _, e := range slices.Sorted(maps.Keys(done)) {
			fmt.Fprintf(ctx.Stdout, "epoch %d: %s\n", e, done[e])
		}
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		for _, out := range done {
			switch out {
			case relay.FailedDomain, relay.FailedReverted, relay.FailedRetries, relay.FailedConfig:
				return errors.New("relay: a report was not relayed (see the log above)")
			}
		}
		return nil
	}
	if err := r.Run(sigCtx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

const signConfigUpdateLong = `
Feed sign-config-update signs, with a current member's report signing key
(oracled -signer-key), the change of the feed contract's configuration to
the new members, threshold and parameters digest. The contract applies the
change (feed update-config) once at least its threshold of its current
members have signed it; afterwards it accepts only reports under the new
configuration.

The signature is over the EIP-712 ConfigUpdate(previousConfigDigest,
newConfigDigest, version) under the feed's domain (--chain-id,
--feed-contract). --previous-config and --version are the feed's current
configDigest() and configVersion()+1; without them they are read from the
chain at --rpc. The signature is printed on stdout as 0x hex, the digests
on stderr.

Exit status: 0 signed, 1 the key or the chain could not be read, 2 bad usage.`

const updateConfigLong = `
Feed update-config sends the feed contract's updateConfig transaction: new
members (--members, any order), threshold and parameters digest, with the
current members' signatures from feed sign-config-update (--signature, once
per signature or comma-separated). Before sending, it reads the feed's
current configuration and checks that the signatures are by at least its
threshold of its current members over this update at the next version; a
set that would revert is refused without a transaction. The transmitter key
(--keystore, --password) pays gas; any account may send the update.

Exit status: 0 updated, 1 refused or failed, 2 bad usage.`

// configUpdateFlags are the flags both config-update commands share.
type configUpdateFlags struct {
	rpc       string
	feed      string
	chainID   uint64
	members   string
	threshold int
	params    string
	timeout   time.Duration
}

func (f *configUpdateFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rpc, "rpc", "", "the chain's JSON-RPC endpoint `URL`")
	fs.StringVar(&f.feed, "feed-contract", "", "the TrueGPUFeed contract's `address` (required)")
	fs.Uint64Var(&f.chainID, "chain-id", 0, "the chain `id` the feed is on")
	fs.StringVar(&f.members, "members", "", "the new members' signing `addresses`, comma-separated (required)")
	fs.IntVar(&f.threshold, "threshold", 0, "signatures the new configuration needs (required, 1..members)")
	fs.StringVar(&f.params, "params-digest", "", "the new configuration's parameters `digest`, 32 bytes hex (required; oracled logs it at start)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "limit on the chain calls and the wait for the transaction")
}

// parse checks the flags and returns the new configuration.
func (f *configUpdateFlags) parse() (relay.ConfigUpdate, error) {
	var u relay.ConfigUpdate
	switch {
	case f.feed == "":
		return u, usageError("--feed-contract is required: the TrueGPUFeed contract's address")
	case !common.IsHexAddress(f.feed):
		return u, usageError("--feed-contract %q is not an address", f.feed)
	case f.members == "":
		return u, usageError("--members is required: the new members' signing addresses, comma-separated")
	case f.params == "":
		return u, usageError("--params-digest is required: the new configuration's parameters digest")
	case f.timeout <= 0:
		return u, usageError("--timeout must be positive")
	}
	for _, m := range strings.Split(f.members, ",") {
		m = strings.TrimSpace(m)
		a, err := ethcrypto.ParseAddress(m)
		if err != nil {
			return u, usageError("--members: %q is not an address", m)
		}
		u.Members = append(u.Members, common.Address(a))
	}
	var ms []ethcrypto.Address
	for _, m := range u.Members {
		ms = append(ms, ethcrypto.Address(m))
	}
	if err := reputation.ValidateConfig(ms, f.threshold); err != nil {
		return u, usageError("--members and --threshold: %v", err)
	}
	u.Threshold = f.threshold
	p, err := parseHash("params-digest", f.params)
	if err != nil {
		return u, err
	}
	u.ParamsDigest = p
	return u, nil
}

// parseHash reads a 32-byte hex value, with or without 0x.
func parseHash(name, s string) ([32]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil || len(b) != 32 {
		return [32]byte{}, usageError("--%s %q: give 32 bytes as 64 hex digits", name, s)
	}
	return [32]byte(b), nil
}

func runSignConfigUpdate(ctx *runContext, args []string) error {
	var (
		f        configUpdateFlags
		key      string
		previous string
		version  uint64
	)
	fs := newFeedFlagSet(ctx, "sign-config-update")
	f.register(fs)
	fs.StringVar(&key, "signer-key", "", "a current member's report signing key `file` (required)")
	fs.StringVar(&previous, "previous-config", "", "the feed's current configDigest() (default: read at --rpc)")
	fs.Uint64Var(&version, "version", 0, "the feed's configVersion()+1 (default: read at --rpc)")
	if help, err := parseFeedFlags(ctx, fs, "sign-config-update", "--signer-key FILE --feed-contract ADDRESS --members A,B,C --threshold K --params-digest HEX", signConfigUpdateLong, args); help || err != nil {
		return err
	}
	u, err := f.parse()
	if err != nil {
		return err
	}
	if key == "" {
		return usageError("--signer-key is required: a current member's report signing key file")
	}
	if (previous == "") != (version == 0) {
		return usageError("give both --previous-config and --version, or neither (to read them at --rpc)")
	}
	var prev [32]byte
	chainID := f.chainID
	if previous != "" {
		if prev, err = parseHash("previous-config", previous); err != nil {
			return err
		}
		if version < 2 {
			return usageError("--version %d: a configuration update is at version 2 or above", version)
		}
		if chainID == 0 {
			return usageError("--chain-id is required without --rpc")
		}
	} else {
		if f.rpc == "" {
			return usageError("--rpc is required to read the feed's configuration (or give --previous-config and --version)")
		}
		c, cancel := context.WithTimeout(context.Background(), f.timeout)
		defer cancel()
		chain, err := ethclient.DialContext(c, f.rpc)
		if err != nil {
			return fmt.Errorf("connect to the chain at %s: %w", f.rpc, err)
		}
		defer chain.Close()
		id, err := chain.ChainID(c)
		if err != nil {
			return fmt.Errorf("read the chain id at %s: %w", f.rpc, err)
		}
		if chainID != 0 && id.Uint64() != chainID {
			return fmt.Errorf("%w: the endpoint serves chain %v, not chain %d", relay.ErrConfig, id, chainID)
		}
		chainID = id.Uint64()
		cur, err := relay.ReadFeedConfig(c, chain, common.HexToAddress(f.feed))
		if err != nil {
			return err
		}
		prev, version = cur.Digest, cur.Version+1
	}
	k, err := ethcrypto.LoadKeyFile(key)
	if err != nil {
		return err
	}
	dom := reputation.NewDomain(chainID, ethcrypto.Address(common.HexToAddress(f.feed)))
	next := u.NewDigest()
	sig, err := reputation.SignConfigUpdate(k, dom, prev, next, version)
	if err != nil {
		return err
	}
	fmt.Fprintf(ctx.Stderr, "signer %s: config 0x%x -> 0x%x at version %d (chain %d, feed %s)\n", k.Address(), prev, next, version, chainID, common.HexToAddress(f.feed))
	fmt.Fprintf(ctx.Stdout, "0x%x\n", sig[:])
	return nil
}

func runUpdateConfig(ctx *runContext, args []string) error {
	var (
		f                  configUpdateFlags
		keystore, password string
		sigs               []string
		gasLimit           uint64
		maxFee, maxTip     string
	)
	fs := newFeedFlagSet(ctx, "update-config")
	f.register(fs)
	fs.StringVar(&keystore, "keystore", "", "encrypted go-ethereum keystore `file` of the sending key (required)")
	fs.StringVar(&password, "password", "", "`file` holding the keystore's passphrase on its first line (required)")
	fs.Func("signature", "a current member's `signature` from feed sign-config-update (repeat, or comma-separate)", func(s string) error {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				sigs = append(sigs, p)
			}
		}
		return nil
	})
	fs.Uint64Var(&gasLimit, "gas-limit", 0, "gas limit (0: the node's estimate plus a quarter)")
	fs.StringVar(&maxFee, "max-fee-per-gas", "", "cap on the fee per gas in `wei` (or gwei suffix)")
	fs.StringVar(&maxTip, "max-priority-fee-per-gas", "", "tip per gas in `wei` (or gwei suffix)")
	if help, err := parseFeedFlags(ctx, fs, "update-config", "--rpc URL --feed-contract ADDRESS --keystore FILE --password FILE --members A,B,C --threshold K --params-digest HEX --signature SIG...", updateConfigLong, args); help || err != nil {
		return err
	}
	u, err := f.parse()
	if err != nil {
		return err
	}
	switch {
	case f.rpc == "":
		return usageError("--rpc is required: the chain's JSON-RPC endpoint")
	case keystore == "" || password == "":
		return usageError("--keystore and --password are required: the sending key's keystore file and its passphrase file")
	case len(sigs) == 0:
		return usageError("--signature is required: the current members' signatures from feed sign-config-update")
	}
	for i, s := range sigs {
		b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil || len(b) != 65 {
			return usageError("--signature %d %q: give 65 bytes as 130 hex digits", i+1, s)
		}
		u.Signatures = append(u.Signatures, b)
	}
	opt := relay.TxOptions{GasLimit: gasLimit, ReceiptTimeout: f.timeout}
	if opt.MaxFeePerGas, err = parseWei("max-fee-per-gas", maxFee); err != nil {
		return err
	}
	if opt.MaxPriorityFeePerGas, err = parseWei("max-priority-fee-per-gas", maxTip); err != nil {
		return err
	}
	key, err := relay.LoadKey(keystore, password)
	if err != nil {
		return err
	}
	c, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	chain, err := ethclient.DialContext(c, f.rpc)
	if err != nil {
		return fmt.Errorf("connect to the chain at %s: %w", f.rpc, err)
	}
	defer chain.Close()
	if f.chainID != 0 {
		id, err := chain.ChainID(c)
		if err != nil {
			return fmt.Errorf("read the chain id at %s: %w", f.rpc, err)
		}
		if id.Uint64() != f.chainID {
			return fmt.Errorf("%w: the endpoint serves chain %v, not chain %d", relay.ErrConfig, id, f.chainID)
		}
	}
	feed := common.HexToAddress(f.feed)
	rc, err := relay.UpdateConfig(c, chain, feed, key, u, opt)
	if err != nil {
		return err
	}
	cur, err := relay.ReadFeedConfig(c, chain, feed)
	if err != nil {
		return err
	}
	fmt.Fprintf(ctx.Stdout, "feed %s: config version %d, digest 0x%x, %d of %d members (tx %s, block %v)\n",
		feed, cur.Version, cur.Digest, cur.Threshold, len(cur.Members), rc.TxHash, rc.BlockNumber)
	return nil
}
