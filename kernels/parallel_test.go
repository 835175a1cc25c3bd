//go:build unix

package kernels

import (
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"testing"
	"unsafe"
)

// A panic in a parallelFor worker reaches the caller (where it can be
// recovered) instead of killing the process.
func TestParallelForPassesPanicsBack(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("parallelFor runs inline with one P")
	}
	got := func() (v any) {
		defer func() { v = recover() }()
		parallelFor(64, 1<<15, func(lo, hi int) {
			if lo > 0 {
				panic("worker failed")
			}
		})
		return nil
	}()
	if got != "worker failed" {
		t.Fatalf("recovered %v, want the worker's panic", got)
	}
}

// Workers take the caller's SetPanicOnFault: a read past the end of a
// truncated file mapping in a worker becomes a panic carrying the faulting
// address in the caller, not a fatal SIGBUS.
func TestParallelForInheritsPanicOnFault(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("parallelFor runs inline with one P")
	}
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "weights")
	if err := os.WriteFile(path, make([]byte, 8*page), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := syscall.Mmap(int(f.Fd()), 0, 8*page, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(data)
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	got := func() (v any) {
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		defer func() { v = recover() }()
		sums := make([]byte, 8)
		parallelFor(8, 1<<15, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				sums[p] = data[p*page] // pages 1..7 are past the new end
			}
		})
		return sums
	}()
	fault, ok := got.(interface{ Addr() uintptr })
	if !ok {
		t.Fatalf("recovered %v (%T), want a memory fault", got, got)
	}
	if off := int(fault.Addr()) - int(uintptr(unsafe.Pointer(&data[0]))); off < page || off >= 8*page {
		t.Errorf("fault at offset %d, want one of the truncated pages", off)
	}
}
