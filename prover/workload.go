package prover

import (
	"fmt"
	"math/big"
	"runtime"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// Nonce is the 32-byte challenge nonce chosen by the oracle.
type Nonce [32]byte

// Address is a node's 20-byte (EVM-style) address.
type Address [20]byte

// nonceElements splits the nonce into its big-endian 128-bit halves
// (hi = nonce[0:16], lo = nonce[16:32]).
func nonceElements(n Nonce) (hi, lo fr.Element) {
	hi.SetBigInt(new(big.Int).SetBytes(n[:16]))
	lo.SetBigInt(new(big.Int).SetBytes(n[16:]))
	return hi, lo
}

// addressElement reads the address as a big-endian 160-bit integer.
func addressElement(a Address) fr.Element {
	var e fr.Element
	e.SetBigInt(new(big.Int).SetBytes(a[:]))
	return e
}

// Seed returns the PRG seed of a challenge:
//
//	S = Chain(TagSeed, nonceHi, nonceLo, D)
//
// with D the profile digest.
func Seed(p *Profile, nonce Nonce) [32]byte {
	s := seedElement(p, nonce)
	return s.Bytes()
}

func seedElement(p *Profile, nonce Nonce) fr.Element {
	hi, lo := nonceElements(nonce)
	return chain(tagSeed, hi, lo, p.digestElement())
}

// domainWord returns sel·2^64 + index·2^32 + chunk.
func domainWord(sel, index, chunk uint64) fr.Element {
	var e fr.Element
	b := new(big.Int).SetUint64(sel)
	b.Lsh(b, 64)
	b.Or(b, new(big.Int).SetUint64(index<<32|chunk))
	e.SetBigInt(b)
	return e
}

// prgVector fills out (length K) with the int8 values of one row of A
// (sel=domainA) or column of B (sel=domainB): value k is byte k%31
// (little-endian, two's complement) of the canonical integer of
// H(S, domainWord(sel, index, k/31)).
func prgVector(seed *fr.Element, sel uint64, index int, out []int8) {
	for j := 0; j*bytesPerChunk < len(out); j++ {
		d := domainWord(sel, uint64(index), uint64(j))
		e := compress(seed, &d)
		be := e.Bytes() // big-endian; byte t (little-endian) is be[31-t]
		for t := 0; t < bytesPerChunk; t++ {
			k := j*bytesPerChunk + t
			if k >= len(out) {
				break
			}
			out[k] = int8(be[31-t])
		}
	}
}

// MatrixA returns A (M×K, row-major: A[i*K+k]) derived from the nonce.
// Row i uses PRG domain (1, i).
func MatrixA(p *Profile, nonce Nonce) []int8 {
	seed := seedElement(p, nonce)
	a := make([]int8, p.M*p.K)
	parallelFor(p.M, func(i int) {
		prgVector(&seed, domainA, i, a[i*p.K:(i+1)*p.K])
	})
	return a
}

// MatrixB returns B (K×N, row-major: B[k*N+j]) derived from the nonce.
// Column j uses PRG domain (2, j); the column is generated as a vector and
// stored down column j.
func MatrixB(p *Profile, nonce Nonce) []int8 {
	seed := seedElement(p, nonce)
	b := make([]int8, p.K*p.N)
	parallelFor(p.N, func(j int) {
		col := make([]int8, p.K)
		prgVector(&seed, domainB, j, col)
		for k, v := range col {
			b[k*p.N+j] = v
		}
	})
	return b
}

// RowA returns row i of A (K values) without deriving the whole matrix.
func RowA(p *Profile, nonce Nonce, i int) []int8 {
	seed := seedElement(p, nonce)
	out := make([]int8, p.K)
	prgVector(&seed, domainA, i, out)
	return out
}

// ColumnB returns column j of B (K values) without deriving the whole matrix.
func ColumnB(p *Profile, nonce Nonce, j int) []int8 {
	seed := seedElement(p, nonce)
	out := make([]int8, p.K)
	prgVector(&seed, domainB, j, out)
	return out
}

// GEMM returns the exact product C = A·B (M×N, row-major, int32) of A
// (M×K row-major) and B (K×N row-major). No sum overflows: |C| ≤ K·2^14.
// It panics if a or b do not have the profile's shape.
func GEMM(p *Profile, a, b []int8) []int32 {
	if len(a) != p.M*p.K || len(b) != p.K*p.N {
		panic(fmt.Sprintf("%v: GEMM for %s needs len(a)=%d, len(b)=%d; got %d, %d",
			ErrShape, p.ID(), p.M*p.K, p.K*p.N, len(a), len(b)))
	}
	// Transpose B so both operands of each dot product are contiguous.
	bt := make([]int32, p.N*p.K)
	for k := 0; k < p.K; k++ {
		for j := 0; j < p.N; j++ {
			bt[j*p.K+k] = int32(b[k*p.N+j])
		}
	}
	c := make([]int32, p.M*p.N)
	parallelFor(p.M, func(i int) {
		row := make([]int32, p.K)
		for k := range row {
			row[k] = int32(a[i*p.K+k])
		}
		out := c[i*p.N : (i+1)*p.N]
		for j := range out {
			col := bt[j*p.K : (j+1)*p.K]
			var s int32
			for k, v := range row {
				s += v * col[k]
			}
			out[j] = s
		}
	})
	return c
}

// Compute runs the whole reference workload: C = MatrixA · MatrixB.
func Compute(p *Profile, nonce Nonce) []int32 {
	return GEMM(p, MatrixA(p, nonce), MatrixB(p, nonce))
}

// parallelFor runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallelFor(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	per := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, n)
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				f(i)
			}
		}()
	}
	wg.Wait()
}
