// CUDA kernels of the TrueGPU workload. Compiled to PTX (truegpu.ptx) by
// gen.sh with clang, without the CUDA toolkit; the Go host code in
// package cuda loads the PTX through the driver API. The arithmetic and
// the kernel bodies live in field.h and work.h, which the Go tests also
// compile as host C (hosttest.c, fakecuda.c) and check against package
// prover and gnark-crypto. Only the thread-id glue below is GPU-specific.

#define __global__ __attribute__((global))

#include "work.h"

static __attribute__((device)) inline u32 gid_x(void) {
	return __nvvm_read_ptx_sreg_ctaid_x() * __nvvm_read_ptx_sreg_ntid_x() + __nvvm_read_ptx_sreg_tid_x();
}

static __attribute__((device)) inline u32 gid_y(void) {
	return __nvvm_read_ptx_sreg_ctaid_y() * __nvvm_read_ptx_sreg_ntid_y() + __nvvm_read_ptx_sreg_tid_y();
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

}
