package experts

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// dropCache evicts the file's pages from the page cache (this file only,
// unlike /proc/sys/vm/drop_caches), so buffered reads go to the device.
func dropCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}
