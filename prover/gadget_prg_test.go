package prover

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/bits"
	"github.com/consensys/gnark/test"
)

// workloadCircuit checks the workload PRG gadget: the PRG seed of
// (NonceHi, NonceLo, Digest) and the len(Values) int8 values of PRG
// domain (sel, Index) under it must equal Values.
type workloadCircuit struct {
	NonceHi, NonceLo, Digest frontend.Variable `gnark:",public"`
	Index                    frontend.Variable
	Values                   []frontend.Variable

	sel int64
}

func newWorkloadCircuit(sel int64, k int) *workloadCircuit {
	return &workloadCircuit{Values: make([]frontend.Variable, k), sel: sel}
}

func (c *workloadCircuit) Define(api frontend.API) error {
	h, err := newHasher(api)
	if err != nil {
		return err
	}
	seed := circuitSeed(h, c.NonceHi, c.NonceLo, c.Digest)
	got := circuitPRGVector(api, h, seed, c.sel, c.Index, len(c.Values))
	if len(got) != len(c.Values) {
		return fmt.Errorf("gadget gave %d values, want %d", len(got), len(c.Values))
	}
	for k := range got {
		api.AssertIsEqual(got[k], c.Values[k])
	}
	return nil
}

// workloadAssignment assigns the challenge of (p, nonce) and the values
// vals at index.
func workloadAssignment(p *Profile, nonce Nonce, sel int64, index int, vals []int8) *workloadCircuit {
	c := newWorkloadCircuit(sel, len(vals))
	hi, lo := nonceElements(nonce)
	d := p.digestElement()
	c.NonceHi, c.NonceLo, c.Digest = bigOf(&hi), bigOf(&lo), bigOf(&d)
	c.Index = index
	for k, v := range vals {
		c.Values[k] = int64(v)
	}
	return c
}

// nativeVector is row index of A (domainA) or column index of B (domainB)
// from the native reference.
func nativeVector(p *Profile, nonce Nonce, sel int64, index int) []int8 {
	if sel == domainA {
		return RowA(p, nonce, index)
	}
	return ColumnB(p, nonce, index)
}

// TestPRGGadgetMatchesReference checks the gadget against RowA and ColumnB
// for both selectors, several indices and inner dimensions that end on a
// chunk boundary (62), inside the first chunk (1, 30) and inside a later
// one (32, 64).
func TestPRGGadgetMatchesReference(t *testing.T) {
	field := ecc.BN254.ScalarField()
	nonce := testNonce(31)
	for _, k := range []int{1, 30, 32, 62, 64} {
		p := &Profile{Name: "prg", Version: ProtocolVersion, M: 16, N: 16, K: k, Q: 4}
		for _, sel := range []int64{domainA, domainB} {
			for _, index := range []int{0, 5, 15} {
				vals := nativeVector(p, nonce, sel, index)
				a := workloadAssignment(p, nonce, sel, index, vals)
				if err := test.IsSolved(newWorkloadCircuit(sel, k), a, field); err != nil {
					t.Fatalf("K=%d sel=%d index=%d: reference values rejected: %v", k, sel, index, err)
				}
			}
		}
	}
}

