// CUDA kernels of the TrueGPU workload. Compiled to PTX (truegpu.ptx) by
// gen.sh with clang, without the CUDA toolkit; the Go host code in
// package cuda loads the PTX through the driver API. The arithmetic and
// the kernel bodies live in field.h and work.h, which the Go tests also
// compile as host C (hosttest.c, fakecuda.c) and check against package
// prover and gnark-crypto. Only the thread-id glue below is GPU-specific,
// the tensor-core MMA of the timed phase's GEMM (truegpu_timed_gemm),
// which the host C replaces by a model of the instruction (timed.h), and
// the warp's loads and butterfly sum in the memory phase's walk
// (truegpu_mw_walk), which the host C runs as a loop over the warp's
// chunks (memwalk.h).

#define __global__ __attribute__((global))
#define __shared__ __attribute__((shared))

#include "memwalk.h"
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

// Sum of v over the 32 threads of the warp (every thread gets it): a
// butterfly of 32-bit shuffles on both halves, adding modulo 2^64.
static __attribute__((device)) inline u64 warp_sum64(u64 v) {
#pragma unroll
	for (u32 m = 16; m > 0; m >>= 1) {
		u32 lo = (u32)v, hi = (u32)(v >> 32), olo, ohi;
		asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(olo) : "r"(lo), "r"(m));
		asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;" : "=r"(ohi) : "r"(hi), "r"(m));
		v += (u64)olo | (u64)ohi << 32;
	}
	return v;
}

// Two 8-byte-aligned 16-byte vector loads.
typedef u64 u64x2 __attribute__((ext_vector_type(2)));

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

// Memory phase (memwalk.h).

__global__ void truegpu_mw_block_leaves(const unsigned char *tile, unsigned char *hashes, u64 l0, u64 n) {
	k_mw_block_leaves(gid_x(), tile, hashes, l0, n);
}

__global__ void truegpu_mw_init(u64 *states, u64 lanes, u64 w0, u64 w1) {
	k_mw_init(gid_x(), states, lanes, w0, w1);
}

__global__ void truegpu_mw_state_leaves(const u64 *states, unsigned char *hashes, u64 n0, u64 n) {
	k_mw_state_leaves(gid_x(), states, hashes, n0, n);
}

__global__ void truegpu_mw_nodes(const unsigned char *in, unsigned char *out, u64 nout) {
	k_mw_nodes(gid_x(), in, out, nout);
}

// nsteps steps of the walk for every lane, one warp per lane (8 lanes per
// block of 256 threads): thread c of the warp reads
// the 32 bytes of chunk c of the block the lane's state addresses (the
// warp reads the whole 1 KB block) and folds them, the warp sums the 32
// chunks and every thread continues with the new state. cur holds the
// states before the first step and receives those after the last; when
// out is not null, the states after step s go to out[s*lanes + lane].
// Grid: lanes*32 threads in blocks of 256 (lanes is a multiple of 8).
__global__ void truegpu_mw_walk(const u64 *table, u64 blocks, u64 *cur, u64 *out, u32 lanes, u32 nsteps) {
	const u32 lane = gid_x() / 32, c = lane_id();
	if (lane >= lanes)
		return;
	u64 x = cur[lane];
	for (u32 s = 0; s < nsteps; s++) {
		const u64x2 *p = (const u64x2 *)(table + MW_WORDS * mw_address(x, blocks) + 4 * c);
		const u64x2 v0 = p[0], v1 = p[1];
		x = mw_next(warp_sum64(mw_chunk(x, c, v0.x, v0.y, v1.x, v1.y)), x);
		if (c == 0 && out)
			out[(u64)s * lanes + lane] = x;
	}
	if (c == 0)
		cur[lane] = x;
}

}
