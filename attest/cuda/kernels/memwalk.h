/*
 * Kernel bodies of the memory phase (package prover/memwalk,
 * "truegpu/memwalk/v1"): SHA-256 leaf hashing of the table's 1 KB blocks,
 * the lane-state initialisation, the fold of one block into a lane's state
 * (one chunk per thread of a warp), SHA-256 leaf hashing of the walk's
 * state leaves and the inner nodes of both trees. The table itself is
 * filled by the timed phase's kernels (timed.h: PRG and tensor-core GEMM
 * with K = 1024, N = 1024), which write the low bytes of C straight into
 * the table. Shared, like timed.h, by the CUDA kernels (truegpu.cu) and
 * the host C of the tests (fakecuda.c).
 *
 * Layouts on the device:
 *   table    Blocks x 1024 bytes, block i at table[1024 i]; read by the
 *            walk as 128 little-endian words per block
 *   states   one u64 per lane (lane l at states[l]); a run of steps keeps
 *            the states after each step s at out[s*Lanes + l], so the 64
 *            bytes of walk-tree leaf (step, g) are 8 consecutive words
 *   hashes   32-byte SHA-256 digests, consecutive
 */
#ifndef TRUEGPU_MEMWALK_H
#define TRUEGPU_MEMWALK_H

#include "timed.h"

#define MW_BLOCK 1024
#define MW_WORDS (MW_BLOCK / 8)
#define MW_CHUNKS (MW_WORDS / 4)
#define MW_GAMMA 0x9E3779B97F4A7C15ULL
#define MW_MUL 0xD6E8FEB86659FD93ULL
#define MW_ROT 23

/* ---- SHA-256 of the tree messages ---- */

/*
 * The message words are built from aligned 32-bit loads of the data (d is
 * 4-byte aligned and its length a multiple of 4). Both kinds of message
 * have a prefix of 1 mod 4 bytes (0x00 || be64(index): 9, 0x01: 1), so
 * every big-endian message word inside the data is the last byte of one
 * aligned 4-byte group and the first three of the next: mw_join of the two
 * groups, loaded little-endian.
 */
DEV u32 mw_join(u32 v0, u32 v1) {
	return (v0 & 0xff000000u) | (v1 & 0xff) << 16 | (v1 & 0xff00) | ((v1 >> 16) & 0xff);
}

DEV u32 mw_load(const unsigned char *p) { return tm_load32((const signed char *)p); }

/* The number of 64-byte blocks of a padded message of len bytes. */
#define MW_NBLK(len) (((len) + 9 + 63) / 64)

/*
 * Big-endian word wi of the padded message 0x00 || be64(l) || d[0:n]
 * (a leaf of either tree: n = 1024 for a table block, 64 for eight lane
 * states): message bytes 4wi .. 4wi+3 are d[4wi-9 .. 4wi-6] from word 3 to
 * word (n+5)/4.
 */
DEV u32 mw_leaf_word(u64 l, const unsigned char *d, u32 n, u32 wi) {
	if (wi == 0)
		return (u32)(l >> 40) & 0xffffff;
	if (wi == 1)
		return (u32)(l >> 8);
	if (wi == 2)
		return ((u32)l & 0xff) << 24 | (u32)d[0] << 16 | (u32)d[1] << 8 | d[2];
	if (wi <= (n + 5) / 4)
		return mw_join(mw_load(d + 4 * (wi - 3)), mw_load(d + 4 * (wi - 2)));
	if (wi == (n + 8) / 4)
		return (u32)d[n - 1] << 24 | 0x800000u;
	if (wi == 16 * MW_NBLK(9 + n) - 1)
		return (9 + n) * 8;
	return 0;
}

/* SHA-256(0x00 || be64(l) || d[0:n]): a leaf hash of either tree. */
TM_INLINE DEV void mw_leaf_hash(u64 l, const unsigned char *d, u32 n, unsigned char out[32]) {
	u32 st[8], w[16];
	tm_sha256_init(st);
	for (u32 b = 0; b < MW_NBLK(9 + n); b++) {
		TM_UNROLL
		for (u32 k = 0; k < 16; k++)
			w[k] = mw_leaf_word(l, d, n, 16 * b + k);
		tm_sha256_block(st, w);
	}
	tm_sha256_out(st, out);
}

/*
 * Big-endian word wi of the padded message 0x01 || d[0:64] (an inner
 * node: the two children's hashes, adjacent in memory).
 */
