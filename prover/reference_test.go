package prover

import (
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// The known-answer tests below recompute every value independently of the
// implementation: hashing goes through gnark-crypto's byte-level Compress,
// integers through math/big, and the product through a naive triple loop.

// indepPerm is built from literal parameters on purpose: the reference
// tests check the implementation against the protocol text, not against
// the package's own constants.
var indepPerm = poseidon2.NewPermutation(2, 6, 50)

// indepH is H(a, b) on 32-byte big-endian operands via gnark-crypto's
// byte API.
func indepH(t *testing.T, a, b *big.Int) *big.Int {
	t.Helper()
	var ab, bb [32]byte
	a.FillBytes(ab[:])
	b.FillBytes(bb[:])
	out, err := indepPerm.Compress(ab[:], bb[:])
	if err != nil {
		t.Fatalf("Compress: %v", err)
	}
	return new(big.Int).SetBytes(out)
}

func indepChain(t *testing.T, xs ...*big.Int) *big.Int {
	s := xs[0]
	for _, x := range xs[1:] {
		s = indepH(t, s, x)
	}
	return s
}

func asciiTag(s string) *big.Int { return new(big.Int).SetBytes([]byte(s)) }

func indepDigest(t *testing.T, p *Profile) *big.Int {
	return indepChain(t, asciiTag("truegpu/profile/v1"), big.NewInt(int64(p.Version)),
		big.NewInt(int64(p.M)), big.NewInt(int64(p.N)), big.NewInt(int64(p.K)), big.NewInt(int64(p.Q)), big.NewInt(4))
}

func indepSeed(t *testing.T, p *Profile, n Nonce) *big.Int {
	hi := new(big.Int).SetBytes(n[:16])
	lo := new(big.Int).SetBytes(n[16:])
	return indepChain(t, asciiTag("truegpu/seed/v1"), hi, lo, indepDigest(t, p))
}

// indepVector derives K int8 values of PRG domain (sel, index).
func indepVector(t *testing.T, p *Profile, seed *big.Int, sel, index int) []int8 {
	out := make([]int8, p.K)
	for k := 0; k < p.K; k++ {
		chunk, byteIdx := k/31, k%31
		d := new(big.Int).Lsh(big.NewInt(int64(sel)), 64)
		d.Add(d, new(big.Int).Lsh(big.NewInt(int64(index)), 32))
		d.Add(d, big.NewInt(int64(chunk)))
		e := indepH(t, seed, d)
		b := new(big.Int).Rsh(e, uint(8*byteIdx))
		out[k] = int8(uint8(b.Uint64() & 0xff))
	}
	return out
}

func testNonce(b byte) Nonce {
	var n Nonce
	for i := range n {
		n[i] = b + byte(i)*7
	}
	return n
}

func testSeed(b byte) SampleSeed {
	var s SampleSeed
	for i := range s {
		s[i] = b ^ byte(i*29+3)
	}
	return s
}

func testAddress(b byte) Address {
	var a Address
	for i := range a {
		a[i] = b ^ byte(i*13)
	}
	return a
}

func TestDigestKnownAnswer(t *testing.T) {
	for _, p := range Profiles() {
		t.Run(p.ID(), func(t *testing.T) {
			want := indepDigest(t, p)
			got := p.Digest()
			if new(big.Int).SetBytes(got[:]).Cmp(want) != 0 {
				t.Fatalf("Digest = %x, want %x", got, want)
			}
		})
	}
	seen := map[[32]byte]string{}
	for _, p := range Profiles() {
		if other, dup := seen[p.Digest()]; dup {
			t.Fatalf("profiles %s and %s share a digest", other, p.ID())
		}
		seen[p.Digest()] = p.ID()
	}
}

func TestPRGKnownAnswer(t *testing.T) {
	p, _ := ProfileByName("test")
	nonce := testNonce(3)
	seed := indepSeed(t, p, nonce)
	if got := Seed(p, nonce); new(big.Int).SetBytes(got[:]).Cmp(seed) != 0 {
		t.Fatalf("Seed = %x, want %x", got, seed)
	}
	a := MatrixA(p, nonce)
	b := MatrixB(p, nonce)
	tests := []struct {
		name     string
		sel, idx int
		got      func(k int) int8
	}{
		{"A row 0", 1, 0, func(k int) int8 { return a[0*p.K+k] }},
		{"A row 5", 1, 5, func(k int) int8 { return a[5*p.K+k] }},
		{"A row M-1", 1, p.M - 1, func(k int) int8 { return a[(p.M-1)*p.K+k] }},
		{"B col 0", 2, 0, func(k int) int8 { return b[k*p.N+0] }},
		{"B col 9", 2, 9, func(k int) int8 { return b[k*p.N+9] }},
		{"B col N-1", 2, p.N - 1, func(k int) int8 { return b[k*p.N+p.N-1] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := indepVector(t, p, seed, tc.sel, tc.idx)
			for k, w := range want {
				if g := tc.got(k); g != w {
					t.Fatalf("k=%d: got %d, want %d", k, g, w)
				}
			}
		})
	}
	// RowA / ColumnB agree with the matrices.
	row := RowA(p, nonce, 7)
	col := ColumnB(p, nonce, 11)
	for k := 0; k < p.K; k++ {
		if row[k] != a[7*p.K+k] || col[k] != b[k*p.N+11] {
			t.Fatalf("RowA/ColumnB disagree with MatrixA/MatrixB at k=%d", k)
		}
	}
	// Values cover both signs (the PRG is not stuck).
	var neg, pos int
	for _, v := range a {
		if v < 0 {
			neg++
		} else if v > 0 {
			pos++
		}
	}
	if neg == 0 || pos == 0 {
		t.Fatalf("A has %d negative and %d positive values", neg, pos)
	}
	// A different nonce gives a different matrix.
	a2 := MatrixA(p, testNonce(4))
	same := 0
	for i := range a {
		if a[i] == a2[i] {
			same++
		}
	}
	if same > len(a)/8 {
		t.Fatalf("A for two nonces agree in %d of %d entries", same, len(a))
	}
}

func naiveGEMM(m, n, k int, a, b []int8) []int32 {
	c := make([]int32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s int64
			for x := 0; x < k; x++ {
				s += int64(a[i*k+x]) * int64(b[x*n+j])
			}
			c[i*n+j] = int32(s)
		}
	}
	return c
}

