//go:build unix

package experts

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

type defaultAllocator struct{}

func (defaultAllocator) Alloc(layer int, kind BufferKind, n int64) ([]byte, error) {
	if n <= 0 {
		return nil, fmt.Errorf("experts: layer %d: %s of %d bytes", layer, kind, n)
	}
	// mmap memory is page aligned and zeroed; pages cost RSS only once
	// written. (Populating the pools at start, MAP_POPULATE, made RSS flat
	// from the first token but cost 1.2 s per GB of budget before it; a
	// long first prompt fills the slots anyway.)
	b, err := syscall.Mmap(-1, 0, int(n), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, fmt.Errorf("experts: layer %d: allocating %s of %d bytes: %w", layer, kind, n, err)
	}
	return b, nil
}

func (defaultAllocator) Free(b []byte) error { return syscall.Munmap(b) }

// MapFile maps a whole file read-only and returns its bytes and a function
// that unmaps it. The os policy reads expert tensors through such a mapping
// and leaves caching to the kernel; reads run under GuardMapped survive the
// file shrinking under the mapping.
func MapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 {
		return nil, func() error { return nil }, nil
	}
	if int64(int(st.Size())) != st.Size() {
		return nil, nil, fmt.Errorf("experts: %s: %d bytes do not fit the address space", path, st.Size())
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("experts: mmap %s: %w", path, err)
	}
	// No read-around on faults: the device's read-ahead (8 MiB on a
	// virtio disk, for instance) around each fault in a 512 KiB expert
	// part read 16 times the bytes the router asked for. AdviseWillNeed
	// reads exactly the routed experts' ranges instead.
	if err := unix.Madvise(b, unix.MADV_RANDOM); err != nil {
		syscall.Munmap(b)
		return nil, nil, fmt.Errorf("experts: madvise %s: %w", path, err)
	}
	registerMapping(path, b) // so that GuardMapped can name the file of a fault
	return b, func() error { unregisterMapping(b); return syscall.Munmap(b) }, nil
}

// AdviseWillNeed asks the kernel to start reading the pages under b, a
// range of a MapFile mapping, without waiting for them: the experts a
// router picked are advised before they run, so their parts load together
// rather than fault by fault.
func AdviseWillNeed(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	// madvise wants a page-aligned start; the mapping starts on a page, so
	// rounding b's start down stays inside it.
	skip := int(uintptr(unsafe.Pointer(&b[0])) % uintptr(os.Getpagesize()))
	return unix.Madvise(unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(&b[0]), -skip)), len(b)+skip), unix.MADV_WILLNEED)
}
