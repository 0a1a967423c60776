/*
 * Kernel bodies of the timed phase (package prover/timed): the keyed PRG
 * that fills A and B, the int8 GEMM reduced to the low byte of each cell,
 * and SHA-256 leaf hashing. Shared, like work.h, by the CUDA kernels
 * (truegpu.cu) and the host C of the tests (hosttest.c, fakecuda.c).
 *
 * Layouts on the device:
 *   A panel  rows [r0, r0+T) of A, row-major: A[(i-r0)*K + k]
 *   B        all N columns, column-major:    B[j*K + k]
 *   out      the low bytes of C for rows [r0, r0+T): out[(i-r0)*N + j]
 *   hashes   32-byte leaf hashes, leaf l at hashes[32*(l-l0)]
 * Both operands are generated 8 bytes at a time: word w of A is
 * fmix(fmix(w ^ k0) ^ k1), whose little-endian bytes are A[i][8(w mod K/8)..]
 * for i = w / (K/8); B likewise with k2, k3 down its columns.
 */
#ifndef TRUEGPU_TIMED_H
#define TRUEGPU_TIMED_H

#include "field.h"

#ifndef __CUDA__
#include <string.h>
#endif

/*
 * In the CUDA kernels: full unrolling of a loop with constant bounds, and
 * inlining of the SHA-256 functions (called, their arrays stay in local
 * memory instead of registers).
 */
#ifdef __CUDA__
#define TM_UNROLL _Pragma("unroll")
#define TM_INLINE __attribute__((always_inline))
#else
#define TM_UNROLL
#define TM_INLINE
#endif

/* Cells per leaf. */
#define TM_LEAF 256

/* SplitMix64 finalizer. */
DEV u64 tm_fmix(u64 z) {
	z ^= z >> 30;
	z *= 0xbf58476d1ce4e5b9ULL;
	z ^= z >> 27;
	z *= 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z;
}

DEV u64 tm_word(u64 ctr, u64 ka, u64 kb) { return tm_fmix(tm_fmix(ctr ^ ka) ^ kb); }

/*
 * PRG fill, x = word index within the panel: out[x] = word(ctr0 + x).
 * A row panel starting at row r0 uses ctr0 = r0*(K/8) and keys k0, k1;
 * B (all columns) uses ctr0 = 0 and keys k2, k3. out is 8-byte aligned
 * and stored little-endian, so byte b of word w lands at k = 8w' + b.
 */
DEV void k_timed_fill(u64 x, u64 *out, u64 ctr0, u64 nwords, u64 ka, u64 kb) {
	if (x >= nwords)
		return;
	out[x] = tm_word(ctr0 + x, ka, kb);
}

/* ---- SHA-256 ---- */