func TestGEMMKnownAnswer(t *testing.T) {
	// Hand-checked 2×2 case: [[1,-2],[3,4]]·[[5,6],[-7,8]] = [[19,-10],[-13,50]].
	tiny := &Profile{Name: "tiny", Version: 1, M: 2, N: 2, K: 2, Q: 1}
	got := GEMM(tiny, []int8{1, -2, 3, 4}, []int8{5, 6, -7, 8})
	want := []int32{19, -10, -13, 50}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("tiny GEMM = %v, want %v", got, want)
		}
	}
	// Extremes: -128·-128 summed K times.
	ext := &Profile{Name: "ext", Version: 1, M: 1, N: 1, K: 300, Q: 1}
	a := make([]int8, 300)
	for i := range a {
		a[i] = -128
	}
	if c := GEMM(ext, a, a); c[0] != 300*16384 {
		t.Fatalf("extreme GEMM = %d, want %d", c[0], 300*16384)
	}
	for _, name := range []string{"test", "demo"} {
		p, _ := ProfileByName(name)
		nonce := testNonce(9)
		a, b := MatrixA(p, nonce), MatrixB(p, nonce)
		want := naiveGEMM(p.M, p.N, p.K, a, b)
		got := Compute(p, nonce)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: cell %d = %d, want %d", name, i, got[i], want[i])
			}
		}
	}
}

// indepRoot computes the commitment root recursively from the cells.
func indepRoot(t *testing.T, cells []int32) *big.Int {
	words := make([]*big.Int, len(cells)/4)
	for w := range words {
		v := new(big.Int)
		for l := 3; l >= 0; l-- {
			v.Lsh(v, 32)
			v.Or(v, new(big.Int).SetUint64(uint64(uint32(cells[4*w+l]))))
		}
		words[w] = v
	}
	var rec func(ws []*big.Int) *big.Int
	rec = func(ws []*big.Int) *big.Int {
		if len(ws) == 1 {
			return ws[0]
		}
		h := len(ws) / 2
		return indepH(t, rec(ws[:h]), rec(ws[h:]))
	}
	return rec(words)
}

