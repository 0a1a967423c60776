package contracts

import (
	"errors"
	"fmt"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/state"
	"github.com/ethereum/go-ethereum/core/tracing"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/core/vm"
	"github.com/ethereum/go-ethereum/core/vm/runtime"
	"github.com/holiman/uint256"
)

// chain is a minimal in-memory EVM: one state, a block time, one sender.
type chain struct {
	t     testing.TB
	state *state.StateDB
	time  uint64
	from  common.Address
}

const chainID = 1 // runtime's default chain config

func newChain(t testing.TB) *chain {
	st, err := state.New(types.EmptyRootHash, state.NewDatabaseForTesting())
	if err != nil {
		t.Fatal(err)
	}
	from := common.HexToAddress("0x00000000000000000000000000000000000f00d5")
	st.AddBalance(from, uint256.MustFromBig(new(big.Int).Exp(big.NewInt(10), big.NewInt(24), nil)), tracing.BalanceChangeUnspecified)
	return &chain{t: t, state: st, time: 1_700_000_000, from: from}
}

const gasLimit = 30_000_000

func (c *chain) cfg(value *big.Int) *runtime.Config {
	return &runtime.Config{
		State:       c.state,
		Origin:      c.from,
		Time:        c.time,
		BlockNumber: big.NewInt(1),
		GasLimit:    gasLimit,
		Value:       value,
	}
}

// contract is a deployed artifact.
type contract struct {
	c    *chain
	art  *Artifact
	addr common.Address
}

// deploy creates art with constructor args; it returns the contract and the
// execution gas used.
func (c *chain) deploy(name string, args ...any) (*contract, uint64) {
	c.t.Helper()
	art, err := LoadArtifact(name)
	if err != nil {
		c.t.Fatal(err)
	}
	data, err := art.DeployData(args...)
	if err != nil {
		c.t.Fatal(err)
	}
	_, addr, left, err := runtime.Create(data, c.cfg(nil))
	if err != nil {
		c.t.Fatalf("deploy %s: %v", name, err)
	}
	return &contract{c: c, art: art, addr: addr}, gasLimit - left
}

// revertError is a decoded revert: the custom error's name and arguments.
type revertError struct {
	Name string
	Args []any
}

func (e *revertError) Error() string { return fmt.Sprintf("reverted: %s%v", e.Name, e.Args) }

// call sends a transaction calling method; a revert is decoded into a
// *revertError naming the contract's custom error.
func (k *contract) call(value *big.Int, method string, args ...any) ([]any, uint64, error) {
	k.c.t.Helper()
	input, err := k.art.ABI.Pack(method, args...)
	if err != nil {
		k.c.t.Fatalf("pack %s: %v", method, err)
	}
	ret, left, err := runtime.Call(k.addr, input, k.c.cfg(value))
	gas := gasLimit - left
	if err != nil {
		if errors.Is(err, vm.ErrExecutionReverted) && len(ret) >= 4 {
			if re := decodeRevert(ret, k.art); re != nil {
				return nil, gas, re
			}
		}
		return nil, gas, fmt.Errorf("%s: %w (return data %x)", method, err, ret)
	}
	out, err := k.art.ABI.Unpack(method, ret)
	if err != nil {
		k.c.t.Fatalf("unpack %s: %v", method, err)
	}
	return out, gas, nil
}

// mustCall is call that fails the test on error.
func (k *contract) mustCall(method string, args ...any) ([]any, uint64) {
	k.c.t.Helper()
	out, gas, err := k.call(nil, method, args...)
	if err != nil {
		k.c.t.Fatalf("%s: %v", method, err)
	}
	return out, gas
}

// wantRevert asserts that err is the named custom error.
func wantRevert(t testing.TB, err error, name string) {
	t.Helper()
	var re *revertError
	if !errors.As(err, &re) || re.Name != name {
		t.Fatalf("err = %v, want revert %s", err, name)
	}
}

func runtimeCreate(c *chain, data []byte) ([]byte, common.Address, uint64, error) {
	return runtime.Create(data, c.cfg(nil))
}

// decodeRevert decodes revert data as a custom error of art or of any other
// artifact (a revert bubbles up from the contracts it calls).
func decodeRevert(ret []byte, art *Artifact) *revertError {
	arts := []*Artifact{art}
	for _, name := range []string{"TrueGPUFeed", "RewardPool", "WorkVerifier"} {
		if a, err := LoadArtifact(name); err == nil {
			arts = append(arts, a)
		}
	}
	for _, a := range arts {
		for _, e := range a.ABI.Errors {
			if string(e.ID[:4]) == string(ret[:4]) {
				vals, _ := e.Inputs.Unpack(ret[4:])
				return &revertError{Name: e.Name, Args: vals}
			}
		}
	}
	return nil
}
