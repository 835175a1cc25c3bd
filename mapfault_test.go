//go:build unix

package mlxmoe

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// TestOSPolicySurvivesTruncation: under the os policy, a shard truncated
// while mapped fails the generation with an error naming the file (not a
// SIGBUS that kills the process); with the file restored, the same model
// serves again and is exact.
func TestOSPolicySurvivesTruncation(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_moe-4bit")
	ref := loadWith(t, dir, ExpertOptions{Policy: "resident"})
	m := loadWith(t, dir, ExpertOptions{Policy: "os"})
	path := filepath.Join(dir, "model.safetensors")
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	headerEnd := 8 + int64(binary.LittleEndian.Uint64(orig[:8]))
	if err := os.Truncate(path, headerEnd); err != nil { // every tensor's bytes gone
		t.Fatal(err)
	}
	prompt := []int32{10, 20, 30, 40}
	_, err = m.Stream(context.Background(), prompt, GenerateOptions{MaxTokens: 3}, nil)
	var mf *experts.MappedFileError
	if !errors.As(err, &mf) || filepath.Base(mf.Path) != "model.safetensors" || mf.Offset < headerEnd {
		t.Fatalf("generation over a truncated shard: %v, want a MappedFileError naming model.safetensors", err)
	}
	t.Log(err)
	if err := os.WriteFile(path, orig, 0o644); err != nil { // the same file, whole again
		t.Fatal(err)
	}
	got, err := m.Logits(prompt)
	if err != nil {
		t.Fatalf("after the file was restored: %v", err)
	}
	want, _ := ref.Logits(prompt)
	if !bytes.Equal(f32bytes(got), f32bytes(want)) {
		t.Fatal("logits after the fault differ from the resident model")
	}
	if _, err := m.Stream(context.Background(), prompt, GenerateOptions{MaxTokens: 3}, nil); err != nil {
		t.Fatalf("generating after the fault: %v", err)
	}
}
