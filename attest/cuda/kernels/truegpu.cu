// CUDA kernels of the TrueGPU workload. Compiled to PTX (truegpu.ptx) by
// gen.sh with clang, without the CUDA toolkit; the Go host code in
// package cuda loads the PTX through the driver API. The arithmetic and
// the kernel bodies live in field.h and work.h, which the Go tests also
// compile as host C (hosttest.c, fakecuda.c) and check against package
// prover and gnark-crypto. Only the thread-id glue below is GPU-specific,
// and the tensor-core MMA of the timed phase's GEMM (truegpu_timed_gemm),
// which the host C replaces by a model of the instruction (timed.h).

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

// D = A*B + D for one warp (fragment layout: timed.h).
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
	const u32 warp = tid / 32, lane = lane_id();
	const u32 row0 = __nvvm_read_ptx_sreg_ctaid_y() * TM_BM, col0 = __nvvm_read_ptx_sreg_ctaid_x() * TM_BN;
	int acc[TM_BN / 8][4];
#pragma unroll
	for (int n = 0; n < TM_BN / 8; n++)
		acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0;
	for (u32 k0 = 0; k0 < K; k0 += TM_BK) {
		tm_stage(tid, sa, sb, A, B, T, K, row0, col0, k0);
		__syncthreads();
		u32 a[4];
		tm_frag_a(sa, warp, lane, a);
#pragma unroll
		for (int n = 0; n < TM_BN / 8; n++) {
			u32 b[2];
			tm_frag_b(sb, n, lane, b);
			mma_s8(acc[n], a, b);
		}
		__syncthreads();
	}
#pragma unroll
	for (int n = 0; n < TM_BN / 8; n++)
		tm_store(out, acc[n], warp, lane, n, row0, col0, T, N);
}

}
