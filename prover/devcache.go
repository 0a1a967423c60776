package prover

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/truegpu/truegpu/verifier"
)

// DevKeyCacheDir returns the default directory of cached unsafe dev keys:
// $XDG_CACHE_HOME/truegpu/unsafe-dev-keys (or the platform's user cache
// directory).
func DevKeyCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("prover: no user cache directory for dev keys: %w", err)
	}
	return filepath.Join(base, "truegpu", "unsafe-dev-keys"), nil
}

// CachedUnsafeDevSetup returns the UNSAFE deterministic dev keys of p (see
// UnsafeDevSetup), reading them from dir when a previous call stored them
// there and generating and storing them otherwise. Files are named by
// profile id and digest, so a changed profile never loads stale keys. An
// empty dir means DevKeyCacheDir. A cache that cannot be written is not an
// error: the generated keys are returned anyway.
func CachedUnsafeDevSetup(p *Profile, dir string) (*ProvingKey, *verifier.VerifyingKey, error) {
	if dir == "" {
		d, err := DevKeyCacheDir()
		if err != nil {
			return UnsafeDevSetup(p)
		}
		dir = d
	}
	digest := p.Digest()
	path := filepath.Join(dir, fmt.Sprintf("%s-v%d-%s.pk", p.Name, p.Version, hex.EncodeToString(digest[:8])))
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
	pk, vk, err := UnsafeDevSetup(p)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if tmp, err := os.CreateTemp(dir, ".tmp-*.pk"); err == nil {
			_, werr := pk.WriteTo(tmp)
			cerr := tmp.Close()
			if werr == nil && cerr == nil {
				_ = os.Rename(tmp.Name(), path)
			} else {
				_ = os.Remove(tmp.Name())
			}
		}
	}
	return pk, vk, nil
}
