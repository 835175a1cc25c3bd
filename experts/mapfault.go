package experts

import (
	"fmt"
	"runtime/debug"
	"sync"
	"unsafe"
)

// A file mapped with MapFile can shrink under the mapping (someone
// truncates or rewrites a shard while the server runs); touching a page
// past its new end raises SIGBUS, which kills a Go process. GuardMapped
// turns such a fault into an error naming the file: with
// runtime/debug.SetPanicOnFault the fault becomes a panic whose address
// identifies the mapping.

// mapping is one live MapFile mapping.
type mapping struct {
	path       string
	start, end uintptr
}

// mappings are the live mappings, for naming the file of a faulting address.
var mappings struct {
	sync.Mutex
	live []mapping
}

func registerMapping(path string, b []byte) {
	if len(b) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(&b[0]))
	mappings.Lock()
	mappings.live = append(mappings.live, mapping{path, start, start + uintptr(len(b))})
	mappings.Unlock()
}

func unregisterMapping(b []byte) {
	if len(b) == 0 {
		return
	}
	start := uintptr(unsafe.Pointer(&b[0]))
	mappings.Lock()
	defer mappings.Unlock()
	for i, m := range mappings.live {
		if m.start == start {
			mappings.live = append(mappings.live[:i], mappings.live[i+1:]...)
			return
		}
	}
}

// mappedAt finds the mapped file holding addr.
func mappedAt(addr uintptr) (path string, offset int64, ok bool) {
	mappings.Lock()
	defer mappings.Unlock()
	for _, m := range mappings.live {
		if addr >= m.start && addr < m.end {
			return m.path, int64(addr - m.start), true
		}
	}
	return "", 0, false
}

// MappedFileError reports a read through a MapFile mapping that faulted.
type MappedFileError struct {
	Path   string
	Offset int64 // of the faulting byte in the file
}

func (e *MappedFileError) Error() string {
	return fmt.Sprintf("experts: reading %s at byte %d through its memory map failed: the file was truncated or changed "+
		"while mapped, or its storage failed (the os policy needs the checkpoint left as it was loaded)", e.Path, e.Offset)
}

// GuardMapped runs f with memory faults turned into panics, and returns a
// fault inside a MapFile mapping as a *MappedFileError. Other panics go on
// up. Work that f hands to other goroutines is covered when those
// goroutines take the caller's SetPanicOnFault setting and pass their
// panics back (as the kernels' parallel loops do).
func GuardMapped(f func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if fault, ok := v.(interface{ Addr() uintptr }); ok {
			if path, off, found := mappedAt(fault.Addr()); found {
				err = &MappedFileError{Path: path, Offset: off}
				return
			}
		}
		panic(v)
	}()
	return f()
}
