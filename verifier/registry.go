package verifier

import (
	"fmt"
	"sort"
	"sync"
)

// KeyID names a verifying key: a profile name and its circuit version.
type KeyID struct {
	Profile string
	Version uint32
}

// String returns "profile/vVERSION".
func (id KeyID) String() string { return fmt.Sprintf("%s/v%d", id.Profile, id.Version) }

// Registry maps (profile, version) to verifying keys. It is safe for
// concurrent use. The zero value is empty and ready.
type Registry struct {
	mu       sync.RWMutex
	keys     map[KeyID]*VerifyingKey
	byDigest map[[32]byte]KeyID
}

// Register adds vk under id. Registering the same key again is a no-op;
// registering a different key under a taken id, or a key whose digest is
// already registered under another id, fails with ErrKeyConflict.
func (r *Registry) Register(id KeyID, vk *VerifyingKey) error {
	if vk == nil {
		return fmt.Errorf("verifier: register %s: nil key", id)
	}
	if _, err := vk.ready(); err != nil {
		return fmt.Errorf("verifier: register %s: %w", id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = map[KeyID]*VerifyingKey{}
		r.byDigest = map[[32]byte]KeyID{}
	}
	if old, ok := r.keys[id]; ok {
		if old.Equal(vk) {
			return nil
		}
		return fmt.Errorf("%w: %s", ErrKeyConflict, id)
	}
	if other, ok := r.byDigest[vk.Digest]; ok {
		return fmt.Errorf("%w: digest %x is already registered as %s, not %s", ErrKeyConflict, vk.Digest, other, id)
	}
	r.keys[id] = vk
	r.byDigest[vk.Digest] = id
	return nil
}

// Lookup returns the key registered under id, or an error wrapping
// ErrUnknownKey.
func (r *Registry) Lookup(id KeyID) (*VerifyingKey, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	vk, ok := r.keys[id]
	if !ok {
		return nil, fmt.Errorf("%w for %s", ErrUnknownKey, id)
	}
	return vk, nil
}

// LookupDigest returns the key and id registered for a profile digest.
func (r *Registry) LookupDigest(digest [32]byte) (*VerifyingKey, KeyID, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	id, ok := r.byDigest[digest]
	if !ok {
		return nil, KeyID{}, fmt.Errorf("%w for digest %x", ErrUnknownKey, digest)
	}
	return r.keys[id], id, nil
}

// IDs returns the registered ids, sorted by profile then version.
func (r *Registry) IDs() []KeyID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]KeyID, 0, len(r.keys))
	for id := range r.keys {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Profile != out[j].Profile {
			return out[i].Profile < out[j].Profile
		}
		return out[i].Version < out[j].Version
	})
	return out
}
