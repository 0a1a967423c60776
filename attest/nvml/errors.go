// Package nvml is the NVML backend of the attestor: it enumerates NVIDIA
// GPUs through NVIDIA's management library and reads their fingerprints
// (UUID, serial, board part number and id, PCI ids, name, memory, VBIOS,
// driver and CUDA driver versions, compute capability, clocks, power limit,
// MIG and confidential computing modes) and telemetry.
//
// It is the only package of the project that imports go-nvml, and it keeps
// go-nvml's types to itself: every nvml.Return is converted into a Go error
// at this boundary, wrapping one of the sentinel errors below. A field the
// driver does not report (not supported, not permitted) is left empty and
// named in the fingerprint's Unsupported list instead of failing the read.
//
// An NVML Device is an attest.Identity: NVML does not run work. Combine it
// with an executor (the CUDA backend on a GPU node, or the CPU reference
// backend) through attest.Combine to get an attest.Device.
//
// go-nvml needs cgo. In builds without cgo the package still compiles,
// and Open fails with an error wrapping ErrLibraryNotFound.
package nvml

import (
	"errors"
	"fmt"

	"github.com/truegpu/truegpu/attest"
)

// Sentinel errors. Compare with errors.Is; every error from this package
// that comes from the library wraps one of them and also carries the
// library's return code in an *Error.
var (
	// ErrLibraryNotFound reports that libnvidia-ml.so.1 could not be
	// loaded: no NVIDIA driver is installed on this machine.
	ErrLibraryNotFound = errors.New("nvml: NVIDIA management library (libnvidia-ml.so.1) not found")
	// ErrDriverNotLoaded reports that the library is present but the
	// kernel driver is not running.
	ErrDriverNotLoaded = errors.New("nvml: NVIDIA kernel driver not loaded")
	// ErrDeviceLost reports a GPU that fell off the bus or stopped
	// responding; it needs a reset or a reboot.
	ErrDeviceLost = errors.New("nvml: GPU lost")
	// ErrNotSupported reports a query the device or driver does not
	// support. It also wraps attest.ErrNotSupported.
	ErrNotSupported = fmt.Errorf("nvml: %w", attest.ErrNotSupported)
	// ErrNoPermission reports a query the calling user may not make.
	ErrNoPermission = errors.New("nvml: permission denied")
	// ErrLibrary reports any other failure of the library.
	ErrLibrary = errors.New("nvml: library call failed")
)

// Error is a failed library call: the operation, the device it concerned
// (if any) and the library's return code and message.
type Error struct {
	Op     string // e.g. "nvmlDeviceGetSerial"
	Device string // device index or UUID; empty for system calls
	Code   int    // nvmlReturn_t
	Msg    string // the library's description of Code
	kind   error
}

func (e *Error) Error() string {
	where := ""
	if e.Device != "" {
		where = " on device " + e.Device
	}
	return fmt.Sprintf("%v: %s%s: %s (code %d)", e.kind, e.Op, where, e.Msg, e.Code)
}

// Unwrap returns the sentinel error the return code belongs to.
func (e *Error) Unwrap() error { return e.kind }

// Options configure Open.
type Options struct {
	// LibraryPath overrides the library to load; empty means
	// "libnvidia-ml.so.1" from the dynamic linker's search path.
	LibraryPath string
}
