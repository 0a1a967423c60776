/*
 * One work item of each TrueGPU kernel, shared by the CUDA kernels
 * (truegpu.cu) and the host test harness (hosttest.c). Each function
 * computes the output at one index; the callers map thread ids (or a host
 * loop) to indices. See docs/PROTOCOL.md and package prover for the
 * definitions these follow bit for bit.
 */
#ifndef TRUEGPU_WORK_H
#define TRUEGPU_WORK_H

#include "field.h"

#define BYTES_PER_CHUNK 31

/*
 * PRG chunk: for vector `index` of selector `sel` (1 = rows of A,
 * 2 = columns of B) and chunk j, h = H(seed, sel*2^64 + index*2^32 + j);
 * entries j*31+t (t < 31, below K) take the little-endian byte t of h's
 * canonical integer as a two's-complement int8. Rows of A are stored
 * row-major (A[i*K+k]); columns of B down the column (B[k*N+j]).
 */
DEV void prg_chunk(const fe *seed, const fe *rk, u64 sel, u32 index, u32 chunk,
                   signed char *out, u32 K, u32 stride) {
	fe d;
	d.v[0] = ((u64)index << 32) | (u64)chunk;
	d.v[1] = sel;
	d.v[2] = 0;
	d.v[3] = 0;
	fe h = fe_from_mont(p2_compress(*seed, fe_to_mont(d), rk));
	for (u32 t = 0; t < BYTES_PER_CHUNK; t++) {
		u32 k = chunk * BYTES_PER_CHUNK + t;
		if (k >= K)
			break;
		out[(u64)k * stride] = (signed char)(unsigned char)(h.v[t / 8] >> (8 * (t % 8)));
	}
}

/* C[i*N+j] = sum_k A[i*K+k] * B[k*N+j], exact in int32. */
DEV int gemm_cell(const signed char *A, const signed char *B, u32 N, u32 K, u32 i, u32 j) {
	int s = 0;
	for (u32 k = 0; k < K; k++)
		s += (int)A[(u64)i * K + k] * (int)B[(u64)k * N + j];
	return s;
}

/* Leaf word w: sum_t uint32(C[4w+t]) * 2^(32t), in Montgomery form. */
DEV fe leaf_word(const int *C, u64 w) {
	fe x;
	x.v[0] = (u64)(u32)C[4 * w] | ((u64)(u32)C[4 * w + 1] << 32);
	x.v[1] = (u64)(u32)C[4 * w + 2] | ((u64)(u32)C[4 * w + 3] << 32);
	x.v[2] = 0;
	x.v[3] = 0;
	return fe_to_mont(x);
}

/*
 * Kernel bodies: the work of the thread at global position (x, y). The
 * CUDA kernels in truegpu.cu pass their thread ids; the test driver
 * (fakecuda.c) loops over the launch grid.
 */

/* x = chunk, y = vector index; sel 1 writes rows of A, sel 2 columns of B. */
DEV void k_prg(u32 x, u32 y, const fe *seed, const fe *rk, u64 sel, signed char *out,
               u32 count, u32 chunks, u32 K, u32 N) {
	if (x >= chunks || y >= count)
		return;
	if (sel == 1)
		prg_chunk(seed, rk, sel, y, x, out + (u64)y * K, K, 1);
	else
		prg_chunk(seed, rk, sel, y, x, out + y, K, N);
}

/* x = column j, y = row i. */
DEV void k_gemm(u32 x, u32 y, const signed char *A, const signed char *B, int *C, u32 M, u32 N, u32 K) {
	if (y >= M || x >= N)
		return;
	C[(u64)y * N + x] = gemm_cell(A, B, N, K, y, x);
}

/* x = leaf word. */
DEV void k_leaves(u32 x, const int *C, fe *words, u64 nwords) {
	if (x >= nwords)
		return;
	words[x] = leaf_word(C, x);
}

/* x = parent index: out[x] = H(in[2x], in[2x+1]). */
DEV void k_merkle(u32 x, const fe *in, fe *out, const fe *rk, u64 nout) {
	if (x >= nout)
		return;
	out[x] = p2_compress(in[2 * (u64)x], in[2 * (u64)x + 1], rk);
}

#endif
