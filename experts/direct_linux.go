package experts

import (
	"fmt"
	"os"
	"syscall"
)

// openDirect opens a file for reads that bypass the page cache, so that the
// memory budget is real and the kernel does not keep a second copy of every
// expert read.
func openDirect(name string) (*os.File, error) {
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return nil, fmt.Errorf("O_DIRECT unavailable for %s (%v); using buffered reads", name, err)
	}
	return f, nil
}
