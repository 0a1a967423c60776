/*
 * BN254 scalar field arithmetic and the Poseidon2 2-to-1 compression of
 * the TrueGPU workload, written once for two compilers:
 *
 *   - as CUDA device code (truegpu.cu, compiled to PTX by clang), and
 *   - as host C (hosttest.c, compiled by gcc in the Go tests), so that the
 *     exact arithmetic the kernels run is checked against gnark-crypto on
 *     machines without a GPU.
 *
 * Elements are 4 little-endian 64-bit limbs in Montgomery form (R = 2^256),
 * the same representation as gnark-crypto's fr.Element.
 */
#ifndef TRUEGPU_FIELD_H
#define TRUEGPU_FIELD_H

typedef unsigned long long u64;
typedef unsigned int u32;

#ifdef __CUDA__
#define DEV __attribute__((device)) static inline
static __attribute__((device)) inline u64 mulhi64(u64 a, u64 b) { return __nvvm_mulhi_ull(a, b); }
#else
#define DEV static inline
static inline u64 mulhi64(u64 a, u64 b) { return (u64)(((unsigned __int128)a * b) >> 64); }
#endif

typedef struct { u64 v[4]; } fe;

/* r = 21888242871839275222246405745257275088548364400416034343698204186575808495617 */
#define Q0 0x43e1f593f0000001ULL
#define Q1 0x2833e84879b97091ULL
#define Q2 0xb85045b68181585dULL
#define Q3 0x30644e72e131a029ULL
#define QINVNEG 0xc2e1f593efffffffULL
/* R^2 mod r, to enter Montgomery form. */
#define R2_0 0x1bb8e645ae216da7ULL
#define R2_1 0x53fe3ab1e35c59e3ULL
#define R2_2 0x8c49833d53bb8085ULL
#define R2_3 0x0216d0b17f4e44a5ULL

/* (lo, *carry) = a*b + c + *carry; never overflows 128 bits. */
DEV u64 mac(u64 a, u64 b, u64 c, u64 *carry) {
	u64 lo = a * b;
	u64 hi = mulhi64(a, b);
	lo += c;
	hi += (lo < c);
	lo += *carry;
	hi += (lo < *carry);
	*carry = hi;
	return lo;
}

/* (sum, *carry) = a + b + *carry with *carry in {0,1}. */
DEV u64 adc(u64 a, u64 b, u64 *carry) {
	u64 s = a + b;
	u64 c = (s < a);
	u64 s2 = s + *carry;
	c |= (s2 < s);
	*carry = c;
	return s2;
}

/* (diff, *borrow) = a - b - *borrow with *borrow in {0,1}. */
DEV u64 sbb(u64 a, u64 b, u64 *borrow) {
	u64 d = a - b;
	u64 br = (a < b);
	u64 d2 = d - *borrow;
	br |= (d < *borrow);
	*borrow = br;
	return d2;
}

/* Subtract r once if z >= r (z < 2r). */
DEV void fe_reduce(fe *z, u64 top) {
	u64 b = 0;
	u64 t0 = sbb(z->v[0], Q0, &b);
	u64 t1 = sbb(z->v[1], Q1, &b);
	u64 t2 = sbb(z->v[2], Q2, &b);
	u64 t3 = sbb(z->v[3], Q3, &b);
	/* z >= r unless the subtraction borrowed without a top carry. */
	if (top || !b) {
		z->v[0] = t0; z->v[1] = t1; z->v[2] = t2; z->v[3] = t3;
	}
}

DEV fe fe_add(fe a, fe b) {
	fe z;
	u64 c = 0;
	z.v[0] = adc(a.v[0], b.v[0], &c);
	z.v[1] = adc(a.v[1], b.v[1], &c);
	z.v[2] = adc(a.v[2], b.v[2], &c);
	z.v[3] = adc(a.v[3], b.v[3], &c);
	fe_reduce(&z, c);
	return z;
}

/* Montgomery product a*b*R^-1 mod r (CIOS). */
DEV fe fe_mul(fe a, fe b) {
	u64 t[6] = {0, 0, 0, 0, 0, 0};
	const u64 q[4] = {Q0, Q1, Q2, Q3};
	for (int i = 0; i < 4; i++) {
		u64 c = 0;
		for (int j = 0; j < 4; j++)
			t[j] = mac(a.v[j], b.v[i], t[j], &c);
		u64 cc = 0;
		t[4] = adc(t[4], c, &cc);
		t[5] = cc;
		u64 m = t[0] * QINVNEG;
		c = 0;
		(void)mac(m, q[0], t[0], &c);
		for (int j = 1; j < 4; j++)
			t[j - 1] = mac(m, q[j], t[j], &c);
		cc = 0;
		t[3] = adc(t[4], c, &cc);
		t[4] = t[5] + cc;
	}
	fe z;
	z.v[0] = t[0]; z.v[1] = t[1]; z.v[2] = t[2]; z.v[3] = t[3];
	fe_reduce(&z, t[4]);
	return z;
}

/* Canonical integer (< r) to Montgomery form. */
DEV fe fe_to_mont(fe a) {
	fe r2;
	r2.v[0] = R2_0; r2.v[1] = R2_1; r2.v[2] = R2_2; r2.v[3] = R2_3;
	return fe_mul(a, r2);
}

/* Montgomery form to the canonical integer. */
DEV fe fe_from_mont(fe a) {
	fe one;
	one.v[0] = 1; one.v[1] = 0; one.v[2] = 0; one.v[3] = 0;
	return fe_mul(a, one);
}

DEV fe fe_sbox(fe x) { /* x^5 */
	fe x2 = fe_mul(x, x);
	fe x4 = fe_mul(x2, x2);
	return fe_mul(x4, x);
}

/*
 * Poseidon2 over BN254, width 2, 6 full and 50 partial rounds, gnark-crypto's
 * parameters: external matrix [[2,1],[1,2]], internal matrix [[2,1],[1,3]],
 * S-box x^5. rk holds the round keys flattened: 3 full rounds x 2, 50
 * partial rounds x 1, 3 full rounds x 2 (62 elements, Montgomery form).
 * The compression is H(a, b) = P(a, b)[1] + b.
 */
#define P2_RF_HALF 3
#define P2_RP 50
#define P2_NRK (2 * P2_RF_HALF + P2_RP + 2 * P2_RF_HALF)

DEV void p2_external(fe *x0, fe *x1) {
	fe t = fe_add(*x0, *x1);
	*x0 = fe_add(*x0, t);
	*x1 = fe_add(*x1, t);
}

DEV fe p2_compress(fe a, fe b, const fe *rk) {
	fe x0 = a, x1 = b;
	int k = 0;
	p2_external(&x0, &x1);
	for (int r = 0; r < P2_RF_HALF; r++) {
		x0 = fe_sbox(fe_add(x0, rk[k]));
		x1 = fe_sbox(fe_add(x1, rk[k + 1]));
		k += 2;
		p2_external(&x0, &x1);
	}
	for (int r = 0; r < P2_RP; r++) {
		x0 = fe_sbox(fe_add(x0, rk[k]));
		k++;
		fe s = fe_add(x0, x1);
		x0 = fe_add(x0, s);
		x1 = fe_add(fe_add(x1, x1), s);
	}
	for (int r = 0; r < P2_RF_HALF; r++) {
		x0 = fe_sbox(fe_add(x0, rk[k]));
		x1 = fe_sbox(fe_add(x1, rk[k + 1]));
		k += 2;
		p2_external(&x0, &x1);
	}
	return fe_add(x1, b);
}

#endif
