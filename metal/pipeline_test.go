package metal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/kernels/mslharness"
)

// plantedBadShader is elementwise.metal's add with a compile error: the
// shader a compiler rejects.
const plantedBadShader = `#include <metal_stdlib>
using namespace metal;

kernel void add(device const float* a [[buffer(0)]],
                device const float* b [[buffer(1)]],
                device float* out [[buffer(2)]],
                constant uint& n [[buffer(3)]],
                uint i [[thread_position_in_grid]]) {
  if (i < n) out[i] = a[i] + b[i] + planted_undeclared;
}
`

// TestPipelineErrorFailsTheOp builds a planted bad shader through the
// harness and checks that the op whose kernel it holds fails with the
// compiler's message, rather than running on the host as if there were no
// kernel (what a Mac did with a pipeline Metal refused).
func TestPipelineErrorFailsTheOp(t *testing.T) {
	if _, err := mslharness.Compiler(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "planted.metal")
	if err := os.WriteFile(file, []byte(plantedBadShader), 0o644); err != nil {
		t.Fatal(err)
	}
	_, buildErr := mslharness.Build(file, filepath.Join("..", "kernels", "msl", "compat"), dir)
	if buildErr == nil {
		t.Fatal("the planted bad shader compiled")
	}
	// The file's only kernel, add, has a library function and no pipeline.
	e := newExecutor(harnessDeviceOf(nil, map[string]error{"add": buildErr}))
	a, b, out := e.NewTensor(1, 8), e.NewTensor(1, 8), e.NewTensor(1, 8)
	e.Add(out, a, b, 1)
	err := e.Sync()
	if err == nil || !strings.Contains(err.Error(), "building the pipeline of add") || !strings.Contains(err.Error(), "planted_undeclared") {
		t.Fatalf("Sync() = %v; want the pipeline error of add with the compiler's message", err)
	}
	if ops := e.HostOps(); len(ops) != 0 {
		t.Errorf("ran on the host after a pipeline error: %v", ops)
	}
	t.Logf("surfaced: %.200s", err)
}