#ifdef __CUDA__
__attribute__((device)) static const u32 tm_k256[64] = {
#else
static const u32 tm_k256[64] = {
#endif
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

DEV u32 tm_rotr(u32 x, u32 n) { return (x >> n) | (x << (32 - n)); }

DEV void tm_sha256_init(u32 st[8]) {
	st[0] = 0x6a09e667; st[1] = 0xbb67ae85; st[2] = 0x3c6ef372; st[3] = 0xa54ff53a;
	st[4] = 0x510e527f; st[5] = 0x9b05688c; st[6] = 0x1f83d9ab; st[7] = 0x5be0cd19;
}

/* One compression of the 16 big-endian message words w. */
TM_INLINE DEV void tm_sha256_block(u32 st[8], const u32 w16[16]) {
	u32 w[64];
	TM_UNROLL
	for (int i = 0; i < 16; i++)
		w[i] = w16[i];
	TM_UNROLL
	for (int i = 16; i < 64; i++) {
		u32 s0 = tm_rotr(w[i - 15], 7) ^ tm_rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
		u32 s1 = tm_rotr(w[i - 2], 17) ^ tm_rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	u32 a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
	TM_UNROLL
	for (int i = 0; i < 64; i++) {
		u32 t1 = h + (tm_rotr(e, 6) ^ tm_rotr(e, 11) ^ tm_rotr(e, 25)) + ((e & f) ^ (~e & g)) + tm_k256[i] + w[i];
		u32 t2 = (tm_rotr(a, 2) ^ tm_rotr(a, 13) ^ tm_rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
	}
	st[0] += a; st[1] += b; st[2] += c; st[3] += d; st[4] += e; st[5] += f; st[6] += g; st[7] += h;
}

DEV void tm_sha256_out(const u32 st[8], unsigned char out[32]) {
	for (int i = 0; i < 8; i++)
		for (int b = 0; b < 4; b++)
			out[4 * i + b] = (unsigned char)(st[i] >> (24 - 8 * b));
}

/*
 * Byte p of the padded leaf message 0x00 || be64(l) || leaf[256] (265
 * bytes, then 0x80, zeros and the bit length 2120 in the last 8 bytes of
 * the fifth 64-byte block).
 */
DEV u32 tm_leaf_msg_byte(u64 l, const unsigned char *leaf, u32 p) {
	if (p == 0)
		return 0;
	if (p < 9)
		return (u32)(l >> (8 * (8 - p))) & 0xff;
	if (p < 9 + TM_LEAF)
		return leaf[p - 9];
	if (p == 9 + TM_LEAF)
		return 0x80;
	if (p == 318)
		return (265 * 8) >> 8;
	if (p == 319)
		return (265 * 8) & 0xff;
	return 0;
}

/* SHA-256(0x00 || be64(l) || leaf[0:256]). */
TM_INLINE DEV void tm_leaf_hash(u64 l, const unsigned char *leaf, unsigned char out[32]) {
	u32 st[8], w[16];
	tm_sha256_init(st);
	for (u32 blk = 0; blk < 5; blk++) {
		for (u32 i = 0; i < 16; i++) {
			u32 p = 64 * blk + 4 * i;
			w[i] = (tm_leaf_msg_byte(l, leaf, p) << 24) | (tm_leaf_msg_byte(l, leaf, p + 1) << 16) |
			       (tm_leaf_msg_byte(l, leaf, p + 2) << 8) | tm_leaf_msg_byte(l, leaf, p + 3);
		}
		tm_sha256_block(st, w);
	}
	tm_sha256_out(st, out);
}

/*
 * Leaf hashing, x = leaf within the tile: hashes[32x] = leaf hash of leaf
 * l0 + x, whose 256 bytes are cells[256x ..].
 */
DEV void k_timed_leaves(u64 x, const unsigned char *cells, unsigned char *hashes, u64 l0, u64 nleaves) {
	if (x >= nleaves)
		return;
	tm_leaf_hash(l0 + x, cells + TM_LEAF * x, hashes + 32 * x);
}

/* ---- GEMM ---- */

/*
 * Block tile of the GEMM kernel: TM_BM rows x TM_BN columns per block of
 * TM_THREADS threads (4 warps; warp w owns rows 16w..16w+15 of the tile
 * and all TM_BN columns as TM_BN/8 m16n8k32 accumulators). N is a
 * multiple of 256, so column tiles never run past N; rows past the tile
 * height T and k past K are zero-filled in shared memory.
 */
#define TM_BM 64
#define TM_BN 64
#define TM_BK 32
#define TM_THREADS 128
/* Shared-memory row pitch in 32-bit words (32 bytes of k + 4 of padding:
 * the 32 lanes of a fragment load hit 32 distinct banks). */
#define TM_PITCH 9

/*
 * The per-thread pieces of the tensor-core GEMM kernel (truegpu.cu), shared
 * with the host model below. Shared memory holds, per k-step, TM_BM rows
 * of A and TM_BN columns of B, each 32 bytes of k as 8 words with row
 * pitch TM_PITCH (TM_BM == TM_BN: one loop stages both).
 */

/* Four bytes at p (4-byte aligned). */
DEV u32 tm_load32(const signed char *p) {
#ifdef __CUDA__
	return *(const u32 *)p;
#else
	u32 v;
	memcpy(&v, p, 4);
	return v;
#endif
}

/* Thread tid's share of staging the k-step at k0: zero past T and K. */
DEV void tm_stage(u32 tid, u32 *sa, u32 *sb, const signed char *A, const signed char *B, u32 T, u32 K,
                  u32 row0, u32 col0, u32 k0) {
	for (u32 e = tid; e < TM_BM * (TM_BK / 4); e += TM_THREADS) {
		u32 r = e / (TM_BK / 4), wd = e % (TM_BK / 4), k = k0 + 4 * wd;
		u32 va = 0, vb = 0;
		if (row0 + r < T && k < K)
			va = tm_load32(A + (u64)(row0 + r) * K + k);
		if (k < K)
			vb = tm_load32(B + (u64)(col0 + r) * K + k);
		sa[r * TM_PITCH + wd] = va;
		sb[r * TM_PITCH + wd] = vb;
	}
}

/*
 * Fragments of mma.m16n8k32 .row.col .s8 (PTX ISA), g = lane/4, t = lane%4:
 *   a[0]: A[g][4t..4t+3]    a[1]: A[g+8][4t..4t+3]
 *   a[2]: A[g][16+4t..]     a[3]: A[g+8][16+4t..]
 *   b[0]: B[4t..4t+3][g]    b[1]: B[16+4t..16+4t+3][g]
 *   d[0], d[1]: D[g][2t], D[g][2t+1]   d[2], d[3]: D[g+8][2t], D[g+8][2t+1]
 * Warp w's A operand is rows 16w.. of the block tile; accumulator n's B
 * operand is columns 8n.. .
 */
DEV void tm_frag_a(const u32 *sa, u32 warp, u32 lane, u32 a[4]) {
	const u32 g = lane / 4, t = lane % 4, ra = (16 * warp + g) * TM_PITCH;
	a[0] = sa[ra + t];
	a[1] = sa[ra + 8 * TM_PITCH + t];
	a[2] = sa[ra + 4 + t];
	a[3] = sa[ra + 8 * TM_PITCH + 4 + t];
}

DEV void tm_frag_b(const u32 *sb, u32 n, u32 lane, u32 b[2]) {
	const u32 g = lane / 4, t = lane % 4, rb = (8 * n + g) * TM_PITCH;
	b[0] = sb[rb + t];
	b[1] = sb[rb + 4 + t];
}

/* Low bytes of accumulator n of lane `lane` of warp `warp`. */
DEV void tm_store(unsigned char *out, const int d[4], u32 warp, u32 lane, u32 n, u32 row0, u32 col0, u32 T, u32 N) {
	const u32 g = lane / 4, t = lane % 4;
	const u32 r = row0 + 16 * warp + g, c = col0 + 8 * n + 2 * t;
	if (r < T) {
		out[(u64)r * N + c] = (unsigned char)d[0];
		out[(u64)r * N + c + 1] = (unsigned char)d[1];
	}
	if (r + 8 < T) {
		out[(u64)(r + 8) * N + c] = (unsigned char)d[2];
		out[(u64)(r + 8) * N + c + 1] = (unsigned char)d[3];
	}
}

#ifndef __CUDA__
/*
 * Host model of one warp's mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32
 * (d += A*B), written from the PTX ISA's fragment layout formulas: element
 * i of a lane's A registers (register i/4, byte i%4) is A[row][col] with
 * row = g for i < 4 or 8 <= i < 12, else g+8, and col = 4t + (i&3), plus
 * 16 for i >= 8; element i of B is B[4t + (i&3) (+16 for i >= 4)][g];
 * element i of D is D[g (+8 for i >= 2)][2t + (i&1)].
 */
static inline void tm_mma_warp_host(int d[32][4], const u32 a[32][4], const u32 b[32][2]) {
	signed char am[16][32], bm[32][8];
	for (u32 lane = 0; lane < 32; lane++) {
		u32 g = lane / 4, t = lane % 4;
		for (u32 i = 0; i < 16; i++) {
			u32 row = (i < 4 || (i >= 8 && i < 12)) ? g : g + 8;
			u32 col = 4 * t + (i & 3) + (i >= 8 ? 16 : 0);
			am[row][col] = (signed char)(unsigned char)(a[lane][i / 4] >> (8 * (i % 4)));
		}
		for (u32 i = 0; i < 8; i++)
			bm[4 * t + (i & 3) + (i >= 4 ? 16 : 0)][g] = (signed char)(unsigned char)(b[lane][i / 4] >> (8 * (i % 4)));
	}
	for (u32 lane = 0; lane < 32; lane++) {
		u32 g = lane / 4, t = lane % 4;
		for (u32 i = 0; i < 4; i++) {
			u32 row = i < 2 ? g : g + 8, col = 2 * t + (i & 1);
			int s = d[lane][i];
			for (u32 k = 0; k < 32; k++)
				s += (int)am[row][k] * (int)bm[k][col];
			d[lane][i] = s;
		}
	}
}

/*
 * Host model of one block (bx, by) of truegpu_timed_gemm: the kernel's
 * staging, fragment loads and stores (the functions above), with the
 * threads of the block run one after another between barriers and the
 * tensor-core MMA replaced by tm_mma_warp_host. Used by fakecuda.c and
 * hosttest.c.
 */
static inline void k_timed_gemm_block(u32 bx, u32 by, const signed char *A, const signed char *B, unsigned char *out,
                                      u32 T, u32 N, u32 K) {
	u32 sa[TM_BM * TM_PITCH], sb[TM_BN * TM_PITCH];
	int acc[TM_THREADS / 32][TM_BN / 8][32][4];
	const u32 row0 = by * TM_BM, col0 = bx * TM_BN;
	memset(acc, 0, sizeof acc);
	for (u32 k0 = 0; k0 < K; k0 += TM_BK) {
		for (u32 tid = 0; tid < TM_THREADS; tid++)
			tm_stage(tid, sa, sb, A, B, T, K, row0, col0, k0);
		for (u32 w = 0; w < TM_THREADS / 32; w++)
			for (u32 n = 0; n < TM_BN / 8; n++) {
				u32 a[32][4], b[32][2];
				for (u32 lane = 0; lane < 32; lane++) {
					tm_frag_a(sa, w, lane, a[lane]);
					tm_frag_b(sb, n, lane, b[lane]);
				}
				tm_mma_warp_host(acc[w][n], a, b);
			}
	}
	for (u32 w = 0; w < TM_THREADS / 32; w++)
		for (u32 n = 0; n < TM_BN / 8; n++)
			for (u32 lane = 0; lane < 32; lane++)
				tm_store(out, acc[w][n][lane], w, lane, n, row0, col0, T, N);
}
#endif

#endif
