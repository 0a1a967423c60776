//go:build !cgo

package main

import "github.com/truegpu/truegpu/attest"

func openNVML(f *deviceFlags) ([]attest.Device, func(), error) {
	return nil, nil, errNVMLUnavailable
}
