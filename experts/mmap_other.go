//go:build !unix

package experts

import (
	"errors"
	"fmt"
	"unsafe"
)

// defaultAllocator falls back to the Go heap where there is no mmap.
type defaultAllocator struct{}

func (defaultAllocator) Alloc(layer int, kind BufferKind, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("experts: layer %d: %s of %d bytes", layer, kind, n)
	}
	b := make([]byte, n+SlotAlign)
	skip := (SlotAlign - int64(uintptr(unsafe.Pointer(&b[0])))%SlotAlign) % SlotAlign
	return b[skip : skip+n : skip+n], nil
}

func (defaultAllocator) Free([]byte) error { return nil }

// MapFile is not available on this platform.
func MapFile(path string) ([]byte, func() error, error) {
	return nil, nil, errors.New("experts: MapFile: no mmap on this platform")
}

// AdviseWillNeed does nothing where there is no mmap.
func AdviseWillNeed([]byte) error { return nil }
