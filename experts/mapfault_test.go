//go:build unix

package experts

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A read past the end of a file truncated under its MapFile mapping fails
// GuardMapped with an error naming the file and offset; other panics pass
// through, and unmapping forgets the file.
func TestGuardMappedNamesTheFile(t *testing.T) {
	page := os.Getpagesize()
	path := filepath.Join(t.TempDir(), "model-00001-of-00002.safetensors")
	if err := os.WriteFile(path, make([]byte, 4*page), 0o644); err != nil {
		t.Fatal(err)
	}
	data, unmap, err := MapFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sink byte
	if err := GuardMapped(func() error { sink += data[3*page]; return nil }); err != nil {
		t.Fatalf("intact file: %v", err)
	}
	if err := os.Truncate(path, int64(page)); err != nil {
		t.Fatal(err)
	}
	err = GuardMapped(func() error { sink += data[3*page+5]; return nil })
	var mf *MappedFileError
	if !errors.As(err, &mf) || mf.Path != path || mf.Offset != int64(3*page+5) {
		t.Fatalf("truncated file: %v, want a MappedFileError for %s at %d", err, path, 3*page+5)
	}
	t.Log(err)
	func() {
		defer func() {
			if v := recover(); v != "not a fault" {
				t.Errorf("a plain panic came out as %v", v)
			}
		}()
		GuardMapped(func() error { panic("not a fault") })
	}()
	if err := unmap(); err != nil {
		t.Fatal(err)
	}
	mappings.Lock()
	n := len(mappings.live)
	mappings.Unlock()
	if n != 0 {
		t.Errorf("%d mappings registered after unmapping", n)
	}
}
