/*
 * A stand-in for libcuda.so.1 used only by the Go tests of package cuda on
 * machines without a GPU. It implements the driver API entry points the
 * backend calls, with device memory in host memory, and executes
 * cuLaunchKernel by looping over the launch grid and calling the same
 * kernel bodies (work.h, timed.h, memwalk.h) the PTX runs; the timed-phase
 * GEMM, whose PTX uses tensor-core instructions, runs as timed.h's host
 * model over the same block tiles, and the memory phase's walk, whose PTX
 * sums the chunks of a warp with shuffles, runs memwalk.h's loop over the
 * warp's chunks once per warp. It thereby tests the host side of
 * the backend - symbol binding, kernel argument layout, grid sizes, buffer
 * sizes, copies and error mapping - everything except PTX code generation
 * and the GPU itself. Not part of the attestor binary.
 *
 * Failure injection through the environment:
 *   FAKECUDA_DEVICES=n      cuDeviceGetCount reports n (default 1)
 *   FAKECUDA_FAIL_ALLOC=1   cuMemAlloc fails with CUDA_ERROR_OUT_OF_MEMORY
 *   FAKECUDA_BAD_PTX=1      cuModuleLoadData fails with CUDA_ERROR_INVALID_PTX
 */
#include <stdlib.h>
#include <string.h>

#include "memwalk.h"
#include "timed.h"
#include "work.h"

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

static long live_allocations;
static long launches;

long fakecuda_live_allocations(void) { return live_allocations; }
long fakecuda_launches(void) { return launches; }

static int env_int(const char *name, int def) {
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

CUresult cuInit(unsigned int flags) { return flags == 0 ? 0 : 1; }
CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
CUresult cuDeviceGetCount(int *n) { *n = env_int("FAKECUDA_DEVICES", 1); return 0; }
CUresult cuDeviceGet(int *dev, int ordinal) {
	if (ordinal < 0 || ordinal >= env_int("FAKECUDA_DEVICES", 1))
		return 101; /* CUDA_ERROR_INVALID_DEVICE */
	*dev = ordinal;
	return 0;
}
CUresult cuDeviceGetName(char *name, int len, int dev) {
	strncpy(name, "Fake NVIDIA H100 80GB HBM3", (size_t)len - 1);
	name[len - 1] = 0;
	return 0;
}
CUresult cuDeviceGetUuid_v2(unsigned char *uuid, int dev) {
	for (int i = 0; i < 16; i++)
		uuid[i] = (unsigned char)(0xA0 + i + dev);
	return 0;
}
CUresult cuDeviceTotalMem_v2(size_t *bytes, int dev) { *bytes = 85520809984ULL; return 0; }
CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
	switch (attr) {
	case 75: *v = 9; return 0;       /* compute capability major */
	case 76: *v = 0; return 0;       /* minor */
	case 13: *v = 1980000; return 0; /* clock rate, kHz */
	case 36: *v = 2619000; return 0; /* memory clock rate, kHz */
	}
	return 1;
}
CUresult cuDeviceGetPCIBusId(char *buf, int len, int dev) {
	strncpy(buf, "00000000:18:00.0", (size_t)len - 1);
	buf[len - 1] = 0;
	return 0;
}
CUresult cuCtxCreate_v2(void **ctx, unsigned int flags, int dev) { *ctx = (void *)0x1; return 0; }
CUresult cuCtxDestroy_v2(void *ctx) { return 0; }
CUresult cuCtxSetCurrent(void *ctx) { return 0; }
CUresult cuCtxSynchronize(void) { return 0; }

CUresult cuModuleLoadData(void **mod, const char *image) {
	if (env_int("FAKECUDA_BAD_PTX", 0) || !image || !strstr(image, ".entry truegpu_merkle("))
		return 218; /* CUDA_ERROR_INVALID_PTX */
	*mod = (void *)0x2;
	return 0;
}
CUresult cuModuleUnload(void *mod) { return 0; }

enum { K_PRG = 1, K_GEMM, K_LEAVES, K_MERKLE, K_TFILL, K_TGEMM, K_TLEAVES, K_MWBLOCKS, K_MWINIT, K_MWSTATES, K_MWNODES, K_MWWALK };

CUresult cuModuleGetFunction(void **fn, void *mod, const char *name) {
	if (!strcmp(name, "truegpu_prg")) *fn = (void *)K_PRG;
	else if (!strcmp(name, "truegpu_gemm")) *fn = (void *)K_GEMM;
	else if (!strcmp(name, "truegpu_leaves")) *fn = (void *)K_LEAVES;
	else if (!strcmp(name, "truegpu_merkle")) *fn = (void *)K_MERKLE;
	else if (!strcmp(name, "truegpu_timed_fill")) *fn = (void *)K_TFILL;
	else if (!strcmp(name, "truegpu_timed_gemm")) *fn = (void *)K_TGEMM;
	else if (!strcmp(name, "truegpu_timed_leaves")) *fn = (void *)K_TLEAVES;
	else if (!strcmp(name, "truegpu_mw_block_leaves")) *fn = (void *)K_MWBLOCKS;
	else if (!strcmp(name, "truegpu_mw_init")) *fn = (void *)K_MWINIT;
	else if (!strcmp(name, "truegpu_mw_state_leaves")) *fn = (void *)K_MWSTATES;
	else if (!strcmp(name, "truegpu_mw_nodes")) *fn = (void *)K_MWNODES;
	else if (!strcmp(name, "truegpu_mw_walk")) *fn = (void *)K_MWWALK;
	else return 500; /* CUDA_ERROR_NOT_FOUND */
	return 0;
}

CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
	if (env_int("FAKECUDA_FAIL_ALLOC", 0))
		return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
	void *m = malloc(n);
	if (!m)
		return 2;
	memset(m, 0xCD, n); /* like fresh device memory: not zero */
	live_allocations++;
	*p = (CUdeviceptr)m;
	return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) { free((void *)p); live_allocations--; return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { memcpy((void *)dst, src, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { memcpy(dst, (const void *)src, n); return 0; }

#define ARG(T, i) (*(T *)params[i])
#define PTR(T, i) ((T)(ARG(CUdeviceptr, i)))

CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, void *stream, void **params, void **extra) {
	if (!params || gz != 1 || bz != 1 || bx * by > 1024 || bx == 0 || by == 0)
		return 1; /* CUDA_ERROR_INVALID_VALUE */
	launches++;
	for (unsigned cy = 0; cy < gy; cy++)
		for (unsigned cx = 0; cx < gx; cx++)
			for (unsigned ty = 0; ty < by; ty++)
				for (unsigned tx = 0; tx < bx; tx++) {
					u32 x = cx * bx + tx, y = cy * by + ty;
					switch ((long)fn) {
					case K_PRG:
						k_prg(x, y, PTR(const fe *, 0), PTR(const fe *, 1), ARG(u64, 2), PTR(signed char *, 3),
						      ARG(u32, 4), ARG(u32, 5), ARG(u32, 6), ARG(u32, 7));
						break;
					case K_GEMM:
						k_gemm(x, y, PTR(const signed char *, 0), PTR(const signed char *, 1), PTR(int *, 2),
						       ARG(u32, 3), ARG(u32, 4), ARG(u32, 5));
						break;
					case K_LEAVES:
						if (y == 0)
							k_leaves(x, PTR(const int *, 0), PTR(fe *, 1), ARG(u64, 2));
						break;
					case K_MERKLE:
						if (y == 0)
							k_merkle(x, PTR(const fe *, 0), PTR(fe *, 1), PTR(const fe *, 2), ARG(u64, 3));
						break;
					case K_TFILL:
						if (y == 0)
							k_timed_fill(x, PTR(u64 *, 0), ARG(u64, 1), ARG(u64, 2), ARG(u64, 3), ARG(u64, 4));
						break;
					case K_TGEMM:
						if (bx != TM_THREADS || by != 1)
							return 1;
						if (tx == 0 && ty == 0)
							k_timed_gemm_block(cx, cy, PTR(const signed char *, 0), PTR(const signed char *, 1),
							                   PTR(unsigned char *, 2), ARG(u32, 3), ARG(u32, 4), ARG(u32, 5));
						break;
					case K_TLEAVES:
						if (y == 0)
							k_timed_leaves(x, PTR(const unsigned char *, 0), PTR(unsigned char *, 1), ARG(u64, 2),
							               ARG(u64, 3));
						break;
					case K_MWBLOCKS:
						if (y == 0)
							k_mw_block_leaves(x, PTR(const unsigned char *, 0), PTR(unsigned char *, 1), ARG(u64, 2),
							                  ARG(u64, 3));
						break;
					case K_MWINIT:
						if (y == 0)
							k_mw_init(x, PTR(u64 *, 0), ARG(u64, 1), ARG(u64, 2), ARG(u64, 3));
						break;
					case K_MWSTATES:
						if (y == 0)
							k_mw_state_leaves(x, PTR(const u64 *, 0), PTR(unsigned char *, 1), ARG(u64, 2), ARG(u64, 3));
						break;
					case K_MWNODES:
						if (y == 0)
							k_mw_nodes(x, PTR(const unsigned char *, 0), PTR(unsigned char *, 1), ARG(u64, 2));
						break;
					case K_MWWALK:
						/* Whole warps of a one-dimensional grid. */
						if (bx % 32 || by != 1 || gy != 1)
							return 1;
						if (tx % 32 == 0)
							k_mw_walk_warp(x / 32, PTR(const u64 *, 0), ARG(u64, 1), PTR(u64 *, 2), PTR(u64 *, 3),
							               ARG(u32, 4), ARG(u32, 5));
						break;
					default:
						return 400; /* CUDA_ERROR_INVALID_HANDLE */
					}
				}
	return 0;
}

CUresult cuGetErrorString(CUresult code, const char **s) {
	*s = "fake CUDA driver error";
	return 0;
}
