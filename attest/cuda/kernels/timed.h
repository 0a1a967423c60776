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
DEV void tm_sha256_block(u32 st[8], const u32 w16[16]) {
	u32 w[64];
	for (int i = 0; i < 16; i++)
		w[i] = w16[i];
	for (int i = 16; i < 64; i++) {
		u32 s0 = tm_rotr(w[i - 15], 7) ^ tm_rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
		u32 s1 = tm_rotr(w[i - 2], 17) ^ tm_rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	u32 a = st[0], b = st[1], c = st[2], d = st[3], e = st[4], f = st[5], g = st[6], h = st[7];
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
DEV void tm_leaf_hash(u64 l, const unsigned char *leaf, unsigned char out[32]) {
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

/* Low byte of C[i][j] for one cell: the reference the kernel must equal. */
DEV unsigned char tm_cell(const signed char *A, const signed char *B, u32 K, u32 row, u32 j) {
	int s = 0;
	for (u32 k = 0; k < K; k++)
		s += (int)A[(u64)row * K + k] * (int)B[(u64)j * K + k];
	return (unsigned char)s;
}

#ifndef __CUDA__
/*
 * Host stand-in for one GEMM block (bx, by) of the launch the device code
 * makes: the same tile bounds, computed cell by cell with a plain loop.
 * Used by fakecuda.c and hosttest.c; the tensor-core path is GPU-only.
 */
static inline void k_timed_gemm_block(u32 bx, u32 by, const signed char *A, const signed char *B, unsigned char *out,
                                      u32 T, u32 N, u32 K) {
	for (u32 r = by * TM_BM; r < by * TM_BM + TM_BM && r < T; r++)
		for (u32 j = bx * TM_BN; j < bx * TM_BN + TM_BN && j < N; j++)
			out[(u64)r * N + j] = tm_cell(A, B, K, r, j);
}
#endif

#endif
