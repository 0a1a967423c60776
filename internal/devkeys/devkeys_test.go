package devkeys_test

import (
	"testing"

	"github.com/truegpu/truegpu/internal/devkeys"
	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// TestRecognisesDevSetup: the dev setup's key is recognised (so the label
// here and the setup's agree), a key with another trapdoor is not.
func TestRecognisesDevSetup(t *testing.T) {
	p, err := prover.ProfileByName("test")
	if err != nil {
		t.Fatal(err)
	}
	_, vk, err := prover.CachedUnsafeDevSetup(p, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, ok := devkeys.IsUnsafeDev(vk)
	if !ok || id != p.ID() {
		t.Fatalf("IsUnsafeDev(dev key of %s) = %q, %v", p.ID(), id, ok)
	}
	// The same key with every trapdoor point replaced is a key devkeys
	// has never seen.
	other := *vk
	other.Alpha.Double(&vk.Alpha)
	other.Gamma.Double(&vk.Gamma)
	other.Delta.Double(&vk.Delta)
	if id, ok := devkeys.IsUnsafeDev(&other); ok {
		t.Fatalf("a key with other trapdoor points was recognised as the dev key of %s", id)
	}
	// One dev point is enough: a phase 2 over the dev phase 1 keeps α.
	onlyAlpha := other
	onlyAlpha.Alpha = vk.Alpha
	if _, ok := devkeys.IsUnsafeDev(&onlyAlpha); !ok {
		t.Fatal("a key keeping the dev α was not recognised")
	}
	if _, ok := devkeys.IsUnsafeDev((*verifier.VerifyingKey)(nil)); ok {
		t.Fatal("nil key recognised")
	}
}
