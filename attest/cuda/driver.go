package cuda

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/truegpu/truegpu/attest"
)

// Sentinel errors. Every driver failure is an *Error wrapping one of them.
var (
	// ErrNoDriver reports that the CUDA driver library could not be loaded:
	// no NVIDIA driver on this machine.
	ErrNoDriver = errors.New("cuda: NVIDIA CUDA driver (libcuda.so.1) not found")
	// ErrKernelLoad reports that the driver rejected the embedded PTX, for
	// example a driver older than CUDA 11 or a GPU older than sm_80.
	ErrKernelLoad = errors.New("cuda: cannot load the TrueGPU kernels")
	// ErrOutOfMemory reports a workload larger than the free device memory.
	ErrOutOfMemory = errors.New("cuda: out of device memory")
	// ErrDeviceFault reports a kernel that faulted; the context is unusable.
	ErrDeviceFault = errors.New("cuda: device fault")
	// ErrDriver reports any other driver failure.
	ErrDriver = errors.New("cuda: driver call failed")
)

// CUresult codes the package distinguishes.
const (
	cudaSuccess               = 0
	cudaErrorOutOfMemory      = 2
	cudaErrorNoDevice         = 100
	cudaErrorInvalidDevice    = 101
	cudaErrorNoBinaryForGPU   = 209
	cudaErrorInvalidPTX       = 218
	cudaErrorUnsupportedPTX   = 222
	cudaErrorIllegalAddress   = 700
	cudaErrorLaunchFailed     = 719
	cudaErrorIllegalInstr     = 715
	cudaErrorMisalignedAddr   = 716
	cudaErrorLaunchOutOfRes   = 701
	cudaErrorLaunchTimeout    = 702
	cudaErrorHardwareStackErr = 714
)

// Device attributes (CUdevice_attribute).
const (
	attrComputeCapabilityMajor = 75
	attrComputeCapabilityMinor = 76
	attrClockRate              = 13 // kHz
	attrMemoryClockRate        = 36 // kHz
)

// Error is a failed driver call.
type Error struct {
	Op   string // driver function, e.g. "cuModuleLoadData"
	Code int    // CUresult
	Name string // the driver's description, when it could be read
	kind error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%v: %s: %s (CUresult %d)", e.kind, e.Op, e.Name, e.Code)
}

// Unwrap returns the sentinel the code belongs to.
func (e *Error) Unwrap() error { return e.kind }

// driver holds the CUDA driver API entry points, resolved with purego.
type driver struct {
	cuInit               func(flags uint32) int32
	cuDriverGetVersion   func(v *int32) int32
	cuDeviceGetCount     func(n *int32) int32
	cuDeviceGet          func(dev *int32, ordinal int32) int32
	cuDeviceGetName      func(name *byte, n int32, dev int32) int32
	cuDeviceGetUuid      func(uuid *[16]byte, dev int32) int32
	cuDeviceTotalMem     func(bytes *uint64, dev int32) int32
	cuDeviceGetAttribute func(v *int32, attr int32, dev int32) int32
	cuDeviceGetPCIBusId  func(buf *byte, n int32, dev int32) int32
	cuCtxCreate          func(ctx *uintptr, flags uint32, dev int32) int32
	cuCtxDestroy         func(ctx uintptr) int32
	cuCtxSetCurrent      func(ctx uintptr) int32
	cuCtxSynchronize     func() int32
	cuModuleLoadData     func(mod *uintptr, image *byte) int32
	cuModuleUnload       func(mod uintptr) int32
	cuModuleGetFunction  func(fn *uintptr, mod uintptr, name *byte) int32
	cuMemAlloc           func(dptr *uint64, size uint64) int32
	cuMemFree            func(dptr uint64) int32
	cuMemcpyHtoD         func(dst uint64, src unsafe.Pointer, n uint64) int32
	cuMemcpyDtoH         func(dst unsafe.Pointer, src uint64, n uint64) int32
	cuLaunchKernel       func(f uintptr, gx, gy, gz, bx, by, bz, shmem uint32, stream uintptr, params *unsafe.Pointer, extra *unsafe.Pointer) int32
	cuGetErrorString     func(code int32, str **byte) int32
}

var (
	driversMu sync.Mutex
	drivers   = map[string]*driver{}
)

// defaultLibrary is the CUDA driver's soname.
const defaultLibrary = "libcuda.so.1"

