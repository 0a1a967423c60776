//go:build !cgo

package nvml

import (
	"context"
	"fmt"

	"github.com/truegpu/truegpu/attest"
)

// Library is an initialized NVML library. Without cgo it cannot be opened.
type Library struct{}

// Open fails: go-nvml needs cgo.
func Open(opts Options) (*Library, error) {
	return nil, fmt.Errorf("%w: this attestor was built without cgo (CGO_ENABLED=0), which NVML needs; rebuild with cgo, or run with --device cuda or --device cpu", ErrLibraryNotFound)
}

// Close does nothing.
func (l *Library) Close() error { return nil }

// Count fails: no library.
func (l *Library) Count() (int, error) { return 0, ErrLibraryNotFound }

// Device fails: no library.
func (l *Library) Device(i int) (*Device, error) { return nil, ErrLibraryNotFound }

// Devices fails: no library.
func (l *Library) Devices() ([]*Device, error) { return nil, ErrLibraryNotFound }

// Device is one GPU as NVML reports it; without cgo none can be opened.
type Device struct{}

// Index returns 0.
func (d *Device) Index() int { return 0 }

// Close does nothing.
func (d *Device) Close() error { return nil }

// Fingerprint fails: no library.
func (d *Device) Fingerprint(ctx context.Context) (attest.Fingerprint, error) {
	return attest.Fingerprint{}, ErrLibraryNotFound
}

// Telemetry fails: no library.
func (d *Device) Telemetry(ctx context.Context) (attest.Telemetry, error) {
	return attest.Telemetry{}, ErrLibraryNotFound
}