// TestPRGGadgetTampering checks that the gadget rejects values of another
// seed (another nonce or another profile's digest), another index, the
// other selector, and single values moved off the reference.
func TestPRGGadgetTampering(t *testing.T) {
	field := ecc.BN254.ScalarField()
	p := mustProfile(t, "test") // K = 32: one full chunk and one value of a second
	nonce := testNonce(32)
	const index = 6
	want := RowA(p, nonce, index)
	if err := test.IsSolved(newWorkloadCircuit(domainA, p.K), workloadAssignment(p, nonce, domainA, index, want), field); err != nil {
		t.Fatalf("valid values rejected: %v", err)
	}
	demo := mustProfile(t, "demo")
	tests := []struct {
		name   string
		assign func() *workloadCircuit
	}{
		{"values of another nonce (wrong seed)", func() *workloadCircuit {
			return workloadAssignment(p, nonce, domainA, index, RowA(p, testNonce(33), index))
		}},
		{"nonce of another challenge with these values (wrong seed)", func() *workloadCircuit {
			return workloadAssignment(p, testNonce(33), domainA, index, want)
		}},
		{"digest of another profile (wrong seed)", func() *workloadCircuit {
			return workloadAssignment(demo, nonce, domainA, index, want)
		}},
		{"wrong index", func() *workloadCircuit {
			return workloadAssignment(p, nonce, domainA, index+1, want)
		}},
		{"index above 2^32 with the same low bits", func() *workloadCircuit {
			a := workloadAssignment(p, nonce, domainA, index, want)
			a.Index = new(big.Int).Add(big.NewInt(index), new(big.Int).Lsh(big.NewInt(1), 32))
			return a
		}},
		{"values of the other selector", func() *workloadCircuit {
			return workloadAssignment(p, nonce, domainA, index, ColumnB(p, nonce, index))
		}},
		{"first value off by one", func() *workloadCircuit {
			a := workloadAssignment(p, nonce, domainA, index, want)
			a.Values[0] = int64(want[0]) + 1
			return a
		}},
		{"last value (second chunk) off by one", func() *workloadCircuit {
			a := workloadAssignment(p, nonce, domainA, index, want)
			a.Values[p.K-1] = int64(want[p.K-1]) - 1
			return a
		}},
		{"value read as an unsigned byte", func() *workloadCircuit {
			a := workloadAssignment(p, nonce, domainA, index, want)
			for k, v := range want {
				if v < 0 {
					a.Values[k] = int64(v) + 256
					return a
				}
			}
			panic("test case error: no negative value")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := test.IsSolved(newWorkloadCircuit(domainA, p.K), tc.assign(), field); err == nil {
				t.Fatal("values not of the PRG accepted")
			}
		})
	}
}

// sampleCircuit checks the sample gadget: the cell indices of the Q
// samples of (Root, Seed, NonceHi, NonceLo, Node) must equal Cells.
type sampleCircuit struct {
	NonceHi, NonceLo, Node, Root, Seed frontend.Variable `gnark:",public"`
	Cells                              []frontend.Variable

	logCells int
}

func newSampleCircuit(p *Profile) *sampleCircuit {
	return &sampleCircuit{Cells: make([]frontend.Variable, p.Q), logCells: log2(p.Cells())}
}

func (c *sampleCircuit) Define(api frontend.API) error {
	h, err := newHasher(api)
	if err != nil {
		return err
	}
	base := circuitSampleBase(h, c.Root, c.Seed, c.NonceHi, c.NonceLo, c.Node)
	for s := range c.Cells {
		cb := circuitSampleBits(api, h, base, s, c.logCells)
		api.AssertIsEqual(bits.FromBinary(api, cb, bits.WithUnconstrainedInputs()), c.Cells[s])
	}
	return nil
}

func sampleAssignment(p *Profile, root [32]byte, seed SampleSeed, nonce Nonce, node Address, cells []int) *sampleCircuit {
	c := newSampleCircuit(p)
	hi, lo := nonceElements(nonce)
	n, sd := addressElement(node), seedInput(seed)
	c.NonceHi, c.NonceLo, c.Node = bigOf(&hi), bigOf(&lo), bigOf(&n)
	c.Root, c.Seed = new(big.Int).SetBytes(root[:]), bigOf(&sd)
	for s, cell := range cells {
		c.Cells[s] = cell
	}
	return c
}

