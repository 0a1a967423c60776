// CUDA kernels of the TrueGPU workload. Compiled to PTX (truegpu.ptx) by
// gen.sh with clang, without the CUDA toolkit; the Go host code in
// package cuda loads the PTX through the driver API. The arithmetic lives
// in field.h and work.h, which the Go tests also compile as host C and
// check against package prover and gnark-crypto.

#define __global__ __attribute__((global))

#include "work.h"

static __attribute__((device)) inline u32 gid_x(void) {
	return __nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() + __nvvm_read_ptx_sreg_tid_x();
}

static __attribute__((device)) inline u32 gid_y(void) {
	return __nvvm_read_ptx_sreg_ctaid_y() * __nvvm_read_ptx_sreg_ntid_y() + __nvvm_read_ptx_sreg_tid_y();
}

extern "C" {

// One thread per (vector, chunk): x = chunk, y = vector index.
// sel 1 writes rows of A (stride 1, base index*K); sel 2 writes columns
// of B (stride N, base index).
__global__ void truegpu_prg(const fe *seed, const fe *rk, u64 sel, signed char *out,
                            u32 count, u32 chunks, u32 K, u32 N) {
	u32 chunk = gid_x();
	u32 index = gid_y();
	if (chunk >= chunks || index >= count)
		return;
	if (sel == 1)
		prg_chunk(seed, rk, sel, index, chunk, out + (u64)index * K, K, 1);
	else
		prg_chunk(seed, rk, sel, index, chunk, out + index, K, N);
}

// One thread per cell: x = column j, y = row i.
__global__ void truegpu_gemm(const signed char *A, const signed char *B, int *C, u32 M, u32 N, u32 K) {
	u32 j = gid_x();
	u32 i = gid_y();
	if (i >= M || j >= N)
		return;
	C[(u64)i * N + j] = gemm_cell(A, B, N, K, i, j);
}

// One thread per leaf word.
__global__ void truegpu_leaves(const int *C, fe *words, u64 nwords) {
	u64 w = gid_x();
	if (w >= nwords)
		return;
	words[w] = leaf_word(C, w);
}

// One thread per parent: out[i] = H(in[2i], in[2i+1]).
__global__ void truegpu_merkle(const fe *in, fe *out, const fe *rk, u64 nout) {
	u64 i = gid_x();
	if (i >= nout)
		return;
	out[i] = p2_compress(in[2 * i], in[2 * i + 1], rk);
}

}
