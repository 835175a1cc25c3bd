package metal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/graph"
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

// failOnce is a device whose next commit fails (as a command buffer the
// GPU aborts, or one the watchdog kills), after running what it holds.
type failOnce struct {
	device
	fail bool
}

func (f *failOnce) commit(hs []handoff) error {
	err := f.device.commit(hs)
	if f.fail {
		f.fail = false
		return errors.New("planted command buffer failure")
	}
	return err
}

// TestFailedCommandBufferFailsOnePass checks that a failed command buffer
// fails the Sync that ends its pass, and that the executor then runs the
// next pass correctly instead of failing every request after it.
func TestFailedCommandBufferFailsOnePass(t *testing.T) {
	dev := &failOnce{device: newHarnessDevice(t), fail: true}
	e := newExecutor(dev)
	a, b, out := e.NewTensor(1, 64), e.NewTensor(1, 64), e.NewTensor(1, 64)
	for i := range a.Data {
		a.Data[i], b.Data[i] = float32(i), 1
	}
	e.Add(out, a, b, 1)
	if err := e.Sync(); err == nil || !strings.Contains(err.Error(), "planted command buffer failure") {
		t.Fatalf("first pass: Sync() = %v, want the planted failure", err)
	}
	clear(out.Data)
	e.Add(out, a, b, 1)
	if err := e.Sync(); err != nil {
		t.Fatalf("the pass after a failed one: %v", err)
	}
	for i, v := range out.Data {
		if v != float32(i)+1 {
			t.Fatalf("the pass after a failed one: out[%d] = %g, want %d", i, v, i+1)
		}
	}
}

// TestCopyColsStrided copies a column block between tensors of different
// widths on the harness device (copy_rows) and with the CPU executor.
func TestCopyColsStrided(t *testing.T) {
	e := newExecutor(newHarnessDevice(t))
	ref := cpu.New()
	const rows, srcCols, dstCols = 5, 12, 20
	fill := func(x *graph.Tensor, seed float32) {
		for i := range x.Data {
			x.Data[i] = seed + float32(i)
		}
	}
	src, dst := e.NewTensor(rows, srcCols), e.NewTensor(rows, dstCols)
	rsrc, rdst := ref.NewTensor(rows, srcCols), ref.NewTensor(rows, dstCols)
	fill(src, 0)
	fill(rsrc, 0)
	fill(dst, 1000)
	fill(rdst, 1000)
	// Rows 1..3 of columns 2..8 of src into rows 0..2, columns 9..15 of dst.
	e.CopyCols(dst, 0, 9, src, 1, 2, 3, 7)
	ref.CopyCols(rdst, 0, 9, rsrc, 1, 2, 3, 7)
	if err := e.Sync(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dst.Data, rdst.Data) {
		t.Fatalf("CopyCols: got %v, want %v", dst.Data, rdst.Data)
	}
}
