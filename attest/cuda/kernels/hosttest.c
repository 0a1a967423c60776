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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "work.h"

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
	fprintf(stderr, "hosttest: unknown command %s\n", cmd);
	return 2;
}
