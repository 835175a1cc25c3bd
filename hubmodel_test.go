package mlxmoe

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlx-moe/mlx-moe/hub"
	"github.com/mlx-moe/mlx-moe/hub/hubtest"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// TestCheckSupportedAcceptsEveryFixture: the check a download makes before
// the weights passes every family the engine loads, and refuses others.
func TestCheckSupportedAcceptsEveryFixture(t *testing.T) {
	for _, name := range fixture.Names(t) {
		data, err := os.ReadFile(filepath.Join(fixture.Root(), "fixtures", name, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckSupported(data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := CheckSupported([]byte(`{"model_type": "llama"}`)); err == nil {
		t.Error("llama passed")
	}
	if err := CheckSupported([]byte(`[1]`)); err == nil {
		t.Error("a JSON array passed")
	}
}

// TestLoadHubID: Load takes a hub id; it downloads only when
// Options.Download is set.
func TestLoadHubID(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	h := hubtest.New(t)
	if _, err := h.AddDir("test-org/m", dir); err != nil {
		t.Fatal(err)
	}
	c := &hub.Client{Endpoint: h.Server.URL, Cache: hub.Cache{Dir: t.TempDir()}}
	if _, err := Load("test-org/m", Options{Device: "cpu", Hub: c}); !errors.Is(err, hub.ErrNotCached) {
		t.Fatalf("without Download: %v", err)
	}
	m, err := Load("test-org/m", Options{Device: "cpu", Hub: c, Download: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want, _ := c.Cache.Snapshot(hub.ID{Repo: "test-org/m", Revision: "main"}); m.Dir != want {
		t.Fatalf("loaded from %s, want the snapshot %s", m.Dir, want)
	}
}