DEV u32 mw_node_word(const unsigned char *d, u32 wi) {
	if (wi == 0)
		return 0x01000000u | (u32)d[0] << 16 | (u32)d[1] << 8 | d[2];
	if (wi < 16)
		return mw_join(mw_load(d + 4 * (wi - 1)), mw_load(d + 4 * wi));
	if (wi == 16)
		return (u32)d[63] << 24 | 0x800000u;
	if (wi == 31)
		return 65 * 8;
	return 0;
}

/* SHA-256(0x01 || d[0:64]). */
TM_INLINE DEV void mw_node_hash(const unsigned char *d, unsigned char out[32]) {
	u32 st[8], w[16];
	tm_sha256_init(st);
	TM_UNROLL
	for (u32 b = 0; b < 2; b++) {
		TM_UNROLL
		for (u32 k = 0; k < 16; k++)
			w[k] = mw_node_word(d, 16 * b + k);
		tm_sha256_block(st, w);
	}
	tm_sha256_out(st, out);
}

/*
 * Table leaves, x = block within the tile: hashes[32x] = leaf hash of
 * block l0 + x, whose bytes are tile[1024x ..].
 */
DEV void k_mw_block_leaves(u64 x, const unsigned char *tile, unsigned char *hashes, u64 l0, u64 n) {
	if (x >= n)
		return;
	mw_leaf_hash(l0 + x, tile + MW_BLOCK * x, MW_BLOCK, hashes + 32 * x);
}

/*
 * Walk-tree leaves, x = leaf within the run: hashes[32x] = leaf hash of
 * leaf n0 + x, whose 64 bytes are the 8 states at states[8x ..].
 */
DEV void k_mw_state_leaves(u64 x, const u64 *states, unsigned char *hashes, u64 n0, u64 n) {
	if (x >= n)
		return;
	mw_leaf_hash(n0 + x, (const unsigned char *)(states + 8 * x), 64, hashes + 32 * x);
}

/* Inner nodes, x = parent: out[32x] = SHA-256(0x01 || in[64x .. 64x+64]). */
DEV void k_mw_nodes(u64 x, const unsigned char *in, unsigned char *out, u64 nout) {
	if (x >= nout)
		return;
	mw_node_hash(in + 64 * x, out + 32 * x);
}

/* ---- the walk ---- */

/* Lane start states, x = lane: states[x] = word(x, w0, w1). */
DEV void k_mw_init(u64 x, u64 *states, u64 lanes, u64 w0, u64 w1) {
	if (x >= lanes)
		return;
	states[x] = tm_word(x, w0, w1);
}

/* The index of the block a lane in state x reads: mulhi(x, blocks). */
DEV u64 mw_address(u64 x, u64 blocks) { return mulhi64(x, blocks); }

DEV u64 mw_rotl(u64 x) { return (x << MW_ROT) | (x >> (64 - MW_ROT)); }

/* Chunk c (words b0..b3 = block words 4c .. 4c+3) of the fold of state x. */
DEV u64 mw_chunk(u64 x, u32 c, u64 b0, u64 b1, u64 b2, u64 b3) {
	u64 h = x ^ ((u64)c * MW_GAMMA);
	h = mw_rotl(h ^ b0) * MW_MUL;
	h = mw_rotl(h ^ b1) * MW_MUL;
	h = mw_rotl(h ^ b2) * MW_MUL;
	h = mw_rotl(h ^ b3) * MW_MUL;
	return h;
}

/* The state after the step, from the sum of the 32 chunks. */
DEV u64 mw_next(u64 acc, u64 x) { return tm_fmix(acc ^ x); }

#ifndef __CUDA__
/*
 * Host model of one warp of truegpu_mw_walk (lane `lane`): the 32 threads'
 * chunks computed one after another and summed in place of the warp's
 * butterfly reduction (the sum is modulo 2^64, so the order is immaterial).
 * Used by fakecuda.c.
 */
static inline void k_mw_walk_warp(u64 lane, const u64 *table, u64 blocks, u64 *cur, u64 *out, u32 lanes, u32 nsteps) {
	if (lane >= lanes)
		return;
	u64 x = cur[lane];
	for (u32 s = 0; s < nsteps; s++) {
		const u64 *blk = table + MW_WORDS * mw_address(x, blocks);
		u64 acc = 0;
		for (u32 c = 0; c < MW_CHUNKS; c++)
			acc += mw_chunk(x, c, blk[4 * c], blk[4 * c + 1], blk[4 * c + 2], blk[4 * c + 3]);
		x = mw_next(acc, x);
		if (out)
			out[(u64)s * lanes + lane] = x;
	}
	cur[lane] = x;
}
#endif

#endif
