package experts

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestLoadWarmRemovesStaleTemps: temporary files an interrupted save left
// are removed at the next start; a fresh one (a save in progress in another
// process) and unrelated files stay.
func TestLoadWarmRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	m := writeTestModel(t, dir, 2, 8, testParts)
	warm := filepath.Join(dir, "cache", "resident.json")
	if err := os.MkdirAll(filepath.Dir(warm), 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	files := map[string]bool{ // name -> should survive
		".tmp-resident.json123456": false,
		".tmp-resident.json987":    true, // fresh
		"other.json":               true,
		".tmp-profile.json42":      true, // not the warm-start file's
	}
	for name, keep := range files {
		path := filepath.Join(filepath.Dir(warm), name)
		if err := os.WriteFile(path, []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !keep || name != ".tmp-resident.json987" {
			os.Chtimes(path, old, old)
		}
	}
	p := newTestPager(t, m, 3, nil)
	if _, why, err := p.LoadWarm(warm); err != nil || why == "" {
		t.Fatalf("LoadWarm without a state file = %q, %v; want it ignored", why, err)
	}
	for name, keep := range files {
		_, err := os.Stat(filepath.Join(filepath.Dir(warm), name))
		if exists := err == nil; exists != keep {
			t.Errorf("%s: exists %v after LoadWarm, want %v", name, exists, keep)
		}
	}
}