func TestCommitmentKnownAnswer(t *testing.T) {
	p, _ := ProfileByName("test")
	tests := []struct {
		name  string
		cells func() []int32
	}{
		{"workload", func() []int32 { return Compute(p, testNonce(1)) }},
		{"zeros", func() []int32 { return make([]int32, p.Cells()) }},
		{"extremes", func() []int32 {
			c := make([]int32, p.Cells())
			for i := range c {
				c[i] = []int32{-1, 1 << 31 * -1, 1<<31 - 1, 0}[i%4]
			}
			return c
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cells := tc.cells()
			tree, err := NewTree(p, cells)
			if err != nil {
				t.Fatal(err)
			}
			root := tree.Root()
			if want := indepRoot(t, cells); new(big.Int).SetBytes(root[:]).Cmp(want) != 0 {
				t.Fatalf("root = %x, want %x", root, want)
			}
			for _, c := range []int{0, 5, p.Cells() - 1} {
				o, err := tree.Open(c)
				if err != nil {
					t.Fatal(err)
				}
				if !VerifyOpening(p, root, o) {
					t.Fatalf("opening of cell %d does not verify", c)
				}
				o.Siblings[len(o.Siblings)-1][31] ^= 1
				if VerifyOpening(p, root, o) {
					t.Fatalf("opening of cell %d with a wrong sibling verifies", c)
				}
			}
		})
	}
	if _, err := NewTree(p, make([]int32, 3)); !errors.Is(err, ErrShape) {
		t.Fatalf("NewTree(3 cells) error = %v, want ErrShape", err)
	}
	tree, _ := NewTree(p, make([]int32, p.Cells()))
	if _, err := tree.Open(p.Cells()); !errors.Is(err, ErrIndex) {
		t.Fatalf("Open(out of range) error = %v, want ErrIndex", err)
	}
}

func TestSampleIndicesKnownAnswer(t *testing.T) {
	p, _ := ProfileByName("test")
	nonce, node := testNonce(2), testAddress(5)
	tree, err := NewTree(p, Compute(p, nonce))
	if err != nil {
		t.Fatal(err)
	}
	root := tree.Root()
	seed := testSeed(7)
	base := indepChain(t, asciiTag("truegpu/sample/v2"), new(big.Int).SetBytes(root[:]), new(big.Int).SetBytes(seed[:]),
		new(big.Int).SetBytes(nonce[:16]), new(big.Int).SetBytes(nonce[16:]), new(big.Int).SetBytes(node[:]))
	got := SampleIndices(p, root, seed, nonce, node)
	if len(got) != p.Q {
		t.Fatalf("got %d indices, want %d", len(got), p.Q)
	}
	for s := range got {
		h := indepH(t, base, big.NewInt(int64(s)))
		want := int(new(big.Int).Mod(h, big.NewInt(int64(p.Cells()))).Int64())
		if got[s] != want {
			t.Fatalf("index %d = %d, want %d", s, got[s], want)
		}
	}
	// Every input changes the indices.
	other := [][]int{
		SampleIndices(p, testRootVariant(root), seed, nonce, node),
		SampleIndices(p, root, testSeed(8), nonce, node),
		SampleIndices(p, root, seed, testNonce(3), node),
		SampleIndices(p, root, seed, nonce, testAddress(6)),
	}
	for i, o := range other {
		if equalInts(o, got) {
			t.Fatalf("variant %d gives the same indices %v", i, got)
		}
	}
}

