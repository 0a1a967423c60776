// CUDA kernels of the TrueGPU workload. Compiled to PTX (truegpu.ptx) by
// gen.sh with clang, without the CUDA toolkit; the Go host code in
// package cuda loads the PTX through the driver API. The arithmetic and
// the kernel bodies live in field.h and work.h, which the Go tests also
// compile as host C (hosttest.c, fakecuda.c) and check against package
// prover and gnark-crypto. Only the thread-id glue below is GPU-specific,
// and the tensor-core GEMM of the timed phase (truegpu_timed_gemm), whose
// host stand-in is the plain loop k_timed_gemm_block in timed.h.

#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))

#include "timed.h"
#include "work.h"

static __attribute__((device)) inline u32 gid_x(void) {
	return __nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() + __nvvm_read_ptx_sreg_tid_x();
}

static __attribute__((device)) inline u32 gid_y(void) {
	return __nvvm_read_ptx_sreg_ctaid_y() * __nvvm_read_ptx_sreg_ntid_y() + __nvvm_read_ptx_sreg_tid_y();
}

static __attribute__((device)) inline u32 lane_id(void) { return __nvvm_read_ptx_sreg_tid_x() & 31; }

// D = A*B + D for one warp: A 16x32 s8 (row), B 32x8 s8 (col), D 16x8 s32.
// Fragments (PTX ISA, mma.m16n8k32 .s8), with g = lane/4, t = lane%4:
//   a[0]: A[g][4t..4t+3]    a[1]: A[g+8][4t..4t+3]
//   a[2]: A[g][16+4t..]     a[3]: A[g+8][16+4t..]
//   b[0]: B[4t..4t+3][g]    b[1]: B[16+4t..16+4t+3][g]
//   d[0], d[1]: D[g][2t], D[g][2t+1]   d[2], d[3]: D[g+8][2t], D[g+8][2t+1]
static __attribute__((device)) inline void mma_s8(int d[4], const u32 a[4], const u32 b[2]) {
	asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
	             "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
	             : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
	             : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

extern "C" {

__global__ void truegpu_prg(const fe *seed, const fe *rk, u64 sel, signed char *out,
                            u32 count, u32 chunks, u32 K, u32 N) {
	k_prg(gid_x(), gid_y(), seed, rk, sel, out, count, chunks, K, N);
}

__global__ void truegpu_gemm(const signed char *A, const signed char *B, int *C, u32 M, u32 N, u32 K) {
	k_gemm(gid_x(), gid_y(), A, B, C, M, N, K);
}

__global__ void truegpu_leaves(const int *C, fe *words, u64 nwords) {
	k_leaves(gid_x(), C, words, nwords);
}

__global__ void truegpu_merkle(const fe *in, fe *out, const fe *rk, u64 nout) {
	k_merkle(gid_x(), in, out, rk, nout);
}

__global__ void truegpu_timed_fill(u64 *out, u64 ctr0, u64 nwords, u64 ka, u64 kb) {
	k_timed_fill(gid_x(), out, ctr0, nwords, ka, kb);
}

__global__ void truegpu_timed_leaves(const unsigned char *cells, unsigned char *hashes, u64 l0, u64 nleaves) {
	k_timed_leaves(gid_x(), cells, hashes, l0, nleaves);
}

// Low bytes of C = A*B for a tile of T rows: A is the T x K row panel
// (row-major), B all N columns (column-major, K bytes each), out T x N
// bytes. Grid (N/TM_BN, ceil(T/TM_BM)), TM_THREADS threads. Each k-step
// stages a 64x32 slice of A and a 32x64 slice of B in shared memory
// (one 32-bit word per thread and operand per pass, zero past T and K),
// then each warp runs 8 m16n8k32 tensor-core MMAs on its 16 rows. No
// double buffering, ldmatrix or asynchronous copies: simple, not tuned.
__global__ void truegpu_timed_gemm(const signed char *A, const signed char *B, unsigned char *out, u32 T, u32 N, u32 K) {
	__shared__ u32 sa[TM_BM * TM_PITCH];
	__shared__ u32 sb[TM_BN * TM_PITCH];
	const u32 tid = __nvvm_read_ptx_sreg_tid_x();
	const u32 warp = tid / 32, lane = lane_id(), g = lane / 4, t = lane % 4;
	const u32 row0 = __nvvm_read_ptx_sreg_ctaid_y() * TM_BM, col0 = __nvvm_read_ptx_sreg_ctaid_x() * TM_BN;
	int acc[TM_BN / 8][4];
#pragma unroll
	for (int n = 0; n < TM_BN / 8; n++)
		acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0;
	for (u32 k0 = 0; k0 < K; k0 += TM_BK) {
		// 64 rows x 8 words per operand: 512 words, 4 per thread.
		for (u32 e = tid; e < TM_BM * (TM_BK / 4); e += TM_THREADS) {
			u32 r = e / (TM_BK / 4), wd = e % (TM_BK / 4), k = k0 + 4 * wd;
			u32 va = 0, vb = 0;
			if (row0 + r < T && k < K)
				va = *(const u32 *)(A + (u64)(row0 + r) * K + k);
			if (k < K)
				vb = *(const u32 *)(B + (u64)(col0 + r) * K + k);
			sa[r * TM_PITCH + wd] = va;
			sb[r * TM_PITCH + wd] = vb;
		}
		__syncthreads();
		u32 a[4];
		const u32 ra = (16 * warp + g) * TM_PITCH;
		a[0] = sa[ra + t];
		a[1] = sa[ra + 8 * TM_PITCH + t];
		a[2] = sa[ra + 4 + t];
		a[3] = sa[ra + 8 * TM_PITCH + 4 + t];
#pragma unroll
		for (int n = 0; n < TM_BN / 8; n++) {
			u32 b[2];
			const u32 rb = (8 * n + g) * TM_PITCH;
			b[0] = sb[rb + t];
			b[1] = sb[rb + 4 + t];
			mma_s8(acc[n], a, b);
		}
		__syncthreads();
	}
#pragma unroll
	for (int n = 0; n < TM_BN / 8; n++) {
		u32 r = row0 + 16 * warp + g, c = col0 + 8 * n + 2 * t;
		if (r < T) {
			out[(u64)r * N + c] = (unsigned char)acc[n][0];
			out[(u64)r * N + c + 1] = (unsigned char)acc[n][1];
		}
		if (r + 8 < T) {
			out[(u64)(r + 8) * N + c] = (unsigned char)acc[n][2];
			out[(u64)(r + 8) * N + c + 1] = (unsigned char)acc[n][3];
		}
	}
}

}
