package contracts

import (
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
)

//go:embed build/*.json
var buildFS embed.FS

// ErrUnknownContract reports an artifact name with no file under build/.
var ErrUnknownContract = errors.New("contracts: unknown contract")

// Artifact is a compiled contract: its ABI and creation bytecode.
type Artifact struct {
	Name     string
	Compiler string
	ABI      abi.ABI
	Bytecode []byte
}

// LoadArtifact returns the compiled contract name ("TrueGPUFeed",
// "RewardPool", "WorkVerifier") from the embedded build/ directory.
func LoadArtifact(name string) (*Artifact, error) {
	raw, err := buildFS.ReadFile("build/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("%w: %s (run contracts/build.sh?): %v", ErrUnknownContract, name, err)
	}
	var f struct {
		ContractName string          `json:"contractName"`
		Compiler     string          `json:"compiler"`
		ABI          json.RawMessage `json:"abi"`
		Bytecode     string          `json:"bytecode"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("contracts: artifact %s: %w", name, err)
	}
	a, err := abi.JSON(strings.NewReader(string(f.ABI)))
	if err != nil {
		return nil, fmt.Errorf("contracts: artifact %s: abi: %w", name, err)
	}
	code, err := hex.DecodeString(strings.TrimPrefix(f.Bytecode, "0x"))
	if err != nil {
		return nil, fmt.Errorf("contracts: artifact %s: bytecode: %w", name, err)
	}
	return &Artifact{Name: f.ContractName, Compiler: f.Compiler, ABI: a, Bytecode: code}, nil
}

// DeployData returns the creation transaction data: bytecode followed by the
// ABI-encoded constructor arguments.
func (a *Artifact) DeployData(args ...any) ([]byte, error) {
	enc, err := a.ABI.Pack("", args...)
	if err != nil {
		return nil, fmt.Errorf("contracts: %s constructor: %w", a.Name, err)
	}
	return append(append([]byte{}, a.Bytecode...), enc...), nil
}
