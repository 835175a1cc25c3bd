//go:build unix

package experts

import (
	"os"
	"path/filepath"
	"testing"
)

// AdviseWillNeed takes any range of a mapping, page-aligned or not (madvise
// itself refuses an unaligned start), and leaves the bytes as they are.
func TestAdviseWillNeedTakesUnalignedRanges(t *testing.T) {
	page := os.Getpagesize()
	want := make([]byte, 3*page)
	for i := range want {
		want[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "experts.safetensors")
	if err := os.WriteFile(path, want, 0o644); err != nil {
		t.Fatal(err)
	}
	data, unmap, err := MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unmap()
	for _, r := range [][2]int{{0, page}, {100, 5000}, {page + 1, 3 * page}, {2*page - 1, 2 * page}, {7, 7}} {
		if err := AdviseWillNeed(data[r[0]:r[1]]); err != nil {
			t.Errorf("bytes %d to %d: %v", r[0], r[1], err)
		}
	}
	for i := range want {
		if data[i] != want[i] {
			t.Fatalf("byte %d reads %d after the advice, want %d", i, data[i], want[i])
		}
	}
}
