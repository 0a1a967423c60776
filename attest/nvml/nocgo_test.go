//go:build !cgo

package nvml

import (
	"errors"
	"strings"
	"testing"
)

func TestOpenWithoutCgo(t *testing.T) {
	_, err := Open(Options{})
	if !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "--device cpu") {
		t.Fatalf("Open without cgo: %v, want ErrLibraryNotFound offering --device cpu", err)
	}
}
