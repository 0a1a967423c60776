package prover

import (
	"crypto/rand"
	"math"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/test"
)

// TestCheckCircuitSampleSeed runs gnark's circuit checker on the test
// profile with Groth16 on BN254: the honest assignment proves and
// verifies, and the same assignment under another sample seed (the node
// opening the cells of a seed it chose instead of the oracle's) does not.
func TestCheckCircuitSampleSeed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a Groth16 setup and proof")
	}
	p := mustProfile(t, "test")
	nonce, node, seed := testNonce(61), testAddress(62), testSeed(63)
	tree, err := NewTree(p, Compute(p, nonce))
	if err != nil {
		t.Fatal(err)
	}
	valid, err := Assignment(tree, nonce, node, seed)
	if err != nil {
		t.Fatal(err)
	}
	// A seed the node picked: its openings are genuine cells of the same
	// commitment, but not the cells the oracle's seed selects.
	chosen, err := Assignment(tree, nonce, node, testSeed(64))
	if err != nil {
		t.Fatal(err)
	}
	chosen.Seed = valid.Seed
	test.NewAssert(t).CheckCircuit(NewCircuit(p),
		test.WithValidAssignment(valid),
		test.WithInvalidAssignment(chosen),
		test.WithCurves(ecc.BN254), test.WithBackends(backend.GROTH16),
		test.NoFuzzing(), test.NoSerializationChecks(), test.NoSolidityChecks())
}

// grindTrial models one challenge answered by a node that computed only
// the cells computed() reports and grinds before committing: it tries
// tries roots (changing one junk leaf or sibling per try is enough to get
// a fresh root) and commits the first whose samples, under its best
// guess of the sample seed, fall on computed cells. The oracle then draws
// the real seed. It reports whether a proof exists for the real seed.
func grindTrial(p *Profile, nonce Nonce, node Address, guess func() SampleSeed, real func() SampleSeed, tries int, computed func(int) bool) bool {
	g := guess()
	var root [32]byte
	for range tries {
		rand.Read(root[1:]) // top byte zero: a canonical field element
		if SamplesHit(p, root, g, nonce, node, computed) {
			break
		}
	}
	return SamplesHit(p, root, real(), nonce, node, computed)
}

// TestGrindingBuysNothing shows the bound of docs/PROTOCOL.md section 8: a
// node that computed a fraction f of the cells passes with probability at
// most f^Q however many roots it tries, because the sample seed is drawn
// after the root is on record. The same grinder against a seed it can
// predict (the planted bug: a seed derived from what the node already
// knows) passes almost always, so the test can tell the two apart.
func TestGrindingBuysNothing(t *testing.T) {
	p := mustProfile(t, "test") // Q = 4
	const (
		trials = 1500
		tries  = 48
		f      = 0.5
	)
	half := p.Cells() / 2
	computed := func(c int) bool { return c < half } // the first half of the rows
	node := testAddress(71)
	fresh := func() SampleSeed {
		var s SampleSeed
		rand.Read(s[:])
		return s
	}
	run := func(predictable bool) int {
		passed := 0
		for i := range trials {
			var nonce Nonce
			rand.Read(nonce[:])
			// The grinder's best guess: the seed it saw last time (or any
			// fixed value). With a predictable seed the oracle uses
			// exactly that.
			last := testSeed(byte(i))
			real := fresh
			if predictable {
				real = func() SampleSeed { return last }
			}
			if grindTrial(p, nonce, node, func() SampleSeed { return last }, real, tries, computed) {
				passed++
			}
		}
		return passed
	}

	want := math.Pow(f, float64(p.Q)) // 1/16
	mean := want * trials
	sd := math.Sqrt(trials * want * (1 - want))
	got := run(false)
	t.Logf("grinding %d roots per challenge, f = %.2f, Q = %d: passed %d of %d (f^Q predicts %.0f ± %.0f)", tries, f, p.Q, got, trials, mean, sd)
	if float64(got) > mean+5*sd {
		t.Fatalf("grinder passed %d of %d challenges; f^Q = %.4f allows at most %.0f (mean + 5 sd)", got, trials, want, mean+5*sd)
	}
	// The pass rate is f^Q, not less: the test measures what it claims.
	if float64(got) < mean-5*sd {
		t.Fatalf("grinder passed only %d of %d; f^Q predicts %.0f: the trial does not model the attack", got, trials, mean)
	}

	planted := run(true)
	t.Logf("planted bug (predictable seed): passed %d of %d", planted, trials)
	if atLeast := 1 - math.Pow(1-want, tries); float64(planted) < (atLeast-0.1)*trials {
		t.Fatalf("with a predictable seed the grinder passed only %d of %d; the check could not catch a predictable seed", planted, trials)
	}
}

// TestSamplesHit checks SamplesHit against SampleIndices.
func TestSamplesHit(t *testing.T) {
	p := mustProfile(t, "demo")
	root := [32]byte{0, 1, 2, 3}
	nonce, node, seed := testNonce(81), testAddress(82), testSeed(83)
	idx := SampleIndices(p, root, seed, nonce, node)
	want := map[int]bool{}
	for _, c := range idx {
		want[c] = true
	}
	if !SamplesHit(p, root, seed, nonce, node, func(c int) bool { return want[c] }) {
		t.Fatal("SamplesHit is false with every sampled cell computed")
	}
	missing := idx[len(idx)-1]
	if SamplesHit(p, root, seed, nonce, node, func(c int) bool { return want[c] && c != missing }) {
		t.Fatal("SamplesHit is true with a sampled cell not computed")
	}
	if new(big.Int).SetBytes(seed[:]).BitLen() > 8*SampleSeedSize {
		t.Fatal("seed wider than its size")
	}
}
