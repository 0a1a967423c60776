/*
 * Host harness for the kernel arithmetic: runs the exact code of field.h
 * and work.h on the CPU, with host loops in place of thread ids. Used by
 * the Go tests of package cuda (TestKernelArithmeticOnHost); not part of
 * the attestor binary.
 *
 * Input on stdin (hex limbs are 16 hex digits, little-endian limb order):
 *   62 round keys (Montgomery form), 4 limbs each
 *   command "compress" n, then n pairs (a, b) in Montgomery form:
 *       prints H(a, b) in Montgomery form
 *   command "commit" M N K and the seed (Montgomery form):
 *       prints the M*N cells, then the root (Montgomery form)
 *   command "timed" M N K T nonce (64 hex digits), after the round keys:
 *       runs the timed phase as the device does, in tiles of T rows
 *       (timed.h: key derivation, PRG fill, GEMM block by block, leaf
 *       hashing) and prints the M*N/256 leaf hashes in hex, one a line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "timed.h"
#include "work.h"

/* SHA-256 of a short message (at most 55 bytes: one block). */
static void sha256_short(const unsigned char *m, u32 n, unsigned char out[32]) {
	unsigned char blk[64] = {0};
	u32 st[8], w[16];
	memcpy(blk, m, n);
	blk[n] = 0x80;
	blk[62] = (unsigned char)((8 * n) >> 8);
	blk[63] = (unsigned char)(8 * n);
	for (int i = 0; i < 16; i++)
		w[i] = (u32)blk[4 * i] << 24 | (u32)blk[4 * i + 1] << 16 | (u32)blk[4 * i + 2] << 8 | blk[4 * i + 3];
	tm_sha256_init(st);
	tm_sha256_block(st, w);
	tm_sha256_out(st, out);
}

static int timed(void) {
	u32 M, N, K, T;
	char hex[65];
	if (scanf("%u %u %u %u %64s", &M, &N, &K, &T, hex) != 5 || strlen(hex) != 64 || N % TM_LEAF || K % 8 || !T)
		return 2;
	const char *dom = "truegpu/timed/v1/key";
	unsigned char msg[52], h[32];
	u32 dl = (u32)strlen(dom);
	memcpy(msg, dom, dl);
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return 2;
		msg[dl + i] = (unsigned char)v;
	}
	sha256_short(msg, dl + 32, h);
	u64 key[4];
	for (int i = 0; i < 4; i++) {
		key[i] = 0;
		for (int b = 7; b >= 0; b--)
			key[i] = key[i] << 8 | h[8 * i + b];
	}
	u64 kw = K / 8;
	u64 *A = malloc(8 * kw * T), *B = malloc(8 * kw * N);
	unsigned char *out = malloc((size_t)T * N), *hashes = malloc(32 * ((size_t)T * N / TM_LEAF));
	for (u64 x = 0; x < kw * N; x++)
		k_timed_fill(x, B, 0, kw * N, key[2], key[3]);
	for (u32 r0 = 0; r0 < M; r0 += T) {
		u32 rows = M - r0 < T ? M - r0 : T;
		for (u64 x = 0; x < kw * rows; x++)
			k_timed_fill(x, A, (u64)r0 * kw, kw * rows, key[0], key[1]);
		for (u32 by = 0; by < (rows + TM_BM - 1) / TM_BM; by++)
			for (u32 bx = 0; bx < N / TM_BN; bx++)
				k_timed_gemm_block(bx, by, (const signed char *)A, (const signed char *)B, out, rows, N, K);
		u64 nl = (u64)rows * N / TM_LEAF;
		for (u64 x = 0; x < nl; x++)
			k_timed_leaves(x, out, hashes, (u64)r0 * N / TM_LEAF, nl);
		for (u64 x = 0; x < nl; x++) {
			for (int b = 0; b < 32; b++)
				printf("%02x", hashes[32 * x + b]);
			printf("\n");
		}
	}
	free(A);
	free(B);
	free(out);
	free(hashes);
	return 0;
}

static int read_fe(fe *x) {
	for (int i = 0; i < 4; i++)
		if (scanf("%llx", &x->v[i]) != 1)
			return 0;
	return 1;
}

static void print_fe(fe x) {
	printf("%016llx %016llx %016llx %016llx\n", x.v[0], x.v[1], x.v[2], x.v[3]);
}

int main(void) {
	fe rk[P2_NRK];
	for (int i = 0; i < P2_NRK; i++)
		if (!read_fe(&rk[i])) {
			fprintf(stderr, "hosttest: short round keys\n");
			return 2;
		}
	char cmd[32];
	if (scanf("%31s", cmd) != 1)
		return 2;
	if (strcmp(cmd, "compress") == 0) {
		int n;
		if (scanf("%d", &n) != 1)
			return 2;
		for (int i = 0; i < n; i++) {
			fe a, b;
			if (!read_fe(&a) || !read_fe(&b))
				return 2;
			print_fe(p2_compress(a, b, rk));
		}
		return 0;
	}
	if (strcmp(cmd, "commit") == 0) {
		u32 M, N, K;
		fe seed;
		if (scanf("%u %u %u", &M, &N, &K) != 3 || !read_fe(&seed))
			return 2;
		signed char *A = malloc((size_t)M * K), *B = malloc((size_t)K * N);
		int *C = malloc(sizeof(int) * (size_t)M * N);
		u32 chunks = (K + BYTES_PER_CHUNK - 1) / BYTES_PER_CHUNK;
		for (u32 i = 0; i < M; i++)
			for (u32 c = 0; c < chunks; c++)
				prg_chunk(&seed, rk, 1, i, c, A + (size_t)i * K, K, 1);
		for (u32 j = 0; j < N; j++)
			for (u32 c = 0; c < chunks; c++)
				prg_chunk(&seed, rk, 2, j, c, B + j, K, N);
		for (u32 i = 0; i < M; i++)
			for (u32 j = 0; j < N; j++)
				C[(size_t)i * N + j] = gemm_cell(A, B, N, K, i, j);
		u64 n = (u64)M * N / 4;
		fe *level = malloc(sizeof(fe) * n);
		for (u64 w = 0; w < n; w++)
			level[w] = leaf_word(C, w);
		while (n > 1) {
			for (u64 i = 0; i < n / 2; i++)
				level[i] = p2_compress(level[2 * i], level[2 * i + 1], rk);
			n /= 2;
		}
		for (size_t c = 0; c < (size_t)M * N; c++)
			printf("%d\n", C[c]);
		print_fe(level[0]);
		return 0;
	}
	if (strcmp(cmd, "timed") == 0)
		return timed();
	fprintf(stderr, "hosttest: unknown command %s\n", cmd);
	return 2;
}
