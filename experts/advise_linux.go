package experts

import (
	"os"

	"golang.org/x/sys/unix"
)

// adviseRead tells the kernel that a buffered read of f at off is coming,
// so that it starts reading while the IO workers are busy with earlier
// runs (a deeper queue for the drive). O_DIRECT reads skip it: they do not
// go through the page cache the advice would fill.
func adviseRead(f *os.File, off, n int64) {
	unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}
