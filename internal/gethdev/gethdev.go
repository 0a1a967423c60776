// Package gethdev runs go-ethereum's `geth --dev` for tests: a one-node
// chain on a loopback port in a temporary data directory, whose prefunded
// developer account is a key the test holds in an encrypted keystore file.
// `make geth` builds the binary into .bin/geth from the version pinned in
// tools/go.mod; without it, Start skips the test and says how to build it.
package gethdev

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
)

// Passphrase protects the developer account's keystore file.
const Passphrase = "truegpu gethdev passphrase"

// Chain is a running geth --dev node.
type Chain struct {
	// URL is the HTTP JSON-RPC endpoint.
	URL string
	// Client is connected to URL.
	Client *ethclient.Client
	// ID is the chain id (1337).
	ID *big.Int
	// Key is the prefunded developer account's key.
	Key *ecdsa.PrivateKey
	// KeyFile is Key's encrypted keystore file; PasswordFile holds
	// Passphrase.
	KeyFile, PasswordFile string

	mu  sync.Mutex
	log bytes.Buffer
}

// Binary returns the path of .bin/geth in the repository that holds dir
// (the nearest ancestor with a .bin/geth), or "" if there is none.
func Binary(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, ".bin", "geth")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Start runs geth --dev with a one-second block period. It skips the test
// when .bin/geth is missing. The process is killed when the test ends, or
// after lifetime at the latest.
func Start(t testing.TB, lifetime time.Duration) *Chain {
	t.Helper()
	geth := Binary(".")
	if geth == "" {
		t.Skip("no .bin/geth in this repository: run 'make geth' (builds go-ethereum's geth pinned in tools/go.mod; .ci/run does)")
	}
	dir := t.TempDir()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(Passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// geth --dev makes the first account of its keystore the developer
	// account and prefunds it.
	acct, err := keystore.NewKeyStore(filepath.Join(dir, "data", "keystore"), keystore.LightScryptN, keystore.LightScryptP).ImportECDSA(key, Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	httpPort, authPort := freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), lifetime)
	cmd := exec.CommandContext(ctx, geth,
		"--dev", "--dev.period", "1", "--datadir", filepath.Join(dir, "data"), "--password", pwFile,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(httpPort), "--http.api", "eth,net,web3",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(authPort),
		"--port", "0", "--nodiscover", "--maxpeers", "0", "--ipcdisable", "--verbosity", "2")
	c := &Chain{URL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), Key: key, KeyFile: acct.URL.Path, PasswordFile: pwFile}
	cmd.Stdout, cmd.Stderr = (*logWriter)(c), (*logWriter)(c)
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", geth, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("geth output:\n%s", c.Log(4000))
		}
	})

	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("geth exited before serving JSON-RPC: %v\n%s", err, c.Log(4000))
		default:
		}
		if c.Client == nil {
			c.Client, _ = ethclient.Dial(c.URL)
		}
		if c.Client != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			c.ID, err = c.Client.ChainID(cctx)
			ccancel()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("geth did not serve JSON-RPC at %s within a minute: %v\n%s", c.URL, err, c.Log(4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Cleanup(c.Client.Close)
	return c
}

type logWriter Chain

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Write(p)
}

// Log returns the last n bytes of geth's output.
func (c *Chain) Log(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.log.String()
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Send signs a transaction from key (to nil: a contract creation) and
// waits up to a minute for its receipt. A transaction the node refuses to
// estimate (a revert) returns the node's error, which carries the revert
// data (ErrorData); a mined transaction that reverted returns its receipt
// and an error.
func (c *Chain) Send(key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.Client.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, err
	}
	gas, err := c.Client.EstimateGas(ctx, ethereum.CallMsg{From: from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, fmt.Errorf("estimate gas: %w", err)
	}
	tip, err := c.Client.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	head, err := c.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(c.ID), &types.DynamicFeeTx{
		ChainID: c.ID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas + gas/4, To: to, Value: value, Data: data,
	})
	if err != nil {
		return nil, err
	}
	if err := c.Client.SendTransaction(ctx, tx); err != nil {
		return nil, err
	}
	for {
		rc, err := c.Client.TransactionReceipt(ctx, tx.Hash())
		if err == nil {
			if rc.Status != types.ReceiptStatusSuccessful {
				return rc, fmt.Errorf("transaction %s reverted", tx.Hash())
			}
			return rc, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("transaction %s not mined: %w", tx.Hash(), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Call runs a read-only call against the latest block.
func (c *Chain) Call(to common.Address, data []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Client.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
}
