package prover

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254"

	"github.com/truegpu/truegpu/verifier"
)

// The UNSAFE deterministic dev keys. UnsafeDevKeys is the only way to obtain
// them and devKeyCache is their only cache; IsUnsafeDevKey recognises their
// verifying keys. The setup itself (deterministicSetup) is in devsetup.go.

// unsafeDevLabel seeds the dev setup. Anyone can recompute the toxic waste
// from it.
const unsafeDevLabel = "truegpu UNSAFE deterministic dev setup v1: toxic waste is public"

// devLabel is the label of p's dev trapdoor.
func devLabel(p *Profile) string { return unsafeDevLabel + " " + p.ID() }

// unsafeDevSetup generates keys for p deterministically, with no secret:
// the Groth16 trapdoor (τ, α, β, γ, δ) is derived by SHA-256 from a fixed
// public label and the profile id. Anyone can forge proofs under these
// keys. Every caller goes through UnsafeDevKeys.
func unsafeDevSetup(p *Profile) (*ProvingKey, *verifier.VerifyingKey, error) {
	ccs, err := compileR1CS(p)
	if err != nil {
		return nil, nil, err
	}
	gpk, gvk, err := deterministicSetup(ccs, publicToxicWaste(devLabel(p)))
	if err != nil {
		return nil, nil, err
	}
	return newProvingKey(p, ccs, gpk, gvk)
}

// devKeyCache holds each profile's dev keys for the whole process, keyed by
// profile id and digest, so that the setup of a profile runs at most once
// however many clusters, agents or tests ask for it.
var devKeyCache sync.Map // devKeyName -> *devKeyEntry

type devKeyEntry struct {
	once sync.Once
	pk   *ProvingKey
	vk   *verifier.VerifyingKey
	err  error
}

// devKeyName names p's dev keys in the process cache and on disk: the
// profile id and the first 8 bytes of its digest, so a changed profile never
// loads stale keys.
func devKeyName(p *Profile) string {
	digest := p.Digest()
	return fmt.Sprintf("%s-v%d-%s", p.Name, p.Version, hex.EncodeToString(digest[:8]))
}

// DevKeyCacheDir returns the default directory of stored unsafe dev keys:
// $XDG_CACHE_HOME/truegpu/unsafe-dev-keys (or the platform's user cache
// directory).
func DevKeyCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("prover: no user cache directory for dev keys: %w", err)
	}
	return filepath.Join(base, "truegpu", "unsafe-dev-keys"), nil
}

// UnsafeDevKeys returns the UNSAFE deterministic dev keys of p: their
// Groth16 trapdoor is derived from a fixed public label and the profile id,
// so anyone can forge proofs under them. Use them for tests and local
// development only; production keys come from a ceremony.
//
// The keys of a profile are set up at most once per process and then
// served from memory. When dir is not empty the cache is also kept there
// across processes: the first call of a process reads the keys from dir if
// a previous one stored them (a corrupt file is replaced), and every call
// stores them there if they are missing. A directory that cannot be
// written is not an error; one that cannot be read is. DevKeyCacheDir is
// the usual dir.
func UnsafeDevKeys(p *Profile, dir string) (*ProvingKey, *verifier.VerifyingKey, error) {
	name := devKeyName(p)
	v, _ := devKeyCache.LoadOrStore(name, &devKeyEntry{})
	e := v.(*devKeyEntry)
	e.once.Do(func() { e.pk, e.vk, e.err = loadOrSetupDevKeys(p, dir) })
	if e.err != nil {
		return nil, nil, e.err
	}
	if dir != "" {
		if _, err := os.Stat(devKeyPath(dir, name)); errors.Is(err, fs.ErrNotExist) {
			storeDevKey(dir, name, e.pk)
		}
	}
	return e.pk, e.vk, nil
}

func devKeyPath(dir, name string) string { return filepath.Join(dir, name+".pk") }

// loadOrSetupDevKeys reads p's dev keys from dir, or sets them up and
// stores them there. An empty dir only sets them up.
func loadOrSetupDevKeys(p *Profile, dir string) (*ProvingKey, *verifier.VerifyingKey, error) {
	if dir == "" {
		return unsafeDevSetup(p)
	}
	name := devKeyName(p)
	path := devKeyPath(dir, name)
	if f, err := os.Open(path); err == nil {
		pk, rerr := ReadProvingKey(f, p)
		f.Close()
		if rerr == nil {
			return pk, pk.VerifyingKey(), nil
		}
		// A corrupt cache entry is replaced below.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("prover: dev key cache %s: %w", path, err)
	}
	pk, vk, err := unsafeDevSetup(p)
	if err != nil {
		return nil, nil, err
	}
	storeDevKey(dir, name, pk)
	return pk, vk, nil
}

// storeDevKey writes pk to dir atomically, ignoring failures.
func storeDevKey(dir, name string, pk *ProvingKey) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.pk")
	if err != nil {
		return
	}
	_, werr := pk.WriteTo(tmp)
	cerr := tmp.Close()
	if werr == nil && cerr == nil {
		_ = os.Rename(tmp.Name(), devKeyPath(dir, name))
	} else {
		_ = os.Remove(tmp.Name())
	}
}

// IsUnsafeDevKey reports whether vk comes from the dev setup of one of the
// known profiles (Profiles()), and of which one: a member must not verify
// real work under such a key.
//
// Recognition costs a few scalar multiplications, not a setup: the dev
// setup derives each trapdoor value from a public label and the profile
// id, and publishes α·G1, γ·G2 and δ·G2 in the verifying key. A key that
// holds any of those points for any profile came from that trapdoor (a
// phase 2 run over the dev phase 1, for one, keeps α).
func IsUnsafeDevKey(vk *verifier.VerifyingKey) (profileID string, ok bool) {
	if vk == nil {
		return "", false
	}
	for _, p := range Profiles() {
		if holdsDevPoint(vk, devLabel(p)) {
			return p.ID(), true
		}
	}
	return "", false
}

func holdsDevPoint(vk *verifier.VerifyingKey, label string) bool {
	_, _, g1, g2 := bn254.Generators()
	scalar := func(name string) *big.Int {
		e := deriveTrapdoor(name, label)
		return e.BigInt(new(big.Int))
	}
	var alpha bn254.G1Affine
	alpha.ScalarMultiplication(&g1, scalar("alpha"))
	var gamma, delta bn254.G2Affine
	gamma.ScalarMultiplication(&g2, scalar("gamma"))
	delta.ScalarMultiplication(&g2, scalar("delta"))
	return vk.Alpha.Equal(&alpha) || vk.Gamma.Equal(&gamma) || vk.Delta.Equal(&delta)
}
