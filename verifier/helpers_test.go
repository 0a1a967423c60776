package verifier_test

import (
	"sync"
	"testing"

	"github.com/truegpu/truegpu/prover"
	"github.com/truegpu/truegpu/verifier"
)

// fixture is a set of valid proofs of the test profile under its dev key,
// generated once per test binary.
type fixture struct {
	vk     *verifier.VerifyingKey
	proofs []*verifier.Proof
	pubs   []verifier.PublicInputs
	raw    [][]byte
}

const fixtureProofs = 6

var (
	fixtureOnce sync.Once
	fix         fixture
	fixErr      error
)

func testFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixtureOnce.Do(func() {
		p, err := prover.ProfileByName("test")
		if err != nil {
			fixErr = err
			return
		}
		pk, vk, err := prover.UnsafeDevKeys(p, "")
		if err != nil {
			fixErr = err
			return
		}
		fix.vk = vk
		for i := 0; i < fixtureProofs; i++ {
			var nonce prover.Nonce
			var node prover.Address
			nonce[0], nonce[31], node[19] = byte(i), byte(3*i+1), byte(i+7)
			seed := prover.SampleSeed{byte(i), 0x5e, byte(5 * i)}
			raw, root, err := prover.Prove(pk, p, nonce, node, seed, prover.Compute(p, nonce))
			if err != nil {
				fixErr = err
				return
			}
			proof, err := verifier.DecodeProof(raw)
			if err != nil {
				fixErr = err
				return
			}
			pub, err := p.PublicInputs(nonce, node, root, seed)
			if err != nil {
				fixErr = err
				return
			}
			fix.raw = append(fix.raw, raw)
			fix.proofs = append(fix.proofs, proof)
			fix.pubs = append(fix.pubs, pub)
		}
	})
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return &fix
}