// TestSampleGadget checks the sample positions against SampleIndices for
// the test and demo profiles, and that cells of another sample seed, root,
// nonce or node, a cell index with a bit above log2(M·N) and samples out
// of order are rejected.
func TestSampleGadget(t *testing.T) {
	field := ecc.BN254.ScalarField()
	for _, name := range []string{"test", "demo"} {
		t.Run(name, func(t *testing.T) {
			p := mustProfile(t, name)
			tree, err := NewTree(p, Compute(p, testNonce(41)))
			if err != nil {
				t.Fatal(err)
			}
			root, seed, nonce, node := tree.Root(), testSeed(42), testNonce(43), testAddress(44)
			want := SampleIndices(p, root, seed, nonce, node)
			if err := test.IsSolved(newSampleCircuit(p), sampleAssignment(p, root, seed, nonce, node, want), field); err != nil {
				t.Fatalf("reference sample cells rejected: %v", err)
			}
			otherRoot := root
			otherRoot[31] ^= 1
			tests := []struct {
				name  string
				cells []int
			}{
				{"cells of another sample seed", SampleIndices(p, root, testSeed(45), nonce, node)},
				{"cells of another root", SampleIndices(p, otherRoot, seed, nonce, node)},
				{"cells of another nonce", SampleIndices(p, root, seed, testNonce(46), node)},
				{"cells of another node", SampleIndices(p, root, seed, nonce, testAddress(47))},
				{"cell index plus M·N", append([]int{want[0] + p.Cells()}, want[1:]...)},
				{"first two samples swapped", append([]int{want[1], want[0]}, want[2:]...)},
			}
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) {
					if equalInts(tc.cells, want) {
						t.Fatal("test case error: the cells equal the reference")
					}
					if err := test.IsSolved(newSampleCircuit(p), sampleAssignment(p, root, seed, nonce, node, tc.cells), field); err == nil {
						t.Fatal("cells not of the sample seed accepted")
					}
				})
			}
		})
	}
}

// int8Circuit checks chunkInt8s: the n values derived from E must equal V.
type int8Circuit struct {
	E frontend.Variable
	V [bytesPerChunk]frontend.Variable
}

func (c *int8Circuit) Define(api frontend.API) error {
	got := chunkInt8s(api, c.E, bytesPerChunk)
	for i := range got {
		api.AssertIsEqual(got[i], c.V[i])
	}
	return nil
}

func TestChunkInt8s(t *testing.T) {
	p := mustProfile(t, "test")
	seed := seedElement(p, testNonce(1))
	d := domainWord(domainA, 3, 0)
	e := compress(&seed, &d)
	want := make([]int8, bytesPerChunk)
	prgVector(&seed, domainA, 3, want)
	assign := func(vals []*big.Int) *int8Circuit {
		c := &int8Circuit{E: e.BigInt(new(big.Int))}
		for i := range c.V {
			c.V[i] = vals[i]
		}
		return c
	}
	vals := make([]*big.Int, bytesPerChunk)
	for i, v := range want {
		vals[i] = big.NewInt(int64(v))
	}
	field := ecc.BN254.ScalarField()
	if err := test.IsSolved(&int8Circuit{}, assign(vals), field); err != nil {
		t.Fatalf("values from the reference PRG rejected: %v", err)
	}
	tests := []struct {
		name string
		edit func(v []*big.Int)
	}{
		{"value above 127 (unsigned byte)", func(v []*big.Int) {
			for i := range v {
				if v[i].Sign() < 0 {
					v[i] = new(big.Int).Add(v[i], big.NewInt(256))
					return
				}
			}
		}},
		{"value below -128", func(v []*big.Int) { v[0] = new(big.Int).Sub(v[0], big.NewInt(256)) }},
		{"off by one", func(v []*big.Int) { v[5] = new(big.Int).Add(v[5], big.NewInt(1)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad := make([]*big.Int, len(vals))
			for i := range vals {
				bad[i] = new(big.Int).Set(vals[i])
			}
			tc.edit(bad)
			if err := test.IsSolved(&int8Circuit{}, assign(bad), field); err == nil {
				t.Fatal("out-of-range or wrong int8 values accepted")
			}
		})
	}
}
