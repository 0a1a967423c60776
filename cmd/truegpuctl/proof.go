package main

// Shared plumbing of the proof and key verbs (setup, prove, verify,
// solidity, ceremony): the proof bundle format, where keys come from, key
// files, hex arguments, the -profile flag and output files.

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/consensys/gnark/logger"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// proofBundle is the JSON file "prove" writes and "verify" reads: one
// challenge and its work proof.
type proofBundle struct {
	Profile string `json:"profile"` // "name/vN"
	Digest  string `json:"digest"`  // 0x-hex profile digest
	Nonce   string `json:"nonce"`   // 0x-hex, 32 bytes
	Node    string `json:"node"`    // 0x-hex, 20 bytes
	Root    string `json:"root"`    // 0x-hex, 32 bytes
	Seed    string `json:"seed"`    // 0x-hex, 16 bytes: the sample seed
	Proof   string `json:"proof"`   // 0x-hex, verifier.ProofSize (256) bytes
}

// keyFlags selects where keys come from: a directory written by "setup" or
// "ceremony seal", a single verifying key file, or an in-process unsafe dev
// setup.
type keyFlags struct {
	dir       string
	vkFile    string
	unsafeDev bool
}

func (k *keyFlags) register(fs *flag.FlagSet, withVK bool) {
	fs.StringVar(&k.dir, "keys", "", "`dir`ectory with PROFILE-vN.pk and PROFILE-vN.vk (from 'setup' or 'ceremony seal')")
	fs.BoolVar(&k.unsafeDev, "unsafe-dev", false, "use deterministic UNSAFE dev keys, generated once and cached in the user cache dir (anyone can forge proofs under them)")
	if withVK {
		fs.StringVar(&k.vkFile, "vk", "", "verifying key `file` (overrides -keys)")
	}
}

func keyFileBase(dir string, p *prover.Profile) string {
	return filepath.Join(dir, fmt.Sprintf("%s-v%d", p.Name, p.Version))
}

func (k *keyFlags) check() error {
	n := 0
	for _, set := range []bool{k.dir != "", k.vkFile != "", k.unsafeDev} {
		if set {
			n++
		}
	}
	if n == 0 {
		return usageError("choose keys with -keys DIR, -vk FILE or -unsafe-dev")
	}
	if k.unsafeDev && n > 1 {
		return usageError("-unsafe-dev cannot be combined with -keys or -vk")
	}
	return nil
}

// devKeyDir is where -unsafe-dev keeps dev keys between runs; empty (kept
// in memory only) when the platform has no user cache directory.
func devKeyDir() string {
	dir, _ := prover.DevKeyCacheDir()
	return dir
}

func warnUnsafe(w io.Writer, p *prover.Profile) {
	fmt.Fprintf(w, "WARNING: using UNSAFE deterministic dev keys for %s: anyone can forge proofs under them\n", p.ID())
}

func (k *keyFlags) provingKey(ctx *runContext, p *prover.Profile) (*prover.ProvingKey, error) {
	if k.unsafeDev {
		warnUnsafe(ctx.Stderr, p)
		pk, _, err := prover.UnsafeDevKeys(p, devKeyDir())
		return pk, err
	}
	if k.dir == "" {
		return nil, usageError("proving needs -keys DIR or -unsafe-dev")
	}
	f, err := os.Open(keyFileBase(k.dir, p) + ".pk")
	if err != nil {
		return nil, fmt.Errorf("proving key for %s: %w (create one with 'truegpuctl setup' or a ceremony)", p.ID(), err)
	}
	defer f.Close()
	return prover.ReadProvingKey(f, p)
}

func (k *keyFlags) verifyingKey(ctx *runContext, p *prover.Profile) (*verifier.VerifyingKey, error) {
	if k.unsafeDev {
		warnUnsafe(ctx.Stderr, p)
		_, vk, err := prover.UnsafeDevKeys(p, devKeyDir())
		return vk, err
	}
	path := k.vkFile
	if path == "" {
		path = keyFileBase(k.dir, p) + ".vk"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("verifying key for %s: %w", p.ID(), err)
	}
	vk, err := verifier.DecodeVerifyingKey(b)
	if err != nil {
		return nil, fmt.Errorf("verifying key %s: %w", path, err)
	}
	if vk.Digest != p.Digest() {
		return nil, fmt.Errorf("verifying key %s is for digest %x, not profile %s: %w", path, vk.Digest, p.ID(), verifier.ErrDigestMismatch)
	}
	return vk, nil
}

func writeKeys(dir string, pk *prover.ProvingKey) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := keyFileBase(dir, pk.Profile())
	var buf bytes.Buffer
	if _, err := pk.WriteTo(&buf); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".pk", buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(base+".vk", pk.VerifyingKey().Encode(), 0o644); err != nil {
		return "", err
	}
	return base, nil
}

func decodeHex(name, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	if err != nil {
		return nil, fmt.Errorf("%s %q is not hex: %w", name, s, err)
	}
	if n > 0 && len(b) != n {
		return nil, fmt.Errorf("%s %q has %d bytes, want %d", name, s, len(b), n)
	}
	return b, nil
}

func profileFlag(fs *flag.FlagSet, p *string) {
	fs.StringVar(p, "profile", "test", "workload `profile`: "+profileNames())
}

func profileNames() string {
	var names []string
	for _, p := range prover.Profiles() {
		names = append(names, p.Name)
	}
	return strings.Join(names, ", ")
}

// profileByID accepts "name" or "name/vN".
func profileByID(id string) (*prover.Profile, error) {
	return prover.ProfileByID(id)
}

func writeOut(ctx *runContext, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := ctx.Stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

func init() {
	// gnark logs circuit compilation and proving to stdout; stdout of these
	// verbs carries their output.
	logger.Disable()
}