func testRootVariant(r [32]byte) [32]byte { r[31] ^= 1; return r }

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestProfiles(t *testing.T) {
	for _, p := range Profiles() {
		if err := p.Validate(); err != nil {
			t.Errorf("published profile %s: %v", p.ID(), err)
		}
	}
	if _, err := ProfileByName("nope"); !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("ProfileByName(nope) error = %v, want ErrUnknownProfile", err)
	}
	p, err := ProfileByName("standard")
	if err != nil || p.ID() != "standard/v2" {
		t.Fatalf("standard profile: %v, %v", p, err)
	}
	bad := []Profile{
		{Name: "m", Version: 1, M: 3, N: 4, K: 1, Q: 1},
		{Name: "k", Version: 1, M: 4, N: 4, K: 0, Q: 1},
		{Name: "q", Version: 1, M: 4, N: 4, K: 1, Q: 0},
		{Name: "small", Version: 1, M: 2, N: 2, K: 1, Q: 1},
		{Name: "", Version: 1, M: 4, N: 4, K: 1, Q: 1},
	}
	for _, b := range bad {
		if err := b.Validate(); !errors.Is(err, ErrInvalidProfile) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidProfile", b, err)
		}
	}
	var e fr.Element
	d := p.Digest()
	if err := e.SetBytesCanonical(d[:]); err != nil {
		t.Fatalf("digest is not canonical: %v", err)
	}
}

func TestRetiredProfiles(t *testing.T) {
	for _, p := range Profiles() {
		if p.Version != ProtocolVersion {
			t.Errorf("%s: published profile is not at protocol version %d", p.ID(), ProtocolVersion)
		}
		got, err := ProfileByID(p.ID())
		if err != nil || got.Digest() != p.Digest() {
			t.Fatalf("ProfileByID(%s) = %v, %v", p.ID(), got, err)
		}
		if got, err := ProfileByDigest(p.Digest()); err != nil || got.ID() != p.ID() {
			t.Fatalf("ProfileByDigest(%s) = %v, %v", p.ID(), got, err)
		}
		old := *p
		old.Version = 1
		_, err = ProfileByID(old.ID())
		if !errors.Is(err, ErrRetiredProfile) || !strings.Contains(err.Error(), old.ID()) || !strings.Contains(err.Error(), p.ID()) {
			t.Fatalf("ProfileByID(%s) = %v, want ErrRetiredProfile naming %s and %s", old.ID(), err, old.ID(), p.ID())
		}
		_, err = ProfileByDigest(old.Digest())
		if !errors.Is(err, ErrRetiredProfile) || !strings.Contains(err.Error(), old.ID()) || !strings.Contains(err.Error(), p.ID()) {
			t.Fatalf("ProfileByDigest(v1 digest) = %v, want ErrRetiredProfile naming both versions", err)
		}
		if old.Digest() == p.Digest() {
			t.Fatalf("%s and %s share a digest", old.ID(), p.ID())
		}
	}
	for _, id := range []string{"standard/v3", "standard/vx", "nope/v2"} {
		if _, err := ProfileByID(id); !errors.Is(err, ErrUnknownProfile) {
			t.Errorf("ProfileByID(%s) = %v, want ErrUnknownProfile", id, err)
		}
	}
	if _, err := ProfileByDigest([32]byte{1}); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("ProfileByDigest(junk) = %v, want ErrUnknownProfile", err)
	}
}

// TestDigestVectors pins the digests of the published profiles: a change
// to any parameter, the version or the digest formula shows here.
func TestDigestVectors(t *testing.T) {
	want := map[string]string{
		"test/v2":     "036a7fd2c635f7dc4dc0d22a3863f86c420f08fbd5133642fb45929f9b48f30f",
		"demo/v2":     "2db404f9c5f43e144ca8159e84059846c207963876b201877d922c849919e3bc",
		"standard/v2": "14fde2c668c3b849c08ba6192862949d3bed65ddf479cfb9466c2b16634cfb7b",
		"test/v1":     "0ef2b60615280d29311b6e2f5fd1307eeee3196c928e22c6cff1cff7fd0a83fc",
		"demo/v1":     "1652db132c13379cd904d5d89d30d9276dba1a87f5a635cfaa515a2120d0b1e8",
		"standard/v1": "2fb67f05fd75135cfc9d72e692ea9aad7897db2d7f41ed684e964f426173b29e",
	}
	all := append(Profiles(), retired...)
	if len(all) != len(want) {
		t.Fatalf("%d profiles, %d vectors", len(all), len(want))
	}
	for _, p := range all {
		if d := p.Digest(); hex.EncodeToString(d[:]) != want[p.ID()] {
			t.Errorf("%s digest %x, want %s", p.ID(), d, want[p.ID()])
		}
	}
}