// loadDriver opens the driver library at path (default libcuda.so.1),
// resolves its entry points and calls cuInit. Loaded drivers are cached.
func loadDriver(path string) (*driver, error) {
	if path == "" {
		path = defaultLibrary
	}
	driversMu.Lock()
	defer driversMu.Unlock()
	if d, ok := drivers[path]; ok {
		return d, nil
	}
	if runtime.GOOS != "linux" {
		return nil, fmt.Errorf("%w: the CUDA backend supports Linux only (this is %s); run the attestor with --device cpu", ErrNoDriver, runtime.GOOS)
	}
	lib, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v; install the NVIDIA driver, or run the attestor with --device cpu", ErrNoDriver, path, err)
	}
	d := &driver{}
	syms := []struct {
		fn    any
		names []string // preferred first
	}{
		{&d.cuInit, []string{"cuInit"}},
		{&d.cuDriverGetVersion, []string{"cuDriverGetVersion"}},
		{&d.cuDeviceGetCount, []string{"cuDeviceGetCount"}},
		{&d.cuDeviceGet, []string{"cuDeviceGet"}},
		{&d.cuDeviceGetName, []string{"cuDeviceGetName"}},
		{&d.cuDeviceGetUuid, []string{"cuDeviceGetUuid_v2", "cuDeviceGetUuid"}},
		{&d.cuDeviceTotalMem, []string{"cuDeviceTotalMem_v2"}},
		{&d.cuDeviceGetAttribute, []string{"cuDeviceGetAttribute"}},
		{&d.cuDeviceGetPCIBusId, []string{"cuDeviceGetPCIBusId"}},
		{&d.cuCtxCreate, []string{"cuCtxCreate_v2"}},
		{&d.cuCtxDestroy, []string{"cuCtxDestroy_v2"}},
		{&d.cuCtxSetCurrent, []string{"cuCtxSetCurrent"}},
		{&d.cuCtxSynchronize, []string{"cuCtxSynchronize"}},
		{&d.cuModuleLoadData, []string{"cuModuleLoadData"}},
		{&d.cuModuleUnload, []string{"cuModuleUnload"}},
		{&d.cuModuleGetFunction, []string{"cuModuleGetFunction"}},
		{&d.cuMemAlloc, []string{"cuMemAlloc_v2"}},
		{&d.cuMemFree, []string{"cuMemFree_v2"}},
		{&d.cuMemcpyHtoD, []string{"cuMemcpyHtoD_v2"}},
		{&d.cuMemcpyDtoH, []string{"cuMemcpyDtoH_v2"}},
		{&d.cuLaunchKernel, []string{"cuLaunchKernel"}},
		{&d.cuGetErrorString, []string{"cuGetErrorString"}},
	}
	for _, s := range syms {
		var addr uintptr
		var last error
		for _, name := range s.names {
			if addr, last = purego.Dlsym(lib, name); last == nil && addr != 0 {
				break
			}
		}
		if addr == 0 {
			return nil, fmt.Errorf("%w: %s lacks %s (%v): the driver is too old; CUDA 11 or newer is needed", ErrNoDriver, path, s.names[0], last)
		}
		purego.RegisterFunc(s.fn, addr)
	}
	if err := d.check("cuInit", d.cuInit(0)); err != nil {
		return nil, err
	}
	drivers[path] = d
	return d, nil
}

// check converts a CUresult into an error; success is nil.
func (d *driver) check(op string, code int32) error {
	if code == cudaSuccess {
		return nil
	}
	return newError(op, int(code), d.errorString(code))
}

func newError(op string, code int, name string) *Error {
	var kind error
	switch code {
	case cudaErrorNoDevice, cudaErrorInvalidDevice:
		kind = attest.ErrNoDevice
	case cudaErrorOutOfMemory:
		kind = ErrOutOfMemory
	case cudaErrorNoBinaryForGPU, cudaErrorInvalidPTX, cudaErrorUnsupportedPTX:
		kind = ErrKernelLoad
	case cudaErrorIllegalAddress, cudaErrorLaunchFailed, cudaErrorIllegalInstr, cudaErrorMisalignedAddr,
		cudaErrorLaunchOutOfRes, cudaErrorLaunchTimeout, cudaErrorHardwareStackErr:
		kind = ErrDeviceFault
	default:
		kind = ErrDriver
	}
	if name == "" {
		name = fmt.Sprintf("CUDA error %d", code)
	}
	if kind == ErrKernelLoad {
		name += "; the kernels are PTX ISA 7.0 for sm_80: update the NVIDIA driver (CUDA 11+) or use an A100-class or newer GPU"
	}
	return &Error{Op: op, Code: code, Name: name, kind: kind}
}

func (d *driver) errorString(code int32) string {
	if d == nil || d.cuGetErrorString == nil {
		return ""
	}
	var p *byte
	if d.cuGetErrorString(code, &p) != cudaSuccess || p == nil {
		return ""
	}
	return goString(p)
}

// goString copies a NUL-terminated C string.
func goString(p *byte) string {
	var b []byte
	for ptr := unsafe.Pointer(p); *(*byte)(ptr) != 0; ptr = unsafe.Add(ptr, 1) {
		b = append(b, *(*byte)(ptr))
	}
	return string(b)
}

// cString returns a NUL-terminated copy of s.
func cString(s string) *byte {
	b := append([]byte(s), 0)
	return &b[0]
}

// cBuf returns the string in a NUL-padded buffer.
func cBuf(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
