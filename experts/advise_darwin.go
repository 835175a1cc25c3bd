package experts

import (
	"os"
	"syscall"
	"unsafe"
)

// radvisory is macOS's struct radvisory for F_RDADVISE.
type radvisory struct {
	offset int64
	count  int32
	_      int32
}

// adviseRead asks macOS to read ahead a range of f that a buffered read
// will soon want (F_RDADVISE), so that the reads queued behind the busy IO
// workers are already under way. Files read with F_NOCACHE skip it: the
// advice would fill the unified buffer cache they are meant to bypass.
func adviseRead(f *os.File, off, n int64) {
	ra := radvisory{offset: off, count: int32(min(n, 1<<30))}
	syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), syscall.F_RDADVISE, uintptr(unsafe.Pointer(&ra)))
}
